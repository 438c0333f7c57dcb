"""Configs of the natural-text experiments (Section 4.2, Appendix F): BERT masked LM on a corpus.

``TextTeacherConfig`` / ``TextStudentConfig`` / ``TextCompareConfig``, the text counterparts of the
PCFG configs of :mod:`distill.config` (re-exported there), with the same model, optimization,
schedule and measure fields and their checks; the corpus fields replace the grammar, and there is
no non-terminal probe (text has no parse). The defaults are CPU-sized: the ``python-docs`` corpus
(:mod:`distill.corpus`), a 1024-token vocabulary, blocks of 32 tokens, 2-layer models of width 64
(teacher) and 32 (students); the whole ``icurr text compare`` takes minutes on 2 cores.
the ``paper`` preset (``experiments/sweeps/presets/text.yaml``) holds the paper's scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from infra.config import MAX_INT, check_memory
from theory._checks import ParameterError, check_choice, check_int, check_real

from .config import _UNKNOWN_TASK, _check_compare, _check_student, _check_teacher, check_transformer_memory, memory_terms

__all__ = ["TextTeacherConfig", "TextStudentConfig", "TextCompareConfig", "text_sizes"]


def text_sizes(cfg) -> dict:
    """The task sizes of a text teacher config for :func:`distill.config.memory_terms`."""
    return {"seq_len": cfg.seq_len, "vocab": cfg.vocab_size, "n_out": cfg.vocab_size, "seq": "seq_len"}


def _check_measures(cfg, seq_len: int | None = None) -> None:
    check_int("measure_positions", cfg.measure_positions, 1, 1 << 20)
    if not cfg.measure_ns:
        raise ParameterError("measure_ns must name at least one n-gram size")
    for n in cfg.measure_ns:
        check_int("measure_ns", n, 2, seq_len or 1024)


def _check_text(cfg) -> None:
    if not cfg.corpus:
        raise ParameterError("corpus must name a text file, a directory of text files, or 'python-docs'")
    if not cfg.corpus_glob:
        raise ParameterError("corpus_glob must be a file pattern such as *.txt")
    check_choice("documents", cfg.documents, ("file", "blank-line"))
    check_real("heldout", cfg.heldout, 0, 0.5, lo_open=True)
    check_int("split_seed", cfg.split_seed, 0, MAX_INT)
    check_int("vocab_size", cfg.vocab_size, 64, 1 << 20)
    check_int("min_frequency", cfg.min_frequency, 1)
    check_int("seq_len", cfg.seq_len, 8, 8192)
    check_real("mask_rate", cfg.mask_rate, 0, 1, lo_open=True)
    _check_measures(cfg, cfg.seq_len)


@dataclass(frozen=True)
class TextTeacherConfig:
    """A BERT teacher on natural text (Section 4.2): masked LM on packed blocks of a corpus."""

    corpus: str = "python-docs"  # a text file, a directory (recursive), or python-docs (built from this Python)
    corpus_glob: str = "*.txt"  # files of a directory corpus
    documents: Literal["file", "blank-line"] = "file"  # one document per file, or per blank-line-separated block
    heldout: float = 0.1  # fraction of the documents held out (by a hash of their names) for evaluation
    split_seed: int = 0  # seed of that hash
    vocab_size: int = 1024  # WordPiece vocabulary, specials included (the paper: 30k, BERT's 30522)
    min_frequency: int = 2  # a merge must occur this often in the training documents
    seq_len: int = 32  # tokens per block (the paper does not say; BERT: 128, then 512)
    # probability p that a token is masked, 80/10/10 (the paper does not say for text; its PCFGs: 0.3, BERT:
    # 0.15); 0.3 gives twice the supervision per block, which the CPU budget needs
    mask_rate: float = 0.3
    layers: int = 2  # Transformer blocks (the paper: 12)
    heads: int = 4  # attention heads (the paper's teacher: 12); width = heads * head_dim
    head_dim: int = 16  # dimension per head (the paper: 64)
    mlp_ratio: int = 4  # MLP hidden width / model width
    steps: int = 4000  # Adam steps (the paper does not say)
    batch: int = 64  # blocks per step (the paper: 512, App. D.6)
    lr: float = 3e-3  # peak learning rate (the paper: 1e-4, App. F); Adam (0.9, 0.95), no weight decay
    warmup: int = 100  # linear warmup steps
    lr_schedule: Literal["constant", "cosine", "linear"] = "cosine"  # decay after warmup (the paper: cosine)
    min_lr_ratio: float = 0.0  # final lr / peak lr
    seeds: tuple[int, ...] = (0,)  # one run per seed (init and data), trained as one batched program
    eval_every: int = 100  # steps between evaluations on the fixed held-out blocks; follows steps
    eval_size: int = 256  # held-out blocks (fixed masks; fewer when the held-out split is smaller)
    checkpoint_every: int = 200  # steps between checkpoints (model, Adam state, generators); follows steps
    measure_every: int = 100  # steps between M_robust / M_close (0: never); multiple of eval_every; follows steps
    measure_ns: tuple[int, ...] = (3, 5, 7)  # n of the n-gram measures (eqs. 5-6)
    measure_positions: int = 128  # held-out document windows, one measured position each
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when available

    def __post_init__(self) -> None:

        _check_teacher(self)
        _check_text(self)
        check_transformer_memory(self, **text_sizes(self))


@dataclass(frozen=True)
class TextStudentConfig:
    """A student of a saved text teacher (same corpus, tokenizer and blocks) under a supervision schedule."""

    teacher: str = ""  # teacher run directory (required: it holds the tokenizer and the token streams)
    teacher_run: int = 0  # which of the teacher's runs (seeds) supervises
    # supervision schedule, as in every engine (infra.schedule; icurr config show student says what each does)
    strategy: Literal["ce", "oneshot", "progressive", "two-shot", "equal-split", "extraction"] = "equal-split"
    layers: int = 2  # the paper: 12
    heads: int = 2  # the paper's student: 4 (teacher 12)
    head_dim: int = 16
    mlp_ratio: int = 4
    steps: int = 2000  # the paper does not say
    batch: int = 64
    lr: float = 3e-3
    warmup: int = 100
    lr_schedule: Literal["constant", "cosine", "linear"] = "cosine"
    min_lr_ratio: float = 0.0
    seeds: tuple[int, ...] = (0, 1, 2)  # student runs, batched; the same seeds see the same samples
    temperature: float = 1e-20  # teacher temperature tau (0: argmax label); the paper's 1e-20 for a 30k vocabulary
    top_k: int = 0  # keep only the teacher's top-k logits (0: all)
    alpha: float = 0.0  # loss = alpha * CE(labels) + (1 - alpha) * KL(teacher)
    first_checkpoint: str = "auto"  # teacher step of the first checkpoint C_1, or "auto" (first_rule)
    # auto: accuracy = middle of the teacher's rapid loss drop (steepest rise of masked accuracy);
    # m_robust = the peak of M_robust at the smallest n (Figure 6, middle)
    first_rule: Literal["accuracy", "m_robust"] = "accuracy"
    first_skip: float = 0.1  # auto: the first first_skip * T0 teacher steps are left out (phase 1)
    first_smooth: int = 3  # accuracy rule: moving-average window in log points
    # equal-split: N checkpoints C_1, 2 C_1, ..., N C_1 (0, or more than fit: every multiple up to the teacher's
    # end); progressive: N of (N, T)-progressive (0: every teacher checkpoint up to the final)
    n_checkpoints: int = 0
    checkpoints: tuple[int, ...] = ()  # progressive: explicit intermediate checkpoints, as in PcfgStudentConfig
    # T: two-shot: student steps on C_1 (0: steps / 4); progressive: per intermediate checkpoint (0: the
    # teacher's checkpoint spacing)
    stage_steps: int = 0
    kappa: float = 0.5  # equal-split with split=teacher: the first kappa * T0 steps are split over the N
    split: Literal["teacher", "student"] = "teacher"  # equal-split: kappa*T0 (App. D.2 var. 2) or the student's steps
    extract_layers: tuple[int, ...] = ()  # extraction (Curriculum Extraction): as in PcfgStudentConfig
    extract_steps: int = 100  # extraction: alignment steps per extracted block
    projection_scale: float = 1.0  # extraction: the scale of A's entries
    projection_seed: int = 0  # A is fixed by (projection_seed, run seed, layer)
    eval_every: int = 100  # steps between evaluations; follows steps (icurr config show)
    eval_size: int = 256
    measure_every: int = 500  # M_robust / M_close (0: never); multiple of eval_every; follows steps
    measure_ns: tuple[int, ...] = (3, 5, 7)
    measure_positions: int = 128
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self) -> None:

        _check_student(self)
        _check_measures(self)
        check_transformer_memory(self, **_UNKNOWN_TASK)  # again with the teacher's task (distill.runs.train_student)


@dataclass(frozen=True)
class TextCompareConfig:
    """One text teacher, then one student per strategy (the same student seeds, so the same samples)."""

    teacher: TextTeacherConfig = field(default_factory=TextTeacherConfig)
    student: TextStudentConfig = field(default_factory=TextStudentConfig)
    strategies: tuple[str, ...] = ("ce", "oneshot", "equal-split")  # student strategies to compare

    def __post_init__(self) -> None:

        _check_compare(self)
        if self.student.measure_ns and max(self.student.measure_ns) > self.teacher.seq_len:
            raise ParameterError(f"student.measure_ns must be <= teacher.seq_len ({self.teacher.seq_len}), "
                                 f"got {self.student.measure_ns}")
        check_memory(memory_terms(self.student, prefix="student.", **text_sizes(self.teacher)), self.student.device)
