"""Fast tests of simulate.probes, the checkpoints (infra.checkpoints, simulate.checkpoints), infra.logs and infra.schedule."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from infra import first_checkpoint as fc
from infra import schedule as sch
from infra.checkpoints import CheckpointShapeError, NoCheckpointsError, checkpoint_name
from infra.logs import summary_from_log
from infra.version import package_version
from simulate.checkpoints import CheckpointDir
from simulate.model import MLPParams, init_default
from simulate.probes import (
    hypercube_points, model_fn, off_support_monomials, probe, probe_plan, probe_summary, summary_rows,
)
from theory._checks import ParameterError


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def scalar_fn(*outputs):
    """Model fn with C = 1 whose run r outputs ``outputs[r](x)``: (R, N, 1)."""
    return lambda x: torch.stack([f(x) for f in outputs])[..., None]


# ----------------------------------------------------------------------------- probes

def test_hypercube_points_enumerate_the_cube():
    x = hypercube_points(0, 16, 4)
    assert x.shape == (16, 4)
    assert len({tuple(r) for r in x.tolist()}) == 16
    assert x[0].tolist() == [1, 1, 1, 1] and x[1].tolist() == [-1, 1, 1, 1]


def test_exact_probe_of_x1_is_one_on_x1_and_zero_elsewhere():
    res = probe(scalar_fn(lambda x: x[:, 0]), 8, [0, 1, 2], generator=gen(0), n_off=20)
    assert res.exact and res.n_samples == 256
    expected1 = torch.zeros(1, 8, dtype=torch.float64)
    expected1[0, 0] = 1.0
    assert torch.equal(res.corr[1], expected1)
    assert torch.equal(res.corr[2], torch.zeros_like(res.corr[2]))
    assert torch.equal(res.corr[3], torch.zeros_like(res.corr[3]))
    assert torch.equal(res.se[1], torch.zeros_like(res.se[1]))
    s = probe_summary(res)
    assert s["corr1_in_mean"].item() == pytest.approx(1 / 3)
    assert s["corr1_in_min"].item() == 0.0 and s["corr1_off_max"].item() == 0.0
    assert s["corr1_gap"].item() == pytest.approx(1 / 3)


def test_exact_probe_degree2_and_degree3_batched_over_runs():
    fn = scalar_fn(lambda x: (1 + x[:, 0] * x[:, 1]) / 2, lambda x: x[:, 1] * x[:, 2] * x[:, 3])
    res = probe(fn, 9, [0, 1, 2, 3], generator=gen(1), n_off=30)
    mono2 = [tuple(r) for r in res.monomials[2].tolist()]
    mono3 = [tuple(r) for r in res.monomials[3].tolist()]
    i01, i123 = mono2.index((0, 1)), mono3.index((1, 2, 3))
    # run 0: E[(1 + x0 x1)/2 * x0 x1] = 1/2 on (0, 1), 0 on every other probed monomial
    want2 = torch.zeros(len(mono2), dtype=torch.float64)
    want2[i01] = 0.5
    assert torch.equal(res.corr[2][0], want2)
    assert torch.equal(res.corr[1][0], torch.zeros(9, dtype=torch.float64))
    assert torch.equal(res.corr[3][0], torch.zeros(len(mono3), dtype=torch.float64))
    # run 1: the degree-3 in-support monomial x1 x2 x3
    want3 = torch.zeros(len(mono3), dtype=torch.float64)
    want3[i123] = 1.0
    assert torch.equal(res.corr[3][1], want3)
    assert torch.equal(res.corr[2][1], torch.zeros(len(mono2), dtype=torch.float64))
    # in-support sets are complete: C(4,2) = 6 and C(4,3) = 4, then 30 off-support each
    assert int(res.in_support[2].sum()) == 6 and int(res.in_support[3].sum()) == 4
    assert len(mono2) == 36 and len(mono3) == 34
    s = probe_summary(res)
    assert s["corr2_in_mean"].tolist() == pytest.approx([0.5 / 6, 0.0])
    assert s["corr3_in_mean"].tolist() == pytest.approx([0.0, 0.25])
    rows = summary_rows(s)
    assert len(rows) == 2 and isinstance(rows[1]["corr3_gap"], float)


def test_two_class_probe_uses_first_class_probability():
    L = 1.0
    fn = lambda x: torch.stack([L * x[:, 0] * x[:, 1], -L * x[:, 0] * x[:, 1]], dim=-1)[None]
    res = probe(fn, 6, [0, 1], generator=gen(2), degrees=(2,), n_off=5)
    i01 = [tuple(r) for r in res.monomials[2].tolist()].index((0, 1))
    # p_1 = sigmoid(2 L x0 x1) so E[p_1 x0 x1] = tanh(L)/2
    assert res.corr[2][0, i01].item() == pytest.approx(math.tanh(L) / 2, abs=1e-6)


def hand_built_mlp() -> MLPParams:
    """A 2-run, C = 2 MLP on d = 10 with strong support features (neurons on x0..x3) plus noise."""
    g = gen(3)
    base = init_default(2, 12, 10, 2, generator=g, output_scale=3.0)
    W, b, a = base.W.clone(), base.b.clone(), base.a.clone()
    W[:, :4] = 0.0
    W[:, :4, :4] = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [-1, 1, 1, -1]])
    b[:, :4] = torch.tensor([-1.0, 0.5, -0.5, 1.0])
    a[0, :, :4] = torch.tensor([[2.0, -1, 1, 0.5], [-2.0, 1, -1, -0.5]])
    a[1, :, :4] = torch.tensor([[-1.0, 2, 0.5, 1], [1.0, -2, -0.5, -1]])
    return MLPParams(W, b, a)


def test_exact_and_monte_carlo_agree_within_5_sigma():
    params = hand_built_mlp()
    support = [0, 1, 2, 3]
    ex = probe(model_fn(params), 10, support, generator=gen(4), method="exact", n_off=25)
    mc = probe(model_fn(params), 10, support, generator=gen(4), method="mc", n_off=25,
               n_samples=40_000, chunk_size=8192)
    assert not mc.exact and mc.n_samples == 40_000
    big = 0.0
    for deg in (1, 2, 3):
        assert torch.equal(ex.monomials[deg], mc.monomials[deg])
        se = mc.se[deg]
        assert (se > 0).all() and (se < 0.01).all()
        assert ((ex.corr[deg] - mc.corr[deg]).abs() <= 5 * se).all(), deg
        big = max(big, ex.corr[deg].max().item())
    assert big > 0.05  # the comparison is not between two near-zero vectors


def test_exact_probe_does_not_depend_on_chunk_size():
    fn = model_fn(hand_built_mlp())
    a = probe(fn, 10, [0, 1, 2, 3], generator=gen(5), chunk_size=7)
    b = probe(fn, 10, [0, 1, 2, 3], generator=gen(5), chunk_size=4096)
    for deg in (1, 2, 3):
        # the float32 forward pass may round differently with the batch size; the sums are float64
        assert torch.allclose(a.corr[deg], b.corr[deg], rtol=0, atol=1e-6)


@pytest.mark.parametrize("d, method, cache", [(24, "mc", 1 << 27), (24, "mc", 0), (12, "exact", 1 << 27),
                                              (12, "exact", 0)])
def test_reused_probe_plan_gives_the_bits_of_a_fresh_probe(d, method, cache):
    """A plan drawn once (its monomials, points and, when they fit, their monomial matrices) and reused for
    several models gives each model exactly the correlations and standard errors of a fresh probe."""
    plan = probe_plan(d, [0, 3, 5, 7], generator=gen(11), method=method, n_samples=3000, chunk_size=1024,
                      cache_bytes=cache)
    assert (plan.chi is not None) == (cache > 0)
    for seed in (1, 2):
        fn = model_fn(init_default(3, 16, d, 2, generator=gen(seed)))
        fresh = probe(fn, d, [0, 3, 5, 7], generator=gen(11), method=method, n_samples=3000, chunk_size=1024)
        again = probe(fn, d, (), plan=plan)
        assert again.n_samples == fresh.n_samples == (3000 if method == "mc" else 2**d)
        for deg in (1, 2, 3):
            assert torch.equal(again.monomials[deg], fresh.monomials[deg])
            assert torch.equal(again.corr[deg], fresh.corr[deg]) and torch.equal(again.se[deg], fresh.se[deg])


@pytest.mark.parametrize("d,degree", [(30, 2), (500, 3)])  # enumeration and rejection paths
def test_off_support_sampling_without_replacement(d, degree):
    support = [0, 1, 2, 3, 4, 5]
    m = off_support_monomials(d, support, degree, 40, generator=gen(6))
    rows = [tuple(r) for r in m.tolist()]
    assert m.shape == (40, degree) and len(set(rows)) == 40
    assert all(list(r) == sorted(set(r)) and not set(r) <= set(support) for r in rows)
    assert torch.equal(m, off_support_monomials(d, support, degree, 40, generator=gen(6)))
    assert not torch.equal(m, off_support_monomials(d, support, degree, 40, generator=gen(7)))


def test_off_support_sample_larger_than_population_returns_all():
    m = off_support_monomials(5, [0, 1, 2], 2, 1000, generator=gen(0))
    assert len(m) == math.comb(5, 2) - math.comb(3, 2)


def test_probe_argument_errors():
    fn = scalar_fn(lambda x: x[:, 0])
    with pytest.raises(ParameterError, match="exact"):
        probe(fn, 30, [0, 1], generator=gen(0), method="exact")
    with pytest.raises(ParameterError, match="support"):
        probe(fn, 8, [0, 9], generator=gen(0))
    with pytest.raises(ParameterError, match="classes"):
        probe(lambda x: torch.zeros(1, x.shape[0], 3), 6, [0], generator=gen(0))


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    params = init_default(3, 7, 11, 2, generator=gen(8))
    params = MLPParams(params.W, params.b.double(), params.a)  # dtypes are kept per tensor
    config = {"lr": 5e-3, "width": 7, "seeds": [0, 1, 2], "teacher": {"tau": 1e-4}}
    ck = CheckpointDir(tmp_path / "ckpt")
    path = ck.save(params, step=1000, samples=32_000, config=config)
    assert path.name == "step_000001000.safetensors" == checkpoint_name(1000)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left
    got = ck.load(1000)
    for name in ("W", "b", "a"):
        want, have = params.tensors()[name], got.params.tensors()[name]
        assert have.dtype == want.dtype and torch.equal(have, want)
    assert (got.step, got.samples, got.config) == (1000, 32_000, config)
    assert got.version == package_version() != "unknown"
    assert got.metadata["width"] == "7" and got.metadata["runs"] == "3"


def test_checkpoint_dir_steps_latest_and_stray_files(tmp_path):
    params = init_default(1, 4, 5, 2, generator=gen(9))
    ck = CheckpointDir(tmp_path)
    for step in (2000, 0, 1000):
        ck.save(params, step=step, samples=step * 4, config={"step": step})
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".step_000003000.safetensors.abc.tmp").write_text("partial")
    assert ck.steps() == [0, 1000, 2000] and ck.latest() == 2000 and len(ck) == 3
    assert ck.load("latest").step == 2000 and ck.load("final").config == {"step": 2000}
    with pytest.raises(NoCheckpointsError, match="nearest available: 1000, 2000"):
        ck.load(1500)


def test_checkpoint_shape_mismatch_names_the_field(tmp_path):
    CheckpointDir(tmp_path).save(init_default(1, 100, 8, 2, generator=gen(10)), step=5, samples=5)
    with pytest.raises(CheckpointShapeError) as err:
        CheckpointDir(tmp_path, d=8, width=1000, classes=2).load(5)
    msg = str(err.value)
    assert msg.startswith("checkpoint of another shape: width 100 != expected 1000") and "\n" not in msg
    with pytest.raises(CheckpointShapeError, match="d 8 != expected 9"):
        CheckpointDir(tmp_path, d=9).load()
    assert CheckpointDir(tmp_path, d=8, width=100, classes=2, runs=1).load().step == 5


def test_empty_or_missing_checkpoint_dir(tmp_path):
    with pytest.raises(NoCheckpointsError, match="holds no step_"):
        CheckpointDir(tmp_path).load()
    with pytest.raises(NoCheckpointsError, match="does not exist"):
        CheckpointDir(tmp_path / "nope").latest()
    assert CheckpointDir(tmp_path / "nope").steps() == []


# ----------------------------------------------------------------------------- schedules

def test_schedule_constructors():
    assert sch.cross_entropy(1000).to_list() == [("labels", 1000)]
    assert sch.one_shot(1000).to_list() == [("final", 1000)]
    assert sch.progressive(4, 100, 1000, teacher_steps=2000).to_list() == [
        (500, 100), (1000, 100), (1500, 100), ("final", 700)]
    assert sch.progressive(3, 50, 400, teacher_steps=1000, spacing=100).to_list() == [
        (100, 50), (200, 50), ("final", 300)]
    assert sch.progressive(1, 10, 30, teacher_steps=100).to_list() == [("final", 30)]
    assert sch.two_shot(10_200, 1000, 5000).to_list() == [(10_200, 1000), ("final", 4000)]
    assert sch.equal_split([100, 200, "final"], 10).to_list() == [(100, 3), (200, 3), ("final", 4)]
    with pytest.raises(ParameterError, match="total_steps"):
        sch.progressive(4, 100, 399, teacher_steps=2000)
    with pytest.raises(ParameterError, match="spacing"):
        sch.progressive(3, 10, 100, teacher_steps=100, spacing=50)


def test_kappa_equal_split_follows_appendix_d2():
    # PCFG setup of D.2: teacher T0 = 8000 steps, checkpoints at multiples of 1000, kappa = 1/2
    cks = sch.checkpoint_multiples(1000, 8, teacher_steps=8000)
    assert cks == [1000, 2000, 3000, 4000, 5000, 6000, 7000, "final"]
    assert sch.kappa_equal_split(cks, 2000, teacher_steps=8000).to_list() == [
        (1000, 500), (2000, 500), (3000, 500), (4000, 500)]  # later checkpoints do not fit
    assert sch.kappa_equal_split(cks, 16_000, teacher_steps=8000).to_list() == [
        (1000, 500), (2000, 500), (3000, 500), (4000, 500), (5000, 500), (6000, 500), (7000, 500),
        ("final", 12_500)]
    assert sch.kappa_equal_split([1000, 2000, 3000], 1000, teacher_steps=8000, kappa=0.3).to_list() == [
        (1000, 800), (2000, 200)]
    assert sch.kappa_equal_split([100, 200], 100, teacher_steps=100, kappa=1).to_list() == [
        (100, 50), (200, 50)]
    with pytest.raises(ParameterError, match="kappa"):
        sch.kappa_equal_split(cks, 100, teacher_steps=8000, kappa=0)


def test_schedule_helpers_and_json():
    s = sch.progressive(3, 10, 50, teacher_steps=300)
    assert s.to_list() == [(100, 10), (200, 10), ("final", 30)] and s.total_steps == 50
    assert [s.source_at(t) for t in (0, 9, 10, 19, 20, 49)] == [100, 100, 200, 200, "final", "final"]
    assert s.checkpoint_steps() == [100, 200]
    assert sch.Schedule.from_json(s.to_json()) == s


def test_snap_steps():
    avail = [0, 1000, 1500, 2000]
    assert sch.snap_steps([1040, 1460, 2000, 1250], avail) == [1000, 1500, 2000, 1000]
    with pytest.raises(ParameterError, match="outside"):
        sch.snap_steps([2500], avail)
    with pytest.raises(ParameterError, match="tolerance 10"):
        sch.snap_steps([1040], avail, tolerance=10)
    with pytest.raises(ParameterError, match="no teacher checkpoint"):
        sch.snap_steps([10], [])
    snapped = sch.progressive(3, 10, 50, teacher_steps=3000).snap(avail)
    assert snapped.to_list() == [(1000, 10), (2000, 10), ("final", 30)]


def sigmoid_log(center: int, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    steps = np.arange(0, 20_001, 100)
    acc = 0.5 + 0.5 / (1 + np.exp(-(steps - center) / 300))
    acc = np.clip(acc + noise * np.random.default_rng(seed).standard_normal(len(steps)), 0, 1)
    return pd.DataFrame({"step": steps, "test_accuracy": acc})


def test_choose_intermediate_accuracy_rule():
    got = fc.choose_intermediate(sigmoid_log(10_200))
    assert (got.step, got.rule) == (10_200, "accuracy")
    # max slope of the sigmoid, 0.5 / (4 * 300) per step, lowered a few % by the smoothing
    assert 0.85 * 0.5 / 1200 < got.value < 0.5 / 1200
    noisy = fc.choose_intermediate(sigmoid_log(10_200, noise=0.01), rule="accuracy")
    assert abs(noisy.step - 10_200) <= 200
    picked = fc.choose_intermediate(sigmoid_log(10_200).to_dict("records"), available=[9000, 10_000, 11_000])
    assert picked.step == 10_000


def test_choose_intermediate_correlation_rule():
    log = sigmoid_log(10_200)
    steps = log["step"].to_numpy()
    log["corr1_in_mean"] = 0.02 + 0.2 * np.exp(-((steps - 9_700) / 400.0) ** 2)
    log["corr1_off_max"] = 0.03 + 0.01 * np.exp(-((steps - 10_500) / 400.0) ** 2)
    got = fc.choose_intermediate(log)
    assert (got.step, got.rule) == (9_700, "correlation_gap")
    assert got.value == pytest.approx(0.22 - 0.03 - 0.01 * math.exp(-(800 / 400) ** 2))
    assert fc.choose_intermediate(log, rule="accuracy").step == 10_200
    with pytest.raises(ParameterError, match="correlation_gap"):
        fc.choose_intermediate(sigmoid_log(10_200), rule="correlation_gap")


def test_summary_from_log_thresholds():
    log = [{"step": s, "test_accuracy": a} for s, a in
           zip([0, 100, 200, 300, 400], [0.5, 0.6, 0.9, 0.96, 0.97])]
    out = summary_from_log(log, batch_size=32)
    assert out["steps_to_60"] == 100 and out["samples_to_60"] == 3200
    assert out["steps_to_95"] == 300 and out["samples_to_95"] == 9600
    assert out["steps_to_99"] is None and out["samples_to_99"] is None
    assert out["final_accuracy"] == 0.97 and out["final_step"] == 400
    assert out["corr1_gap_peak"] is None and out["corr1_gap_peak_step"] is None
    df = pd.DataFrame(log)
    df["corr1_in_mean"] = [0.0, 0.1, 0.3, 0.2, 0.1]
    df["corr1_off_max"] = [0.0, 0.05, 0.05, 0.05, 0.05]
    out = summary_from_log(df)
    assert out["samples_to_60"] is None  # no batch size and no samples column
    assert out["corr1_gap_peak"] == pytest.approx(0.25) and out["corr1_gap_peak_step"] == 200
    two = pd.concat([df.assign(run=0), df.assign(run=1, test_accuracy=0.5)])
    with pytest.raises(ParameterError, match="run="):
        summary_from_log(two)
    assert summary_from_log(two, run=1)["steps_to_60"] is None
