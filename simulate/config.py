"""Configs of the sparse-parity experiments: one frozen dataclass per experiment kind.

Every field has a commented default; ``__post_init__`` checks ranges and raises
``ParameterError`` naming the field, before any work starts. Change fields on the command line
with ``key=value`` words (``teacher.width=1000`` inside :class:`CompareConfig`).

The defaults are the CPU-sized configuration documented in the README (a width-2000 teacher and
width-64 students on (24, 5)-sparse parity, about 3 minutes for ``icurr parity compare`` on 2 cores);
the ``paper`` preset (``experiments/sweeps/presets/parity.yaml``) holds the paper's scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from infra.config import MAX_INT, check_checkpoints, check_extraction, check_memory, check_seeds
from infra.first_checkpoint import check_first_fields
from infra.schedule import SPLITS, STRATEGIES, stage_plan
from theory._checks import ParameterError, check_choice, check_int, check_real

__all__ = ["TeacherConfig", "StudentConfig", "CompareConfig", "memory_terms", "check_mlp_memory", "support_coordinates",
           "check_probe_degrees"]

#: Hard caps: the evaluation set and the probes' Monte Carlo samples (2^24 = 16.8M points; the
#: paper's are 4096 and 16384); steps and samples (steps * batch) stay exact integers of a float64.
MAX_EVAL_SIZE = 1 << 24
MAX_PROBE_SAMPLES = 1 << 24
_EXACT_EVAL_D = 20  # d <= 20: the evaluation set is all of {+-1}^d (simulate.data.MAX_CUBE_DIM)


#: Hidden activations of one evaluation chunk are at most this many floats (64 MiB).
EVAL_CHUNK_FLOATS = 1 << 24


#: The block backends of batch-1 SGD (simulate.blocked.BACKENDS; no torch import here)
BLOCK_BACKENDS = ("auto", "native", "torch", "compile", "graph")


def eval_chunk_rows(runs: int, width: int) -> int:
    """Inputs per evaluation chunk: 8192, fewer for wide or many runs, so that one chunk's hidden
    activations ``runs x rows x width`` stay within :data:`EVAL_CHUNK_FLOATS`."""
    return max(1, min(8192, EVAL_CHUNK_FLOATS // max(1, runs * width)))


def memory_terms(cfg, d: int | None, classes: int = 2, runs: int | None = None, prefix: str = "") -> list:
    """The largest tensors an MLP run of ``cfg`` holds at once (float32), as ``(formula, count, unit,
    bytes)`` for :func:`infra.config.check_memory`: the parameters with their gradients
    (``R (m (d + 1) + C m)``), one step's samples and hidden activations (``R batch (d + 2 m)``), the
    evaluation set (``2^d`` points when d <= 20, else ``eval_size``) with the hidden activations of one
    evaluation chunk (:func:`eval_chunk_rows`), and a finite training pool (``train_size = n > 0``: ``R n``
    int8 inputs of ``d`` entries, plus ~40 bytes per example for its label and the sort of an epoch's
    order). ``d`` None (a student before its teacher is read): d = 2, the smallest.
    ``runs``: the runs of the batched program (default ``len(cfg.seeds)``)."""
    R = len(cfg.seeds) if runs is None else runs
    m, B = cfg.width, cfg.batch
    dd = 2 if d is None else d
    n_eval = 2**dd if dd <= _EXACT_EVAL_D else cfg.eval_size
    chunk = min(n_eval, eval_chunk_rows(R, m))
    p, c1 = prefix, classes + 1
    params = f"{p}width * (d + {c1}) * runs" + (" (d >= 2: the teacher's)" if d is None else "")
    n = getattr(cfg, "train_size", 0)
    pool = [(f"{p}train_size * d * runs", R * n * dd, "training pool entries", R * n * (dd + 40))] if n else []
    return pool + [
        (params, R * m * (dd + c1), "parameters", 2 * 4 * R * m * (dd + c1)),
        (f"{p}batch * {p}width * runs", R * B * m, "hidden activations", 4 * R * B * (dd + 2 * m)),
        (f"{p}eval_size * d" if dd > _EXACT_EVAL_D else "2^d * d", n_eval * dd, "evaluation inputs", 4 * n_eval * dd),
        (f"{p}width * runs * min({p}eval_size, chunk)" if dd > _EXACT_EVAL_D else f"{p}width * runs * min(2^d, chunk)",
         R * chunk * m, "evaluation activations", 4 * R * chunk * m),
    ]


def check_mlp_memory(cfg, d: int | None, classes: int = 2, runs: int | None = None, prefix: str = "") -> None:
    """ParameterError when the run's tensors (:func:`memory_terms`) cannot fit in the memory of its device."""
    check_memory(memory_terms(cfg, d, classes, runs, prefix), cfg.device)


def _common(cfg) -> None:
    check_int("width", cfg.width, 1)
    check_int("steps", cfg.steps, 1, MAX_INT)
    check_int("batch", cfg.batch, 1, MAX_INT)
    if cfg.steps * cfg.batch > MAX_INT:
        raise ParameterError(f"steps * batch (the samples seen) must be at most 2^53 - 1, got {cfg.steps} * "
                             f"{cfg.batch} = {cfg.steps * cfg.batch:.3g}")
    check_real("lr", cfg.lr, 0, lo_open=True)
    check_real("lr_a_mult", cfg.lr_a_mult, 0, lo_open=True)
    check_choice("lr_schedule", cfg.lr_schedule, ("constant", "cosine", "linear"))
    check_int("warmup", cfg.warmup, 0, cfg.steps)
    check_choice("init", cfg.init, ("default", "symmetric"))
    check_real("output_scale", cfg.output_scale, 0, lo_open=True)
    check_seeds(cfg.seeds, run_lrs=cfg.run_lrs, **({"run_temperatures": cfg.run_temperatures}
                                                     if hasattr(cfg, "run_temperatures") else {}))
    check_int("eval_every", cfg.eval_every, 1, cfg.steps)
    check_int("eval_size", cfg.eval_size, 16, MAX_EVAL_SIZE)
    check_int("probe_every", cfg.probe_every, 0)
    check_int("probe_samples", cfg.probe_samples, 256, MAX_PROBE_SAMPLES)
    check_choice("device", cfg.device, ("auto", "cpu", "cuda"))
    check_choice("backend", cfg.backend, BLOCK_BACKENDS)
    if cfg.backend == "native" and cfg.device == "cuda":
        raise ParameterError("backend 'native' is the CPU's C kernel; with device=cuda use auto, torch, compile or graph")
    check_int("train_size", cfg.train_size, 0, MAX_INT)
    check_probe_degrees(cfg.probe_degrees, getattr(cfg, "d", None))
    if cfg.init == "symmetric" and cfg.width % 2:
        raise ParameterError(f"width must be even for init='symmetric', got {cfg.width}")
    if cfg.probe_every and cfg.probe_every % cfg.eval_every:
        raise ParameterError(f"probe_every must be a multiple of eval_every ({cfg.eval_every}), got {cfg.probe_every}")


def check_probe_degrees(degrees, d: int | None, prefix: str = "") -> None:
    """``probe_degrees``: strictly increasing monomial degrees in ``[1, d]`` (``d`` None: only >= 1)."""
    if not degrees:
        raise ParameterError(f"{prefix}probe_degrees must name at least one degree, e.g. 1,2,3")
    for g in degrees:
        check_int(f"{prefix}probe_degrees", g, 1, MAX_INT if d is None else d)
    if any(b <= a for a, b in zip(degrees, degrees[1:])):
        raise ParameterError(f"{prefix}probe_degrees must be strictly increasing, got {list(degrees)}")


def _support_text(cfg) -> str:
    """``cfg.support`` checked and in canonical form: ``first``, ``random``, or the coordinates as
    comma-separated 0-based integers, ``k`` distinct ones in ``[0, d)`` for parity (sorted: S is a set),
    ``(2^depth - 1) k`` for hierarchical parity (node ``j``'s block is entries ``jk .. jk + k - 1`` in heap
    order, each block sorted). A sequence of ints is accepted and written as that text."""
    value = cfg.support
    if value in ("first", "random"):
        return value
    nodes = 2**cfg.depth - 1 if cfg.task == "hierarchical" else 1
    want = nodes * cfg.k
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = None
    coords = []
    for p in parts or [None]:
        try:
            if isinstance(p, bool) or p is None or (isinstance(p, float) and not p.is_integer()):
                raise ValueError
            coords.append(int(p))
        except (TypeError, ValueError):
            raise ParameterError(f"support must be 'first', 'random' or {want} comma-separated coordinates in "
                                 f"[0, d) = [0, {cfg.d}), got {value!r}") from None
    if len(coords) != want:
        what = f"(2^depth - 1) * k = {want}" if nodes > 1 else f"k = {want}"
        raise ParameterError(f"support must list {what} coordinates, got {len(coords)}: {value!r}")
    bad = [c for c in coords if not 0 <= c < cfg.d]
    if bad:
        raise ParameterError(f"support coordinates must lie in [0, d) = [0, {cfg.d}), got {bad[0]}")
    if len(set(coords)) != len(coords):
        raise ParameterError(f"support coordinates must be distinct, got {value!r}")
    blocks = [sorted(coords[j * cfg.k:(j + 1) * cfg.k]) for j in range(nodes)]
    return ",".join(str(c) for block in blocks for c in block)


def support_coordinates(cfg) -> tuple[int, ...] | None:
    """The explicit support of a teacher config (its ``support`` text as ints), None for first/random."""
    return None if cfg.support in ("first", "random") else tuple(int(c) for c in cfg.support.split(","))


@dataclass(frozen=True)
class TeacherConfig:
    """A teacher trained by online SGD on (d, k)-sparse parity (Section 3, Appendix C.1)."""

    task: Literal["parity", "hierarchical"] = "parity"  # (d, k)-sparse parity, or hierarchical parity (App. C.3)
    d: int = 24  # input dimension; x uniform on {+-1}^d
    k: int = 5  # parity degree |S| (hierarchical: of every tree node), 1 <= k <= d
    depth: int = 2  # hierarchical only: tree depth D (2^D classes; needs d >= (2^D - 1) k)
    # S: "first" ({0..k-1}; hierarchical: tree blocks in order), "random" (without replacement, of support_seed)
    # or the coordinates, 0-based and comma-separated: support=3,7,11,20 (k distinct in [0, d), stored sorted;
    # hierarchical: (2^depth - 1) k of them, node j (heap order: root 0, children 2j+1, 2j+2) takes the j-th k)
    support: str = "first"
    support_seed: int = 0  # seed of the random support
    width: int = 2000  # hidden width m (the paper: 50000)
    init: Literal["default", "symmetric"] = "default"  # PyTorch's default init, or Appendix B's symmetric init
    output_scale: float = 1.0  # multiplies the default init of the output layer
    steps: int = 40_000  # SGD steps (fresh samples each step); samples = steps * batch
    batch: int = 1  # batch size (the paper: 1)
    # training examples: 0 = fresh samples every step (online SGD, the paper's); n > 0 = n examples drawn once
    # per run from its data stream, visited in a fresh random order each epoch (epochs = steps * batch / n)
    train_size: int = 0
    lr: float = 0.05  # base learning rate
    # rate multiplier of the output layer a (a steps with lr * lr_a_mult, W and b with lr). The
    # default init's output-layer tangent kernel grows like m (||h||^2 ~ m/6): at width 50000 with
    # lr >= 5e-3 the first steps saturate the logits unless lr * lr_a_mult * m <~ 3, e.g.
    # lr_a_mult = 100/m (benchmarks/RESULTS.md, "Stability of the wide teacher")
    lr_a_mult: float = 1.0
    lr_schedule: Literal["constant", "cosine", "linear"] = "cosine"  # multiplier after warmup (cosine: to 0 at steps)
    warmup: int = 0  # linear warmup steps
    seeds: tuple[int, ...] = (0,)  # one run per seed (init and data), trained as one batched program
    # per-run learning rates, one per entry of seeds (empty: lr for every run); a seed may then repeat,
    # e.g. seeds=0,0 run_lrs=0.05,0.1 trains the same init and samples at two rates in one program
    run_lrs: tuple[float, ...] = ()
    eval_every: int = 1000  # steps between evaluations on the held-out set; follows steps (icurr config show)
    eval_size: int = 4096  # held-out examples (exact evaluation on all of {+-1}^d when d <= 20)
    checkpoint_every: int = 2000  # steps between safetensors checkpoints; multiple of eval_every; follows steps
    probe_every: int = 2000  # steps between correlation probes (0: never); multiple of eval_every; follows steps
    probe_samples: int = 16384  # Monte Carlo samples of the probes when d > 20
    # degrees of the probed monomials (Figure 2: 1; Figure 9: 2, 3), strictly increasing in [1, d]; each adds
    # corr{g}_* columns to the metrics (in-support monomials and 100 sampled off-support ones)
    probe_degrees: tuple[int, ...] = (1, 2, 3)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when available
    # batch-1 SGD's block backend (simulate.blocked): auto = the native C kernel on CPU, torch ops on CUDA;
    # graph = the torch block replayed from CUDA graphs (not yet measured on a GPU); compile = torch.compile
    backend: Literal["auto", "native", "torch", "compile", "graph"] = "auto"

    def __post_init__(self) -> None:
        check_int("d", self.d, 2)
        _common(self)
        check_int("k", self.k, 1, self.d)
        check_choice("task", self.task, ("parity", "hierarchical"))
        check_int("depth", self.depth, 1, 8)
        if self.task == "hierarchical" and self.d < (2**self.depth - 1) * self.k:
            raise ParameterError(
                f"d must be >= (2^depth - 1) * k = {(2**self.depth - 1) * self.k} for task=hierarchical, got {self.d}")
        object.__setattr__(self, "support", _support_text(self))  # canonical text: equal supports, equal hashes
        check_int("support_seed", self.support_seed, 0, MAX_INT)
        check_int("checkpoint_every", self.checkpoint_every, 1, self.steps)
        if self.checkpoint_every % self.eval_every:
            raise ParameterError(
                f"checkpoint_every must be a multiple of eval_every ({self.eval_every}), got {self.checkpoint_every}"
            )
        check_mlp_memory(self, self.d, 2**self.depth if self.task == "hierarchical" else 2)


@dataclass(frozen=True)
class StudentConfig:
    """A student of a saved teacher under a supervision schedule (Definition 2.2, Appendix D.2).

    d, k and the support are the teacher's. Strategies (:func:`infra.schedule.build_schedule`, the
    same in every engine): ``ce`` (labels only), ``oneshot`` (final checkpoint throughout),
    ``progressive`` ((N, T)-progressive), ``two-shot`` (the first checkpoint C_1 for T steps, then the
    final), ``equal-split`` (N-shot equal split over C_1, 2 C_1, ...),
    ``extraction`` (Curriculum Extraction, Gupta & Karmalkar 2025: ``extract_steps`` steps aligning
    the hidden layer to a fixed random projection of the final teacher's, then the final teacher's
    outputs; no intermediate checkpoint).
    """

    # teacher run directory: its task (d, k, support) and checkpoints; required for every strategy (ce uses
    # only its task)
    teacher: str = ""
    teacher_run: int = 0  # which of the teacher's runs (seeds) supervises
    # supervision schedule (infra.schedule; the class docstring and icurr config show say what each does)
    strategy: Literal["ce", "oneshot", "progressive", "two-shot", "equal-split", "extraction"] = "progressive"
    width: int = 64  # hidden width of the student
    init: Literal["default", "symmetric"] = "default"
    output_scale: float = 1.0
    steps: int = 150_000  # student SGD steps
    batch: int = 1
    train_size: int = 0  # 0: fresh samples every step; n > 0: a pool of n examples per run, reshuffled each epoch
    lr: float = 0.05
    lr_a_mult: float = 1.0  # rate multiplier of the output layer a (as in TeacherConfig)
    lr_schedule: Literal["constant", "cosine", "linear"] = "cosine"
    warmup: int = 0
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # student runs (init and data), batched
    run_lrs: tuple[float, ...] = ()  # per-run learning rates, one per seed (empty: lr for every run)
    run_temperatures: tuple[float, ...] = ()  # per-run teacher temperatures, one per seed (empty: temperature)
    temperature: float = 1.0  # teacher temperature tau of KL(p_T^tau || p_S); 0 = the teacher's argmax label
    alpha: float = 0.0  # loss = alpha * CE(labels) + (1 - alpha) * KL(teacher); ignored by ce
    # alpha at the end of training: alpha moves linearly from alpha (step 0) to alpha_end (step = steps), the value
    # of step t being alpha + (alpha_end - alpha) t / steps; None: alpha throughout. Runs on labels keep alpha = 1
    alpha_end: float | None = None
    # teacher temperature at the end of training: geometric from temperature (step 0) to temperature_end (step =
    # steps), tau_t = tau (tau_end / tau)^(t / steps), per run with run_temperatures; both > 0. None: constant
    temperature_end: float | None = None
    # every soft target q (teacher and labels alike) becomes (1 - label_smoothing) q + label_smoothing / C; with
    # alpha = 0: q = (1 - eps) p_T^tau + eps / C; on labels: torch's CrossEntropyLoss(label_smoothing=eps). In [0, 1)
    label_smoothing: float = 0.0
    # two-shot / equal-split: the first checkpoint C_1, a teacher step (snapped to the nearest saved
    # intermediate checkpoint) or "auto" (chosen from the teacher's log by first_rule)
    first_checkpoint: str = "auto"
    # rule for "auto" (infra.first_checkpoint): accuracy = middle of the phase transition (steepest rise of
    # test accuracy); correlation_gap = peak of (in-support - off-support) degree-1 correlation, noisy below
    # width ~10^4; auto = correlation_gap when the teacher logged the correlations, else accuracy
    first_rule: Literal["auto", "accuracy", "correlation_gap"] = "accuracy"
    first_skip: float = 0.0  # auto: the first first_skip * T0 teacher steps are left out of the choice, in [0, 1)
    first_smooth: int = 5  # accuracy rule: centered moving average over this many log points (>= 1)
    # T: two-shot: student steps on C_1 (0: steps / 4); progressive: per intermediate checkpoint (0: the
    # teacher's checkpoint spacing)
    stage_steps: int = 4000
    # progressive: N of (N, T)-progressive (0: every teacher checkpoint up to the final; given: checkpoints at the
    # multiples of T0 // N); equal-split: N checkpoints C_1, ..., N C_1 (0, or more than fit: every multiple up to T0)
    n_checkpoints: int = 0
    # progressive: explicit intermediate teacher checkpoints (teacher steps, increasing, each snapped to the
    # nearest saved one), each supervising stage_steps steps before the final; empty: equally spaced
    # (n_checkpoints). Appendix C.3's (3, T)-progressive from two chosen checkpoints: checkpoints=4500000,6000000
    checkpoints: tuple[int, ...] = ()
    kappa: float = 0.5  # equal-split with split=teacher: the first kappa * T0 student steps are split over the N
    # equal-split: split kappa*T0 student steps (Appendix D.2, variant 2) or the student's own steps (variant 1)
    split: Literal["teacher", "student"] = "teacher"
    # extraction: SGD steps on 1/2 ||relu(W x + b) - A relu(W_T x + b_T)||^2 (W, b only) before the
    # final teacher's outputs; A (width x teacher width) has N(0, projection_scale^2 / teacher width) entries
    extract_steps: int = 5_000  # (24, 5)-parity defaults: 5000 -> 18k samples to 95%, 10000 -> 19k, 20000 -> 28k
    extract_lr: float = 0.0  # rate of the alignment steps (0: lr), times the lr schedule
    projection_scale: float = 1.0  # extraction: the scale of A's entries (above)
    projection_seed: int = 0  # A is fixed by (projection_seed, run seed)
    eval_every: int = 1000  # steps between evaluations; follows steps (icurr config show)
    eval_size: int = 4096
    probe_every: int = 2000  # student probes (0: never); multiple of eval_every; follows steps
    probe_samples: int = 16384
    probe_degrees: tuple[int, ...] = (1, 2, 3)  # probed monomial degrees, strictly increasing in [1, teacher's d]
    device: Literal["auto", "cpu", "cuda"] = "auto"
    backend: Literal["auto", "native", "torch", "compile", "graph"] = "auto"  # batch-1 block backend, as the teacher's

    def __post_init__(self) -> None:
        _common(self)
        check_choice("strategy", self.strategy, STRATEGIES)
        check_int("teacher_run", self.teacher_run, 0)
        check_real("temperature", self.temperature, 0)
        check_real("alpha", self.alpha, 0, 1)
        if self.alpha_end is not None:
            check_real("alpha_end", self.alpha_end, 0, 1)
        if self.temperature_end is not None:
            check_real("temperature_end", self.temperature_end, 0, lo_open=True)
            if self.temperature <= 0 or any(t <= 0 for t in self.run_temperatures):
                raise ParameterError("temperature_end anneals geometrically: temperature (and every run_temperatures "
                                     f"entry) must be > 0, got {self.temperature}, {list(self.run_temperatures)}")
        check_real("label_smoothing", self.label_smoothing, 0, 1, hi_open=True)
        check_int("stage_steps", self.stage_steps, 0)
        check_int("n_checkpoints", self.n_checkpoints, 0)
        check_checkpoints(self)
        check_real("kappa", self.kappa, 0, 1, lo_open=True)
        check_extraction(self)
        check_real("extract_lr", self.extract_lr, 0)
        check_first_fields(self, ("auto", "accuracy", "correlation_gap"))
        check_choice("split", self.split, SPLITS)
        check_mlp_memory(self, None)  # again with the teacher's d when the student reads its teacher


@dataclass(frozen=True)
class CompareConfig:
    """One teacher, then one student per strategy (same student seeds, so the same samples)."""

    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    strategies: tuple[str, ...] = STRATEGIES  # student strategies to compare

    def __post_init__(self) -> None:
        if not self.strategies:
            raise ParameterError("strategies must name at least one strategy")
        for s in self.strategies:
            check_choice("strategies", s, STRATEGIES)
        t, st = self.teacher, self.student
        for s in self.strategies:  # the schedules' (N, T) fit into the student's steps (infra.schedule)
            stage_plan(s, steps=st.steps, stage_steps=st.stage_steps, n_checkpoints=st.n_checkpoints,
                       teacher_steps=t.steps, spacing=t.checkpoint_every, checkpoints=st.checkpoints, prefix="student.")
        check_extraction(st, active="extraction" in self.strategies, prefix="student.")
        check_probe_degrees(st.probe_degrees, t.d, prefix="student.")
        # the students of every strategy but extraction train as one batched program
        check_mlp_memory(st, t.d, 2**t.depth if t.task == "hierarchical" else 2,
                         runs=len(st.seeds) * max(1, len(set(self.strategies) - {"extraction"})), prefix="student.")
