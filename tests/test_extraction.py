"""Curriculum Extraction (Gupta & Karmalkar, 2025): projections, the alignment stage of the MLP and
of the Transformer, the Figure 2 probe, and end-to-end students that learn."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from simulate import data as D
from infra import schedule as S
from simulate.config import StudentConfig, TeacherConfig
from simulate.extraction import (correlation_summary, hidden_mse, match_hidden, projected_targets, projection,
                                 projection_correlations)
from simulate.model import MLPParams, init_default
from simulate.student import train_student
from simulate.teacher import train_teacher
from theory import ParameterError

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------ projections and schedules

def test_projections_are_fixed_per_seed_and_have_the_stated_variance():
    a = projection((0, 1), 64, 400, scale=2.0, projection_seed=3)
    b = projection((0, 1), 64, 400, scale=2.0, projection_seed=3)
    assert torch.equal(a, b)                                     # same seeds: same matrices
    assert not torch.allclose(a[0], a[1])                        # another run seed: another matrix
    assert not torch.allclose(a, projection((0, 1), 64, 400, scale=2.0, projection_seed=4))
    assert not torch.allclose(a, projection((0, 1), 64, 400, scale=2.0, projection_seed=3, layer=2))
    torch.testing.assert_close(projection((1,), 64, 400, scale=2.0, projection_seed=3)[0], a[1])
    # 25600 N(0, 4/400) entries per run: the sample variance is within 5 standard errors (sqrt(2/n))
    var = a.double().pow(2).mean((1, 2)) / (4 / 400)
    assert bool(((var - 1).abs() < 5 * math.sqrt(2 / 25600)).all()), var


def test_extraction_schedule_and_its_errors():
    sched = S.extraction([1, 2], 100, 500)
    assert sched.to_list() == [("extract:1", 100), ("extract:2", 100), ("final", 300)]
    assert S.extract_layer("extract:2") == 2 and S.extract_layer("final") is None and S.extract_layer(7) is None
    with pytest.raises(ParameterError, match="steps"):
        S.extraction([1, 2], 250, 500)
    with pytest.raises(ParameterError, match="layer"):
        S.Schedule((("extract:x", 10),))


def test_student_config_checks_extraction_fields():
    with pytest.raises(ParameterError, match="extract_steps"):
        StudentConfig(strategy="extraction", steps=1000, extract_steps=1000)
    with pytest.raises(ParameterError, match="projection_scale"):
        StudentConfig(projection_scale=0)
    from distill.config import PcfgStudentConfig

    with pytest.raises(ParameterError, match="extract_layers"):
        PcfgStudentConfig(extract_layers=(3,), layers=2)
    with pytest.raises(ParameterError, match="steps"):
        PcfgStudentConfig(strategy="extraction", layers=2, steps=100, extract_steps=50)


# ------------------------------------------------------------------ the MLP alignment stage

def _teacher_and_student(R=2, m_s=16, m_t=48, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return init_default(1, m_t, d, 2, generator=g), init_default(R, m_s, d, 2, generator=g)


def test_match_hidden_step_is_sgd_on_the_alignment_loss():
    """One step of batch 4 equals autograd on 1/2 sum_i (relu(Wx+b)_i - t_i)^2 (batch mean) for W, b;
    the output layer is left alone."""
    teacher, student = _teacher_and_student()
    proj = projection((0, 1), 16, 48, projection_seed=1)
    g = torch.Generator().manual_seed(5)
    x = D.sample_cube(4, 8, generator=g).expand(2, -1, -1).contiguous()
    W = student.W.clone().requires_grad_(True)
    b = student.b.clone().requires_grad_(True)
    h = torch.relu(torch.bmm(x, W.transpose(1, 2)) + b[:, None])
    loss = 0.5 * (h - projected_targets(teacher, proj, x)).pow(2).sum(-1).mean(-1)
    gW, gb = torch.autograd.grad(loss.sum(), (W, b))
    a_before = student.a.clone()
    lr = torch.tensor([0.1, 0.3])
    match_hidden(student, lambda n: (x[:, :n], None), 1, lr, teacher=teacher, proj=proj, batch=4)
    torch.testing.assert_close(student.W, W.detach() - lr[:, None, None] * gW)
    torch.testing.assert_close(student.b, b.detach() - lr[:, None] * gb)
    assert torch.equal(student.a, a_before)


@pytest.mark.parametrize("R, m_s, steps", [(3, 24, 700), (1, 4096, 40)])  # run split; one wide run, width split
def test_native_alignment_route_equals_the_step_by_step_loop(R, m_s, steps):
    """Batch-1 alignment steps through the blocked rank-one kernel (simulate.blocked.align_block_, loss
    kind 2) follow the step-by-step loop's iterates (float64, 1e-10), over blocks, evaluation
    boundaries and a schedule; the output layer is left alone."""
    from simulate.blocked import _ckernel

    if not _ckernel.available():
        pytest.skip("no C compiler")
    g = torch.Generator().manual_seed(3)
    teacher = init_default(1, 64, 10, 2, generator=g, dtype=torch.float64)
    start = init_default(R, m_s, 10, 2, generator=g, dtype=torch.float64)
    proj = projection(tuple(range(R)), m_s, 64, projection_seed=2).to(torch.float64)
    got = {}
    for backend in ("torch", "native"):
        student = MLPParams(start.W.clone(), start.b.clone(), start.a.clone())
        gs = torch.Generator().manual_seed(4)
        stream = lambda n: (torch.stack([D.sample_cube(n, 10, generator=gs, dtype=torch.float64)  # noqa: E731
                                         for _ in range(R)]), None)
        logged = []
        match_hidden(student, stream, steps, torch.linspace(0.02, 0.05, R, dtype=torch.float64), teacher=teacher,
                     proj=proj, every=steps // 7, schedule=lambda t: 1 / (1 + t.double() / 500), backend=backend,
                     on_block=lambda step, q: logged.append((step, q.W.clone())))
        got[backend] = (student, logged)
    (ref, log_ref), (fast, log_fast) = got["torch"], got["native"]
    torch.testing.assert_close(fast.W, ref.W, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fast.b, ref.b, rtol=1e-10, atol=1e-10)
    assert torch.equal(fast.a, start.a) and not torch.equal(fast.W, start.W)
    assert [s for s, _ in log_fast] == [s for s, _ in log_ref] and len(log_ref) >= 7
    for (_, a), (_, b) in zip(log_fast, log_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    with pytest.raises(ParameterError, match="backend 'native' needs batch 1"):
        match_hidden(ref, stream, 4, 0.1, teacher=teacher, proj=proj, batch=2, backend="native")


def test_alignment_loss_decreases():
    teacher, student = _teacher_and_student(m_s=32, m_t=64, d=10)
    proj = projection((0, 1), 32, 64)
    x_eval = D.full_cube(10)
    before = hidden_mse(student, teacher, proj, x_eval)
    g = torch.Generator().manual_seed(1)
    logged = []
    stream = lambda n: (D.sample_cube(n, 10, generator=g).expand(2, -1, -1), None)  # noqa: E731
    match_hidden(student, stream, 3000, 0.05, teacher=teacher, proj=proj, every=1000,
                 on_block=lambda step, p: logged.append(hidden_mse(p, teacher, proj, x_eval)))
    assert len(logged) == 3
    after = logged[-1]
    assert bool((after < 0.5 * before).all()), (before, after)


def test_projection_correlations_match_exact_enumeration():
    teacher, _ = _teacher_and_student(d=8)
    proj = projection((0, 1), 6, 48)
    mc = projection_correlations(teacher, proj, 8, generator=torch.Generator().manual_seed(0), n_samples=40000)
    x = D.full_cube(8).double()
    t = projected_targets(MLPParams(*(v.double() for v in teacher.tensors().values())), proj.double(),
                          x.expand(2, -1, -1))
    exact = torch.einsum("rnm,nd->rmd", t - t.mean(1, keepdim=True), x) / len(x) / t.std(1, unbiased=False)[..., None]
    # a sample correlation has standard error <= 1/sqrt(n); 5 of them
    assert float((mc - exact).abs().max()) < 5 / math.sqrt(40000)
    summary = correlation_summary(exact, [0, 1])
    assert len(summary["per_coordinate_std"]) == 8 and summary["support"] == [0, 1]


# ------------------------------------------------------------------ end to end (MLP)

TEACHER = TeacherConfig(d=10, k=3, width=128, steps=4000, lr=0.05, seeds=(0,), eval_every=500,
                        checkpoint_every=1000, probe_every=0, device="cpu")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ex-teacher")
    train_teacher(TEACHER, out, progress=False)
    return out


def test_extraction_student_learns_and_the_projected_features_single_out_the_support(teacher_dir, tmp_path):
    cfg = StudentConfig(teacher=str(teacher_dir), strategy="extraction", width=64, steps=6000, extract_steps=2000,
                        lr=0.05, seeds=(0, 1), eval_every=500, probe_every=0, device="cpu")
    rd = train_student(cfg, tmp_path / "res" / "s", progress=False)
    summary = rd.read_json("summary.json")
    assert summary["schedule"] == [["extract:1", 2000], ["final", 4000]]
    assert min(r["final_accuracy"] for r in summary["runs"]) >= 0.95
    df = rd.metrics()
    for r in (0, 1):
        mse = df[df["run"] == r].set_index("step")["extract_mse"]
        assert mse[2000] < 0.5 * mse[0], mse            # the alignment stage fits the projected features
    assert set(df["source"]) == {"extract:1", "final"}
    corr = summary["projection_correlations"]
    assert corr["support"] == [0, 1, 2]
    # Figure 2's contrast: every in-support coordinate's spread over the projected units exceeds every
    # off-support one's (here 0.34-0.36 against 0.19-0.21)
    spread = corr["per_coordinate_std"]
    assert min(spread[:3]) > 1.3 * max(spread[3:]), spread
    # the report's extraction section reads these files back
    from reports.build import build_report

    sections = {s.name: s for s in build_report(tmp_path / "res", tmp_path / "report", n_boot=10)}
    sec = sections["extraction"]
    assert sec.figure == "extraction.png" and (tmp_path / "report" / "extraction.png").stat().st_size > 0
    table = pd.read_csv(tmp_path / "report" / "extraction_correlations.csv")
    np.testing.assert_allclose(table.sort_values("coordinate")["spread"], spread)
    curves = pd.read_csv(tmp_path / "report" / "extraction_alignment.csv")
    assert curves["samples"].max() == 2000 and set(curves["extract_layer"]) == {1}


def test_extraction_in_a_batch_of_strategies_equals_its_own_program(teacher_dir, tmp_path):
    from simulate.student import train_strategies

    cfg = StudentConfig(teacher=str(teacher_dir), width=32, steps=1500, extract_steps=500, eval_every=250,
                        probe_every=0, seeds=(0, 1), device="cpu")
    mixed = train_strategies(cfg, ["oneshot", "extraction"], [tmp_path / "a", tmp_path / "b"], progress=False)
    alone = train_student(dataclasses.replace(cfg, strategy="extraction"), tmp_path / "c", progress=False)
    np.testing.assert_allclose(mixed[1].metrics()["test_loss"], alone.metrics()["test_loss"], rtol=1e-5)
    assert set(mixed[0].metrics()["source"]) == {"final"}


# ------------------------------------------------------------------ Transformers

def test_block_output_equals_the_hidden_states_of_forward():
    from distill.model import Transformer, TransformerShape

    shape = TransformerShape(vocab=6, n_out=3, max_len=12, layers=3, heads=2, head_dim=4, mlp_ratio=2, causal=False)
    model = Transformer(shape, 2, generators=[torch.Generator().manual_seed(i) for i in range(2)])
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 6, (2, 5, 12), generator=g)
    valid = torch.ones_like(tokens, dtype=torch.bool)
    valid[:, :2, 9:] = False
    out = model(tokens, valid=valid, return_hidden=True)
    for layer in range(4):
        torch.testing.assert_close(model.block_output(tokens, layer, valid=valid), out.hidden[layer])


def test_teacher_layer_map():
    from distill.extraction import teacher_layer

    assert [teacher_layer(l, 2, 4) for l in (1, 2)] == [2, 4]
    assert [teacher_layer(l, 4, 4) for l in (1, 2, 3, 4)] == [1, 2, 3, 4]
    assert [teacher_layer(l, 3, 1) for l in (1, 2, 3)] == [1, 1, 1]


@pytest.mark.slow
def test_transformer_extraction_aligns_each_block_then_distills(tmp_path):
    from distill.config import PcfgStudentConfig, PcfgTeacherConfig
    from distill.runs import train_student as train_t_student
    from distill.runs import train_teacher as train_t_teacher

    tcfg = PcfgTeacherConfig(grammar="random:levels=4,seed=1", layers=2, heads=2, head_dim=8, steps=40, batch=16, warmup=5,
                             eval_every=20, eval_size=32, checkpoint_every=20, measure_every=0, probe_every=0,
                             bayes_eval=False, device="cpu")
    train_t_teacher(tcfg, tmp_path / "t", progress=False)
    scfg = PcfgStudentConfig(teacher=str(tmp_path / "t"), strategy="extraction", layers=2, heads=2, steps=60, warmup=5,
                             batch=16, extract_steps=20, eval_every=10, eval_size=32, measure_every=0, probe_every=0,
                             seeds=(0, 1), device="cpu")
    rd = train_t_student(scfg, tmp_path / "s", progress=False)
    df = rd.metrics()
    assert rd.read_json("summary.json")["schedule"] == [["extract:1", 20], ["extract:2", 20], ["final", 20]]
    for r in (0, 1):
        run = df[df["run"] == r].set_index("step")
        assert list(run["extract_layer"].loc[[10, 20, 30, 40]]) == [1, 1, 2, 2]
        assert run["extract_mse"][20] < run["extract_mse"][0]          # block 1 aligned
        assert run["extract_mse"][40] < run["extract_mse"][30]         # block 2 aligned
        assert run["train_loss"].dropna().iloc[-1] < run["train_loss"][50]  # then the KL to the teacher falls
