"""The exact Bayes-optimal masked predictor (distill.optimal): brute force over every completion and
corruption pattern, the corruption model of mask_tokens, the Evaluator's averaging, a trained model
that cannot beat it, the teacher summary, the CLI and the report's ceiling."""
from __future__ import annotations

import itertools
import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from distill.config import PcfgTeacherConfig
from distill.evaluate import Evaluator, eval_settings
from distill.grammar import Grammar, load_grammar, random_grammar
from distill.inside import emission_marginals
from distill.objectives import mask_tokens
from distill.optimal import (bayes_optimal_metrics, bayes_posterior, corruption_probs, paired_difference,
                             sample_masked, score_log_probs, unigram_distribution)
from distill.tasks import MaskedLMTask
from infra.config import apply_overrides
from theory._checks import ParameterError

from test_pcfg import G1, G2  # ambiguous tiny grammars (the inside tests' own)

pytestmark = pytest.mark.usefixtures("one_thread")

DEFAULT = "random:levels=5,seed=1"  # the CPU default grammar (sentences of 36-69 tokens)


def _tiny():
    return [Grammar.from_dict(G1), Grammar.from_dict(G2),
            random_grammar(3, nts_per_level=2, rules_per_nt=3, terminals=2, generator=np.random.default_rng(5))]


def _language(g: Grammar) -> dict:
    """Every sentence with its probability, by plain recursion over the derivations."""
    def expand(sym, l):
        out = []
        for rhs, p in g.rules[sym]:
            parts = [[((s,), 1.0)] for s in rhs] if l == g.depth - 1 else [expand(c, l + 1) for c in rhs]
            for combo in itertools.product(*parts):
                out.append((sum((c[0] for c in combo), ()), p * math.prod(c[1] for c in combo)))
        return out

    dist: dict = {}
    for t, p in expand(g.start, 0):
        dist[t] = dist.get(t, 0.0) + p
    return dist


def _brute_posterior(g, dist, obs, rate, replacement):
    """(n, V) P(x_i = v | obs, S_i = 1), summing P(x) P(S) P(obs | x, S) over every sentence x of the
    observation's length and every selection pattern S (NaN rows where S_i = 1 is impossible)."""
    V, M = len(g.terminals), g.vocab.mask_id
    p_mask, p_rand, p_keep = corruption_probs(replacement)
    n = len(obs)
    num = np.zeros((n, V))
    for x, px in dist.items():
        if len(x) != n:
            continue
        xi = [g.terminals.index(t) for t in x]
        for S in itertools.product((0, 1), repeat=n):
            w = px
            for j in range(n):
                if S[j]:
                    w *= rate * (p_mask * (obs[j] == M) + p_rand / V * (obs[j] != M) + p_keep * (obs[j] == xi[j]))
                else:
                    w *= (1 - rate) * (obs[j] == xi[j])
            for i in range(n):
                if S[i]:
                    num[i, xi[i]] += w
    with np.errstate(invalid="ignore"):
        return num / num.sum(1, keepdims=True)


def _corrupt(g, sents, rng, replacement, reps=3):
    V, obs = len(g.terminals), []
    for s in sents:
        for _ in range(reps):
            o = [g.terminals.index(t) for t in s]
            for j in range(len(o)):
                if rng.random() < 0.45:
                    u = rng.random()
                    o[j] = g.vocab.mask_id if replacement == "mask" or u < 0.6 else int(rng.integers(V))
            obs.append(tuple(o))
    T = max(map(len, obs))
    inputs = torch.full((len(obs), T), g.vocab.pad_id)
    for b, o in enumerate(obs):
        inputs[b, :len(o)] = torch.tensor(o)
    return obs, inputs, torch.arange(T)[None] < torch.tensor([len(o) for o in obs])[:, None]


# ------------------------------------------------------------------ exactness

@pytest.mark.parametrize("replacement", ["bert", "mask"])
@pytest.mark.parametrize("g", _tiny(), ids=lambda g: g.name)
def test_posterior_equals_brute_force(g, replacement):
    dist = _language(g)
    obs, inputs, valid = _corrupt(g, sorted(dist)[:16], np.random.default_rng(3), replacement)
    for rate in (0.3, 0.85):
        post = bayes_posterior(g, inputs, valid, rate=rate, replacement=replacement, chunk=5)
        assert torch.all(post[~valid] == 0)
        compared = 0
        for b, o in enumerate(obs):
            expect = _brute_posterior(g, dist, o, rate, replacement)
            got = post[b, :len(o)].numpy()
            assert np.array_equal(np.isnan(expect), np.isnan(got)), (o, expect, got)
            ok = ~np.isnan(expect)
            assert np.abs(expect[ok] - got[ok]).max(initial=0) < 1e-10, (o, expect, got)
            compared += ok.all(1).sum()
        assert compared > len(obs)  # not only impossible rows
        if replacement == "mask":  # NaN exactly at the visible tokens: they are never selected
            assert torch.equal(torch.isnan(post).any(-1), valid & (inputs != g.vocab.mask_id))


def test_observation_model_is_what_mask_tokens_draws():
    """The per-position likelihoods P(obs, S | x) of distill.optimal against 300k draws of mask_tokens."""
    g = Grammar.from_dict(G2)
    V, M, p, n = 3, g.vocab.mask_id, 0.3, 300_000
    x = torch.tensor([[0, 1, 2, 1]]).expand(n, 4)
    inputs, sel = mask_tokens(x, torch.ones_like(x, dtype=torch.bool), rate=p, n_terminals=V, mask_id=M,
                              generator=torch.Generator().manual_seed(0))
    p_mask, p_rand, p_keep = corruption_probs("bert")
    for j in range(4):
        cells = [(0, x[0, j].item())] + [(1, o) for o in (*range(V), M)]
        probs = [1 - p] + [p * (p_mask * (o == M) + (p_rand / V + p_keep * (o == x[0, j].item())) * (o != M))
                           for o in (*range(V), M)]
        counts = [int(((sel[:, j] == bool(s)) & (inputs[:, j] == o)).sum()) for s, o in cells]
        assert sum(counts) == n and abs(sum(probs) - 1) < 1e-12
        assert stats.chisquare(counts, np.array(probs) * n).pvalue > 1e-4


def test_marginals_do_not_depend_on_chunks_or_order():
    g = load_grammar(DEFAULT)
    b = sample_masked(g, 40, rate=0.3, replacement="bert", generator=torch.Generator().manual_seed(4))
    e = torch.rand(40, b.inputs.shape[1], 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    lengths = b.valid.sum(1)
    ref = emission_marginals(g, e, lengths, chunk=1)
    for chunk in (None, 7, 40):
        got = emission_marginals(g, e, lengths, chunk=chunk)
        assert torch.allclose(got.log_z, ref.log_z, rtol=0, atol=1e-12)
        assert torch.allclose(got.grad, ref.grad, rtol=1e-12, atol=0)
    post = ref.posterior(e)  # marginals of the weighted model: rows sum to 1 inside each sentence
    assert torch.allclose(post.sum(-1)[b.valid], torch.ones(()).double(), atol=1e-12)
    assert torch.all(ref.grad[~b.valid] == 0)


def test_unigram_distribution_is_the_token_frequency():
    g = load_grammar("random:levels=4,seed=1")
    q = unigram_distribution(g)
    b = sample_masked(g, 4000, rate=0.3, replacement="bert", generator=torch.Generator().manual_seed(2))
    toks = b.targets[b.valid]
    counts = torch.stack([(torch.where(b.valid, b.targets, -1) == v).sum(1) for v in range(3)], 1).double()
    n = b.valid.sum(1).double()
    for v in range(3):  # ratio estimator over i.i.d. sentences
        f = counts[:, v].sum() / n.sum()
        se = math.sqrt(((counts[:, v] - f * n) ** 2).sum() / len(n) / (len(n) - 1)) / n.mean()
        assert abs(f - q[v]) < 5 * se, (v, float(f), float(q[v]), se)
    assert abs(q.sum().item() - 1) < 1e-12 and len(toks) == int(n.sum())


# ------------------------------------------------------------------ metrics

def test_metrics_average_as_the_evaluator_and_beat_the_unigram():
    """A 'model' whose logits are the exact log-posterior gets from Evaluator.basic the numbers of
    bayes_optimal_metrics; the ceiling is far above the input-independent predictor and calibrated."""
    cfg = PcfgTeacherConfig(grammar=DEFAULT, eval_size=256, precision="fp32", device="cpu")
    task = MaskedLMTask(load_grammar(DEFAULT), 0.3)
    ev = Evaluator(task, eval_settings(cfg), torch.device("cpu"), chunk=100)  # several model calls
    m = bayes_optimal_metrics(task, ev.batch, keep_posterior=True)

    def exact_model(tokens, valid=None):
        post = bayes_posterior(task.grammar, tokens, valid, rate=0.3)
        return SimpleNamespace(logits=post.log().clamp_min(-1e4).float()[None])

    got = ev.basic(exact_model)
    b = ev.batch
    first = score_log_probs(m.log_posterior.float(), b.targets, b.selected)  # float32 argmax: ties to the lowest id
    assert got["test_accuracy"][0] == pytest.approx(first.accuracy, abs=1e-6)
    assert got["test_loss"][0] == pytest.approx(m.loss, abs=1e-5)
    # the two differ only at (near-)ties, which the ceiling splits: this grammar has exact 1/2-1/2 ties
    top2 = m.log_posterior.exp()[b.selected].topk(2, -1).values
    near = int((top2[:, 0] - top2[:, 1] < 1e-6).sum())
    assert int((top2[:, 0] - top2[:, 1] < 1e-12).sum()) > 0
    assert abs(first.accuracy - m.accuracy) <= near / m.positions + 1e-12
    assert m.sentences == 256 and m.positions == int(ev.batch.selected.sum())
    assert m.accuracy > m.unigram_accuracy + 0.3 and m.loss < m.unigram_loss - 0.5
    assert 0 < m.accuracy_se < 0.02 and 0 < m.loss_se < 0.02
    # realized vs the posterior's own expectation: unbiased for the same quantity
    assert abs(m.accuracy - m.expected_accuracy) < 4 * m.accuracy_se
    assert abs(m.loss - m.expected_loss) < 4 * m.loss_se
    d = m.to_dict()
    assert set(d) >= {"accuracy", "loss", "accuracy_se", "loss_se", "replacement", "sentences"}
    json.dumps(d)


def test_paired_difference_and_scores():
    lp = torch.log(torch.tensor([[[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]], [[1 / 3] * 3, [0.1, 0.1, 0.8]]]))
    tgt = torch.tensor([[0, 2], [1, 2]])
    sel = torch.tensor([[True, True], [False, True]])
    s = score_log_probs(lp, tgt, sel)
    assert s.hits.tolist() == [1, 1] and s.counts.tolist() == [2, 1]
    assert s.accuracy == pytest.approx(2 / 3)
    assert s.loss == pytest.approx(((-math.log(0.7) - math.log(0.3)) / 2 - math.log(0.8)) / 2)
    d = paired_difference(s, s)
    assert d["accuracy"] == 0 and d["loss"] == 0 and d["accuracy_se"] == 0
    with pytest.raises(ParameterError, match="same sentences"):
        paired_difference(s, score_log_probs(lp, tgt, torch.ones_like(sel)))


def test_argument_checks():
    g = load_grammar(DEFAULT)
    b = sample_masked(g, 4, rate=0.3, replacement="mask", generator=torch.Generator().manual_seed(0))
    with pytest.raises(ParameterError, match="replacement"):
        bayes_posterior(g, b.inputs, b.valid, rate=0.3, replacement="random")
    with pytest.raises(ParameterError, match="mask_rate"):
        bayes_posterior(g, b.inputs, b.valid, rate=0.0)
    with pytest.raises(ParameterError, match="rate"):
        bayes_optimal_metrics(g, b)
    bert = sample_masked(g, 8, rate=0.5, replacement="bert", generator=torch.Generator().manual_seed(1))
    with pytest.raises(ParameterError, match="replacement='mask'"):  # selected visible tokens: not 'mask' data
        bayes_optimal_metrics(g, bert, rate=0.5, replacement="mask")
    assert bayes_optimal_metrics(g, b, rate=0.3, replacement="mask").accuracy > 0.5
    with pytest.raises(ParameterError, match="bayes_eval"):
        apply_overrides(PcfgTeacherConfig(), {"bayes_eval": "maybe"})


# ------------------------------------------------------------------ a trained model never beats it

def test_trained_teacher_does_not_beat_the_bayes_ceiling(tmp_path):
    from distill.checkpoints import TransformerCheckpointDir
    from distill.runs import build_task, train_teacher

    cfg = PcfgTeacherConfig(grammar="random:levels=4,seed=1", layers=1, heads=4, head_dim=8, steps=150, batch=32,
                            lr=3e-3, warmup=10, eval_every=50, eval_size=192, checkpoint_every=150,
                            measure_every=0, probe_every=0, precision="fp32", device="cpu")
    rd = train_teacher(cfg, tmp_path / "teacher", progress=False)
    summary = rd.read_json("summary.json")
    task = build_task(cfg)
    ev = Evaluator(task, eval_settings(cfg), torch.device("cpu"))
    bayes = bayes_optimal_metrics(task, ev.batch)
    assert summary["bayes_optimal"] == pytest.approx(bayes.to_dict())
    model = TransformerCheckpointDir(rd.ckpt).load(cfg.steps).model.eval()
    with torch.no_grad():
        logits = model(ev.batch.inputs, valid=ev.batch.valid).logits[0].double()
    mine = score_log_probs(logits, ev.batch.targets, ev.batch.selected)
    final = summary["runs"][0]
    assert mine.accuracy == pytest.approx(final["final_accuracy"], abs=1e-6)  # the same held-out numbers
    assert mine.loss == pytest.approx(final["final_loss"], abs=1e-4)
    assert mine.accuracy > bayes.unigram_accuracy + 0.05  # it learned something from the context
    diff = paired_difference(mine, bayes.scores)
    assert diff["accuracy"] <= 3 * diff["accuracy_se"], diff
    assert diff["loss"] >= -3 * diff["loss_se"], diff
    assert diff["loss"] > 0.05  # and a small model after 150 steps is measurably below the ceiling


def test_next_token_and_disabled_teachers_have_no_ceiling():
    from distill.runs import bayes_ceiling

    ev = SimpleNamespace(batch=None)
    assert bayes_ceiling(PcfgTeacherConfig(objective="next-token"), None, ev) == {}
    assert bayes_ceiling(PcfgTeacherConfig(bayes_eval=False), None, ev) == {}


# ------------------------------------------------------------------ CLI and report

def test_cli_optimal_json_and_bad_input(capsys):
    from icurr.cli import main

    assert main(["pcfg", "optimal", "--grammar", "random:levels=3,seed=1", "--samples", "64",
                 "--replacement", "mask", "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["sentences"] == 64 and row["replacement"] == "mask" and row["device"] == "cpu"
    assert row["unigram_accuracy"] < row["bayes_accuracy"] <= 1 and row["bayes_loss"] < row["unigram_loss"]
    assert row["sentences_per_s"] > 0 and row["bayes_accuracy_se"] > 0
    for args, name in ((["--mask-rate", "0"], "mask-rate"), (["--mask-rate", "1.5"], "mask-rate"),
                       (["--replacement", "random"], "replacement"), (["--samples", "1"], "samples"),
                       (["--grammar", "nope"], "grammar")):
        with pytest.raises(SystemExit) as exc:
            main(["pcfg", "optimal", *args])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and name in err, err


def test_report_reads_the_ceiling_and_the_gap(tmp_path):
    from reports import transformer_data as TD
    from reports.transformer import _teacher_table

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "summary.json").write_text(json.dumps({"bayes_optimal": {
        "accuracy": 0.9, "accuracy_se": 0.01, "loss": 0.2, "loss_se": 0.02}}))
    assert TD._bayes(tmp_path / "t" / "summary.json") == {"bayes_accuracy": 0.9, "bayes_accuracy_se": 0.01,
                                                          "bayes_loss": 0.2, "bayes_loss_se": 0.02}
    assert TD._bayes(tmp_path / "missing.json") == {}
    exps = TD._experiments({"t": {"family": "pcfg", "label": "t", "bayes": TD._bayes(tmp_path / "t" / "summary.json")},
                            "old": {"family": "pcfg", "label": "old"}}, pd.DataFrame())
    assert TD.bayes_of(exps, "t") == 0.9 and TD.bayes_of(exps, "old") is None
    students = _students()
    table = TD.speed_table(TD.TransformerFrames(exps, pd.DataFrame(), students, pd.DataFrame())).set_index("experiment")
    assert table.loc["t", "gap to Bayes"] == pytest.approx(0.9 - 0.6)
    assert np.isnan(table.loc["old", "gap to Bayes"])
    curve = students.assign(test_loss=0.5).drop(columns="strategy")
    teach = _teacher_table(curve, pd.DataFrame(), exps).set_index("experiment")
    assert teach.loc["t", "gap to Bayes"] == pytest.approx(0.3) and teach.loc["t", "Bayes accuracy"] == "0.9000 +- 0.0100"


def _students():
    return pd.DataFrame([{"family": "pcfg", "experiment": exp, "strategy": "ce", "run": 0, "seed": 0, "step": s,
                          "samples": 10 * s, "test_accuracy": a} for exp in ("t", "old")
                         for s, a in ((0, 0.3), (10, 0.6))])
