"""Configs of Algorithm 1's two-stage training (Appendix B): one frozen dataclass per kind
(``parity-two-stage-teacher``, ``-student``, ``-compare``; ``icurr parity-two-stage teacher|student|compare``).

Symmetric initialization, biases frozen; stage 1 trains ``W`` for ``T1`` steps of batch ``B1``
(rate ``eta1``, decay ``lambda1``), stage 2 trains ``a`` for ``T2`` steps of batch ``B2`` (rate
``eta2``). The teacher learns from labels with the hinge loss ``max(0, 1 - y f)``; a student of
width ``m~`` learns with ``max(0, 1 - f_S f_T)`` under one ``supervision`` (Theorem B.1):

* ``labels``: no teacher, the hinge loss on labels (the vocabulary's ``ce`` for this loss);
* ``oneshot``: the final teacher in both stages;
* ``progressive``: the teacher's stage-1 checkpoint (step ``T1``) in stage 1, the final teacher in
  stage 2: Theorem B.1's two-checkpoint strategy (the vocabulary's ``two-shot`` with ``C_1`` = the
  end of the teacher's stage 1).

Zeros (and ``lambda1 = -1``) select the paper's values (:func:`resolved`): ``B1`` from Lemma B.2 /
Theorem B.1, ``eta1`` by :func:`simulate.two_stage.auto_eta1`, ``2 eta1 lambda1 = 1``, ``eta2`` of
Lemma B.7. A run *succeeds* when at least ``recover_frac`` of its neurons separate the support after
stage 1 (:func:`simulate.two_stage.support_recovery`) and (``success = "recovery_and_loss"``) its test
hinge loss (against the labels) after stage 2 is at most ``eps``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from infra.config import MAX_INT, check_seeds
from theory._checks import ParameterError, check_choice, check_int, check_real

__all__ = ["SUPERVISIONS", "SHARED_FIELDS", "ParityTwoStageTeacherConfig", "ParityTwoStageStudentConfig",
           "ParityTwoStageCompareConfig", "resolved", "paper_b1"]

SUPERVISIONS = ("labels", "oneshot", "progressive")
#: The fields in which students may differ and still train as one program (simulate.two_stage_shared)
SHARED_FIELDS = ("supervision", "B1", "eta1", "lambda1", "eta2")
MAX_EVAL_SIZE = 1 << 22
_DELTA = 0.01  # the failure probability delta in the paper's batch sizes


def _check_dk(d: int, k: int, eta1: float, prefix: str = "") -> None:
    check_int(f"{prefix}d", d, 3)
    check_int(f"{prefix}k", k, 1, d - 1)
    if k % 2 and d % 2 and eta1 == 0:
        raise ParameterError(
            f"{prefix}k must be even when d is odd, got k = {k}, d = {d}: zeta_(k-1)(d) = 0, so stage 1's population "
            "gradient vanishes on the support and the paper's eta1 = m/(k |zeta_(k-1)|) is undefined (ERRATA.md); "
            "give eta1 > 0 to run it anyway")


def _common(cfg, prefix: str = "") -> None:
    p = prefix
    check_int(f"{p}T1", cfg.T1, 1, 1000)
    check_int(f"{p}B1", cfg.B1, 0, MAX_INT)  # 0: the paper's; a batch is >= 1
    check_real(f"{p}eta1", cfg.eta1, 0)
    if cfg.lambda1 != -1:
        check_real(f"{p}lambda1", cfg.lambda1, 0)
    check_int(f"{p}T2", cfg.T2, 2, MAX_INT)
    check_int(f"{p}B2", cfg.B2, 1, 1 << 20)
    check_real(f"{p}eta2", cfg.eta2, 0)
    check_real(f"{p}eps", cfg.eps, 0, lo_open=True)
    check_real(f"{p}recover_frac", cfg.recover_frac, 0, 1)
    check_choice(f"{p}success", cfg.success, ("recovery_and_loss", "recovery"))
    check_seeds(cfg.seeds)
    check_int(f"{p}eval_every", cfg.eval_every, 0, cfg.T2)
    check_int(f"{p}eval_size", cfg.eval_size, 256, MAX_EVAL_SIZE)
    check_choice(f"{p}device", cfg.device, ("auto", "cpu", "cuda"))


def _check_width(name: str, width: int, lo: int = 2) -> None:
    check_int(name, width, lo, 1 << 20)
    if width % 2:
        raise ParameterError(f"{name} must be even (the symmetric init mirrors neuron pairs), got {width}")


@dataclass(frozen=True)
class ParityTwoStageTeacherConfig:
    """A teacher trained by Algorithm 1 on (d, k)-sparse parity with support {0, ..., k-1}."""

    d: int = 16  # input dimension; x uniform on {+-1}^d
    k: int = 2  # parity degree (even k: odd k with odd d has no stage-1 signal, ERRATA.md)
    width: int = 64  # hidden width m (even; Lemma B.7: m >= 2^k k log(k/delta))
    T1: int = 1  # stage-1 steps (the paper: 1)
    B1: int = 0  # stage-1 batch; 0: Lemma B.2's (k/|zeta_(k-1)|)^2 log(m d/delta), delta = 0.01
    eta1: float = 0.0  # stage-1 rate; 0: per run, mean_i max_j |w1_ij| = 1/(2k) (simulate.two_stage.auto_eta1)
    lambda1: float = -1.0  # stage-1 weight decay; -1: 1/(2 eta1), so the step replaces W (ERRATA.md item 7)
    T2: int = 20_000  # stage-2 steps (a only)
    B2: int = 1  # stage-2 batch
    eta2: float = 0.0  # stage-2 rate; 0: Lemma B.7's 4 k^1.5 / (d sqrt(m (T2 - 1)))
    eps: float = 0.1  # test hinge loss that counts as learned (samples_to_eps, success)
    recover_frac: float = 0.9  # fraction of neurons that must separate the support after stage 1 (success)
    # what a run's success requires: stage-1 recovery and test hinge loss <= eps after stage 2, or the recovery
    # alone (stage 1's success: for settings whose stage 2 cannot reach eps at the steps given)
    success: Literal["recovery_and_loss", "recovery"] = "recovery_and_loss"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # one run per seed (init and samples), one batched program
    eval_every: int = 0  # stage-2 steps between evaluations; 0: T2 // 20
    eval_size: int = 16384  # held-out points (all of {+-1}^d when 2^d <= eval_size): test loss, correlations
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when available

    def __post_init__(self) -> None:
        _check_dk(self.d, self.k, self.eta1)
        _check_width("width", self.width)
        _common(self)


@dataclass(frozen=True)
class ParityTwoStageStudentConfig:
    """A student of width m~ trained by Algorithm 1 under one supervision (Theorem B.1)."""

    teacher: str = ""  # teacher run directory (parity-two-stage-teacher); required except for labels
    teacher_run: int = -1  # the teacher run that supervises; -1: run i of the teacher for seed i (cycling)
    # labels (hinge loss on labels), oneshot (the final teacher), progressive (stage-1 checkpoint, then final)
    supervision: Literal["labels", "oneshot", "progressive"] = "progressive"
    d: int = 0  # labels without a teacher: the task's d (0: the teacher's)
    k: int = 0  # labels without a teacher: the task's k (0: the teacher's)
    width: int = 0  # student width m~ (even); 0: Theorem B.1's 2^k k (log factor dropped)
    T1: int = 1
    B1: int = 0  # 0: Theorem B.1's k^2 log(d m~/delta) for progressive, Lemma B.2's for labels and oneshot
    eta1: float = 0.0  # as the teacher's
    lambda1: float = -1.0
    T2: int = 20_000
    B2: int = 1
    eta2: float = 0.0
    eps: float = 0.1
    recover_frac: float = 0.9
    success: Literal["recovery_and_loss", "recovery"] = "recovery_and_loss"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    eval_every: int = 0
    eval_size: int = 16384
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def check_task(self) -> None:
        """What a run needs beyond the fields' ranges (checked when it starts, before any file is
        written): a teacher for oneshot / progressive, the task's d and k for labels without one."""
        if self.supervision != "labels" and not self.teacher:
            raise ParameterError(f"teacher (a parity-two-stage-teacher run directory) is required for "
                                 f"supervision={self.supervision}")
        if not self.teacher and not self.d:
            raise ParameterError("d and k are required for supervision=labels without a teacher (or give teacher=)")

    def __post_init__(self) -> None:
        check_choice("supervision", self.supervision, SUPERVISIONS)
        check_int("teacher_run", self.teacher_run, -1)
        if (self.d or self.k) and not (self.d and self.k):
            raise ParameterError("d and k must be given together (or both 0: the teacher's)")
        if self.d:
            _check_dk(self.d, self.k, self.eta1)
        if self.width:
            _check_width("width", self.width)
        _common(self)


@dataclass(frozen=True)
class ParityTwoStageCompareConfig:
    """One two-stage teacher, then a student per supervision (same student seeds, same samples)."""

    teacher: ParityTwoStageTeacherConfig = field(default_factory=ParityTwoStageTeacherConfig)
    student: ParityTwoStageStudentConfig = field(default_factory=ParityTwoStageStudentConfig)  # teacher: set by compare
    supervisions: tuple[str, ...] = SUPERVISIONS  # student supervisions to compare

    def __post_init__(self) -> None:
        if not self.supervisions:
            raise ParameterError("supervisions must name at least one supervision")
        for s in self.supervisions:
            check_choice("supervisions", s, SUPERVISIONS)


def paper_b1(d: int, k: int, width: int, supervision: str) -> int:
    """The paper's stage-1 batch: Lemma B.2's ``(k/|zeta_(k-1)|)^2 log(m d/delta)`` (labels, oneshot) or
    Theorem B.1's ``k^2 log(d m~/delta)`` (progressive), ``delta = 0.01``, constants 1."""
    if supervision == "progressive":
        return math.ceil(k**2 * math.log(d * width / _DELTA))
    from theory.algorithm1 import paper_hyperparameters

    return int(paper_hyperparameters(d, k, width, delta=_DELTA)["B1"])


def resolved(cfg, *, d: int, k: int, width: int, supervision: str) -> dict:
    """The stage settings of ``cfg`` with its zeros replaced by the paper's values:
    ``T1, B1, eta1 (0 = auto), lambda1 (-1 = 1/(2 eta1)), T2, B2, eta2, eval_every``."""
    eta2 = cfg.eta2 or 4 * k**1.5 / (d * math.sqrt(width * (cfg.T2 - 1)))
    return {"T1": cfg.T1, "B1": cfg.B1 or paper_b1(d, k, width, supervision), "eta1": cfg.eta1,
            "lambda1": cfg.lambda1, "T2": cfg.T2, "B2": cfg.B2, "eta2": eta2,
            "eval_every": cfg.eval_every or max(1, cfg.T2 // 20)}
