"""Configs of the Transformer experiments: one frozen dataclass per experiment kind.

``PcfgTeacherConfig`` / ``PcfgStudentConfig`` / ``PcfgCompareConfig``: BERT masked prediction or GPT
next-token prediction on a PCFG (Section 4.1, Appendices D and E). ``ParityTransformerTeacherConfig``
/ ``...StudentConfig`` / ``...CompareConfig``: sparse parity as a token sequence (Appendix C.2).
The defaults are CPU-sized (see the README); the ``paper`` presets (``experiments/sweeps/presets/pcfg.yaml``,
``parity-transformer.yaml``) hold the paper's scale. Every field
is checked in ``__post_init__`` and a bad value raises ``ParameterError`` naming the field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from infra.config import MAX_INT, check_checkpoints, check_extraction, check_memory, check_seeds
from infra.first_checkpoint import check_first_fields
from infra.schedule import SPLITS, STRATEGIES, stage_plan
from theory._checks import ParameterError, check_choice, check_int, check_real

__all__ = ["PcfgTeacherConfig", "PcfgStudentConfig", "PcfgCompareConfig", "ParityTransformerTeacherConfig",
           "ParityTransformerStudentConfig", "ParityTransformerCompareConfig", "STRATEGIES", "memory_terms",
           "check_transformer_memory"]

#: Hard caps of the sizes of evaluation and probe sets (the paper's: 1024 held-out sentences, 51200
#: probe sentences, 2000 probe steps, 4096-100000 parity probe inputs).
MAX_EVAL_SIZE = 1 << 20
MAX_PROBE_SENTENCES = 1 << 22
MAX_PROBE_STEPS = 1_000_000
MAX_PROBE_SAMPLES = 1 << 24
MAX_MEASURE_POSITIONS = 1 << 20


def memory_terms(cfg, *, seq_len: int, vocab: int, n_out: int, runs: int | None = None, prefix: str = "",
                 seq: str = "T", extra_params: int = 0) -> list:
    """The largest tensors a Transformer run of ``cfg`` holds at once, as ``(formula, count, unit, bytes)``
    for :func:`infra.config.check_memory` (a lower bound): the parameters with their gradients and Adam's two
    moments (16 bytes each; ``extra_params``: frozen teacher parameters, 4 bytes each), the residual stream
    of every block of one batch kept for the backward pass (``R B T D L``, twice), and one batch of output
    logits (``R B T n_out``); activations count 2 bytes under bf16 autocast, else 4. ``seq``: the name of T
    in the message."""
    R = len(cfg.seeds) if runs is None else runs
    D, L, B, T = cfg.heads * cfg.head_dim, cfg.layers, cfg.batch, seq_len
    per_layer = (4 + 2 * cfg.mlp_ratio) * D * D + (9 + 2 * cfg.mlp_ratio) * D
    P = R * (L * per_layer + (vocab + T + n_out + 2) * D)
    act = 2 if cfg.precision == "bf16" or (cfg.precision == "auto" and cfg.device != "cpu") else 4
    p = prefix
    return [
        (f"{p}layers * ({p}heads * {p}head_dim)^2 * runs", P, "parameters", 16 * P + 4 * extra_params),
        (f"{p}batch * {seq} * {p}heads * {p}head_dim * {p}layers * runs", R * B * T * D * L, "activations",
         2 * act * R * B * T * D * L),
        (f"{p}batch * {seq} * outputs * runs", R * B * T * n_out, "logits", act * R * B * T * n_out),
        (f"{p}eval_size * {seq}", cfg.eval_size * T, "held-out tokens", 8 * 5 * cfg.eval_size * T),
    ]


def check_transformer_memory(cfg, **task) -> None:
    """ParameterError when the run's tensors (:func:`memory_terms`, ``task``: its keywords) cannot fit in
    the memory of its device."""
    check_memory(memory_terms(cfg, **task), cfg.device)


def _check_common(cfg) -> None:
    """Model, optimization and logging fields shared by every Transformer config."""
    check_int("layers", cfg.layers, 1, 64)
    check_int("heads", cfg.heads, 1, 1024)
    check_int("head_dim", cfg.head_dim, 1, 1024)
    check_int("mlp_ratio", cfg.mlp_ratio, 1, 64)
    check_int("steps", cfg.steps, 1, MAX_INT)
    check_int("batch", cfg.batch, 1, MAX_INT)
    if cfg.steps * cfg.batch > MAX_INT:
        raise ParameterError(f"steps * batch (the samples seen) must be at most 2^53 - 1, got {cfg.steps} * "
                             f"{cfg.batch} = {cfg.steps * cfg.batch:.3g}")
    check_real("lr", cfg.lr, 0, lo_open=True)
    check_int("warmup", cfg.warmup, 0, cfg.steps)
    check_choice("lr_schedule", cfg.lr_schedule, ("constant", "cosine", "linear"))
    check_real("min_lr_ratio", cfg.min_lr_ratio, 0, 1)
    check_seeds(cfg.seeds)
    check_int("eval_every", cfg.eval_every, 1, cfg.steps)
    check_int("eval_size", cfg.eval_size, 8, MAX_EVAL_SIZE)
    for name in ("measure_every", "probe_every"):
        if not hasattr(cfg, name):
            continue
        every = check_int(name, getattr(cfg, name), 0)
        if every % cfg.eval_every:
            raise ParameterError(f"{name} must be a multiple of eval_every ({cfg.eval_every}), got {every}")
    check_choice("precision", cfg.precision, ("auto", "fp32", "bf16"))
    check_choice("device", cfg.device, ("auto", "cpu", "cuda"))


def _check_teacher(cfg) -> None:
    _check_common(cfg)
    check_int("checkpoint_every", cfg.checkpoint_every, 1, cfg.steps)
    if cfg.checkpoint_every % cfg.eval_every:
        raise ParameterError(
            f"checkpoint_every must be a multiple of eval_every ({cfg.eval_every}), got {cfg.checkpoint_every}")


def _check_student(cfg) -> None:
    _check_common(cfg)
    check_choice("strategy", cfg.strategy, STRATEGIES)
    check_int("teacher_run", cfg.teacher_run, 0)
    check_real("temperature", cfg.temperature, 0)
    check_int("top_k", cfg.top_k, 0)
    check_real("alpha", cfg.alpha, 0, 1)
    check_int("n_checkpoints", cfg.n_checkpoints, 0)
    check_checkpoints(cfg)
    check_int("stage_steps", cfg.stage_steps, 0)
    check_real("kappa", cfg.kappa, 0, 1, lo_open=True)
    check_choice("split", cfg.split, SPLITS)
    check_first_fields(cfg, ("accuracy", "m_robust"))
    for layer in cfg.extract_layers:
        check_int("extract_layers", layer, 1, cfg.layers)
    check_extraction(cfg, len(cfg.extract_layers) or cfg.layers)


#: The sizes of a task not known yet (a PCFG before its grammar is read, a student before its teacher):
#: the smallest, so that the estimate stays a lower bound.
_UNKNOWN_TASK = {"seq_len": 1, "vocab": 3, "n_out": 2, "seq": "T (>= 1, the task's sequence length)"}


def _parity_task(cfg) -> dict:
    """The sizes of a parity Transformer teacher's task (:class:`distill.tasks.ParityTask`)."""
    return {"seq_len": cfg.d + (cfg.readout == "cls"), "vocab": 4, "n_out": 2, "seq": "d"}


def _check_pcfg(cfg) -> None:
    if not cfg.grammar:
        raise ParameterError("grammar must name a grammar (a name such as cfg3b, a JSON path, or random:levels=L,seed=S)")
    check_choice("objective", cfg.objective, ("mlm", "next-token"))
    check_real("mask_rate", cfg.mask_rate, 0, 1, lo_open=True)
    check_int("boundary_level", cfg.boundary_level, 1)
    if not isinstance(cfg.bayes_eval, bool):
        raise ParameterError(f"bayes_eval must be true or false, got {cfg.bayes_eval!r}")
    _check_pcfg_measures(cfg)


def _check_pcfg_measures(cfg) -> None:
    """The n-gram measure and non-terminal probe settings (PCFG teachers and students)."""
    check_int("measure_positions", cfg.measure_positions, 1, MAX_MEASURE_POSITIONS)
    for n in cfg.measure_ns:
        check_int("measure_ns", n, 2, 1024)
    check_int("probe_train", cfg.probe_train, 8, MAX_PROBE_SENTENCES)
    check_int("probe_test", cfg.probe_test, 8, MAX_PROBE_SENTENCES)
    check_int("probe_steps", cfg.probe_steps, 1, MAX_PROBE_STEPS)


def _check_parity(cfg) -> None:
    check_int("d", cfg.d, 2)
    check_int("k", cfg.k, 1, cfg.d)
    check_choice("support", cfg.support, ("first", "random"))
    check_int("support_seed", cfg.support_seed, 0, MAX_INT)
    check_choice("readout", cfg.readout, ("last", "cls"))
    check_int("probe_samples", cfg.probe_samples, 256, MAX_PROBE_SAMPLES)


# The field lists are spelled out per class (not inherited) so that each class reads top to bottom
# with its own defaults; the shared checks above keep them consistent.

@dataclass(frozen=True)
class PcfgTeacherConfig:
    """A Transformer teacher on a PCFG: BERT masked prediction (Def. 4.1) or GPT next-token (App. E)."""

    grammar: str = "random:levels=5,seed=1"  # name (cfg3b, ... on ICURR_GRAMMAR_PATH / ../shared/data/pcfg / the package copies), JSON path, or random:levels=L,seed=S
    objective: Literal["mlm", "next-token"] = "mlm"  # masked prediction (bidirectional) or next-token (causal)
    mask_rate: float = 0.3  # mlm: probability p that a position is masked (80/10/10 replacement)
    boundary_level: int = 1  # next-token: loss on level-l boundary tokens (App. E numbering, 1 = every token)
    layers: int = 2  # Transformer blocks (the paper: 4)
    heads: int = 8  # attention heads (the paper's teacher: 32); width = heads * head_dim
    head_dim: int = 8  # dimension per head (the paper: 8)
    mlp_ratio: int = 4  # MLP hidden width / model width
    steps: int = 600  # Adam steps (the paper: 8000)
    batch: int = 64  # sentences per step (the paper: 512)
    lr: float = 3e-3  # peak learning rate of Adam (betas 0.9, 0.95, no weight decay; App. D.6)
    warmup: int = 100  # linear warmup steps
    lr_schedule: Literal["constant", "cosine", "linear"] = "cosine"  # decay after warmup
    min_lr_ratio: float = 0.0  # final lr / peak lr
    seeds: tuple[int, ...] = (0,)  # one run per seed (init and data), trained as one batched program
    eval_every: int = 50  # steps between evaluations on the fixed held-out set; follows steps (icurr config show)
    eval_size: int = 256  # held-out sentences (fixed masks)
    bayes_eval: bool = True  # mlm: exact Bayes-optimal accuracy / loss on the held-out set into summary.json (inside-outside)
    checkpoint_every: int = 50  # steps between checkpoints (model, Adam state, generators); follows steps
    measure_every: int = 50  # steps between M_robust / M_close (0: never); multiple of eval_every; follows steps
    measure_ns: tuple[int, ...] = (3, 5, 7)  # n of the n-gram measures
    measure_positions: int = 256  # sampled (sentence, position) pairs per measure
    probe_every: int = 300  # steps between non-terminal probes (0: never); multiple of eval_every; follows steps
    probe_train: int = 512  # probe training sentences (the paper: 51200)
    probe_test: int = 256  # probe test sentences (the paper: 1024)
    probe_steps: int = 200  # Adam steps of each probe
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when available

    def __post_init__(self) -> None:
        _check_teacher(self)
        _check_pcfg(self)
        check_transformer_memory(self, **_UNKNOWN_TASK)  # again with the grammar's sizes (distill.runs.build_task)


@dataclass(frozen=True)
class PcfgStudentConfig:
    """A student of a saved PCFG teacher under a supervision schedule (Sections 2, 4.1.2; App. D.2)."""

    teacher: str = ""  # teacher run directory; required except for strategy=ce
    teacher_run: int = 0  # which of the teacher's runs (seeds) supervises
    # supervision schedule, as in every engine (infra.schedule; icurr config show student says what each does)
    strategy: Literal["ce", "oneshot", "progressive", "two-shot", "equal-split", "extraction"] = "equal-split"
    layers: int = 2
    heads: int = 2  # the paper's student: 8 (teacher 32)
    head_dim: int = 8
    mlp_ratio: int = 4
    steps: int = 600
    batch: int = 64
    lr: float = 3e-3
    warmup: int = 100
    lr_schedule: Literal["constant", "cosine", "linear"] = "cosine"
    min_lr_ratio: float = 0.0
    seeds: tuple[int, ...] = (0, 1, 2)  # student runs, batched; the same seeds see the same samples
    temperature: float = 1e-4  # teacher temperature tau (0: argmax label); the paper uses 1e-4 (App. D.6)
    top_k: int = 0  # keep only the teacher's top-k logits (0: all)
    alpha: float = 0.0  # loss = alpha * CE(labels) + (1 - alpha) * KL(teacher)
    first_checkpoint: str = "auto"  # teacher step of the first checkpoint C_1, or "auto" (first_rule)
    # auto rule: accuracy = middle of the rapid loss drop (steepest rise of masked accuracy);
    # m_robust = the peak of M_robust at the smallest n (Figure 4, middle)
    first_rule: Literal["accuracy", "m_robust"] = "accuracy"
    # auto: the first first_skip * T0 teacher steps are left out of the choice: phase 1 of Section 4.1.2
    # (the first ~5% of training), whose fast initial rise (the unigram statistics) is not the transition
    first_skip: float = 0.1
    # accuracy rule: centered moving average over this many log points; 3, as the drop spans only a few
    # evaluations at CPU scale (5 points moved the choice to the end of the drop on the default teacher)
    first_smooth: int = 3
    # equal-split: N checkpoints C_1, 2 C_1, ..., N C_1 (0, or more than fit: every multiple up to the teacher's
    # end); progressive: N of (N, T)-progressive (0: every teacher checkpoint up to the final)
    n_checkpoints: int = 0
    # progressive: explicit intermediate teacher checkpoints (teacher steps, increasing, each snapped to the
    # nearest saved one); empty: equally spaced (n_checkpoints)
    checkpoints: tuple[int, ...] = ()
    # T: two-shot: student steps on C_1 (0: steps / 4); progressive: per intermediate checkpoint (0: the
    # teacher's checkpoint spacing)
    stage_steps: int = 0
    kappa: float = 0.5  # equal-split with split=teacher: the first kappa * T0 steps are split over the N
    split: Literal["teacher", "student"] = "teacher"  # equal-split: kappa*T0 (App. D.2 var. 2) or the student's steps (var. 1)
    # extraction (Curriculum Extraction, Gupta & Karmalkar 2025): extract_steps steps per student block of
    # extract_layers (1-based, in order; empty: every block) aligning its output to A h_T, h_T the output
    # of the teacher block at the same relative depth and A a fixed N(0, projection_scale^2 / teacher
    # width) matrix per run; then the final teacher's outputs for the remaining steps
    extract_layers: tuple[int, ...] = ()
    extract_steps: int = 100  # extraction: alignment steps per extracted block
    projection_scale: float = 1.0  # extraction: the scale of A's entries (above)
    projection_seed: int = 0  # A is fixed by (projection_seed, run seed, layer)
    eval_every: int = 50  # steps between evaluations; follows steps (icurr config show)
    eval_size: int = 256
    measure_every: int = 300  # M_robust / M_close (0: never); multiple of eval_every; follows steps
    measure_ns: tuple[int, ...] = (3, 5, 7)
    measure_positions: int = 256
    probe_every: int = 600  # non-terminal probes (0: never); multiple of eval_every; follows steps
    probe_train: int = 512
    probe_test: int = 256
    probe_steps: int = 200
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self) -> None:
        _check_student(self)
        _check_pcfg_measures(self)
        check_transformer_memory(self, **_UNKNOWN_TASK)  # again with the teacher's task (distill.runs.train_student)


@dataclass(frozen=True)
class ParityTransformerTeacherConfig:
    """A Transformer teacher on (d, k)-sparse parity as a token sequence (Appendix C.2)."""

    d: int = 20  # sequence length = input dimension (the paper: 100)
    k: int = 3  # parity degree (the paper: 6)
    support: Literal["first", "random"] = "first"  # the paper: the first k positions
    support_seed: int = 0  # seed of the random support
    readout: Literal["last", "cls"] = "last"  # label at the last position (causal, as the paper) or a CLS token
    layers: int = 2  # the paper: 2
    heads: int = 16  # the paper's teacher: 32; width = heads * head_dim
    head_dim: int = 8  # dimension per head (the paper: 8)
    mlp_ratio: int = 4  # MLP hidden width / model width
    steps: int = 3000  # Adam steps (betas 0.9, 0.95, no weight decay)
    batch: int = 64  # sequences per step
    lr: float = 1e-3  # peak learning rate
    warmup: int = 0  # linear warmup steps
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"  # after warmup
    min_lr_ratio: float = 0.0  # final lr / peak lr (cosine, linear)
    seeds: tuple[int, ...] = (0,)  # one run per seed (init and data), trained as one batched program
    eval_every: int = 100  # steps between evaluations on the held-out set; follows steps (icurr config show)
    eval_size: int = 4096  # held-out inputs
    checkpoint_every: int = 200  # steps between checkpoints; multiple of eval_every; follows steps
    # degree-1 correlations and attention on the support (Figures 11-12), multiple of eval_every; follows steps
    probe_every: int = 200
    probe_samples: int = 4096  # Monte Carlo inputs of the probes
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when available

    def __post_init__(self) -> None:
        _check_teacher(self)
        _check_parity(self)
        check_transformer_memory(self, **_parity_task(self))


@dataclass(frozen=True)
class ParityTransformerStudentConfig:
    """A student of a saved parity Transformer teacher (Appendix C.2, Figures 13-14)."""

    teacher: str = ""  # teacher run directory; required except for strategy=ce
    teacher_run: int = 0  # which of the teacher's runs (seeds) supervises
    # supervision schedule, as in every engine (infra.schedule; icurr config show student says what each does)
    strategy: Literal["ce", "oneshot", "progressive", "two-shot", "equal-split", "extraction"] = "two-shot"
    layers: int = 2
    heads: int = 4  # the paper's student: 4
    head_dim: int = 8  # dimension per head
    mlp_ratio: int = 4  # MLP hidden width / model width
    steps: int = 3000  # Adam steps
    batch: int = 64  # sequences per step
    lr: float = 1e-3  # peak learning rate
    warmup: int = 0  # linear warmup steps
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"  # after warmup
    min_lr_ratio: float = 0.0  # final lr / peak lr
    seeds: tuple[int, ...] = (0, 1, 2)  # student runs, batched; the same seeds see the same samples
    temperature: float = 1e-4  # teacher temperature tau (0: argmax label)
    top_k: int = 0  # keep only the teacher's top-k logits (0: all)
    alpha: float = 0.0  # loss = alpha * CE(labels) + (1 - alpha) * KL(teacher)
    first_checkpoint: str = "auto"  # the first checkpoint C_1 and the other schedule fields: as in PcfgStudentConfig
    first_rule: Literal["accuracy", "m_robust"] = "accuracy"  # accuracy only: M_robust is a PCFG measure
    first_skip: float = 0.1  # fraction of the teacher's steps left out of the automatic choice
    first_smooth: int = 3  # accuracy rule: moving-average window in log points
    n_checkpoints: int = 0  # N of the schedule (0: every saved checkpoint / every multiple), as in PcfgStudentConfig
    checkpoints: tuple[int, ...] = ()  # progressive: explicit intermediate checkpoints, as in PcfgStudentConfig
    stage_steps: int = 0  # T: two-shot: steps on C_1 (0: steps / 4); progressive: per checkpoint (0: spacing)
    kappa: float = 0.5  # equal-split with split=teacher: the first kappa * T0 steps are split over the N
    split: Literal["teacher", "student"] = "teacher"  # equal-split: kappa*T0 or the student's own steps
    extract_layers: tuple[int, ...] = ()  # extraction: as in PcfgStudentConfig
    extract_steps: int = 300  # extraction: alignment steps per extracted block
    projection_scale: float = 1.0  # extraction: the scale of A's entries
    projection_seed: int = 0  # A is fixed by (projection_seed, run seed, layer)
    eval_every: int = 100  # steps between evaluations; follows steps (icurr config show)
    eval_size: int = 4096  # held-out inputs
    probe_every: int = 0  # degree-1 correlations (0: never); multiple of eval_every; follows steps
    probe_samples: int = 4096  # Monte Carlo inputs of the probes
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when available

    def __post_init__(self) -> None:
        _check_student(self)
        if self.first_rule == "m_robust":
            raise ParameterError("first_rule must be 'accuracy' on parity (M_robust is a PCFG measure)")
        check_int("probe_samples", self.probe_samples, 256, MAX_PROBE_SAMPLES)
        check_transformer_memory(self, **_UNKNOWN_TASK)  # again with the teacher's task (distill.runs.train_student)


def _check_compare(cfg) -> None:
    if not cfg.strategies:
        raise ParameterError("strategies must name at least one strategy")
    for s in cfg.strategies:
        check_choice("strategies", s, STRATEGIES)
    st = cfg.student
    for s in cfg.strategies:  # the schedules' (N, T) fit into the student's steps (infra.schedule)
        stage_plan(s, steps=st.steps, stage_steps=st.stage_steps, n_checkpoints=st.n_checkpoints,
                   teacher_steps=cfg.teacher.steps, spacing=cfg.teacher.checkpoint_every, checkpoints=st.checkpoints,
                   prefix="student.")
    check_extraction(st, len(st.extract_layers) or st.layers, active="extraction" in cfg.strategies,
                     prefix="student.")
    if isinstance(cfg.teacher, ParityTransformerTeacherConfig):  # the students' sizes are the teacher's task's
        check_memory(memory_terms(st, prefix="student.", **_parity_task(cfg.teacher)), st.device)


@dataclass(frozen=True)
class PcfgCompareConfig:
    """One PCFG teacher, then one student per strategy (the same student seeds, so the same samples)."""

    teacher: PcfgTeacherConfig = field(default_factory=PcfgTeacherConfig)
    student: PcfgStudentConfig = field(default_factory=PcfgStudentConfig)
    strategies: tuple[str, ...] = ("ce", "oneshot", "equal-split")  # student strategies to compare

    def __post_init__(self) -> None:
        _check_compare(self)


@dataclass(frozen=True)
class ParityTransformerCompareConfig:
    """One parity Transformer teacher, then one student per strategy."""

    teacher: ParityTransformerTeacherConfig = field(default_factory=ParityTransformerTeacherConfig)
    student: ParityTransformerStudentConfig = field(default_factory=ParityTransformerStudentConfig)
    strategies: tuple[str, ...] = ("ce", "oneshot", "two-shot", "equal-split")  # student strategies to compare

    def __post_init__(self) -> None:
        _check_compare(self)
