"""The MLP engine on sparse parity: 2-layer ReLU MLPs (symmetric or default init), Algorithm 1's
two-stage training, online SGD with cross-entropy and distillation (the exact blocked batch-1 path),
teachers, students (every strategy of :data:`infra.schedule.STRATEGIES`) and the implicit-curriculum
probes. Tensors carry a leading run axis so that independent runs train as one program.

Below it: :mod:`infra` and :mod:`theory`; it never imports :mod:`distill` or anything above (ARCHITECTURE.md).
"""
