"""simulate.hier_probes: the level-wise measurements of hierarchical parity (Appendix C.3, Figure 17) against
closed forms (the exact labelling function, planted degree-1 / degree-2 correlations), a brute-force loop over
the cube, and a trained teacher's own logged test accuracy."""
from __future__ import annotations

import itertools

import pytest
import torch

from simulate.config import TeacherConfig
from simulate.data import full_cube, hierarchical_labels, hierarchical_supports
from simulate.hier_probes import (
    LevelMoments, checkpoint_levels, class_paths, cube_moments, irrelevant_coords, level_summary, params_levels,
    sample_moments,
)
from simulate.model import init_default
from simulate.teacher import train_teacher
from theory._checks import ParameterError


def onehot_fn(supports, flip: int = 0):
    """Class probabilities that put all mass on the true class XOR ``flip`` (R = 1)."""
    C = supports.shape[0] + 1
    return lambda x: torch.nn.functional.one_hot(hierarchical_labels(x, supports) ^ flip, C).double()[None]


def test_class_paths_follow_the_labelling_tree():
    sup = hierarchical_supports(3, 2, 17, generator=torch.Generator().manual_seed(3))
    x = full_cube(17)[::37]
    label = hierarchical_labels(x, sup)
    paths = class_paths(3)
    assert paths.tolist()[0] == [0, 1, 3] and paths.tolist()[7] == [0, 2, 6]
    for level in range(3):
        node = paths[label, level]
        went_right = (x[torch.arange(len(x))[:, None], sup[node]].prod(1) > 0).long()
        assert torch.equal(went_right, (label >> (2 - level)) & 1)


@pytest.mark.parametrize("depth,k,d", [(2, 3, 11), (3, 2, 15)])
def test_the_exact_labelling_function_has_the_closed_form_moments(depth, k, d):
    """p_c = prod_l (1 + s_l T_l) / 2: |E p_c T_v| = 2^-D on its path, no degree-1 mass, degree 2 only when k = 2
    (then x_i x_j is the node's parity itself), every level decided right."""
    sup = hierarchical_supports(depth, k, d)
    rows = level_summary(cube_moments(onehot_fn(sup), d, sup, chunk=300), sup)
    assert len(rows) == 1
    r = rows[0]
    for level in range(1, depth + 1):
        assert r[f"acc_l{level}"] == 1.0
        assert r[f"corrk_in_l{level}"] == pytest.approx(2.0**-depth, abs=1e-12)
        assert r[f"corr1_in_l{level}"] == pytest.approx(0, abs=1e-12)
        assert r[f"corr2_in_l{level}"] == pytest.approx(2.0**-depth if k == 2 else 0, abs=1e-12)
    assert r["corr1_off"] == pytest.approx(0, abs=1e-12) and r["corr2_off"] == pytest.approx(0, abs=1e-12)
    assert irrelevant_coords(sup, d) == list(range((2**depth - 1) * k, d))


def test_planted_degree1_and_rest_correlations_land_on_their_level():
    """Root level: classes 0, 1 get +eps x_0 and 2, 3 get -eps x_0 (x_0 in the root's support): corr1 at level 1
    is eps / k, nothing at level 2. Level 2: +-gam x_3 on classes 0 / 1 (x_3 in node 1's support): gam / (2 k)
    (classes 2, 3 see node 2). An irrelevant pair x_9 x_10 on class 0 only: the 'rest' mean."""
    depth, k, d = 2, 3, 11
    sup = hierarchical_supports(depth, k, d)
    eps, gam, rho = 0.04, 0.02, 0.03
    sign_root = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    sign_low = torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=torch.float64)
    pair = torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=torch.float64)  # keeps the probabilities summing to 1

    def fn(x):
        x = x.double()
        return (0.25 + eps * x[:, :1] * sign_root + gam * x[:, 3:4] * sign_low
                + rho * (x[:, 9] * x[:, 10])[:, None] * pair)[None]

    r = level_summary(cube_moments(fn, d, sup), sup)[0]
    assert r["corr1_in_l1"] == pytest.approx(eps / k, abs=1e-12)
    assert r["corr1_in_l2"] == pytest.approx(gam / (2 * k), abs=1e-12)
    assert r["corr1_off"] == pytest.approx(0, abs=1e-12) and r["corr1_in_l1"] > r["corr1_in_l2"]
    rest_pairs = 55 - 36  # pairs of [11] with at least one of the 2 irrelevant coordinates
    assert r["corr2_off"] == pytest.approx(2 * rho / (4 * rest_pairs), abs=1e-12)
    assert r["corr2_in_l1"] == pytest.approx(0, abs=1e-12)


def test_level_accuracy_sees_which_decision_is_wrong():
    sup = hierarchical_supports(3, 2, 14)
    r = level_summary(cube_moments(onehot_fn(sup, flip=2), 14, sup), sup)[0]  # the middle decision flipped
    assert (r["acc_l1"], r["acc_l2"], r["acc_l3"]) == (1.0, 0.0, 0.0)
    r = level_summary(cube_moments(onehot_fn(sup, flip=1), 14, sup), sup)[0]  # the last decision flipped
    assert (r["acc_l1"], r["acc_l2"], r["acc_l3"]) == (1.0, 1.0, 0.0)
    # d = 14 = (2^3 - 1) 2: no irrelevant coordinate, so no off-support baseline (NaN)
    assert irrelevant_coords(sup, 14) == [] and r["corr1_off"] != r["corr1_off"] and r["corr2_off"] != r["corr2_off"]


def test_an_mlp_matches_a_brute_force_loop_over_the_cube():
    depth, k, d = 2, 1, 5
    sup = hierarchical_supports(depth, k, d)
    params = init_default(2, 16, d, 4, generator=torch.Generator().manual_seed(7), output_scale=30.0)
    rows = params_levels(params, sup)
    paths = class_paths(depth).tolist()
    for r in range(2):
        m1 = [[0.0] * d for _ in range(4)]
        m2 = {}
        acc = [0, 0]
        for bits in itertools.product([1.0, -1.0], repeat=d):
            x = torch.tensor(bits)
            h = torch.relu(params.W[r] @ x + params.b[r])
            p = torch.softmax((params.a[r] @ h).double(), 0).tolist()
            label = int(hierarchical_labels(x[None], sup)[0])
            for c in range(4):
                for i in range(d):
                    m1[c][i] += p[c] * bits[i] / 2**d
                for i, j in itertools.combinations(range(d), 2):
                    m2[c, i, j] = m2.get((c, i, j), 0.0) + p[c] * bits[i] * bits[j] / 2**d
            acc[0] += int((p[0] + p[1] > p[2] + p[3]) == (label < 2))
            acc[1] += int(max(range(4), key=lambda c: p[c]) == label)
        row = rows[r]
        assert row["acc_l1"] == pytest.approx(acc[0] / 2**d) and row["acc_l2"] == pytest.approx(acc[1] / 2**d)
        want1 = sum(abs(m1[c][int(sup[paths[c][1], 0])]) for c in range(4)) / 4
        assert row["corr1_in_l2"] == pytest.approx(want1, rel=1e-5)
        assert row["corr1_in_l1"] == pytest.approx(sum(abs(m1[c][0]) for c in range(4)) / 4, rel=1e-5)
        assert row["corr1_off"] == pytest.approx(sum(abs(m1[c][i]) for c in range(4) for i in (3, 4)) / 8, rel=1e-5)
        rest = [(i, j) for i, j in itertools.combinations(range(d), 2) if i >= 3 or j >= 3]
        assert row["corr2_off"] == pytest.approx(
            sum(abs(m2[c, i, j]) for c in range(4) for i, j in rest) / (4 * len(rest)), rel=1e-5)
        assert row["corrk_in_l1"] == pytest.approx(row["corr1_in_l1"], rel=1e-9)  # k = 1: T_v = x_v


def test_checkpoint_levels_reproduce_the_teachers_logged_accuracy(tmp_path):
    cfg = TeacherConfig(task="hierarchical", d=8, depth=2, k=2, width=32, steps=600, lr=0.1, eval_every=100,
                        checkpoint_every=200, probe_every=0, seeds=(0, 1), device="cpu")
    rd = train_teacher(cfg, tmp_path / "t", progress=False)
    levels = checkpoint_levels(tmp_path / "t")
    assert sorted(levels["step"].unique()) == [0, 200, 400, 600] and len(levels) == 8
    log = rd.metrics().set_index(["step", "run"])
    for row in levels.itertuples():
        assert row.acc_l2 == pytest.approx(log.loc[(row.step, row.run), "test_accuracy"], abs=1e-6)
        assert row.acc_l1 >= row.acc_l2  # a right class has a right prefix
    one = checkpoint_levels(tmp_path / "t", steps=[600])
    assert len(one) == 2 and set(one["seed"]) == {0, 1}
    with pytest.raises(ParameterError, match="steps must be saved checkpoints"):
        checkpoint_levels(tmp_path / "t", steps=[300])
    parity = TeacherConfig(d=8, k=2, width=8, steps=100, eval_every=100, checkpoint_every=100, probe_every=0,
                           device="cpu")
    train_teacher(parity, tmp_path / "p", progress=False)
    with pytest.raises(ParameterError, match="task hierarchical"):
        checkpoint_levels(tmp_path / "p")


def test_monte_carlo_moments_agree_with_the_closed_form_within_their_error():
    """d = 24 > 20: the exact labelling function's node correlations are 2^-D; the Monte Carlo estimate over
    2^15 points lies within 4 standard errors (each term is bounded by 1: SE <= 2^-7.5), and the degree-1
    ones near 0."""
    depth, k, d, n = 2, 3, 24, 1 << 15
    sup = hierarchical_supports(depth, k, d)
    r = level_summary(sample_moments(onehot_fn(sup), d, sup, n_samples=n, generator=torch.Generator().manual_seed(0)),
                      sup)[0]
    se = n ** -0.5
    for level in (1, 2):
        assert abs(r[f"corrk_in_l{level}"] - 0.25) < 4 * se and r[f"acc_l{level}"] == 1.0
        assert r[f"corr1_in_l{level}"] < 4 * se
    params = init_default(1, 8, d, 4, generator=torch.Generator().manual_seed(1))
    assert params_levels(params, sup, n_samples=4096) == params_levels(params, sup, n_samples=4096)  # fixed points


def test_bad_inputs_fail_in_one_line():
    sup = hierarchical_supports(2, 2, 8)
    with pytest.raises(ParameterError, match="prob_fn must return"):
        cube_moments(lambda x: torch.zeros(1, len(x), 3), 8, sup)
    with pytest.raises(ParameterError, match="supports must have shape"):
        level_summary(LevelMoments(*(torch.zeros(1, 4, 8),) * 4), sup[:2])
    with pytest.raises(ParameterError, match="d must"):
        cube_moments(onehot_fn(sup), 21, sup)
