"""Tests of distill.measures (eqs. 5, 6, 11, 12) and distill.probes (App. D.3, Figure 11)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from distill.measures import (
    autoregressive_measures, masked_lm_measures, ngram_bounds, ngram_mask, ngram_window,
    sample_positions, tv_distance,
)
from distill.probes import (
    NonTerminalProbe, attention_paths, nonterminal_probe_accuracy, support_attention_summary,
    train_nonterminal_probe,
)
from theory._checks import ParameterError

V_TERM, MASK, PAD, BOS = 4, 4, 5, 6        # terminals 0..3, then mask, pad, bos (the sampler's ids)


pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sentences(n: int, t: int, lo: int, seed: int):
    """Random terminal sentences, right-padded with PAD; lengths uniform in [lo, t]."""
    g = gen(seed)
    lengths = torch.randint(lo, t + 1, (n,), generator=g)
    valid = torch.arange(t)[None] < lengths[:, None]
    x = torch.randint(0, V_TERM, (n, t), generator=g)
    return x.masked_fill(~valid, PAD), valid


# ----------------------------------------------------------------------------- n-gram windows

def test_ngram_window_definition_4_2():
    assert ngram_window(0, 3, 5) == (0, 1)
    assert ngram_window(2, 3, 5) == (1, 3)
    assert ngram_window(5, 4, 10) == (3, 6)          # ceil(3/2) = 2 left, floor(3/2) = 1 right
    assert ngram_window(4, 7, 5) == (1, 4)
    assert ngram_window(3, 1, 5) == (3, 3)
    for n in range(1, 9):
        for length in range(1, 11):
            i = torch.arange(length)
            lo, hi = ngram_bounds(i, n, torch.full((length,), length))
            mask = ngram_mask(i, n, torch.full((length,), length), length)
            for ii in range(length):
                # distance rule: up to (n-1)/2 on each side, the extra half step of an even n goes left
                reach = [(n - 1) / 2 + (0.5 if j < ii and n % 2 == 0 else 0) for j in range(length)]
                js = [j for j in range(length) if abs(j - ii) <= reach[j]]
                assert ngram_window(ii, n, length) == (min(js), max(js)) == (int(lo[ii]), int(hi[ii]))
                assert mask[ii].nonzero().flatten().tolist() == js
    with pytest.raises(ParameterError, match="n must be an integer in"):
        ngram_window(0, 0, 5)
    with pytest.raises(ParameterError, match="i must be an integer in"):
        ngram_window(5, 3, 5)


def test_sample_positions_uniform_without_replacement():
    n, t, k = 4000, 12, 2
    eligible = torch.zeros(n, t, dtype=torch.bool)
    eligible[:, 1:11] = True
    eligible[0] = False
    eligible[1, :] = False
    eligible[1, 5] = True
    s, p = sample_positions(eligible, k, gen(0))
    assert s.numel() == 2 * (n - 2) + 1
    assert torch.all(eligible[s, p])
    pairs = set(zip(s.tolist(), p.tolist()))
    assert len(pairs) == s.numel()                                       # no repeats
    counts = torch.bincount(p[s >= 2], minlength=t)[1:11].double()
    # each of the 10 positions is drawn with probability 0.2 by each of 3998 sentences:
    # mean 799.6, sd 25.3; a 5 sd bound fails with probability < 1e-5 per position
    assert torch.all((counts - 799.6).abs() < 5 * 25.3), counts


# ----------------------------------------------------------------------------- masked-LM measures

def const_predict(runs: int = 2, c: int = 4):
    def predict(tokens, valid):
        p = torch.softmax(torch.arange(c, dtype=torch.float64), 0)
        return p.expand(runs, *tokens.shape, c).clone()
    return predict


def token_at_i_predict(tokens, valid):
    """Depends on the token at i only (always [mask] in the measures): both measures are 0."""
    table = torch.softmax(torch.randn(8, 4, generator=gen(3), dtype=torch.float64), -1)
    return torch.stack([table[tokens], table[(tokens + 1) % 8]])


def neighbour_predict(w: torch.Tensor):
    """Run r: p^(i) = softmax(w[r, x_{i-1}] + w[r, x_{i+1}]); out-of-sentence neighbours count 0.
    ``w`` (R, vocab, C)."""
    def predict(tokens, valid):
        e = w[:, tokens] * valid[None, ..., None]                       # (R, B, T, C)
        z = torch.zeros_like(e[:, :, :1])
        left = torch.cat([z, e[:, :, :-1]], 2)
        right = torch.cat([e[:, :, 1:], z], 2)
        return torch.softmax(left + right, -1)
    return predict


def conv_predict(kernel: torch.Tensor, bias: torch.Tensor, causal: bool):
    """Run r: logits_i = bias[r, i] + sum_{valid j} kernel[r, j - i + T_max - 1, x_j] (keys j <= i
    when causal). A linear model of the whole context with absolute positions, for brute force."""
    r, span, vocab, c = kernel.shape
    t_max = (span + 1) // 2

    def predict(tokens, valid):
        t = tokens.shape[1]
        off = torch.arange(t)[None, :] - torch.arange(t)[:, None] + t_max - 1     # (i, j)
        k = kernel[:, off]                                                         # (R, i, j, V, C)
        onehot = torch.nn.functional.one_hot(tokens, vocab).double() * valid[..., None]
        if causal:
            k = k * torch.ones(t, t).tril()[None, :, :, None, None].double()
        logits = torch.einsum("bjv,rijvc->rbic", onehot, k) + bias[:, None, :t]
        return torch.softmax(logits, -1)
    return predict


def random_conv(seed: int, t_max: int, runs: int = 2, vocab: int = 7, c: int = 4, masked=(MASK,)):
    g = gen(seed)
    kernel = torch.randn(runs, 2 * t_max - 1, vocab, c, generator=g, dtype=torch.float64)
    kernel[:, :, list(masked)] = 0.0
    bias = torch.randn(runs, t_max, c, generator=g, dtype=torch.float64)
    return kernel, bias


def test_masked_measures_zero_for_context_free_models():
    x, valid = sentences(20, 10, 3, seed=1)
    for predict in (const_predict(), token_at_i_predict):
        out = masked_lm_measures(predict, x, valid, ns=(1, 3, 5), generator=gen(0), mask_id=MASK,
                                 return_raw=True)
        for n in (1, 3, 5):
            assert out[f"m_robust_{n}"].shape == (2,)
            assert np.all(out[f"raw_m_robust_{n}"] == 0) and np.all(out[f"raw_m_close_{n}"] == 0)


def test_masked_measures_neighbour_model_closed_form():
    """w[t] = (ln2 / 2, 0) for every terminal, 0 for [mask]/padding. Interior i: p_a = softmax(ln2, 0)
    = (2/3, 1/3), p_b = (1/2, 1/2): M_robust = 1/6. Sentence ends (one neighbour): p_a = softmax(ln2/2, 0)
    = (sqrt2, 1) / (1 + sqrt2), M_robust = sqrt2 / (1 + sqrt2) - 1/2. M_close = 0 for n >= 3 (both
    neighbours stay visible) and = M_robust for n = 1 (every other token masked)."""
    w = torch.zeros(2, 7, 2, dtype=torch.float64)
    w[0, :V_TERM, 0] = math.log(2) / 2
    w[1, :V_TERM, 0] = math.log(2)                                   # run 1: interior TV(4/5,.) = 3/10
    x, valid = sentences(30, 12, 4, seed=2)
    out = masked_lm_measures(neighbour_predict(w), x, valid, ns=(1, 3, 5, 7), generator=gen(1),
                             mask_id=MASK, positions_per_sentence=3, return_raw=True)
    s, i = out["pairs"].T
    lengths = valid.sum(1).numpy()[s]
    edge = (i == 0) | (i == lengths - 1)
    expect = np.stack([np.where(edge, math.sqrt(2) / (1 + math.sqrt(2)) - 0.5, 1 / 6),
                       np.where(edge, 2 / 3 - 0.5, 0.8 - 0.5)])
    assert 0 < edge.sum() < len(edge) / 2
    for n in (3, 5, 7):
        np.testing.assert_allclose(out[f"raw_m_robust_{n}"], expect, atol=1e-12)
        assert np.all(out[f"raw_m_close_{n}"] == 0)
        np.testing.assert_allclose(out[f"m_robust_{n}"], [1 / 6, 0.3], atol=1e-12)  # interior majority
    np.testing.assert_allclose(out["raw_m_close_1"], expect, atol=1e-12)


def brute_masked(predict, x, valid, pairs, n):
    """Eq. 5 / 6 one pair at a time with Python lists and the scalar Definition 4.2."""
    rob, clo = [], []
    for s, i in pairs:
        h = int(valid[s].sum())
        lo, hi = ngram_window(int(i), n, h)
        row = x[s].tolist()
        a = [MASK if j == i else v for j, v in enumerate(row)]
        b = [MASK if lo <= j <= hi else v for j, v in enumerate(row)]
        c = [v if (lo <= j <= hi and j != i and j < h) else (MASK if j < h else v) for j, v in enumerate(row)]
        p = [predict(torch.tensor([r]), valid[s:s + 1])[:, 0, i] for r in (a, b, c)]
        rob.append(tv_distance(p[0], p[1]))
        clo.append(tv_distance(p[0], p[2]))
    return torch.stack(rob, 1).numpy(), torch.stack(clo, 1).numpy()


def test_masked_measures_match_brute_force_on_a_whole_context_model():
    kernel, bias = random_conv(5, 11)
    predict = conv_predict(kernel, bias, causal=False)
    x, valid = sentences(12, 11, 2, seed=3)
    out = masked_lm_measures(predict, x, valid, ns=(2, 3, 6), generator=gen(2), mask_id=MASK,
                             batch_size=7, return_raw=True)
    for n in (2, 3, 6):
        rob, clo = brute_masked(predict, x, valid, out["pairs"], n)
        np.testing.assert_allclose(out[f"raw_m_robust_{n}"], rob, atol=1e-12)
        np.testing.assert_allclose(out[f"raw_m_close_{n}"], clo, atol=1e-12)
        np.testing.assert_allclose(out[f"m_close_{n}"], np.median(clo, axis=1), atol=1e-12)
        assert np.all(out[f"m_close_{n}"] > 0.01) and np.all(out[f"m_robust_{n}"] > 0.01)
    # a wider visible window is closer to the full context (here on average over pairs)
    assert np.all(out["raw_m_close_6"].mean(1) < out["raw_m_close_2"].mean(1))


def test_masked_measures_validation():
    x, valid = sentences(4, 6, 2, seed=0)
    with pytest.raises(ParameterError, match="ns"):
        masked_lm_measures(const_predict(), x, valid, ns=(), generator=gen(0), mask_id=MASK)
    with pytest.raises(ParameterError, match="n must be an integer in"):
        masked_lm_measures(const_predict(), x, valid, ns=(0,), generator=gen(0), mask_id=MASK)
    with pytest.raises(ParameterError, match="tokens and valid"):
        masked_lm_measures(const_predict(), x, valid[:, :3], generator=gen(0), mask_id=MASK)


# ----------------------------------------------------------------------------- autoregressive

def brute_autoregressive(predict, x, pairs, n):
    """Eq. 11 and 12 with explicit shorter sequences (1-based x_1..x_e, e = index + 1)."""
    clo, rob = [], []
    for s, last in pairs:
        seq = x[s].tolist()
        e = int(last) + 1
        full = [BOS] + seq[:e]
        close = [BOS] + seq[max(e - n + 1, 0):e]                  # x_{e-n+2..e}, 1-based
        kept = sorted(set(range(1, e - n + 2)) | {e})           # positions {1..e-n+1} and e
        skip = [BOS] + [seq[j - 1] for j in kept]
        p = [predict(torch.tensor([r]), torch.ones(1, len(r), dtype=torch.bool))[:, 0, -1]
             for r in (full, close, skip)]
        clo.append(tv_distance(p[0], p[1]))
        rob.append(tv_distance(p[0], p[2]))
    return torch.stack(clo, 1).numpy(), torch.stack(rob, 1).numpy()


def test_autoregressive_measures_match_brute_force():
    kernel, bias = random_conv(7, 12, masked=())
    predict = conv_predict(kernel, bias, causal=True)
    x, valid = sentences(10, 11, 1, seed=4)
    out = autoregressive_measures(predict, x, valid, ns=(1, 2, 3, 5), generator=gen(3), bos_id=BOS,
                                  pad_id=PAD, batch_size=9, return_raw=True, context="subsequence")
    assert out["m_close_3"].shape == (2,)
    for n in (1, 2, 3, 5):
        clo, rob = brute_autoregressive(predict, x, out["pairs"], n)
        np.testing.assert_allclose(out[f"raw_m_close_{n}"], clo, atol=1e-12)
        np.testing.assert_allclose(out[f"raw_m_robust_{n}"], rob, atol=1e-12)
        np.testing.assert_allclose(out[f"m_robust_{n}"], np.median(rob, axis=1), atol=1e-12)
    assert np.all(out["raw_m_robust_2"] == 0)          # skip 2-gram removes nothing
    assert np.all(out["m_close_3"] > 0.005) and np.all(out["m_robust_5"] > 0.01)  # not degenerate


def test_autoregressive_measures_fit_full_length_sentences():
    """Every sentence at the model's full length T: the sampled ends have a next token (e <= T - 1), so no
    input is longer than T slots (the model's max_len; a short grammar's sentences often reach it)."""
    kernel, bias = random_conv(7, 12, masked=())
    inner = conv_predict(kernel, bias, causal=True)
    x, _ = sentences(6, 8, 1, seed=5)
    valid = torch.ones_like(x, dtype=torch.bool)

    def predict(tok, vd):
        assert tok.shape[1] <= x.shape[1], f"input of {tok.shape[1]} slots exceeds T = {x.shape[1]}"
        return inner(tok, vd)

    for context in ("attention-mask", "subsequence"):
        out = autoregressive_measures(predict, x, valid, ns=(2, 3), generator=gen(1), bos_id=BOS, pad_id=PAD,
                                      positions_per_sentence=8, return_raw=True, context=context)
        assert out["pairs"][:, 1].max() == x.shape[1] - 2  # the last context token precedes the last token
    with pytest.raises(ParameterError, match="at least two tokens"):
        autoregressive_measures(predict, x[:, :1], valid[:, :1], generator=gen(1), bos_id=BOS, pad_id=PAD)


def test_autoregressive_measures_local_models():
    """A model of the last token only: both measures 0 for n >= 2 (x_e is always kept). A model of the
    last two tokens: M_close = 0 for n >= 3; M_robust(n) = TV(f(x_{e-1}, x_e), f(x_{e-n+1}, x_e))."""
    table = torch.softmax(torch.randn(2, 7, 7, 3, generator=gen(9), dtype=torch.float64), -1)

    def last_two(tokens, valid):
        prev = torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], 1)
        return table[:, prev, tokens]                                  # (R, B, T, 3)

    def last_one(tokens, valid):
        return table[:, tokens, tokens]

    x, valid = sentences(15, 9, 2, seed=5)
    out1 = autoregressive_measures(last_one, x, valid, ns=(2, 3, 6), generator=gen(1), bos_id=BOS,
                                   return_raw=True, context="subsequence")
    for n in (2, 3, 6):
        assert np.all(out1[f"raw_m_close_{n}"] == 0) and np.all(out1[f"raw_m_robust_{n}"] == 0)
    out2 = autoregressive_measures(last_two, x, valid, ns=(3, 4), generator=gen(1), bos_id=BOS,
                                   return_raw=True, context="subsequence")
    s, last = out2["pairs"].T
    for n in (3, 4):
        assert np.all(out2[f"raw_m_close_{n}"] == 0)
        prev = np.array([x[a, b - 1].item() if b >= 1 else BOS for a, b in zip(s, last)])
        skip = np.array([x[a, b - n + 1].item() if b - n + 1 >= 0 else BOS for a, b in zip(s, last)])
        cur = x[s, last].numpy()
        expect = tv_distance(table[:, prev, cur], table[:, skip, cur]).numpy()
        np.testing.assert_allclose(out2[f"raw_m_robust_{n}"], expect, atol=1e-12)
        assert np.all(out2[f"m_robust_{n}"] > 0.01)
    out3 = autoregressive_measures(const_predict(), x, valid, ns=(3,), generator=gen(1), bos_id=BOS)
    assert np.all(out3["m_close_3"] == 0) and np.all(out3["m_robust_3"] == 0)


def brute_autoregressive_masked(predict, x, pairs, n):
    """Eq. 11 and 12 with positions kept (footnote 15): hidden tokens are PAD with valid False."""
    clo, rob = [], []
    for s, last in pairs:
        e = int(last) + 1
        full = [BOS] + x[s].tolist()[:e]

        def p_at(keep):
            tok = torch.tensor([[t if k else PAD for t, k in zip(full, keep)]])
            return predict(tok, torch.tensor([keep]))[:, 0, e]

        base = p_at([True] * (e + 1))
        close = p_at([j == 0 or j >= e - n + 2 for j in range(e + 1)])
        skip = p_at([j == 0 or j <= e - n + 1 or j == e for j in range(e + 1)])
        clo.append(tv_distance(base, close))
        rob.append(tv_distance(base, skip))
    return torch.stack(clo, 1).numpy(), torch.stack(rob, 1).numpy()


def test_autoregressive_measures_keep_positions_by_default():
    """Footnote 15: removed tokens are masked out of attention, positions unchanged; a model that sees
    only valid tokens at their positions gives the brute-force values, which differ from the
    shifted-subsequence reading for a position-dependent model."""
    kernel, bias = random_conv(7, 12, masked=())
    predict = conv_predict(kernel, bias, causal=True)

    def seen_only(tokens, valid):          # a model that cannot look at invalid slots
        return predict(tokens.masked_fill(~valid, PAD), valid)

    x, valid = sentences(10, 11, 4, seed=4)
    out = autoregressive_measures(seen_only, x, valid, ns=(3, 5), generator=gen(3), bos_id=BOS, pad_id=PAD,
                                  batch_size=9, return_raw=True)
    for n in (3, 5):
        clo, rob = brute_autoregressive_masked(seen_only, x, out["pairs"], n)
        np.testing.assert_allclose(out[f"raw_m_close_{n}"], clo, atol=1e-12)
        np.testing.assert_allclose(out[f"raw_m_robust_{n}"], rob, atol=1e-12)
    sub = autoregressive_measures(seen_only, x, valid, ns=(5,), generator=gen(3), bos_id=BOS, pad_id=PAD,
                                  return_raw=True, context="subsequence")
    assert not np.allclose(sub["raw_m_close_5"], out["raw_m_close_5"])


# ----------------------------------------------------------------------------- non-terminal probe

def probe_data(n: int, t: int, d: int, c: int, seed: int, informative=(True, False)):
    """Two levels; level-1 labels iid uniform in [0, c) at ~30% of valid positions (boundaries).
    Run r's features: N(0, 1) noise, plus 4 * M[label] at boundaries when informative[r] (|M[c]| = 1,
    shared by train and test; Bayes error ~ 3 Q(2 sqrt 2) < 1%); padding features are 0."""
    g = gen(seed)
    lengths = torch.randint(t // 2, t + 1, (n,), generator=g)
    valid = torch.arange(t)[None] < lengths[:, None]
    anc = torch.randint(0, c, (n, 2, t), generator=g).masked_fill(~valid[:, None], -1)
    bnd = (torch.rand(n, 2, t, generator=g) < 0.3) & valid[:, None]
    means = torch.randn(c, d, generator=gen(1000))                    # shared by train and test
    means = 4 * means / means.norm(dim=1, keepdim=True)
    feats = []
    for info in informative:
        f = torch.randn(n, t, d, generator=g)
        if info:
            f = f + means[anc[:, 1].clamp(min=0)] * bnd[:, 1, :, None]
        feats.append(f.masked_fill(~valid[..., None], 0.0))
    tokens = torch.arange(n)[:, None].expand(n, t).clone()
    return SimpleNamespace(tokens=tokens, valid=valid, ancestors=anc, boundary=bnd), torch.stack(feats)


def test_probe_decodable_features_and_noise_at_chance():
    """Run 0 decodable (measured 0.98-0.99 over 5 seeds), run 1 pure noise; one batched program."""
    train, f_tr = probe_data(384, 12, 16, 4, seed=0)
    test, f_te = probe_data(384, 12, 16, 4, seed=1)
    acc = train_nonterminal_probe(f_tr, train.ancestors, train.boundary, f_te, test.ancestors,
                                  test.boundary, level=1, n_classes=4, steps=120, batch_size=128,
                                  generator=gen(0))
    assert acc.shape == (2,)
    n_test = int(test.boundary[:, 1].sum())
    assert n_test > 800
    assert acc[0] > 0.95, acc
    # run 1's test features are independent of the iid uniform test labels, so its number of correct
    # predictions is Binomial(n_test, 1/4) whatever the probe learned: a 4-sd bound
    assert abs(acc[1] - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n_test), acc


def test_nonterminal_probe_accuracy_wrapper_and_validation():
    train, f_tr = probe_data(256, 10, 8, 3, seed=2, informative=(True,))
    test, f_te = probe_data(256, 10, 8, 3, seed=3, informative=(True,))
    test.tokens = test.tokens + 10_000                 # the token rows carry the sentence index

    def embed(tokens, valid):                          # the wrapper embeds in chunks of the batch
        ids = tokens[:, 0]
        return torch.where(ids[None, :, None, None] >= 10_000, f_te[:, ids % 10_000], f_tr[:, ids % 10_000])

    acc = nonterminal_probe_accuracy(embed, train, test, [1, 0], n_classes=[3, 3],
                                     generator=gen(4), embed_batch_size=100, steps=100,
                                     batch_size=128)
    assert acc.shape == (1, 2)
    assert acc[0, 0] > 0.95
    # level 0 labels are not in the features: chance 1/3 within a 4-sd binomial bound
    n0 = int(test.boundary[:, 0].sum())
    assert abs(acc[0, 1] - 1 / 3) < 4 * math.sqrt(2 / 9 / n0)
    with pytest.raises(ParameterError, match="level must be an integer in"):
        train_nonterminal_probe(f_tr, train.ancestors, train.boundary, f_te, test.ancestors,
                                test.boundary, level=2, n_classes=3, generator=gen(0))
    with pytest.raises(ParameterError, match="n_classes"):
        train_nonterminal_probe(f_tr, train.ancestors, train.boundary, f_te, test.ancestors,
                                test.boundary, level=1, n_classes=2, generator=gen(0))


def test_position_token_baseline_reads_the_surface_and_nothing_more():
    """The baseline features (one-hot token beside one-hot position) decode a label that is the token at
    the boundary (planted: > 0.95) and stay at chance on a label independent of the string (iid uniform
    labels: within a 4-sd binomial bound of 1/3)."""
    from distill.probes import position_token_features

    def data(seed):
        g = gen(seed)
        n, t = 256, 10
        valid = torch.ones(n, t, dtype=torch.bool)
        valid[n // 2:, 8:] = False
        tokens = torch.randint(0, 3, (n, t), generator=g).masked_fill(~valid, 4)   # 4: padding id
        anc = torch.stack([torch.randint(0, 3, (n, t), generator=g), tokens]).transpose(0, 1).clone()
        anc = anc.masked_fill(~valid[:, None], -1)                                  # level 1: the token itself
        bnd = (torch.rand(n, 2, t, generator=g) < 0.4) & valid[:, None]
        return SimpleNamespace(tokens=tokens, valid=valid, ancestors=anc, boundary=bnd)

    embed = position_token_features(5, 10)
    train, test = data(10), data(11)
    f = embed(test.tokens[:2], test.valid[:2])
    assert f.shape == (1, 2, 10, 15) and torch.equal(f[0, 0, 3, :5], torch.eye(5)[test.tokens[0, 3]])
    assert f[0, 0, 3, 5:].argmax() == 3 and float(f[0, 1].sum()) == 20.0  # two ones per valid position
    assert float(embed(test.tokens[-1:], test.valid[-1:])[0, 0, 8:].abs().sum()) == 0.0  # padding: zeros
    acc = nonterminal_probe_accuracy(embed, train, test, [1, 0], n_classes=[3, 3], generator=gen(4), steps=150,
                                     batch_size=128)
    assert acc.shape == (1, 2) and acc[0, 0] > 0.95, acc
    n0 = int(test.boundary[:, 0].sum())
    assert abs(acc[0, 1] - 1 / 3) < 4 * math.sqrt(2 / 9 / n0), acc


def test_position_token_baseline_takes_train_and_test_sets_of_different_lengths():
    """A probe's train and test sentences are padded to their own longest sentence: the baseline's width is
    fixed by max_len, so a test set one position shorter than the train set is probed (the cpu tier's
    pcfg-r5-nonterminal-probe once failed here with 'subscript d has size 72 ... 71'), and at equal lengths the
    features are the one-hot position of width T as before."""
    from distill.probes import position_token_features

    g = gen(3)
    n, levels = 64, 2

    def parsed(t):
        tokens = torch.randint(0, 4, (n, t), generator=g)
        anc = torch.stack([tokens % 2, tokens % 3], dim=1)            # (N, levels, T): labels read off the token
        return SimpleNamespace(tokens=tokens, valid=torch.ones(n, t, dtype=torch.bool), ancestors=anc,
                               boundary=torch.ones(n, levels, t, dtype=torch.bool))

    train, test = parsed(12), parsed(11)
    embed = position_token_features(4, 12)
    assert embed(test.tokens, test.valid).shape == (1, n, 11, 16)
    acc = nonterminal_probe_accuracy(embed, train, test, [0, 1], n_classes=[2, 3], generator=gen(4), steps=100)
    assert acc.shape == (1, 2) and (acc > 0.9).all(), acc
    with pytest.raises(ParameterError, match="tokens must have at most max_len = 10 positions, got 11"):
        position_token_features(4, 10)(test.tokens, test.valid)
    same = position_token_features(4, 11)(test.tokens, test.valid)[0, :, :, 4:]
    assert torch.equal(same, torch.eye(11).expand(n, 11, 11))


def test_probe_mixing_weights_follow_d3():
    """G_i = sum_{r,k} softmax_k<P_i,r, P_k,r> f_r(e_k) over non-padding k, checked by a loop."""
    probe = NonTerminalProbe(1, 2, 5, 3, 2, d_p=4, generator=gen(0)).double()
    feats = torch.randn(1, 2, 5, 3, generator=gen(1), dtype=torch.float64)
    keys = torch.tensor([[True] * 5, [True, True, True, False, False]])
    g = probe(feats, keys)
    for b in range(2):
        for i in range(5):
            tot = torch.zeros(2, dtype=torch.float64)
            for r in range(2):
                ks = [k for k in range(5) if keys[b, k]]
                s = torch.stack([probe.P[0, r, i] @ probe.P[0, r, k] for k in ks])
                w = torch.softmax(40 * torch.tanh(s / 40), 0)
                for wk, k in zip(w, ks):
                    tot += wk * (feats[0, b, k] @ probe.W[0, r] + probe.b[0, r])
            assert torch.allclose(g[0, b, i], tot, atol=1e-10)
    # padded features do not reach any position
    feats2 = feats.clone()
    feats2[0, 1, 3:] = 1e3
    assert torch.equal(probe(feats2, keys), g)


# ----------------------------------------------------------------------------- attention on support

def test_attention_paths_hand_set():
    eye, perm = torch.eye(3), torch.tensor([[0.0, 1, 0], [0, 0, 1], [1, 0, 0]])
    a1 = torch.stack([eye, perm])[None, None]                   # (1, 1, 2, 3, 3): mean (I + P) / 2
    a2 = torch.stack([torch.tensor([[1.0, 0, 0], [0, 1, 0], [0.2, 0.3, 0.5]])] * 2)[None, None]
    paths = attention_paths([a1, a2], query=-1)
    # row 2 of A2 = (0.2, 0.3, 0.5); (I + P)/2 rows: [.5,.5,0], [0,.5,.5], [.5,0,.5]
    # -> 0.2*[.5,.5,0] + 0.3*[0,.5,.5] + 0.5*[.5,0,.5] = [0.35, 0.25, 0.40]
    assert torch.allclose(paths, torch.tensor([[[0.35, 0.25, 0.40]]]))
    assert torch.allclose(attention_paths([a1], query=1), torch.tensor([[[0.0, 0.5, 0.5]]]))
    g = gen(0)
    layers = [torch.softmax(torch.randn(2, 3, 4, 6, 6, generator=g), -1) for _ in range(3)]
    p = attention_paths(layers, query=4)
    prod = layers[2].mean(2) @ layers[1].mean(2) @ layers[0].mean(2)
    assert torch.allclose(p, prod[:, :, 4], atol=1e-6)
    assert torch.allclose(p.sum(-1), torch.ones(2, 3), atol=1e-6)


def test_support_attention_summary_hand_set():
    paths = torch.tensor([[[0.0, 0.5, 0.1, 0.3, 0.1],
                           [0.2, 0.3, 0.1, 0.3, 0.1],
                           [0.0, 0.4, 0.2, 0.2, 0.2]]])           # (R=1, B=3, T=5), bits at 1..4
    out = support_attention_summary(paths, support=[0, 2], positions_of_bits=[1, 2, 3, 4])
    np.testing.assert_allclose(out["per_bit"], [[0.4, 0.1, 0.3, 0.1]])
    np.testing.assert_allclose(out["attn_in_support"], [0.35])
    np.testing.assert_allclose(out["attn_off_support"], [0.1])
    with pytest.raises(ParameterError, match="support"):
        support_attention_summary(paths, support=[4], positions_of_bits=[1, 2, 3, 4])
