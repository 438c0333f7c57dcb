"""Features of the paper's official code in the MLP engine (simulate/), each against its obvious reference:
an explicit support list, a finite training pool with epochs, probes of any degree, and the soft targets'
label smoothing, alpha schedule and temperature annealing; new fields at their defaults rename no run."""
import dataclasses
import hashlib
import json
import math

import pytest
import torch

from infra.config import HASH_NEW_FIELDS, apply_overrides, config_hash, config_to_dict
from infra.rundir import RunDir
from infra.seeding import Stream, generator
from simulate import data as D
from simulate.checkpoints import CheckpointDir
from simulate.config import CompareConfig, StudentConfig, TeacherConfig
from simulate.losses import soft_cross_entropy, soft_targets
from simulate.model import forward, init_default
from simulate.runner import TaskStream
from simulate.teacher import teacher_task, train_teacher
from simulate.train_setup import TargetSchedule, make_targets, setup_training
from theory import ParameterError

F64 = torch.float64
TINY = dict(d=8, k=2, width=32, steps=600, eval_every=100, checkpoint_every=200, probe_every=0, device="cpu")


# ---------------------------------------------------------------- 1. an explicit support list

def test_an_explicit_support_is_the_parity_of_those_coordinates():
    cfg = TeacherConfig(d=24, k=4, support="20, 3,11,7")
    assert cfg.support == "3,7,11,20"  # canonical: S is a set
    assert TeacherConfig(d=24, k=4, support=(7, 20, 11, 3)).support == "3,7,11,20"
    assert config_hash(cfg) == config_hash(TeacherConfig(d=24, k=4, support="3,7,11,20"))
    assert config_hash(cfg) != config_hash(TeacherConfig(d=24, k=4, support="3,7,11,21"))
    task = teacher_task(cfg)
    assert task.probe_support == (3, 7, 11, 20) and task.description["support"] == [3, 7, 11, 20]
    x = D.sample_cube(5000, 24, generator=torch.Generator().manual_seed(1))
    want = (x[:, 3] * x[:, 7] * x[:, 11] * x[:, 20] < 0).long()  # Definition 3.1, by hand
    assert torch.equal(task.labels(x), want)
    assert apply_overrides(TeacherConfig(d=24, k=4), ["support=20,3,11,7"]).support == "3,7,11,20"


def test_an_explicit_hierarchical_support_gives_each_node_its_block():
    cfg = TeacherConfig(task="hierarchical", d=8, k=2, depth=2, support="7,6,0,1,3,2")
    assert cfg.support == "6,7,0,1,2,3"
    task = teacher_task(cfg)
    assert task.description["supports"] == [[6, 7], [0, 1], [2, 3]]
    x = D.full_cube(8)
    want = []
    for row in x.tolist():  # Figure 16 by hand: right (bit 1) when the node's parity is +1
        root = row[6] * row[7] > 0
        child = (row[2] * row[3] if root else row[0] * row[1]) > 0
        want.append(2 * int(root) + int(child))
    assert task.labels(x).tolist() == want


@pytest.mark.parametrize("kw, match", [
    (dict(support="1,2,3"), "k = 4 coordinates"),
    (dict(support="1,2,3,24"), r"\[0, d\) = \[0, 24\), got 24"),
    (dict(support="1,2,3,-1"), r"\[0, d\)"),
    (dict(support="1,2,3,3"), "distinct"),
    (dict(support="1,2,3,x"), "'first', 'random' or 4 comma-separated"),
    (dict(support="1,2,3,4.5"), "comma-separated"),
    (dict(support="firsts"), "'first', 'random'"),
    (dict(support=""), "'first', 'random'"),
    (dict(task="hierarchical", depth=2, support="0,1,2,3"), r"\(2\^depth - 1\) \* k = 12"),
])
def test_a_bad_support_list_is_one_line_naming_the_field(kw, match):
    with pytest.raises(ParameterError, match=match) as exc:
        TeacherConfig(**{"d": 24, "k": 4, **kw})
    assert str(exc.value).startswith("support") and "\n" not in str(exc.value)


def test_a_teacher_on_an_explicit_support_learns_it(tmp_path):
    cfg = TeacherConfig(**{**TINY, "support": "5,2", "steps": 1500, "probe_every": 500, "checkpoint_every": 500})
    rd = train_teacher(cfg, tmp_path / "t", progress=False)
    summary = rd.read_json("summary.json")
    assert summary["support"] == [2, 5] and summary["runs"][0]["final_accuracy"] == 1.0  # all 256 inputs
    df = rd.metrics()
    last = df[df.step == 1500].iloc[0]
    assert last["corr2_in_mean"] > 0.3 and last["corr2_off_max"] < 0.05  # the monomial x_2 x_5, nothing else


# ---------------------------------------------------------------- 2. a finite training pool with epochs

def test_mix64_is_splitmix64():
    def ref(z):  # SplitMix64's finalizer in exact Python integers
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
        return z ^ (z >> 31)

    words = [0, 1, 2**63 - 1, 2**63, 2**64 - 1, 0x9E3779B97F4A7C15, 123456789123456789]
    signed = torch.tensor([w - 2**64 if w >= 2**63 else w for w in words], dtype=torch.int64)
    got = [int(v) % 2**64 for v in D.mix64(signed)]
    assert got == [ref(w) for w in words]


def test_epoch_orders_are_uniform_permutations_that_change_every_epoch():
    keys = torch.tensor([5, 2**61 + 7], dtype=torch.int64)
    n, E = 10, 4000
    orders = D.epoch_orders(keys, 0, E, n)  # (2, E, n)
    assert torch.equal(orders.sort(-1).values, torch.arange(n).expand(2, E, n))
    assert torch.equal(D.epoch_orders(keys, 1234, 3, n), orders[:, 1234:1237])  # a function of the epoch
    assert not torch.equal(orders[0, 0], orders[0, 1]) and not torch.equal(orders[0], orders[1])
    # each example's position is uniform on 0..n-1: its mean (n - 1) / 2 = 4.5 within 5 standard errors
    pos = orders.argsort(-1).to(F64)  # (2, E, n): where each example sits
    se = math.sqrt((n * n - 1) / 12 / E)
    assert (pos.mean(1) - (n - 1) / 2).abs().max() < 5 * se
    first = torch.bincount(orders[0, :, 0], minlength=n).to(F64)  # which example comes first: uniform
    chi2 = ((first - E / n) ** 2 / (E / n)).sum()
    assert chi2 < 30  # chi^2 with 9 degrees of freedom: P(> 30) < 1e-3


def _cube_task(d):
    return teacher_task(TeacherConfig(d=d, k=3, width=8, steps=10, eval_every=10, checkpoint_every=10,
                                      device="cpu"))


def test_a_pool_visits_its_n_examples_once_per_epoch_in_a_fresh_order():
    task, n = _cube_task(40), 50  # 2^40 points: 50 draws are distinct
    stream = TaskStream(task, (3, 4, 3), torch.device("cpu"), train_size=n)
    pool = stream.pool.x
    assert pool.shape == (3, n, 40) and torch.equal(pool[0], pool[2]) and not torch.equal(pool[0], pool[1])
    # the pool is the first n examples of each run's fresh stream (and its labels the task's)
    fresh, _ = TaskStream(task, (3, 4, 3), torch.device("cpu"))(n)
    assert torch.equal(pool.float(), fresh)
    parts = [stream(c) for c in (7, 1, 42, 60, 0, 90)]  # 200 samples = 4 epochs, in uneven chunks
    x = torch.cat([p[0] for p in parts], 1)
    labels = torch.cat([p[1] for p in parts], 1)
    assert torch.equal(labels, task.labels(x))
    assert torch.equal(x[0], x[2])  # runs with equal seeds: equal samples
    for r in range(3):
        rows = [tuple(v) for v in x[r].long().tolist()]
        assert len(set(rows)) == n  # exactly n distinct inputs seen
        pool_rows = sorted(tuple(v) for v in pool[r].long().tolist())
        epochs = [rows[e * n:(e + 1) * n] for e in range(4)]
        for ep in epochs:
            assert sorted(ep) == pool_rows  # each once per epoch
        assert len({tuple(ep) for ep in epochs}) == 4  # a fresh order every epoch
    # any chunking, and a stream moved to any sample (a resumed run), serve the same samples
    whole = TaskStream(task, (3, 4, 3), torch.device("cpu"), train_size=n)(200)[0]
    assert torch.equal(whole, x)
    moved = TaskStream(task, (3, 4, 3), torch.device("cpu"), train_size=n)
    moved.seek(73)
    assert torch.equal(moved(127)[0], x[:, 73:])


def test_train_size_0_is_the_fresh_stream_of_before():
    task = _cube_task(30)
    stream = TaskStream(task, (0, 1), torch.device("cpu"))
    assert stream.pool is None
    gens = [generator(s, Stream.DATA, torch.device("cpu")) for s in (0, 1)]
    for n in (5, 64):
        want = torch.stack([D.sample_cube(n, 30, generator=g) for g in gens])
        got, labels = stream(n)
        assert torch.equal(got, want) and torch.equal(labels, task.labels(want))
    assert TeacherConfig(train_size=0) == TeacherConfig()


@pytest.mark.parametrize("batch", [1, 3])
def test_a_pooled_teacher_trains_on_its_pool_and_resumes_exactly(tmp_path, monkeypatch, batch):
    """Batch 1 takes the blocked path, batch 3 the mini-batch one; both read the pool through the stream."""
    cfg = TeacherConfig(**{**TINY, "d": 12, "steps": 800, "train_size": 96, "batch": batch, "seeds": (0, 1)})
    seen = []
    original = TaskStream.__call__

    def spy(self, n):
        x, y = original(self, n)
        seen.append(x)
        return x, y

    monkeypatch.setattr(TaskStream, "__call__", spy)
    full = train_teacher(cfg, tmp_path / "full", progress=False)
    monkeypatch.setattr(TaskStream, "__call__", original)
    x = torch.cat(seen, 1)
    assert x.shape[1] == 800 * batch
    for r in range(2):
        assert len({tuple(v) for v in x[r].long().tolist()}) <= 96  # 800 * batch samples from 96 examples
    # killed after step 400's checkpoint; the resumed run continues the pool where it stopped
    out = tmp_path / "resumed"
    append = RunDir.append_metrics

    def dying(self, rows):
        rows = list(rows)
        append(self, rows)
        if rows and rows[0]["step"] == 500:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "append_metrics", dying)
    with pytest.raises(KeyboardInterrupt):
        train_teacher(cfg, out, progress=False)
    monkeypatch.setattr(RunDir, "append_metrics", append)
    train_teacher(cfg, out, progress=False)
    a, b = (CheckpointDir(RunDir(p).ckpt).load(800).params for p in (out, full.path))
    for name in ("W", "b", "a"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=1e-6)


def test_a_pool_counts_in_the_memory_check():
    with pytest.raises(ParameterError, match="training pool"):
        TeacherConfig(d=1000, train_size=2**40, device="cpu")
    with pytest.raises(ParameterError, match="train_size"):
        TeacherConfig(train_size=-1)


# ---------------------------------------------------------------- 3. probe degrees

def test_probes_of_degree_4_and_5_are_logged_and_exact(tmp_path):
    cfg = TeacherConfig(**{**TINY, "k": 5, "steps": 400, "probe_every": 200, "probe_degrees": (1, 4, 5)})
    rd = train_teacher(cfg, tmp_path / "t", progress=False)
    df = rd.metrics()
    cols = {c for c in df.columns if c.startswith("corr")}
    assert {f"corr{g}_{s}" for g in (1, 4, 5) for s in ("in_mean", "in_min", "off_max", "gap", "se")} <= cols
    assert not any(c.startswith(("corr2", "corr3")) for c in cols)
    # degree 5 in-support: the one monomial x_0 .. x_4, |E[p(x) chi_S(x)]| over all 2^8 inputs by hand
    params = CheckpointDir(rd.ckpt).load(400).params
    x = D.full_cube(8)
    p = torch.softmax(forward(params, x), -1)[0, :, 0].to(F64)
    want = (p * x[:, :5].prod(1).to(F64)).mean().abs()
    got = df[df.step == 400].iloc[0]
    assert got["corr5_in_mean"] == pytest.approx(float(want), rel=1e-5, abs=1e-9)
    assert got["corr5_in_mean"] == got["corr5_in_min"] == got["corr5_in_max"]  # C(5, 5) = 1 monomial


@pytest.mark.parametrize("degrees, match", [((), "at least one"), ((2, 1), "strictly increasing"),
                                            ((0, 1), "probe_degrees"), ((1, 25), r"probe_degrees")])
def test_bad_probe_degrees_are_refused(degrees, match):
    with pytest.raises(ParameterError, match=match):
        TeacherConfig(probe_degrees=degrees)


def test_student_probe_degrees_stop_at_the_teachers_d(tmp_path):
    StudentConfig(probe_degrees=(1, 30))  # the teacher's d is not known yet
    with pytest.raises(ParameterError, match="student.probe_degrees"):
        CompareConfig(student=StudentConfig(probe_degrees=(1, 25)))
    train_teacher(TeacherConfig(**TINY), tmp_path / "t", progress=False)
    from simulate.student import train_student

    with pytest.raises(ParameterError, match=r"probe_degrees must be an integer in \[1, 8\], got 9"):
        train_student(StudentConfig(teacher=str(tmp_path / "t"), probe_degrees=(1, 9), steps=100, eval_every=50,
                                    probe_every=0, device="cpu"), tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------- 4. label smoothing, alpha and temperature schedules

def _setup(R=2, B=3, **sched):
    params = init_default(R, 4, 6, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    teacher = lambda x: torch.stack([x[..., 0] + x[..., 1], -x[..., 2]], -1) * 3.0  # noqa: E731
    return setup_training(params, 10, 0.1, sched.pop("loss", "mix"), teacher, sched.pop("alpha", 0.2),
                          sched.pop("tau", 2.0), 0, "Wba", 0.0, 0.0, None, 64, B, targets=TargetSchedule(**sched))


def _sampler(R):
    gen = torch.Generator().manual_seed(7)

    def sample(n):
        x = D.sample_cube(n, 6, generator=gen, runs=R, dtype=F64)
        return x, (x[..., 0] * x[..., 3] < 0).long()

    return sample


@pytest.mark.parametrize("tau", [2.0, (0.5, 3.0)])
def test_scheduled_targets_are_the_per_step_formula(tau):
    R, B, n, g0, total, eps = 2, 3, 5, 40, 100, 0.1
    tau = tau if isinstance(tau, float) else torch.tensor(tau, dtype=F64)
    setup = _setup(R, B, alpha=0.2, tau=tau, alpha_end=0.8, tau_end=1e-3, total=total, smoothing=eps)
    x, q = setup.batch(_sampler(R), n, g0)
    assert q.shape == (R, n * B, 2)
    labels = (x[..., 0] * x[..., 3] < 0).long()
    logits = torch.stack([x[..., 0] + x[..., 1], -x[..., 2]], -1) * 3.0
    for s in range(n):
        f = (g0 + s) / total
        alpha = 0.2 + (0.8 - 0.2) * f
        for r in range(R):
            t0 = float(tau if isinstance(tau, float) else tau[r])
            t = t0 * (1e-3 / t0) ** f
            rows = slice(s * B, (s + 1) * B)
            want = soft_targets(2, labels=labels[r, rows], teacher_logits=logits[r, rows], alpha=alpha, tau=t,
                                dtype=F64)
            torch.testing.assert_close(q[r, rows], (1 - eps) * want + eps / 2, rtol=1e-12, atol=1e-12)


def test_per_run_alpha_schedules_keep_label_runs_on_labels():
    setup = _setup(alpha=torch.tensor([1.0, 0.0], dtype=F64), alpha_end=torch.tensor([1.0, 0.5], dtype=F64),
                   total=10)
    alpha, tau = setup.mix_at(4, 2)
    torch.testing.assert_close(alpha, torch.tensor([[1.0] * 6, [0.2] * 3 + [0.25] * 3], dtype=F64))
    assert tau == 2.0
    # per-run alpha without its schedule, with an annealed temperature: run 0 on its labels, run 1 on the teacher
    setup = _setup(alpha=torch.tensor([1.0, 0.0], dtype=F64), tau_end=0.5, total=10)
    x, q = setup.batch(_sampler(2), 2, 4)
    torch.testing.assert_close(q[0], torch.nn.functional.one_hot((x[0, :, 0] * x[0, :, 3] < 0).long(), 2).to(F64))
    logits = torch.stack([x[1, :, 0] + x[1, :, 1], -x[1, :, 2]], -1) * 3.0
    tau = torch.tensor([2.0 * 0.25 ** 0.4] * 3 + [2.0 * 0.25 ** 0.5] * 3, dtype=F64)
    torch.testing.assert_close(q[1], torch.softmax(logits / tau[:, None], -1), rtol=1e-12, atol=1e-12)


def test_without_a_schedule_the_targets_are_those_of_before():
    x = D.sample_cube(20, 6, generator=torch.Generator().manual_seed(3), runs=2, dtype=F64)
    labels, logits = (x[..., 0] < 0).long(), x[..., :2] * 2
    for loss in ("ce", "kl", "mix"):
        for tau in (0.0, 0.5):
            want = soft_targets(2, labels=labels, teacher_logits=logits, tau=tau, dtype=F64,
                                alpha={"ce": 1.0, "kl": 0.0}.get(loss, 0.3))
            got = make_targets(loss, 2, labels=labels, teacher_logits=logits, alpha=0.3, tau=tau, dtype=F64)
            assert torch.equal(got, want)
    setup = _setup()
    assert setup.mix_at(0, 4) == (0.2, 2.0) and setup.smoothing == 0.0


def test_label_smoothing_is_torchs_and_the_official_soft_label_teacher():
    logits = torch.randn(2, 50, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    labels = torch.randint(0, 3, (2, 50), generator=torch.Generator().manual_seed(1))
    q = make_targets("ce", 3, labels=labels, dtype=F64, smoothing=0.1)
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, 3), labels.reshape(-1), label_smoothing=0.1)
    torch.testing.assert_close(soft_cross_entropy(logits, q).mean(), want, rtol=1e-12, atol=1e-12)
    # the official code's label-based teacher softmax(onehot(y) / T) is smoothing with eps = C / (e^(1/T) + C - 1)
    T, C = 0.5, 3
    official = torch.softmax(torch.nn.functional.one_hot(labels, C).to(F64) / T, -1)
    eps = C / (math.exp(1 / T) + C - 1)
    torch.testing.assert_close(make_targets("ce", C, labels=labels, dtype=F64, smoothing=eps), official)


def test_schedules_need_a_cross_entropy_loss_and_valid_values():
    params = init_default(1, 4, 6, 1, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ParameterError, match="cross-entropy loss"):
        setup_training(params, 10, 0.1, "hinge", None, 0.0, 1.0, 0, "Wba", 0.0, 0.0, None, 64, 1,
                       targets=TargetSchedule(smoothing=0.1))
    with pytest.raises(ParameterError, match="temperature"):
        _setup(tau=0.0, tau_end=0.5)
    for kw, match in [(dict(alpha_end=1.5), "alpha_end"), (dict(temperature_end=0.0), "temperature_end"),
                      (dict(temperature=0.0, temperature_end=0.1), "temperature_end anneals"),
                      (dict(run_temperatures=(1.0, 0.0, 1.0, 1.0, 1.0), temperature_end=0.1), "run_temperatures"),
                      (dict(label_smoothing=1.0), "label_smoothing"), (dict(label_smoothing=-0.1), "label_smoothing")]:
        with pytest.raises(ParameterError, match=match):
            StudentConfig(**kw)


def test_both_training_paths_take_the_schedule_alike():
    from simulate.blocked import train_online
    from simulate.sgd import train_sgd

    teacher = init_default(1, 16, 6, 2, generator=torch.Generator().manual_seed(5), dtype=F64)
    sched = TargetSchedule(alpha_end=0.9, tau_end=0.05, total=300, smoothing=0.05)
    out = []
    runs = ((train_online, dict(backend="torch", block_size=16), sched), (train_sgd, dict(batch_size=1), sched),
            (train_online, {}, sched), (train_online, {}, None))
    for fn, kw, targets in runs:
        params = init_default(2, 8, 6, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
        fn(params, _sampler(2), 300, 0.1, loss="mix", teacher=teacher, alpha=0.1, tau=1.0, every=100, chunk=64,
           targets=targets, **kw)
        out.append(params)
    torch.testing.assert_close(out[2].W, out[1].W, rtol=1e-9, atol=1e-10)  # the native kernel too
    torch.testing.assert_close(out[0].W, out[1].W, rtol=1e-9, atol=1e-10)  # blocked == mini-batch SGD
    assert (out[2].W - out[3].W).abs().max() > 1e-3  # and the schedule changed the iterates


def test_a_student_with_every_new_field_trains(tmp_path):
    from simulate.student import train_strategies

    train_teacher(TeacherConfig(**TINY), tmp_path / "t", progress=False)
    cfg = StudentConfig(teacher=str(tmp_path / "t"), width=16, steps=400, eval_every=100, probe_every=200,
                        stage_steps=100, seeds=(0, 1), device="cpu", train_size=64, probe_degrees=(1, 2),
                        alpha=0.1, alpha_end=0.6, temperature=1.0, temperature_end=0.01, label_smoothing=0.05)
    rds = train_strategies(cfg, ["ce", "progressive"], [tmp_path / "ce", tmp_path / "pr"], progress=False)
    for rd in rds:
        stored = rd.read_json("config.json")
        assert stored["alpha_end"] == 0.6 and stored["train_size"] == 64 and stored["probe_degrees"] == [1, 2]
        df = rd.metrics()
        assert "corr2_in_mean" in df.columns and "corr3_in_mean" not in df.columns
        assert df["test_loss"].notna().all()


# ---------------------------------------------------------------- hash stability

_NEW = {"TeacherConfig": (TeacherConfig, {"train_size": 5, "probe_degrees": (1, 4)}),
        "StudentConfig": (StudentConfig, {"train_size": 5, "probe_degrees": (1, 4), "label_smoothing": 0.1,
                                          "alpha_end": 0.5, "temperature_end": 0.5})}


def _old_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]


@pytest.mark.parametrize("kind", sorted(_NEW))
def test_new_fields_at_their_defaults_rename_no_run(kind):
    cls, changes = _NEW[kind]
    cfg = cls()
    data = config_to_dict(cfg)
    assert set(changes) <= set(data) and set(changes) <= set(HASH_NEW_FIELDS[kind])  # config.json lists them
    old = {k: v for k, v in data.items() if k not in HASH_NEW_FIELDS[kind]}
    assert config_hash(cfg) == _old_hash(old)  # the hash of the same config before the fields existed
    for name, other in changes.items():
        assert config_hash(dataclasses.replace(cfg, **{name: other})) != config_hash(cfg), name
    nested = CompareConfig()
    d2 = config_to_dict(nested)
    for section in ("teacher", "student"):
        d2[section] = {k: v for k, v in d2[section].items() if k not in HASH_NEW_FIELDS[d2[section]["kind"]]}
    assert config_hash(nested) == _old_hash(d2)
    assert TeacherConfig().support == "first" and config_to_dict(TeacherConfig())["support"] == "first"
