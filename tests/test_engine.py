"""Tests of the simulation engine: data, losses, schedules, SGD paths and Algorithm 1."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simulate import blocked, data, losses, sgd
from simulate.model import MLPParams, forward, init_default, init_symmetric
from theory._checks import ParameterError
from theory.fourier import cube

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- model / data
def test_symmetric_init_outputs_exactly_zero():
    p = init_symmetric(3, 64, 20, 4, classes=2, generator=gen(1))
    x = data.sample_cube(100, 20, generator=gen(2))
    assert torch.equal(forward(p, x), torch.zeros(3, 100, 2))
    assert set(p.b.unique().tolist()) <= {-1 + j / 4 for j in range(1, 8)}


def test_random_support_without_replacement():
    g = gen(3)
    seen = set()
    for _ in range(200):
        s = data.random_support(8, 5, generator=g)
        assert s.shape == (5,) and s.unique().numel() == 5
        assert int(s.min()) >= 0 and int(s.max()) < 8 and torch.equal(s, s.sort().values)
        seen.add(tuple(s.tolist()))
    assert len(seen) > 20  # not stuck on one subset
    assert torch.equal(data.random_support(50, 6, generator=gen(4)), data.random_support(50, 6, generator=gen(4)))
    assert data.random_support(6, 6, generator=g).tolist() == list(range(6))
    assert data.first_support(3).tolist() == [0, 1, 2]
    with pytest.raises(ParameterError, match="k"):
        data.random_support(5, 6, generator=g)


@pytest.mark.parametrize("R, m, shared", [(1, 2000, True), (1, 2000, False), (5, 300, False), (30, 64, True),
                                           (3, 48, False), (2, 50, False), (3, 99, True)])
def test_forward_in_cache_sized_pieces_is_bit_identical(R, m, shared):
    """Without autograd the CPU forward pass runs in pieces of cpu_rows rows (a multiple of 64); the
    outputs are the bits of one matrix product over all rows, including a remainder piece."""
    from simulate.model import _forward, cpu_rows

    p = init_default(R, m, 24, 2, generator=gen(3))
    n = 5 * cpu_rows(R, m) + 37  # pieces and a remainder
    x = data.sample_cube(n, 24, generator=gen(4))
    if not shared:
        x = torch.stack([data.sample_cube(n, 24, generator=gen(5 + r)) for r in range(R)])
    assert cpu_rows(R, m) % 64 == 0 and n > cpu_rows(R, m)
    with torch.no_grad():
        assert torch.equal(forward(p, x), _forward(p, x))
    p.W.requires_grad_(True)  # autograd: one piece, differentiable
    out = forward(p, x)
    assert out.requires_grad and torch.allclose(out.detach(), _forward(MLPParams(p.W.detach(), p.b, p.a), x))


def test_parity_labels_products_and_class_mapping():
    S = torch.tensor([1, 4, 7])
    x, y, label = data.sparse_parity_batch(500, 10, S, generator=gen(5), runs=2)
    assert x.shape == (2, 500, 10) and set(x.unique().tolist()) == {-1.0, 1.0}
    direct = x[..., 1] * x[..., 4] * x[..., 7]
    assert torch.equal(y, direct)
    # Definition 3.1: paper class 1 (here 0) iff prod > 0, class 2 (here 1) otherwise
    assert torch.equal(label, (direct < 0).long())
    assert torch.equal(losses.labels_to_pm1(label), direct)
    assert 0.4 < label.float().mean() < 0.6


def test_sample_cube_uniform_and_independent_coordinates():
    x = data.sample_cube(100_000, 130, generator=gen(23))  # three 62-bit words per point
    assert set(x.unique().tolist()) == {-1.0, 1.0}
    assert x.mean(0).abs().max() < 0.02  # 6 sigma
    corr = x.T @ x / x.shape[0] - torch.eye(130)
    assert corr.abs().max() < 0.025
    assert torch.equal(data.sample_cube(7, 130, generator=gen(24)), data.sample_cube(7, 130, generator=gen(24)))


def test_full_cube_matches_theory_cube():
    X = data.full_cube(6)
    assert X.shape == (64, 6)
    assert np.array_equal(X.numpy().astype(np.int8), cube(6))
    assert torch.unique(X, dim=0).shape[0] == 64
    with pytest.raises(ParameterError, match="d"):
        data.full_cube(21)


def test_heldout_set_fixed_and_separate_from_training_stream():
    S = data.first_support(6)
    a = data.heldout_parity(100, S)
    b = data.heldout_parity(100, S)
    assert a[0].shape == (4096, 100) and all(torch.equal(u, v) for u, v in zip(a, b))
    g = gen(0)
    train_x = data.sample_cube(4096, 100, generator=g)
    assert not torch.equal(train_x, a[0])
    assert not torch.equal(data.heldout_parity(100, S, seed=1)[0], a[0])


def _tree_label_direct(xrow, supports, depth):
    node, label = 0, 0
    for _ in range(depth):
        prod = 1.0
        for i in supports[node]:
            prod *= float(xrow[i])
        bit = 1 if prod > 0 else 0  # right child on +1 (Figure 16)
        label = 2 * label + bit
        node = 2 * node + 1 + bit
    return label


@pytest.mark.parametrize("depth,k,d,random", [(3, 5, 100, False), (2, 3, 12, True), (1, 4, 9, False)])
def test_hierarchical_labels_against_direct_evaluation(depth, k, d, random):
    sup = data.hierarchical_supports(depth, k, d, generator=gen(6) if random else None)
    assert sup.shape == (2**depth - 1, k) and sup.unique().numel() == sup.numel()  # disjoint blocks
    x, label = data.hierarchical_batch(300, d, sup, generator=gen(7))
    want = [_tree_label_direct(x[n].tolist(), sup.tolist(), depth) for n in range(300)]
    assert label.tolist() == want
    assert set(want) == set(range(2**depth))


def test_hierarchical_paper_layout():
    sup = data.hierarchical_supports(3, 5, 100)
    assert sup[0].tolist() == [0, 1, 2, 3, 4] and sup[1].tolist() == [5, 6, 7, 8, 9]
    # Figure 17: classes 0/1 are decided by x1..x5, x6..x10, x16..x20 (root, node 1, node 3)
    x = data.sample_cube(2000, 100, generator=gen(8))
    lab = data.hierarchical_labels(x, sup)
    t = [x[:, s].prod(1) for s in sup]
    assert torch.equal(lab <= 1, (t[0] < 0) & (t[1] < 0))
    assert torch.equal(lab[lab <= 1], (t[3][lab <= 1] > 0).long())
    assert torch.equal(lab >= 4, t[0] > 0)  # c(i, 1) = 1 iff i >= 2^(D-1)
    # depth 1 is a parity, with classes swapped relative to Definition 3.1
    sup1 = data.hierarchical_supports(1, 3, 10)
    assert torch.equal(data.hierarchical_labels(x[:, :10], sup1), 1 - data.parity_labels(x[:, :10], sup1[0])[1])


# --------------------------------------------------------------------------- losses / schedules
def test_losses_against_torch():
    g = gen(9)
    f = torch.randn(3, 7, 2, generator=g, dtype=F64)
    ft = torch.randn(7, 2, generator=g, dtype=F64) * 3
    lab = torch.randint(0, 2, (7,), generator=g)
    ref_ce = torch.stack([torch.nn.functional.cross_entropy(f[r], lab) for r in range(3)])
    assert torch.allclose(losses.cross_entropy(f, lab), ref_ce)
    for tau in (1.0, 0.3):
        q = torch.softmax(ft / tau, -1)
        ref = torch.stack([torch.nn.functional.kl_div(torch.log_softmax(f[r], -1), q, reduction="batchmean")
                           for r in range(3)])
        assert torch.allclose(losses.distill_kl(f, ft, tau), ref)
    # tau = 0: the teacher's argmax label, i.e. CE on argmax (KL to a one-hot = CE)
    assert torch.allclose(losses.distill_kl(f, ft, 0.0), losses.cross_entropy(f, ft.argmax(-1)))
    mix = losses.mixed_loss(f, lab, ft, 0.25, 0.5)
    assert torch.allclose(mix, 0.25 * losses.cross_entropy(f, lab) + 0.75 * losses.distill_kl(f, ft, 0.5))
    y = losses.labels_to_pm1(lab, F64)
    assert torch.allclose(losses.hinge_loss(f[..., :1], y), torch.clamp(1 - y * f[..., 0], min=0).mean(-1))
    assert torch.allclose(losses.student_hinge_loss(f[..., :1], ft[:, :1]),
                          torch.clamp(1 - f[..., 0] * ft[:, 0], min=0).mean(-1))
    with pytest.raises(ParameterError, match="C = 1"):
        losses.hinge_loss(f, y)


def test_output_gradients_against_autograd():
    g = gen(10)
    f = torch.randn(2, 5, 3, generator=g, dtype=F64, requires_grad=True)
    q = losses.soft_targets(3, labels=torch.randint(0, 3, (5,), generator=g),
                            teacher_logits=torch.randn(5, 3, generator=g, dtype=F64), alpha=0.4, tau=0.7)
    assert torch.allclose(q.sum(-1), torch.ones(5, dtype=F64))
    (grad,) = torch.autograd.grad(losses.soft_cross_entropy(f, q, "none").sum(), f)
    assert torch.allclose(grad, losses.soft_ce_grad(f.detach(), q))
    h = torch.randn(2, 5, generator=g, dtype=F64, requires_grad=True)
    t = torch.randn(5, generator=g, dtype=F64)
    (gh,) = torch.autograd.grad(torch.clamp(1 - t * h, min=0).sum(), h)
    assert torch.allclose(gh, losses.hinge_grad(h.detach(), t))


def test_schedules_known_values():
    steps = torch.tensor([0, 5, 10, 60, 110, 200])
    cos = losses.warmup_cosine(steps, warmup=10, total=110)
    assert torch.allclose(cos, torch.tensor([0.0, 0.5, 1.0, 0.5, 0.0, 0.0], dtype=F64), atol=1e-12)
    lin = losses.warmup_linear(steps, warmup=10, total=110, min_ratio=0.2)
    assert torch.allclose(lin, torch.tensor([0.0, 0.5, 1.0, 0.6, 0.2, 0.2], dtype=F64), atol=1e-12)
    assert torch.equal(losses.constant_lr(steps), torch.ones(6, dtype=F64))
    assert math.isclose(float(losses.lr_schedule("cosine", warmup=0, total=100)(torch.tensor(25))),
                        0.5 * (1 + math.cos(math.pi / 4)))
    with pytest.raises(ParameterError, match="warmup"):
        losses.warmup_cosine(steps, warmup=200, total=100)
    with pytest.raises(ParameterError, match="kind"):
        losses.lr_schedule("step")


# --------------------------------------------------------------------------- SGD paths
CASES = [  # loss, classes, train, weight_decay_W, weight_decay_a
    ("ce", 2, "Wba", 0.0, 0.0),
    ("kl", 2, "Wba", 0.0, 0.0),
    ("mix", 2, "Wa", 0.1, 0.2),
    ("hinge", 1, "Wba", 0.0, 0.0),
    ("hinge_distill", 1, "W", 0.3, 0.0),
    ("kl", 3, "a", 0.0, 0.2),
]


def _problem(loss, C, R, shared, T, seed=11, d=12, m=24):
    g = gen(seed)
    p = init_default(R, m, d, C, generator=g, dtype=F64, output_scale=2.0)
    teacher = init_default(1, 40, d, C, generator=g, dtype=F64, output_scale=4.0)
    x = data.sample_cube(T, d, generator=g, runs=None if shared else R, dtype=F64)
    label = data.parity_labels(x, torch.tensor([0, 3]))[1]
    if C == 3:
        label = label + (x[..., 5] > 0).long()
    tl = forward(teacher, x.reshape(-1, d))[0].reshape(*x.shape[:-1], C)
    lr = torch.tensor([0.2, 0.05, 0.1], dtype=F64)[:R]
    return p, x, label, tl, lr


def _reference_run(p, x, label, tl, lr, loss, train, wdW, wda, tau=0.5, alpha=0.3):
    outs = []
    for t in range(x.shape[-2]):
        sl = (slice(None), slice(t, t + 1)) if x.dim() == 3 else (slice(t, t + 1),)
        p, f = sgd.reference_step(p, x[sl], lr, loss=loss, labels=label[sl], teacher_logits=tl[sl], alpha=alpha,
                                  tau=tau, train=train, weight_decay_W=wdW, weight_decay_a=wda)
        outs.append(f)
    return p, torch.cat(outs, 1)


def _assert_params_close(p, q, tol=1e-10):
    for k in ("W", "b", "a"):
        assert torch.allclose(getattr(p, k), getattr(q, k), rtol=tol, atol=tol), k


@pytest.mark.parametrize("backend", ["native", "torch", "graph"])
@pytest.mark.parametrize("R,shared", [(1, True), (3, True), (3, False)])
@pytest.mark.parametrize("loss,C,train,wdW,wda", CASES)
def test_blocked_equals_autograd_reference(backend, R, shared, loss, C, train, wdW, wda):
    if backend == "native" and not blocked._ckernel.available():
        pytest.skip("no C compiler")
    T = 37
    p, x, label, tl, lr = _problem(loss, C, R, shared, T)
    ref, ref_out = _reference_run(p.clone(), x, label, tl, lr, loss, train, wdW, wda)
    tgt = sgd.make_targets(loss, C, labels=label, teacher_logits=tl, alpha=0.3, tau=0.5, dtype=F64)
    fast = p.clone()
    out = blocked.block_sgd_(fast, x, tgt, lr[:, None].expand(R, T), loss_kind=sgd.loss_kind(loss), train=train,
                             weight_decay_W=wdW, weight_decay_a=wda, backend=backend)
    _assert_params_close(fast, ref)
    assert torch.allclose(out, ref_out, rtol=1e-10, atol=1e-10)
    for k in "Wba":  # frozen tensors untouched, trained ones moved
        assert torch.equal(getattr(fast, k), getattr(p, k)) == (k not in train)


@pytest.mark.parametrize("shared", [True, False])
def test_graph_backend_replays_blocks_with_the_torch_backend_bits(shared):
    """backend="graph" (simulate.blocked_graph): blocks captured once per shape and replayed from static
    buffers; on the CPU the same body runs eagerly, and the iterates, outputs and evaluations are the
    torch backend's bits through segments of several block shapes (evaluations every 50 steps, T = 16)."""
    from simulate.blocked_graph import graphed_blocks

    d, S = 12, torch.tensor([2, 5, 7])
    runs = None if shared else 3
    graphed_blocks().clear()
    got = {}
    for backend in ("torch", "graph"):
        p = init_default(3, 20, d, 2, generator=gen(31))
        logged = []
        blocked.train_online(p, _parity_sampler(gen(32), d, S, runs, dtype=torch.float32), 230,
                             torch.tensor([0.05, 0.1, 0.2]), loss="ce", block_size=16, every=50, backend=backend,
                             on_block=lambda step, q: logged.append((step, q.W.clone(), q.a.clone())))
        got[backend] = (p, logged)
    (p1, log1), (p2, log2) = got["torch"], got["graph"]
    assert all(torch.equal(getattr(p1, k), getattr(p2, k)) for k in "Wba")
    assert [s for s, *_ in log1] == [s for s, *_ in log2] == [50, 100, 150, 200]
    assert all(torch.equal(a[1], b[1]) and torch.equal(a[2], b[2]) for a, b in zip(log1, log2))
    assert 2 <= len(graphed_blocks()) <= 4  # one entry per block shape (16 and the segments' remainders)
    other = init_default(3, 20, d, 2, generator=gen(33))  # the next program: the previous graphs are dropped
    blocked.train_online(other, _parity_sampler(gen(34), d, S, runs, dtype=torch.float32), 16,
                         torch.tensor([0.05, 0.1, 0.2]), loss="ce", block_size=16, backend="graph")
    assert len(graphed_blocks()) == 1
    graphed_blocks().clear()


def test_config_backend_field_reaches_the_block(monkeypatch):
    """The configs' backend field (the block backends of simulate.blocked, listed without torch in
    simulate.config) is what runner.train hands to train_online; at "auto" it leaves every hash alone."""
    from infra.config import config_hash
    from simulate import runner
    from simulate.config import BLOCK_BACKENDS, TeacherConfig

    assert BLOCK_BACKENDS == blocked.BACKENDS
    seen = []
    monkeypatch.setattr(runner, "train_online", lambda *a, **kw: seen.append(kw["backend"]))
    for name in ("auto", "torch", "graph"):
        cfg = TeacherConfig(d=8, k=2, width=16, steps=100, eval_every=50, checkpoint_every=100, backend=name)
        runner.train(init_default(1, 16, 8, 2, generator=gen(0)), None, 10, runner.sgd_settings(cfg), loss="ce")
    assert seen == ["auto", "torch", "graph"]
    assert config_hash(TeacherConfig()) == "ef8f27bb023e"  # the hash before the field existed


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (benchmarks/gpu_checks.sh)")
@pytest.mark.parametrize("backend", ["torch", "graph"])
def test_cuda_backends_equal_the_cpu_reference(backend):
    """On a GPU: the torch block and its CUDA-graph replay follow the float64 CPU iterates of the native
    kernel (1e-9), and the graph replays the torch backend's bits."""
    d, S = 12, torch.tensor([2, 5, 7])
    finals = {}
    for dev, name in (("cpu", "auto"), ("cuda", "torch"), ("cuda", backend)):
        p = init_default(3, 40, d, 2, generator=gen(41), dtype=F64)
        p = MLPParams(p.W.to(dev), p.b.to(dev), p.a.to(dev))
        g = gen(42)

        def sampler(n):
            x, _, label = data.sparse_parity_batch(n, d, S, generator=g, runs=3, dtype=F64)
            return x.to(dev), label.to(dev)
        blocked.train_online(p, sampler, 300, torch.tensor([0.05, 0.1, 0.2]), loss="ce", block_size=32, every=100,
                             backend=name)
        finals[dev, name] = p
    ref, eager, out = finals["cpu", "auto"], finals["cuda", "torch"], finals["cuda", backend]
    for k in "Wba":
        assert torch.allclose(getattr(out, k).cpu(), getattr(ref, k), rtol=1e-9, atol=1e-9), k
        assert torch.equal(getattr(out, k), getattr(eager, k)), k


@pytest.mark.parametrize("R,m,T", [(1, 4096, 16), (8, 2048, 8)])
def test_native_threaded_paths_equal_reference(R, m, T):
    """Width split over threads (one wide run) and run split (many runs) give the same iterates."""
    if not blocked._ckernel.available():
        pytest.skip("no C compiler")
    g = gen(22)
    p = init_default(R, m, 12, 2, generator=g, dtype=F64)
    x = data.sample_cube(T, 12, generator=g, dtype=F64)
    label = data.parity_labels(x, torch.tensor([0, 3]))[1]
    lr = torch.linspace(0.05, 0.2, R, dtype=F64)
    ref, ref_out = _reference_run(p.clone(), x, label, label, lr, "ce", "Wba", 0.1, 0.0)
    fast = p.clone()
    tgt = sgd.make_targets("ce", 2, labels=label, dtype=F64)
    out = blocked.block_sgd_(fast, x, tgt, lr[:, None].expand(R, T), loss_kind=1, weight_decay_W=0.1, threads=2,
                             backend="native")
    _assert_params_close(fast, ref)
    assert torch.allclose(out, ref_out, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("loss,C,train,wdW,wda", CASES)
def test_minibatch_sgd_step_equals_autograd(loss, C, train, wdW, wda):
    p, x, label, tl, lr = _problem(loss, C, 3, False, 6)
    ref, ref_out = sgd.reference_step(p.clone(), x, lr, loss=loss, labels=label, teacher_logits=tl, alpha=0.3,
                                      tau=0.5, train=train, weight_decay_W=wdW, weight_decay_a=wda)
    tgt = sgd.make_targets(loss, C, labels=label, teacher_logits=tl, alpha=0.3, tau=0.5, dtype=F64)
    for rows in (None, 4):  # whole batch, and micro-batches of 4 + 2 rows
        fast = p.clone()
        out = sgd.sgd_step(fast, x, tgt, lr, loss_kind=sgd.loss_kind(loss), train=train, weight_decay_W=wdW,
                           weight_decay_a=wda, max_rows=rows)
        _assert_params_close(fast, ref)
        assert torch.allclose(out, ref_out)


def _parity_sampler(g, d, S, runs=None, dtype=F64):
    def sampler(n):
        x, _, label = data.sparse_parity_batch(n, d, S, generator=g, runs=runs, dtype=dtype)
        return x, label
    return sampler


@pytest.mark.parametrize("runs_data", [None, 2])
def test_train_online_equals_train_sgd_with_teacher_schedule_and_callback(runs_data):
    d, S = 12, torch.tensor([2, 5, 7])
    p0 = init_default(2, 20, d, 2, generator=gen(12), dtype=F64)
    teacher = init_default(1, 30, d, 2, generator=gen(13), dtype=F64, output_scale=5.0)
    sched = losses.lr_schedule("cosine", warmup=30, total=300)
    kw = dict(loss="mix", teacher=teacher, alpha=0.5, tau=0.1, schedule=sched, start_step=10, every=100, chunk=64)
    lr = torch.tensor([0.1, 0.3], dtype=F64)
    calls_a, calls_b = [], []
    a = blocked.train_online(p0.clone(), _parity_sampler(gen(14), d, S, runs_data), 250, lr, block_size=16,
                             on_block=lambda s, p: calls_a.append((s, p.W.sum().item())), **kw)
    b = sgd.train_sgd(p0.clone(), _parity_sampler(gen(14), d, S, runs_data), 250, lr,
                      on_block=lambda s, p: calls_b.append((s, p.W.sum().item())), **kw)
    _assert_params_close(a, b, 1e-9)
    assert [s for s, _ in calls_a] == [100, 200] == [s for s, _ in calls_b]
    assert np.allclose([w for _, w in calls_a], [w for _, w in calls_b])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch-internal, from torch.compile
def test_compile_backend_padding_matches_native():
    if not hasattr(torch, "compile"):
        pytest.skip("no torch.compile")
    p, x, label, tl, lr = _problem("ce", 2, 2, True, 5)
    ref = p.clone()
    sampler = lambda n: (x[:n], label[:n])  # noqa: E731
    blocked.train_online(ref, sampler, 5, lr, loss="ce", backend="torch", chunk=5)
    try:
        got = blocked.train_online(p.clone(), sampler, 5, lr, loss="ce", backend="compile", block_size=8, chunk=5)
    except Exception as exc:  # torch.compile needs a working toolchain; the fallback is the torch backend
        pytest.skip(f"torch.compile unavailable: {type(exc).__name__}")
    _assert_params_close(got, ref)


def test_two_stage_training_algorithm1():
    d, S = 10, torch.tensor([0, 1])
    p0 = init_symmetric(2, 16, d, 2, generator=gen(15), dtype=F64)
    kw = dict(T1=3, T2=40, B1=50, B2=1, eta1=torch.tensor([0.5, 1.0]), eta2=0.05, lambda1=0.4, loss="hinge")
    out = sgd.two_stage_train(p0.clone(), _parity_sampler(gen(16), d, S), **kw)
    assert torch.equal(out.b, p0.b)  # biases frozen throughout
    assert not torch.equal(out.W, p0.W) and not torch.equal(out.a, p0.a)
    # same as the two stages done by hand (stage 1 batch 50 on W with decay, stage 2 online on a)
    man = p0.clone()
    smp = _parity_sampler(gen(16), d, S)
    sgd.train_sgd(man, smp, 3, kw["eta1"], batch_size=50, loss="hinge", train="W", weight_decay_W=0.4)
    W1 = man.W.clone()
    sgd.train_sgd(man, smp, 40, 0.05, loss="hinge", train="a", start_step=3)
    _assert_params_close(out, man)
    assert torch.equal(out.W, W1)  # stage 2 leaves W alone
    # the student form: hinge to the teacher's output
    student = init_symmetric(2, 8, d, 2, generator=gen(17), dtype=F64)
    sgd.two_stage_train(student, _parity_sampler(gen(18), d, S), T1=2, T2=5, B1=20, B2=1, eta1=0.5, eta2=0.05,
                        loss="hinge_distill", teacher=out.select(0))


def test_bad_arguments_raise_parameter_error():
    p = init_default(2, 8, 6, 2, generator=gen(19))
    smp = _parity_sampler(gen(20), 6, torch.tensor([0, 1]), dtype=torch.float32)
    with pytest.raises(ParameterError, match="loss"):
        blocked.train_online(p, smp, 10, 0.1, loss="mse")
    with pytest.raises(ParameterError, match="train"):
        blocked.train_online(p, smp, 10, 0.1, train="Wx")
    with pytest.raises(ParameterError, match="lr"):
        blocked.train_online(p, smp, 10, torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(ParameterError, match="weight_decay_W"):
        blocked.train_online(p, smp, 10, 0.5, weight_decay_W=1.0)
    with pytest.raises(ParameterError, match="C = 1"):
        blocked.train_online(p, smp, 10, 0.1, loss="hinge")
    with pytest.raises(ParameterError, match="teacher"):
        sgd.train_sgd(p, smp, 10, 0.1, loss="kl")
    with pytest.raises(ParameterError, match="backend"):
        blocked.train_online(p, smp, 10, 0.1, backend="cuda")
    with pytest.raises(ParameterError, match="steps"):
        blocked.train_online(p, smp, -1, 0.1)


# --------------------------------------------------------------------------- learning
@pytest.mark.parametrize("loss,C", [("ce", 2), ("hinge", 1)])
def test_online_sgd_learns_sparse_parity(loss, C):
    d, k = 30, 3
    g = gen(21)
    S = data.random_support(d, k, generator=g)
    p = init_default(1, 128, d, C, generator=g)
    X, _, label = data.heldout_parity(d, S)

    def accuracy(params: MLPParams) -> float:
        f = forward(params, X)[0]
        pred = f.argmax(-1) if C == 2 else (f[:, 0] < 0).long()
        return (pred == label).float().mean().item()

    assert accuracy(p) < 0.6
    blocked.train_online(p, _parity_sampler(g, d, S, dtype=torch.float32), 30_000, 0.05, loss=loss)
    assert accuracy(p) >= 0.95


# --------------------------------------------------------------------------- per-layer rate of the output layer
MULT_CASES = [  # loss, classes, train, weight_decay_W, weight_decay_a, lr_a_mult
    ("ce", 2, "Wba", 0.0, 0.0, 0.01),
    ("mix", 2, "Wa", 0.1, 0.2, 3.0),
    ("hinge", 1, "Wba", 0.0, 0.3, 0.25),
    ("kl", 3, "a", 0.0, 0.2, 2.5),
]


@pytest.mark.parametrize("backend", ["native", "torch"])
@pytest.mark.parametrize("R,shared", [(1, True), (3, True), (3, False)])
@pytest.mark.parametrize("loss,C,train,wdW,wda,mult", MULT_CASES)
def test_blocked_with_lr_a_mult_equals_autograd_reference(backend, R, shared, loss, C, train, wdW, wda, mult):
    if backend == "native" and not blocked._ckernel.available():
        pytest.skip("no C compiler")
    T = 37
    p, x, label, tl, lr = _problem(loss, C, R, shared, T)
    outs, ref = [], p.clone()
    for t in range(T):
        sl = (slice(None), slice(t, t + 1)) if x.dim() == 3 else (slice(t, t + 1),)
        ref, f = sgd.reference_step(ref, x[sl], lr, loss=loss, labels=label[sl], teacher_logits=tl[sl], alpha=0.3,
                                    tau=0.5, train=train, weight_decay_W=wdW, weight_decay_a=wda, lr_a_mult=mult)
        outs.append(f)
    tgt = sgd.make_targets(loss, C, labels=label, teacher_logits=tl, alpha=0.3, tau=0.5, dtype=F64)
    fast = p.clone()
    out = blocked.block_sgd_(fast, x, tgt, lr[:, None].expand(R, T), loss_kind=sgd.loss_kind(loss), train=train,
                             weight_decay_W=wdW, weight_decay_a=wda, backend=backend, lr_a_mult=mult)
    _assert_params_close(fast, ref)
    assert torch.allclose(out, torch.cat(outs, 1), rtol=1e-10, atol=1e-10)
    # the multiplier really changes the iterates (a is trained in every case)
    plain, _ = _reference_run(p.clone(), x, label, tl, lr, loss, train, wdW, wda, tau=0.5, alpha=0.3)
    assert not torch.allclose(plain.a, ref.a)


def test_lr_a_mult_reference_is_per_layer_gradient_descent():
    """a moves by lr * mult * grad_a (decay included), W and b by lr * grad: compare with mult = 1."""
    p, x, label, tl, lr = _problem("mix", 2, 3, False, 5)
    kw = dict(loss="mix", labels=label, teacher_logits=tl, alpha=0.3, tau=0.5, weight_decay_W=0.1, weight_decay_a=0.2)
    one, _ = sgd.reference_step(p.clone(), x, lr, **kw)
    four, _ = sgd.reference_step(p.clone(), x, lr, lr_a_mult=4.0, **kw)
    assert torch.equal(one.W, four.W) and torch.equal(one.b, four.b)
    assert torch.allclose(four.a - p.a, 4 * (one.a - p.a), rtol=1e-12, atol=1e-14)
    tgt = sgd.make_targets("mix", 2, labels=label, teacher_logits=tl, alpha=0.3, tau=0.5, dtype=F64)
    for rows in (None, 2):
        fast = p.clone()
        sgd.sgd_step(fast, x, tgt, lr, loss_kind=1, weight_decay_W=0.1, weight_decay_a=0.2, max_rows=rows,
                     lr_a_mult=4.0)
        _assert_params_close(fast, four)


@pytest.mark.parametrize("m,threads", [(24, 1), (4096, 2)])
def test_native_lr_a_mult_one_is_the_default_and_threads_agree(m, threads):
    """lr_a_mult = 1 gives bit-identical iterates to the default; the width-split path takes the multiplier."""
    if not blocked._ckernel.available():
        pytest.skip("no C compiler")
    g = gen(25)
    p = init_default(1, m, 12, 2, generator=g, dtype=F64)
    x = data.sample_cube(16, 12, generator=g, dtype=F64)
    label = data.parity_labels(x, torch.tensor([0, 3]))[1]
    tgt = sgd.make_targets("ce", 2, labels=label, dtype=F64)
    lr = torch.full((1, 16), 0.1, dtype=F64)
    a, b = p.clone(), p.clone()
    blocked.block_sgd_(a, x, tgt, lr, loss_kind=1, weight_decay_a=0.1, threads=threads, backend="native")
    blocked.block_sgd_(b, x, tgt, lr, loss_kind=1, weight_decay_a=0.1, threads=threads, backend="native",
                       lr_a_mult=1.0)
    for k in "Wba":
        assert torch.equal(getattr(a, k), getattr(b, k)), k
    c = p.clone()
    blocked.block_sgd_(c, x, tgt, lr, loss_kind=1, weight_decay_a=0.1, threads=threads, backend="native",
                       lr_a_mult=1 / m)
    ref = p.clone()
    for t in range(16):
        ref, _ = sgd.reference_step(ref, x[t:t + 1], torch.tensor([0.1], dtype=F64), loss="ce", labels=label[t:t + 1],
                                    weight_decay_a=0.1, lr_a_mult=1 / m)
    _assert_params_close(c, ref)


@pytest.mark.parametrize("runs_data", [None, 2])
def test_train_online_equals_train_sgd_with_lr_a_mult(runs_data):
    d, S = 12, torch.tensor([2, 5, 7])
    p0 = init_default(2, 20, d, 2, generator=gen(26), dtype=F64)
    teacher = init_default(1, 30, d, 2, generator=gen(27), dtype=F64, output_scale=5.0)
    kw = dict(loss="mix", teacher=teacher, alpha=0.5, tau=0.1, schedule=losses.lr_schedule("cosine", warmup=30,
              total=300), every=100, chunk=64, weight_decay_a=0.05, lr_a_mult=0.2)
    lr = torch.tensor([0.1, 0.3], dtype=F64)
    a = blocked.train_online(p0.clone(), _parity_sampler(gen(28), d, S, runs_data), 250, lr, block_size=16, **kw)
    b = sgd.train_sgd(p0.clone(), _parity_sampler(gen(28), d, S, runs_data), 250, lr, **kw)
    _assert_params_close(a, b, 1e-9)
    t = blocked.train_online(p0.clone(), _parity_sampler(gen(28), d, S, runs_data), 250, lr, block_size=16,
                             backend="torch", **kw)
    _assert_params_close(a, t, 1e-9)


def test_two_stage_lr_a_mult_scales_stage2_rate():
    d, S = 10, torch.tensor([0, 1])
    p0 = init_symmetric(2, 16, d, 2, generator=gen(29), dtype=F64)
    kw = dict(T1=3, T2=40, B1=50, B2=1, eta1=torch.tensor([0.5, 1.0]), lambda1=0.4, lambda2=0.1, loss="hinge")
    got = sgd.two_stage_train(p0.clone(), _parity_sampler(gen(30), d, S), eta2=0.05, lr_a_mult=3.0, **kw)
    want = sgd.two_stage_train(p0.clone(), _parity_sampler(gen(30), d, S), eta2=0.15, **kw)
    _assert_params_close(got, want, 1e-12)
    # 2 eta2 lr_a_mult lambda2 >= 1: stage 2 falls back to mini-batch SGD, still the same iterates
    big = dict(kw, lambda2=4.0)
    got = sgd.two_stage_train(p0.clone(), _parity_sampler(gen(30), d, S), eta2=0.05, lr_a_mult=3.0, **big)
    want = sgd.two_stage_train(p0.clone(), _parity_sampler(gen(30), d, S), eta2=0.15, **big)
    _assert_params_close(got, want, 1e-12)


def test_lr_a_mult_bad_values_and_config_fields():
    from simulate.config import StudentConfig, TeacherConfig

    p = init_default(2, 8, 6, 2, generator=gen(31))
    smp = _parity_sampler(gen(32), 6, torch.tensor([0, 1]), dtype=torch.float32)
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ParameterError, match="lr_a_mult"):
            blocked.train_online(p, smp, 10, 0.1, lr_a_mult=bad)
        with pytest.raises(ParameterError, match="lr_a_mult"):
            sgd.train_sgd(p, smp, 10, 0.1, lr_a_mult=bad)
        with pytest.raises(ParameterError, match="lr_a_mult"):
            TeacherConfig(lr_a_mult=bad)
        with pytest.raises(ParameterError, match="lr_a_mult"):
            StudentConfig(lr_a_mult=bad)
    with pytest.raises(ParameterError, match="weight_decay_a"):  # 2 lr lr_a_mult lambda_a = 1.2 >= 1
        blocked.train_online(p, smp, 10, 0.1, weight_decay_a=2.0, lr_a_mult=3.0)
    assert TeacherConfig().lr_a_mult == 1.0 == StudentConfig().lr_a_mult
    assert TeacherConfig(width=50_000, lr_a_mult=2e-3).lr_a_mult == 2e-3


@pytest.mark.parametrize("batch", [1, 4])
def test_runner_train_passes_lr_a_mult(batch):
    from simulate.config import TeacherConfig
    from simulate.runner import sgd_settings, train

    cfg = TeacherConfig(d=10, k=2, width=16, steps=40, batch=batch, lr=0.1, lr_a_mult=0.3, eval_every=20,
                        checkpoint_every=20, probe_every=0)
    S = torch.tensor([0, 1])
    p0 = init_default(1, 16, 10, 2, generator=gen(33), dtype=F64)
    got = train(p0.clone(), _parity_sampler(gen(34), 10, S), 40, sgd_settings(cfg), loss="ce")
    sched = sgd_settings(cfg).multiplier()  # whatever the config's default schedule is
    want = sgd.train_sgd(p0.clone(), _parity_sampler(gen(34), 10, S), 40, 0.1, batch_size=batch, loss="ce",
                         schedule=sched, lr_a_mult=0.3)
    _assert_params_close(got, want, 1e-9)
    plain = sgd.train_sgd(p0.clone(), _parity_sampler(gen(34), 10, S), 40, 0.1, batch_size=batch, loss="ce",
                          schedule=sched)
    assert not torch.allclose(plain.a, got.a)
