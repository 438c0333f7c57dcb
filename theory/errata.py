"""Discrepancies between the paper's statements (Appendix B) and exact computation.

``render()`` builds ``theory/ERRATA.md`` from the code: every number in it is computed here, and
``tests/test_errata.py`` fails when the committed file drifts from what the code computes.
Regenerate with ``python -m theory.errata --write theory/ERRATA.md`` from the repository root (or
``icurr theory errata --write theory/ERRATA.md``); without ``--write`` it is printed. Nothing is
written anywhere but the path named.
"""
from __future__ import annotations

import argparse
import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from .algorithm1 import paper_hyperparameters
from .bounds import teacher_lemma_b7
from .fourier import cube, fourier_coefficients, zeta
from .gap import bound_validity, fourier_gap
from .gradient import lemma_b2_corrected, lemma_b2_stated, stage_one_pair_correlations, stage_one_update

__all__ = ["render", "write", "ERRATA_PATH"]

#: The repository's copy (tests compare it with :func:`render`; nothing here writes it unless named).
ERRATA_PATH = Path(__file__).with_name("ERRATA.md")


def _g(x) -> str:
    return f"{float(x):.4g}"


def _zeta_order() -> str:
    rows = []
    for d in (101, 1001, 10001):
        for i in (1, 3, 5, 7):
            z = abs(zeta(i, d))
            stated = i ** (-1 / 3) / math.comb(d, i)
            w_lim = (2 / math.pi) * math.comb(i - 1, (i - 1) // 2) / (i * 2 ** (i - 1))
            corrected = math.sqrt(w_lim / math.comb(d, i))
            rows.append(f"| {d} | {i} | {_g(z)} | {_g(stated)} | {_g(z / stated)} | {_g(z / corrected)} |")
    return "\n".join([
        "## 1. The order of zeta_i (Appendix B, Notations)",
        "",
        "**Stated:** `zeta_i = Theta(i^(-1/3) / C(d, i))` for odd `i`.",
        "",
        "**Exact:** `C(d, i) zeta_i^2` is the Fourier weight of Majority at degree `i`, which tends to",
        "`W_i = (2/pi) C(i-1, (i-1)/2) / (i 2^(i-1)) ~ (2/pi)^(3/2) i^(-3/2)` (O'Donnell 2014, Thm 5.22), so",
        "`|zeta_i| ~ sqrt(W_i / C(d, i)) = Theta(i^(-3/4) C(d, i)^(-1/2))`: the square root of the binomial, not",
        "the binomial. The stated order is off by a factor `~ sqrt(C(d, i))` that grows without bound.",
        "Implemented: `theory.fourier.zeta` (exact) and the corrected order in `theory.bounds`.",
        "",
        "| d | i | exact abs(zeta_i) | stated i^(-1/3)/C(d,i) | exact / stated | exact / sqrt(W_i/C(d,i)) |",
        "|---|---|---|---|---|---|",
        *rows,
    ])


def _even_degrees() -> str:
    z2 = zeta(2, 10, exact=True)
    z2m = zeta(2, 10, tie=-1, exact=True)
    # brute force: Maj_10 with ties to +1, coefficient on {x_0, x_1}
    x = cube(10)
    maj = np.where(x.sum(1) >= 0, 1, -1)
    brute = fourier_coefficients(maj, exact=True)[0b11]
    assert brute == z2 and z2 != 0
    return "\n".join([
        "## 2. Even-degree coefficients of Majority (Appendix B, Notations)",
        "",
        "**Stated:** `zeta_i = 0` when `i` is even.",
        "",
        "**Exact:** true for odd `d` only. For even `d` the tie `sum x = 0` has to be broken, and the ReLU",
        "neuron `1[w.x + b >= 0]` with `|b| < 1` breaks it to `+1` when `b >= 0` and to `-1` when `b < 0`;",
        "then `Maj = sign0 + tie * 1[sum x = 0]`, whose even part is nonzero:",
        f"`zeta_2(10) = {z2}` (ties to +1; brute-force enumeration of {{+-1}}^10 gives {brute}) and",
        f"`{z2m}` (ties to -1). So for even `d` the first-stage gradient (Claim B.3) depends on the",
        "bias, and odd `k` gets a (weak) in-support signal; see item 5.",
    ])


def _claim_b3_sign() -> str:
    d, k, b = 7, 2, Fraction(1, 2)
    rng = np.random.default_rng(0)
    w = rng.choice([-1, 1], size=d)
    x = cube(d).astype(np.int64)
    y = x[:, 0] * x[:, 1]
    fires = (x @ w + b >= 0).astype(np.int64)
    corr = Fraction(int(np.sum(fires * x[:, 0] * y)), 2**d)  # E[d f / d w_0 * y] with a = 1
    stated = -Fraction(1, 2) * zeta(k - 1, d, exact=True) * int(w[1])
    assert corr == -stated
    return "\n".join([
        "## 3. The sign in Claim B.3",
        "",
        "**Stated:** `E[grad_{w_ij} f(x) y] = -(1/2) a_i zeta_{k-1} chi_{[k]-j}(w)` (and the `k+1` analogue), and",
        "the in-support gradient 'has magnitude `|zeta_{k-1}|`'.",
        "",
        "**Exact:** `grad_{w_ij} f = a_i 1[w.x + b >= 0] x_j` and `1[w.x + b >= 0] = (1 + Maj(w o x))/2`",
        "give `E[grad f * y] = +(1/2) a_i zeta_{k-1} chi_{[k]-j}(w)`; it is the loss gradient",
        "`E[grad loss] = -E[grad f * y]` that carries the minus sign. The magnitude is `|a_i| |zeta_{k-1}| / 2`.",
        f"Brute force (d = {d}, k = {k}, b = 1/2, w = {w.tolist()}, a = 1, j = 0): `E[grad f * y] = {corr}`,",
        f"the printed formula gives `{stated}`. Implemented: `theory.gradient.population_gradient`.",
    ])


def _ratio() -> str:
    rows = []
    for d, k in ((21, 2), (101, 6), (1001, 6), (1001, 10)):
        exact = abs(zeta(k + 1, d, exact=True) / zeta(k - 1, d, exact=True))
        assert exact == Fraction(k - 1, d - k)
        rows.append(f"| {d} | {k} | {exact} = {_g(exact)} | {_g(exact / k)} | {_g(1 / (k * d))} | {_g(exact * d)} |")
    return "\n".join([
        "## 4. The ratio |zeta_{k+1}| / |zeta_{k-1}| (proof of Lemma B.5 (2), line 548)",
        "",
        "**Stated:** 'the magnitude `(1/k) |zeta_{k+1}| / |zeta_{k-1}|` can be bounded by `1/(kd)`' (section 5.3 of",
        "O'Donnell), i.e. the ratio itself by `1/d`.",
        "",
        "**Exact:** for odd `d` and even `k`, `zeta_{i+2} / zeta_i = -i / (d - i - 1)`, so the ratio is exactly",
        "`(k - 1)/(d - k)`, larger than `1/d` by a factor `d (k - 1)/(d - k) ~ k - 1`. The off-support correlation",
        "bound `O((kd)^-1)` of Lemma B.5 and Corollary B.6 becomes `O(1/d)`.",
        "",
        "| d | k | exact ratio | (1/k) x ratio | stated bound 1/(kd) | exact / bound |",
        "|---|---|---|---|---|---|",
        *rows,
    ])


def _holds_ranges(k: int, parity: str, d_max: int) -> str:
    """The ranges of ``d`` (of one parity, ``k + 1 <= d <= d_max``) where the Fourier-gap bound holds."""
    ds = [d for d in range(k + 1, d_max + 1) if (d % 2 == 1) == (parity == "odd")]
    runs, start = [], None
    for d in ds:
        ok = fourier_gap(d, k)["bound_holds"]
        if ok and start is None:
            start = d
        if not ok and start is not None:
            runs.append(f"{start} <= d <= {d - 2}")
            start = None
    if start is not None:
        runs.append(f"d >= {start} (to {ds[-1]})")
    return ", ".join(runs) if runs else "never"


def _gap_range() -> str:
    rows = []
    for k in (2, 3, 4, 5, 6, 8):
        for parity in ("odd", "even"):
            d_max = 8001 if k % 2 and parity == "even" else 401  # odd k, even d: the ratio decays, so scan on
            rows.append(f"| {k} | {parity} | {_holds_ranges(k, parity, d_max)} | "
                        f"{bound_validity(k, 401, parity=parity)['n_fail']} |")
    big = {k: fourier_gap(100001, k)["ratio"] for k in (2, 6)}
    fails6 = sorted(bound_validity(6, 401, parity="odd")["fails"] + bound_validity(6, 401, parity="even")["fails"])
    even_odd_k = [fourier_gap(d, 3)["ratio"] for d in (100, 1000, 10000)]
    return "\n".join([
        "## 5. Range of validity of the Fourier-gap bound (Claim B.3)",
        "",
        "**Stated:** `|zeta_{k-1}| - |zeta_{k+1}| >= 0.03 (d-1)^(-(k-1)/2)` (quoted from Barak et al. 2022).",
        "",
        "**Exact:** it holds for even `k` once `d` is past a small threshold, and then with a margin that",
        f"grows with `k` (ratio gap/bound at d = 100001: {_g(big[2])} for k = 2, {_g(big[6])} for k = 6). It fails",
        f"for even `k` at small `d` (k = 6: d in {fails6}, where the gap is 0 or negative), and for every",
        "odd `k`: with odd `d` both coefficients have even degree and vanish (gap 0); with even `d` the gap is",
        "nonzero but of order `d^(-k/2)`, so the ratio decays like `d^(-1/2)`",
        f"(k = 3: {', '.join(_g(r) for r in even_odd_k)} at d = 100, 1000, 10000): the bound holds on a finite",
        "range of even `d` only. Scanned `k+1 <= d <= 401` (odd `k` with even `d`: to 8001, past the range's end;",
        "beyond the scan the decaying ratio cannot return above 1, see `experiments.claims` `t-gap-range`):",
        "",
        "| k | parity of d | bound holds for | failing d up to 401 |",
        "|---|---|---|---|",
        *rows,
    ])


def _lemma_b7_power() -> str:
    d, k, eps, delta = 100, 6, 0.01, 0.01
    z = abs(zeta(k - 1, d))
    printed = z**2 * k**2 * math.log(k * d / eps)
    corrected = teacher_lemma_b7(d, k, eps, delta)
    stage1 = z**-2 * k**2 * math.log(k * d / eps)
    claimed = d ** (k - 1) * k**2 * math.log(d * k / eps)
    return "\n".join([
        "## 6. The power of zeta in the batch size of Lemma B.7 (and Corollary B.9)",
        "",
        "**Stated:** `B_1 >= Omega(|zeta_{k-1}|^2 k^2 log(kd/eps))`, and then",
        "`Theta(|zeta_{k-1}|^2 k^2 log(kd/eps)) = Theta(d^(k-1) k^2 log(dk/eps))`.",
        "",
        "**Exact:** with `tau_g = O(|zeta_{k-1}| / k)` and `B_1 >= tau_g^-2`, the batch is",
        "`|zeta_{k-1}|^-2 k^2 log(kd/eps)`, and only the power `-2` matches `d^(k-1)`",
        "(`|zeta_{k-1}|^-2 ~ C(d, k-1) / W_(k-1)`). At d = 100, k = 6, eps = 0.01:",
        f"printed `|zeta_5|^2 k^2 log = {_g(printed)}`, corrected `|zeta_5|^-2 k^2 log = {_g(stage1)}`,",
        f"`d^(k-1) k^2 log = {_g(claimed)}`. The same holds for Corollary B.9 (`d^(k+7/3)`).",
        f"Implemented: `theory.bounds.teacher_lemma_b7` (value there: {_g(corrected.value)} samples).",
    ])


def _lemma_b2() -> str:
    d, k, m = 21, 4, 8
    rng = np.random.default_rng(1)
    w0 = rng.choice([-1, 1], size=d)
    a0, b = 1 / m, Fraction(1, 2)
    hp = paper_hyperparameters(d, k, m)
    support = range(k)
    step = stage_one_update(w0, a0, b, support, eta=hp["eta1"], weight_decay=hp["effective_lambda1"])
    stated = lemma_b2_stated(w0, a0, support, d, k)
    corrected = lemma_b2_corrected(w0, a0, support, d, k)
    assert np.allclose(step, corrected, rtol=1e-9, atol=1e-12)
    with_lambda_one = stage_one_update(w0, a0, b, support, eta=hp["eta1"], weight_decay=1.0)
    return "\n".join([
        "## 7. The first-stage weights of Lemma B.2 and the weight decay lambda_1",
        "",
        "**Stated:** with `eta_1 = m/(k |zeta_{k-1}|)` and `lambda_1 = 1`, after one step",
        "`w_ij ~ sign(a_i) zeta_{k-1} chi_{[k]-j}(w) / (2k)` for `j in S` and",
        "`w_ij ~ zeta_{k+1} sign(a_i) chi_{[k]+j}(w) / (|zeta_{k-1}| 2k)` for `j not in S`.",
        "",
        "**Exact:** the step is `w1 = (1 - 2 eta_1 lambda_1) w0 - eta_1 E[grad]`. The stated centres need",
        "`w0` to cancel, i.e. `2 eta_1 lambda_1 = 1` (`lambda_1 = k |zeta_{k-1}| / (2m)`, not 1), and then the",
        "in-support centre is `sign(a_i) sign(zeta_{k-1}) chi / (2k)` (magnitude `1/(2k)`, as Lemma B.5 uses),",
        "not `sign(a_i) zeta_{k-1} chi / (2k)` (magnitude `|zeta_{k-1}|/(2k)`); the off-support centre is right.",
        f"Population step at d = {d}, k = {k}, m = {m}, b = 1/2, a = 1/m: in-support weights",
        f"{[_g(v) for v in step[:k]]}; stated {[_g(v) for v in stated[:k]]}; with `lambda_1 = 1`",
        f"literally: {[_g(v) for v in with_lambda_one[:k]]}.",
        "Implemented: `theory.gradient.stage_one_update`, `lemma_b2_corrected`, and",
        "`theory.algorithm1.paper_hyperparameters()['effective_lambda1']`.",
    ])


def _lemma_b5() -> str:
    d, k = 11, 4
    rows = []
    for b in (Fraction(1, 4), Fraction(1, 2)):
        vals = []
        for p in range(2**k):
            w0 = np.ones(d)
            w0[:k] = [1 - 2 * ((p >> j) & 1) for j in range(k)]
            vals.append(stage_one_pair_correlations(w0, 1.0, b, range(k), d, k)[0])
        vals = np.array(vals)
        pos = int(np.sum(vals > 0))
        assert pos == len(vals) // 2 and abs(vals.mean()) < 1e-12
        rows.append(f"| {b} | {_g(np.abs(vals).min())} | {pos} of {len(vals)} | {len(vals) - pos} of {len(vals)} "
                    f"| 0 (below 1e-12) | {_g(1 / (8 * k))} |")
    return "\n".join([
        "## 9. The sign of the first-stage correlations (Lemma B.5 (1), Corollary B.6)",
        "",
        "**Stated:** after the first stage, `E[f^(1)(x) x_i] >= 1/(8k) + O(tau_g d / |zeta_{k-1}|) + O(m^(-1/2))`",
        "for `i in S`; the proof assumes 'W.L.O.G.' `sign(w_ij) = sign(a_i zeta_{k-1})` for all `j in [k]` and adds",
        "the neurons' contributions as if they had one sign.",
        "",
        "**Exact:** with `2 eta_1 lambda_1 = 1` the mirrored pair of neuron `i` is `a_i (relu(w1.x + b) - relu(-w1.x + b))`,",
        "an odd function of `w1.x`, so the sign of its correlation with `x_j` is `sign(a_i) sign(w1_ij) =",
        "sign(zeta_{k-1}) chi_{S-j}(w0_i)`: it depends on the signs of the *initial* in-support weights and is",
        "+ and - equally often over the initialization. The 'W.L.O.G.' holds for one neuron, not for all at once.",
        "Hence `E_init E_x[f^(1) x_i] = 0` and, for width `m` (`m/2` pairs, `a = +-1/m`), `E_x[f^(1) x_i]` has a random",
        "sign and size `~ c / sqrt(2m)`, where `c` is one pair's correlation: no `Omega(1/k)` degree-1 signal for",
        "the student of Theorem B.1 to learn from. Exact enumeration of {+-1}^11, k = 4, over the 16 sign patterns",
        "of the in-support initial weights (off-support weights +1), one pair with `a = 1`, `j = 0`:",
        "",
        "| b | abs value of each pattern | patterns with + | patterns with - | mean over patterns | paper's bound 1/(8k) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Implemented: `theory.gradient.stage_one_pair_correlations`.",
    ])


def _statements() -> str:
    return "\n".join([
        "## 10. Inconsistent statements of the main result",
        "",
        "* Theorem 3.2 (informal) gives `Theta~(2^k d^2 eps^-2 + k^3)` for progressive distillation;",
        "  Theorem B.1 gives `Theta(k^2 log(d m~/delta) + 2^k d^2 k^4 eps^-2 log(k/delta))` (powers of `k` differ).",
        "  `theory.bounds.progressive_upper` implements Theorem B.1; both have `d`-exponent 2.",
        "* Theorem B.1(2) states `Omega(d^min(2c, k-1))` for one-shot distillation; its proof ends with",
        "  `Omega(d^min(2c, k-1) / m~)`. `theory.bounds.oneshot_lower(width=...)` gives the proof's form.",
        "* Theorem 3.2 writes the one-shot bound as `Omega(d^(k-1), eps^-2)`; Theorem B.1 as",
        "  `Omega(d^min(2c, k-1))` for a teacher of loss `O(d^-c)`. The two agree with `eps = d^-c`.",
    ])


def render() -> str:
    header = "\n".join([
        "# Errata: the paper's Appendix B against exact computation",
        "",
        "Generated by `python -m theory.errata --write theory/ERRATA.md` from the code in `theory/`;",
        "`tests/test_errata.py` checks that this file matches what the code computes. Conventions as in",
        "`theory/fourier.py`.",
    ])
    parts = [header, _zeta_order(), _even_degrees(), _claim_b3_sign(), _ratio(), _gap_range(),
             _lemma_b7_power(), _lemma_b2(), _lemma_b5(), _statements()]
    return "\n\n".join(parts) + "\n"


def write(path) -> Path:
    """Write :func:`render`'s text to ``path`` (a new file, or one replaced whole); returns the path."""
    path = Path(path)
    path.write_text(render())
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Print theory/ERRATA.md as computed by the code, or write it")
    parser.add_argument("--write", metavar="PATH", default=None,
                        help="write it to PATH (the repository's copy: theory/ERRATA.md) instead of printing it")
    args = parser.parse_args(argv)
    if args.write:
        print(f"wrote {write(args.write)}")
    else:
        print(render(), end="")


if __name__ == "__main__":
    main()
