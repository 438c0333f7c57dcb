"""``icurr theory`` subcommands: JSON keys, formats, and one-line errors with exit code 2 (in-process)."""
import json

import pytest
from cli_helpers import run_icurr as icurr


def test_fourier_json():
    out = icurr("theory", "fourier", "--fn", "majority", "--n", "10", "--degree", "2", "--exact", "--format", "json")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["n"] == 10 and row["degree"] == 2 and row["exact"] == "-7/256"
    assert row["value"] == pytest.approx(-7 / 256)


def test_gap_json():
    row = json.loads(icurr("theory", "gap", "--d", "101", "--k", "6", "--format", "json").stdout)
    assert set(row) >= {"d", "k", "zeta_km1", "zeta_kp1", "gap", "paper_bound", "ratio", "bound_holds"}
    assert row["bound_holds"] is True and row["ratio"] == pytest.approx(78.5175, rel=1e-4)


def test_gradient_json():
    row = json.loads(icurr("theory", "gradient", "--d", "21", "--k", "4", "--bias", "0.25", "--format", "json").stdout)
    assert set(row) >= {"in_support", "off_support", "predicted_in", "predicted_off"}
    assert row["in_support"] == pytest.approx(row["predicted_in"], rel=1e-12)
    assert row["in_support"] > row["off_support"] > 0


def test_bounds_json_one_object_per_pair():
    out = icurr("theory", "bounds", "--d", "20,50,100", "--k", "2,4,6", "--eps", "0.01", "--delta", "0.01",
                "--format", "json")
    rows = json.loads(out.stdout)
    assert len(rows) == 9 and {(r["d"], r["k"]) for r in rows} == {(d, k) for d in (20, 50, 100) for k in (2, 4, 6)}
    for key in ("progressive_upper", "oneshot_lower", "teacher_lemma_b7", "teacher_corollary_b9",
                "width_tradeoff_steps", "sq_query_lower", "sq_sample_lower"):
        assert all(isinstance(r[key], float) for r in rows)


def test_csv_and_summary():
    out = icurr("theory", "gap", "--d", "11,101", "--k", "2", "--format", "csv")
    assert out.stdout.splitlines()[0].startswith("d,k,zeta_km1")
    assert len(out.stdout.splitlines()) == 3
    summary = icurr("theory")
    assert summary.returncode == 0 and "Fourier gap" in summary.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("theory", "gap", "--d", "10", "--k", "11"), "k must be an integer in [1, 9]"),
        (("theory", "gap", "--d", "2.5", "--k", "1"), "d must be an integer"),
        (("theory", "fourier", "--n", "0", "--degree", "0"), "n must be an integer"),
        (("theory", "fourier", "--n", "5", "--degree", "6"), "degree must be an integer in [0, 5]"),
        (("theory", "bounds", "--eps", "1.5"), "eps must lie in (0, 1)"),
        (("theory", "bounds", "--delta", "0"), "delta must lie in (0, 1)"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    out = icurr(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_negative_values_and_the_paper_tie_rule():
    """`--bias -1/2` means `--bias=-1/2`; `--tie 0` is the paper's Maj = sign(sum x) with sign(0) = 0, whose
    coefficients equal brute force over {+-1}^10 (odd degrees as tie-broken Majority's mean, even ones 0)."""
    import itertools
    from fractions import Fraction

    from cli_helpers import run_icurr

    a = run_icurr("theory", "fourier", "--fn", "threshold", "--n", "9", "--degree", "1", "--bias", "-1/2",
                  "--exact", "--format", "json")
    b = run_icurr("theory", "fourier", "--fn", "threshold", "--n", "9", "--degree", "1", "--bias=-1/2",
                  "--exact", "--format", "json")
    assert a.returncode == 0 and a.stdout == b.stdout, a.stderr
    n, brute = 10, {1: Fraction(0), 2: Fraction(0)}
    for x in itertools.product((1, -1), repeat=n):
        m = (sum(x) > 0) - (sum(x) < 0)
        brute[1] += Fraction(m * x[0], 2**n)
        brute[2] += Fraction(m * x[0] * x[1], 2**n)
    for degree in (1, 2):
        out = run_icurr("theory", "fourier", "--n", "10", "--degree", str(degree), "--tie", "0", "--exact",
                        "--format", "json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["exact"] == f"{brute[degree].numerator}/{brute[degree].denominator}"
