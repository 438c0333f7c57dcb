"""The exact Bayes-optimal masked predictor of a PCFG: the ceiling that BERT models approach.

Masked prediction (Definition 4.1, :func:`distill.objectives.mask_tokens`) selects each position
with probability ``p``; a selected input becomes ``[mask]`` (probability ``p_mask``), a uniform
terminal (``p_rand``) or stays (``p_keep = 1 - p_mask - p_rand``); loss and accuracy count the
selected positions. The risk-minimizing prediction at a selected position i is the posterior

    P(x_i = v | obs, S_i = 1)  proportional to  P(obs_i | x_i = v, S_i = 1) * O_i(v),

    O_i(v) = sum_{x: x_i = v} P(x) prod_{j != i} e_j(x_j),     e_j(v) = P(obs_j | x_j = v),

with the per-position observation likelihoods (selection summed out; V terminals)

    e_j(v) = p * p_mask                                      if obs_j = [mask],
    e_j(v) = (1 - p + p * p_keep) [obs_j = v] + p * p_rand / V   if obs_j is a terminal,
    P(obs_i | v, S_i = 1) = p_mask [obs_i = [mask]] + (p_rand / V + p_keep [obs_i = v]) [obs_i terminal].

One inside-outside pass per sentence gives ``O_i(v) / Z = d log Z / d e_i(v)`` at every position
at once (:func:`distill.inside.emission_marginals`). ``replacement="bert"`` is the 80/10/10 model
the tasks train on; ``"mask"`` (every selected position becomes ``[mask]``) is the plain version,
where the posterior is ``P(x_i | visible tokens)``.

The metrics are averaged as :meth:`distill.evaluate.Evaluator.basic` averages a model's:
accuracy = hits / selected positions over the whole batch (token average), loss = mean over
sentences of the per-sentence mean cross-entropy (the weights of
:func:`distill.objectives.per_sequence_weights`). Standard errors treat sentences as i.i.d.
(ratio estimator for the accuracy). Two small caveats, both vanishing with the batch size: the
argmax maximizes the expected hits, not the expected hits / selected ratio; and with
``replacement="bert"`` the per-sentence weight 1/|M_b| depends weakly on the tokens given the
observation (which non-[mask] positions were selected is hidden), so the posterior is optimal for
the token-averaged loss and within O(1/|M_b|^2) of it for the per-sentence-averaged one.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from theory._checks import ParameterError, check_choice, check_int, check_real

from .grammar import Grammar
from .inside import emission_marginals

__all__ = ["REPLACEMENTS", "corruption_probs", "observation_likelihoods", "bayes_posterior", "unigram_distribution",
           "Scores", "score_log_probs", "paired_difference", "BayesMetrics", "bayes_optimal_metrics",
           "sample_masked", "grammar_ceiling"]

#: Corruption models of a selected position: BERT's 80/10/10, or always ``[mask]``.
REPLACEMENTS = ("bert", "mask")
#: Posterior classes within this log-ratio of the maximum are tied (exact ties are common on grammars
#: with uniform rule probabilities); they share the hit (the posteriors are exact to ~1e-14).
TIE_TOL = 1e-10


def corruption_probs(replacement: str) -> tuple[float, float, float]:
    """``(p_mask, p_rand, p_keep)`` of a selected position (``bert``: the defaults of ``mask_tokens``)."""
    check_choice("replacement", replacement, REPLACEMENTS)
    return (0.8, 0.1, 0.1) if replacement == "bert" else (1.0, 0.0, 0.0)


def observation_likelihoods(inputs: torch.Tensor, valid: torch.Tensor, *, rate: float, replacement: str,
                            n_terminals: int, mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(e, s)``, both (B, T, V) float64 on the inputs' device (see the module doc):
    ``e[b, t, v] = P(obs_t | x_t = v)`` (selection summed out; 1 at padding) and
    ``s[b, t, v] = P(obs_t | x_t = v, S_t = 1)``. ``inputs`` (B, T) are the corrupted token ids."""
    rate = float(check_real("mask_rate", rate, 0, 1, lo_open=True))
    p_mask, p_rand, p_keep = corruption_probs(replacement)
    V = n_terminals
    is_mask = (inputs == mask_id) & valid
    term = valid & ~is_mask
    bad = term & ((inputs < 0) | (inputs >= V))
    if bool(bad.any()):
        raise ParameterError(f"inputs must be terminal ids in [0, {V - 1}] or the mask id {mask_id} within each "
                             f"sentence, got {inputs[bad][:5].tolist()}")
    f64 = dict(dtype=torch.float64)
    onehot = torch.nn.functional.one_hot(inputs.clamp(0, V - 1), V).to(**f64) * term[..., None].to(**f64)
    s = (p_mask * is_mask.to(**f64) + (p_rand / V) * term.to(**f64))[..., None] + p_keep * onehot
    e = rate * s + (1 - rate) * onehot
    return torch.where(valid[..., None], e, torch.ones_like(e)), s


def bayes_posterior(grammar: Grammar, inputs: torch.Tensor, valid: torch.Tensor, *, rate: float,
                    replacement: str = "bert", chunk: int | None = None, progress=None) -> torch.Tensor:
    """(B, T, V) float64 ``P(x_t = v | obs, S_t = 1)`` at every position t < length (module doc);
    0 at padding; NaN where selection is impossible given the observation (``replacement="mask"``
    at a visible token) or the observation has probability 0. ``progress(k)``: called as each chunk
    of k sentences is done (:func:`distill.inside.emission_marginals`)."""
    if inputs.dim() != 2 or valid.shape != inputs.shape:
        raise ParameterError(f"inputs and valid must both have shape (B, T), got {tuple(inputs.shape)}, "
                             f"{tuple(valid.shape)}")
    vocab = grammar.vocab
    e, s = observation_likelihoods(inputs, valid, rate=rate, replacement=replacement,
                                   n_terminals=vocab.n_terminals, mask_id=vocab.mask_id)
    lengths = valid.sum(1)
    if bool((valid != (torch.arange(inputs.shape[1], device=valid.device)[None, :] < lengths[:, None])).any()) \
            or bool((lengths < 1).any()):
        raise ParameterError("valid must mark a non-empty prefix of each sentence")
    marg = emission_marginals(grammar, e, lengths, chunk=chunk, progress=progress)
    joint = s * marg.grad  # proportional to P(x_t = v, S_t = 1 | obs)
    post = joint / joint.sum(-1, keepdim=True)
    return torch.where(valid[..., None], post, torch.zeros_like(post))


def unigram_distribution(grammar: Grammar) -> torch.Tensor:
    """(V,) float64 exact token frequencies ``E[count of v] / E[length]`` of the grammar's sentences
    (expected counts propagated bottom-up over the levels): the best input-independent predictor."""
    V = grammar.vocab.n_terminals
    term = {t: i for i, t in enumerate(grammar.terminals)}
    counts: dict[str, np.ndarray] = {}
    for l in range(grammar.depth - 1, -1, -1):
        last = l == grammar.depth - 1
        for a in grammar.levels[l]:
            c = np.zeros(V)
            for rhs, p in grammar.rules[a]:
                for sym in rhs:
                    if last:
                        c[term[sym]] += p
                    else:
                        c += p * counts[sym]
            counts[a] = c
    root = counts[grammar.start]
    return torch.tensor(root / root.sum(), dtype=torch.float64)


@dataclass(frozen=True)
class Scores:
    """Per-sentence scores of a predictor on B sentences: ``hits`` and ``counts`` (selected positions)
    and ``nll``, the mean cross-entropy over the sentence's selected positions (0 if none)."""

    hits: np.ndarray
    counts: np.ndarray
    nll: np.ndarray

    @property
    def accuracy(self) -> float:
        """Hits / selected positions over the batch (the Evaluator's token average)."""
        return float(self.hits.sum() / max(self.counts.sum(), 1))

    @property
    def loss(self) -> float:
        """Mean over sentences of the per-sentence mean cross-entropy (the Evaluator's test_loss)."""
        return float(self.nll.mean())

    @property
    def accuracy_se(self) -> float:
        """Standard error of :attr:`accuracy` (ratio estimator over i.i.d. sentences)."""
        return _ratio_se(self.hits, self.counts)

    @property
    def loss_se(self) -> float:
        return _mean_se(self.nll)


def _ratio_se(num: np.ndarray, den: np.ndarray) -> float:
    B = len(num)
    if B < 2 or den.sum() == 0:
        return float("nan")
    resid = num - num.sum() / den.sum() * den
    return float(math.sqrt((resid ** 2).sum() * B / (B - 1)) / den.sum())


def _mean_se(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")


def score_log_probs(log_probs: torch.Tensor, targets: torch.Tensor, selected: torch.Tensor, *,
                    tie_tol: float = 0.0) -> Scores:
    """:class:`Scores` of predictions ``log_probs`` (B, T, V) (log-probabilities or logits: the
    argmax is the prediction, the log-softmax the cross-entropy) for ``targets`` (B, T) at the
    ``selected`` (B, T) positions. ``tie_tol = 0``: ties go to the lowest id, as ``argmax`` (and the
    Evaluator); ``tie_tol > 0``: the k classes within ``tie_tol`` of the maximum (in log space)
    share the hit, 1/k each (the expected hits of a random tie-break)."""
    lp = torch.log_softmax(log_probs.double(), -1)
    sel = selected.bool()
    tgt = targets.clamp(0, lp.shape[-1] - 1)
    if tie_tol > 0:
        top = lp >= lp.amax(-1, keepdim=True) - tie_tol
        hit = torch.where(sel, top.gather(-1, tgt[..., None])[..., 0] / top.sum(-1), 0.0)
    else:
        hit = ((lp.argmax(-1) == tgt) & sel).double()
    nll = torch.where(sel, -lp.gather(-1, tgt[..., None])[..., 0], torch.zeros((), dtype=lp.dtype, device=lp.device))
    counts = sel.sum(1)
    per = nll.sum(1) / counts.clamp_min(1)
    return Scores(hit.sum(1).cpu().numpy().astype(float), counts.cpu().numpy().astype(float), per.cpu().numpy())


def paired_difference(a: Scores, b: Scores) -> dict[str, float]:
    """``a - b`` on the same sentences and positions: accuracy and loss differences with their
    paired standard errors (per-sentence differences, sentences i.i.d.)."""
    if not np.array_equal(a.counts, b.counts):
        raise ParameterError("paired_difference needs scores of the same sentences and selected positions")
    return {"accuracy": a.accuracy - b.accuracy, "accuracy_se": _ratio_se(a.hits - b.hits, a.counts),
            "loss": a.loss - b.loss, "loss_se": _mean_se(a.nll - b.nll)}


@dataclass(frozen=True)
class BayesMetrics:
    """Bayes-optimal scores on one batch. ``accuracy`` / ``loss`` (and SEs): realized hits and
    cross-entropy of the exact posterior on the true tokens, averaged as the Evaluator averages;
    exact ties of the posterior share the hit (:data:`TIE_TOL`; the Evaluator's argmax of float32
    logits breaks them and near-ties to the lowest id instead);
    ``expected_accuracy`` / ``expected_loss``: the posterior's own mean max-probability and mean
    entropy over the same positions (unbiased for the same population quantities, lower variance);
    ``unigram_*``: the input-independent predictor of :func:`unigram_distribution`, for scale."""

    accuracy: float
    loss: float
    accuracy_se: float
    loss_se: float
    expected_accuracy: float
    expected_loss: float
    unigram_accuracy: float
    unigram_loss: float
    replacement: str
    mask_rate: float
    sentences: int
    positions: int
    scores: Scores = field(repr=False, compare=False)
    log_posterior: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """The numbers (JSON-ready), without the per-sentence scores and the posterior."""
        d = asdict(self)
        d.pop("scores")
        d.pop("log_posterior")
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def bayes_optimal_metrics(task_or_grammar, batch, *, rate: float | None = None, replacement: str = "bert",
                          chunk: int | None = None, keep_posterior: bool = False, progress=None) -> BayesMetrics:
    """Exact Bayes-optimal accuracy and cross-entropy on ``batch`` (a :class:`distill.tasks.SeqBatch`
    of shape (B, T) with corrupted ``inputs``, true ``targets`` and ``selected`` positions).

    ``task_or_grammar``: a :class:`distill.tasks.MaskedLMTask` (its grammar and mask rate) or a
    :class:`Grammar` with ``rate``. ``replacement`` must be the corruption the batch was drawn with
    (``"bert"`` for the tasks' 80/10/10). Runs on the batch's device. ``keep_posterior`` keeps the
    (B, T, V) log-posterior (e.g. to feed the Evaluator as logits). ``progress(k)``: called as each
    chunk of k sentences is done.
    """
    grammar = getattr(task_or_grammar, "grammar", task_or_grammar)
    if not isinstance(grammar, Grammar):
        raise ParameterError(f"task_or_grammar must be a MaskedLMTask or a Grammar, got {type(task_or_grammar).__name__}")
    if rate is None:
        rate = getattr(task_or_grammar, "rate", None)
        if rate is None:
            raise ParameterError("rate (the mask rate) is required with a grammar")
    if batch.inputs.dim() != 2:
        raise ParameterError(f"batch must have shape (B, T) (no run axis), got {tuple(batch.inputs.shape)}")
    post = bayes_posterior(grammar, batch.inputs, batch.valid.bool(), rate=rate, replacement=replacement, chunk=chunk,
                           progress=progress)
    sel = batch.selected.bool() & batch.valid.bool()
    if bool(torch.isnan(post[sel]).any()):
        raise ParameterError(f"a selected position is impossible under replacement={replacement!r} (was the batch "
                             "drawn with another corruption?)")
    log_post = torch.where(sel[..., None], post, torch.ones_like(post)).log()
    scores = score_log_probs(log_post, batch.targets, sel, tie_tol=TIE_TOL)
    counts = sel.sum(1).clamp_min(1)
    exp_acc = float(torch.where(sel, post.amax(-1), 0.0).sum() / sel.sum().clamp_min(1))
    ent = -(post * torch.where(post > 0, post.log(), torch.zeros_like(post))).sum(-1)
    exp_loss = float((torch.where(sel, ent, 0.0).sum(1) / counts).mean())
    q = unigram_distribution(grammar).to(post.device).log()
    uni = score_log_probs(q.expand_as(post), batch.targets, sel)
    return BayesMetrics(scores.accuracy, scores.loss, scores.accuracy_se, scores.loss_se, exp_acc, exp_loss,
                        uni.accuracy, uni.loss, replacement, float(rate), int(sel.shape[0]), int(sel.sum()),
                        scores, log_post if keep_posterior else None)


def sample_masked(grammar: Grammar, n: int, *, rate: float, replacement: str, generator: torch.Generator):
    """``n`` sentences and their corruption as a :class:`distill.tasks.SeqBatch` on the generator's
    device (for ``"bert"`` exactly what :meth:`distill.tasks.MaskedLMTask.sample` draws)."""
    from .objectives import mask_tokens, per_sequence_weights
    from .sampler import sample
    from .tasks import SeqBatch

    p_mask, p_rand, _ = corruption_probs(replacement)
    parsed = sample(grammar, n, generator=generator)
    inputs, masked = mask_tokens(parsed.tokens, parsed.valid, rate=rate, n_terminals=grammar.vocab.n_terminals,
                                 mask_id=grammar.vocab.mask_id, generator=generator, replace=(p_mask, p_rand))
    return SeqBatch(inputs, parsed.valid, parsed.tokens, masked, per_sequence_weights(masked))


def grammar_ceiling(grammar: Grammar, *, rate: float, samples: int, seed: int = 0, replacement: str = "bert",
                    device="cpu", chunk: int | None = None, progress: bool = False) -> tuple[BayesMetrics, float]:
    """Bayes-optimal metrics of ``grammar`` at mask rate ``rate`` on ``samples`` fresh sentences drawn
    with ``torch.Generator(device).manual_seed(seed)``; returns (metrics, seconds of the exact
    posterior computation). Checks every argument before any work. ``progress``: a bar over the
    sentences (plain lines on stderr when it is not a terminal, :class:`infra.runloop.Progress`)."""
    rate = float(check_real("mask_rate", rate, 0, 1, lo_open=True))
    samples = check_int("samples", samples, 2, 10_000_000)
    seed = check_int("seed", seed, 0)
    check_choice("replacement", replacement, REPLACEMENTS)
    if chunk is not None:
        check_int("chunk", chunk, 1)
    batch = sample_masked(grammar, samples, rate=rate, replacement=replacement,
                          generator=torch.Generator(device=device).manual_seed(seed))
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    from infra.runloop import Progress

    bar = Progress(samples, desc="inside-outside", unit="sentence", enabled=progress)
    start = time.perf_counter()
    try:
        metrics = bayes_optimal_metrics(grammar, batch, rate=rate, replacement=replacement, chunk=chunk,
                                        progress=bar.update)
    finally:
        bar.close()
    return metrics, time.perf_counter() - start
