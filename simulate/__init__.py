"""The sparse-parity engine: 2-layer ReLU MLPs (symmetric or default init), Algorithm 1's two-stage
training, online SGD with cross-entropy and distillation, teachers, students and probes.
Tensors carry a leading run axis so that independent runs train as one program."""
