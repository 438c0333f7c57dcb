"""The Transformer engine: objectives, tasks, checkpoints and resume, tiny runs that learn, the CLI."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from cli_helpers import run_icurr
from distill import objectives as O
from distill.checkpoints import TransformerCheckpointDir
from distill.config import (ParityTransformerCompareConfig, ParityTransformerStudentConfig,
                            ParityTransformerTeacherConfig, PcfgCompareConfig, PcfgStudentConfig, PcfgTeacherConfig)
from distill.grammar import load_grammar
from distill.runs import run_compare, train_student, train_teacher
from distill.tasks import MaskedLMTask, NextTokenTask, ParityTask, sample_runs
from infra.config import apply_overrides
from infra.rundir import RunDir
from theory._checks import ParameterError

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = "random:levels=4,seed=1"
PCFG_TINY = dict(grammar=TINY, layers=1, heads=2, head_dim=8, steps=60, batch=32, lr=3e-3, warmup=5,
                 eval_every=20, eval_size=64, checkpoint_every=20, measure_every=20, measure_positions=32,
                 probe_every=60, probe_train=64, probe_test=32, probe_steps=30, device="cpu")


# ------------------------------------------------------------------ objectives

def test_mask_tokens_rates_within_binomial_tolerance():
    g = torch.Generator().manual_seed(0)
    n, T = 400, 50
    tokens = torch.randint(0, 3, (n, T), generator=g)
    valid = torch.ones(n, T, dtype=torch.bool)
    valid[:, 40:] = False
    inputs, masked = O.mask_tokens(tokens, valid, rate=0.3, n_terminals=3, mask_id=3, generator=g)
    N = int(valid.sum())
    M = int(masked.sum())
    assert not masked[~valid].any()
    assert abs(M / N - 0.3) < 5 * math.sqrt(0.3 * 0.7 / N)
    to_mask = int((inputs[masked] == 3).sum())
    changed = int((inputs[masked] != tokens[masked]).sum()) - to_mask  # random replacements that differ
    kept = M - to_mask - changed
    assert abs(to_mask / M - 0.8) < 5 * math.sqrt(0.8 * 0.2 / M)
    # a random replacement differs from the token with probability 2/3: differ 0.1*2/3, same 0.1/3 + 0.1
    assert abs(changed / M - 0.1 * 2 / 3) < 5 * math.sqrt(0.067 * 0.933 / M)
    assert abs(kept / M - (0.1 + 0.1 / 3)) < 5 * math.sqrt(0.133 * 0.867 / M)
    assert torch.equal(inputs[~masked], tokens[~masked])


def test_weights_average_per_sequence_then_over_batch():
    sel = torch.tensor([[True, True, False, False], [True, False, False, False], [False] * 4])
    w = O.per_sequence_weights(sel)
    assert torch.allclose(w.sum(-1), torch.tensor([1 / 3, 1 / 3, 0.0]))
    logits = torch.zeros(1, 3, 4, 5)
    assert torch.allclose(O.weighted_ce(logits, torch.zeros(3, 4, dtype=torch.long), w), torch.tensor([2 / 3 * math.log(5)]))


def test_kl_zero_for_equal_models_and_argmax_at_tau_zero():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 4, 5, generator=g)
    w = O.per_sequence_weights(torch.ones(3, 4, dtype=torch.bool))
    assert torch.allclose(O.weighted_kl(logits, logits, w, tau=1.0), torch.zeros(2), atol=1e-6)
    t = torch.randn(2, 3, 4, 5, generator=g)
    assert torch.allclose(O.weighted_kl(logits, t, w, tau=0.0), O.weighted_ce(logits, t.argmax(-1), w), atol=1e-6)
    top1 = O.weighted_kl(logits, t, w, tau=1.0, top_k=1)
    assert torch.allclose(top1, O.weighted_ce(logits, t.argmax(-1), w), atol=1e-6)
    assert O.truncate_top_k(t, 2).isinf().sum() == 2 * 3 * 4 * 3


# ------------------------------------------------------------------ tasks

def test_next_token_inputs_shift_and_level_one_selects_every_token():
    grammar = load_grammar(TINY)
    task = NextTokenTask(grammar, level=1)
    b = task.sample(torch.Generator().manual_seed(0), 16)
    assert (b.inputs[:, 0] == grammar.vocab.bos_id).all()
    assert torch.equal(b.inputs[:, 1:][b.valid[:, 1:]], b.targets[:, :-1][b.valid[:, 1:]])
    assert torch.equal(b.selected, b.valid)
    top = NextTokenTask(grammar, level=grammar.depth).sample(torch.Generator().manual_seed(0), 16)
    lengths = b.valid.sum(1)
    assert torch.equal(top.selected.sum(1), torch.ones(16, dtype=torch.long))  # the root's span ends once
    assert top.selected[torch.arange(16), lengths - 1].all()


def test_parity_task_labels_and_runs_see_their_own_samples():
    task = ParityTask(6, torch.tensor([0, 2]), readout="cls")
    b = task.sample(torch.Generator().manual_seed(0), 64)
    x = 1 - 2 * b.inputs[:, 1:]
    assert torch.equal(b.targets[:, 0], (x[:, 0] * x[:, 2] < 0).long())
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    both = sample_runs(task, gens, 8)
    assert both.inputs.shape == (2, 8, 7)
    assert not torch.equal(both.inputs[0], both.inputs[1])


# ------------------------------------------------------------------ configs

@pytest.mark.parametrize("cls, words, field", [
    (ParityTransformerTeacherConfig, ["d=4", "k=5"], "k"),
    (PcfgTeacherConfig, ["heads=0"], "heads"),
    (PcfgStudentConfig, ["temperature=-1"], "temperature"),
    (PcfgTeacherConfig, ["mask_rate=0"], "mask_rate"),
    (PcfgTeacherConfig, ["eval_every=30", "measure_every=50"], "measure_every"),
    (ParityTransformerStudentConfig, ["first_rule=m_robust"], "first_rule"),
])
def test_invalid_configs_name_the_field(cls, words, field):
    with pytest.raises(ParameterError, match=field):
        apply_overrides(cls(), words)


# ------------------------------------------------------------------ runs

@pytest.fixture(scope="module")
def pcfg_teacher(tmp_path_factory):
    cfg = PcfgTeacherConfig(**PCFG_TINY)
    return cfg, train_teacher(cfg, tmp_path_factory.mktemp("pt") / "teacher", progress=False)


def test_pcfg_teacher_learns_and_logs_measures(pcfg_teacher):
    cfg, rd = pcfg_teacher
    df = rd.metrics()
    acc = df["test_accuracy"].to_numpy()
    # the best context-free guess (the most frequent terminal at masked positions of the same
    # held-out set) is the bar: a model that learned nothing from the context cannot beat it
    from distill.evaluate import Evaluator, eval_settings
    from distill.runs import build_task

    batch = Evaluator(build_task(cfg), eval_settings(cfg), torch.device("cpu")).batch
    unigram = torch.bincount(batch.targets[batch.selected]).max().item() / int(batch.selected.sum())
    assert acc[-1] > unigram + 0.05, (acc, unigram)
    assert df["test_loss"].iloc[-1] < df["test_loss"].iloc[0] - 0.1
    for n in (3, 5, 7):
        vals = df[f"m_robust_{n}"].dropna()
        assert len(vals) == 4 and ((vals >= 0) & (vals <= 1)).all()
    probe = df.dropna(subset=["probe_level_1"])
    assert list(probe["step"]) == [0, 60]
    # the surface baseline (one-hot token and position) is computed once: one value for every run and step
    for lv in (1, 2):
        base = probe[f"probe_base_level_{lv}"]
        assert base.nunique() == 1 and 0 < base.iloc[0] <= 1
        assert rd.read_json("summary.json")["runs"][0][f"final_probe_base_level_{lv}"] == base.iloc[0]
    assert TransformerCheckpointDir(rd.ckpt).steps() == [0, 20, 40, 60]


def test_teacher_resumes_bit_exactly(tmp_path, pcfg_teacher):
    cfg, _ = pcfg_teacher
    part = tmp_path / "resumed"
    rd = train_teacher(cfg, part, progress=False)  # straight through (same thread count as the resume)
    ck = TransformerCheckpointDir(part / "ckpt")
    a = ck.load(60).model.state_dict()
    losses = rd.metrics()["test_loss"].to_numpy()
    for step in (40, 60):  # "kill" after step 20: drop later checkpoints, metrics and the summary
        ck.path(step).unlink()
    (part / "summary.json").unlink()
    (part / "metrics.parquet").unlink()
    train_teacher(cfg, part, progress=False)
    b = ck.load(60).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(RunDir(part).metrics()["test_loss"].to_numpy(), losses)


@pytest.mark.parametrize("strategy", ["ce", "oneshot", "two-shot", "progressive", "equal-split"])
def test_every_student_strategy_runs_its_schedule(tmp_path, pcfg_teacher, strategy):
    _, rd = pcfg_teacher
    cfg = PcfgStudentConfig(teacher=str(rd.path), strategy=strategy, layers=1, heads=1, steps=40, batch=16,
                            eval_every=10, eval_size=32, measure_every=0, probe_every=0, seeds=(0, 1),
                            first_checkpoint="20", stage_steps=10, warmup=0, device="cpu")
    out = train_student(cfg, tmp_path / strategy, progress=False)
    summary = out.read_json("summary.json")
    sources = [src for src, _ in summary["schedule"]]
    expect = {"ce": ["labels"], "oneshot": ["final"], "two-shot": [20, "final"], "progressive": [20, 40, "final"],
              "equal-split": [20, 40, "final"]}[strategy]
    assert sources == expect
    df = out.metrics()
    assert set(df["run"]) == {0, 1} and df["test_accuracy"].notna().all()


def test_student_of_missing_teacher_fails_before_training(tmp_path):
    (tmp_path / "t").mkdir()
    with pytest.raises(ParameterError, match="teacher"):
        train_student(PcfgStudentConfig(teacher=str(tmp_path / "t"), device="cpu"), tmp_path / "s", progress=False)


@pytest.mark.slow
def test_parity_transformer_compare_learns(tmp_path):
    t = ParityTransformerTeacherConfig(d=6, k=2, heads=4, steps=300, batch=64, lr=3e-3, eval_every=50,
                                       eval_size=256, checkpoint_every=50, probe_every=100, probe_samples=512,
                                       device="cpu")
    s = ParityTransformerStudentConfig(heads=2, steps=200, batch=64, lr=3e-3, eval_every=50, eval_size=256,
                                       seeds=(0,), device="cpu")
    rows = run_compare(ParityTransformerCompareConfig(t, s, ("ce", "two-shot")), tmp_path, progress=False)
    teacher = json.loads((tmp_path / "compare.json").read_text())["index"]["teacher"]
    assert RunDir(tmp_path / teacher).read_json("summary.json")["runs"][0]["final_accuracy"] > 0.95
    assert [r["strategy"] for r in rows] == ["ce", "two-shot"]
    assert all(0 <= r["final_accuracy"] <= 1 for r in rows)


# ------------------------------------------------------------------ command line

def _icurr(*args):
    return run_icurr(*args)


def test_cli_pcfg_stats_json_keys():
    res = _icurr("pcfg", "stats", "--grammar", TINY, "--samples", "200", "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert set(data) >= {"grammar", "samples", "length_percentiles", "levels"}
    assert list(data["length_percentiles"]) == ["25", "50", "75", "95"]


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    res = _icurr("pcfg", "teacher", "heads=0", "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "heads" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = _icurr("pcfg", "stats", "--grammar", "no-such-grammar")
    assert res.returncode == 2 and "no-such-grammar" in res.stderr


# ------------------------------------------------------------------ sweeps

def test_pcfg_sweeps_run_skip_and_collect(tmp_path):
    from infra.store import load_metrics, load_results
    from experiments.sweep import parse_sweep, run_sweep

    base = {f"teacher.{k}": v for k, v in PCFG_TINY.items() if k not in ("steps", "probe_every", "measure_every")}
    base.update({"teacher.steps": 40, "teacher.measure_every": 20, "teacher.probe_every": 0,
                 "student.layers": 1, "student.heads": 1, "student.steps": 20, "student.batch": 16,
                 "student.eval_every": 10, "student.eval_size": 32, "student.measure_every": 0,
                 "student.probe_every": 0, "student.seeds": [0, 1], "student.first_checkpoint": "20",
                 "student.warmup": 0, "student.device": "cpu", "strategies": ["ce", "equal-split"]})
    sweep = parse_sweep({"kind": "pcfg-compare", "base": base, "grid": {"student.lr": [0.003, 0.01]}})
    first = run_sweep(sweep, tmp_path, progress=False)
    assert (len(first.done), len(first.failed)) == (2, 0)
    again = run_sweep(sweep, tmp_path, progress=False)
    assert len(again.skipped) == 2 and not again.done
    res = load_results(tmp_path)
    assert set(res["kind"]) == {"pcfg-compare"} and len(res) == 4  # 2 points x 2 strategies
    assert set(res["strategy"]) == {"ce", "equal-split"}
    metrics = load_metrics(tmp_path)
    assert set(metrics["role"]) == {"teacher", "ce", "equal-split"}
    teacher = parse_sweep({"kind": "pcfg-teacher", "base": {k: v for k, v in PCFG_TINY.items() if k != "steps"}
                           | {"steps": 20, "probe_every": 0, "measure_every": 0}, "grid": {"seeds": [[0, 1]]}})
    done = run_sweep(teacher, tmp_path / "t", progress=False)
    assert len(done.done) == 1
    rows = load_results(tmp_path / "t")
    assert list(rows["seed"]) == [0, 1] and set(rows["kind"]) == {"pcfg-teacher"}


def test_cli_overrides_may_follow_options():
    res = _icurr("pcfg", "teacher", "--show-config", "--device", "cpu", "steps=700", "warmup=0")
    assert res.returncode == 0, res.stderr
    cfg = json.loads(res.stdout)
    assert (cfg["steps"], cfg["warmup"], cfg["device"]) == (700, 0, "cpu")
    res = _icurr("pcfg", "teacher", "--show-config", "--bogus")
    assert res.returncode == 2 and "--bogus" in res.stderr
