"""PCFG grammars, the annotated sampler and the inside algorithm against brute-force enumeration."""
import itertools
import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from distill.grammar import Grammar, available_grammars, grammar_search_path, load_grammar, random_grammar
from distill.inside import inside, masked_posterior, sentence_log_prob, span_log_prob
from distill.sampler import length_stats, sample
from theory import ParameterError

SHARED = ["cfg3b", "cfg3b_official", "cfg3f", "cfg3g", "cfg3h", "cfg3i"]
# file convention (pre-terminals x -> x), an ambiguous sentence (xyxy) and a rule with repeated symbols
G1 = {"name": "g1", "start": "S", "terminals": ["x", "y"], "rules": {
    "S": [["A", "B", 0.5], ["B", "A", 0.3], ["A", "A", "B", 0.2]],
    "A": [["x", "y", 0.7], ["y", 0.3]], "B": [["x", 0.4], ["x", "y", 0.6]],
    "x": [["x", 1.0]], "y": [["y", 1.0]]}}
# ordinary pre-terminals with several emissions (one of two terminals), a unit rule S -> C
G2 = {"name": "g2", "start": "S", "terminals": ["x", "y", "z"], "rules": {
    "S": [["A", "B", 0.6], ["C", 0.4]], "A": [["X", "Y", 0.5], ["Y", 0.5]], "B": [["X", 1.0]],
    "C": [["Y", "X", "Y", 1.0]], "X": [["x", 0.8], ["y", 0.2]], "Y": [["y", 0.9], ["y", "z", 0.1]]}}
TINY = [G1, G2]


def _derivations(g: Grammar):
    """Every derivation tree: (tokens, prob, anc (D, n), bnd (D, n)), by plain recursion."""
    D = g.depth

    def expand(X, l):
        me, out = g.levels[l].index(X), []
        for rhs, p in g.rules[X]:
            parts = [[((s,), 1.0, [[]])] for s in rhs] if l == D - 1 else [expand(c, l + 1) for c in rhs]
            for combo in itertools.product(*parts):
                toks = sum((list(c[0]) for c in combo), [])
                below = sum((c[2] for c in combo), [])
                ann = [[(me, i == len(toks) - 1)] + below[i] for i in range(len(toks))]
                out.append((tuple(toks), p * math.prod(c[1] for c in combo), ann))
        return out

    return [(t, p, np.array([[a for a, _ in tok] for tok in ann]).T, np.array([[b for _, b in tok] for tok in ann]).T)
            for t, p, ann in expand(g.start, 0)]


def _language(g: Grammar) -> dict:
    dist = {}
    for t, p, _, _ in _derivations(g):
        dist[t] = dist.get(t, 0.0) + p
    return dist


def _encode(g: Grammar, sents):
    T = max(map(len, sents))
    tok = torch.full((len(sents), T), g.vocab.pad_id)
    for i, s in enumerate(sents):
        tok[i, : len(s)] = torch.tensor(g.vocab.encode(s))
    return tok, torch.tensor([len(s) for s in sents])


def _raw_span(rules: dict, sym: str, owner, fn, memo=None) -> int:
    """Fewest/most terminals from the raw JSON dict (independent of Grammar's level machinery)."""
    memo = {} if memo is None else memo
    if sym not in rules or sym == owner:
        return 1
    if sym not in memo:
        memo[sym] = fn(sum(_raw_span(rules, s, sym, fn, memo) for s in r[:-1]) for r in rules[sym])
    return memo[sym]


# ----------------------------------------------------------------------------- grammars

@pytest.mark.parametrize("name", SHARED)
def test_shared_grammar_loads_with_depth_7(name):
    if name not in available_grammars():
        pytest.skip(f"{name}.json not on the grammar search path {[str(d) for d in grammar_search_path()]}")
    g = load_grammar(name)
    raw = json.loads(available_grammars()[name].read_text())
    assert g.depth == 7 and [len(lv) for lv in g.levels] == [1, 3, 3, 3, 3, 3, 3]
    assert g.levels[6] == ("a", "b", "c") and g.terminals == ("a", "b", "c")
    assert (g.vocab.mask_id, g.vocab.pad_id, g.vocab.bos_id, g.vocab.size) == (3, 4, 5, 6)
    assert g.min_length == _raw_span(raw["rules"], "s", None, min)
    assert g.max_length == _raw_span(raw["rules"], "s", None, max)
    degrees = {len(g.rules[a]) for a in g.nonterminals[:-3]}
    # Appendix D.4; the official code's cfg3b lacks f's second rule f -> b a (see ../shared/data/README.md)
    expected = {"cfg3b": {2}, "cfg3b_official": {1, 2}, "cfg3i": {2}, "cfg3h": {2, 3}, "cfg3g": {3},
                "cfg3f": {3, 4}}[name]
    assert degrees == expected
    if name.startswith("cfg3b"):
        assert g.levels == (("s",), ("p", "q", "r"), ("m", "n", "o"), ("j", "k", "l"), ("g", "h", "i"),
                            ("d", "e", "f"), ("a", "b", "c"))
        assert (g.min_length, g.max_length) == {"cfg3b": (138, 432), "cfg3b_official": (161, 432)}[name]
    assert Grammar.from_dict(g.to_dict()) == g


def _mutate(path, value):
    d = json.loads(json.dumps(G1))
    node = d
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


@pytest.mark.parametrize("path,value,name,fragment", [
    (("rules", "A"), [["x", "y", 0.7], ["y", 0.2]], "'A'", "sum to 1"),
    (("rules", "B"), [["x", 1.5]], "B -> x", "(0, 1]"),
    (("rules", "A"), [["x", "Q", 1.0]], "'Q'", "undefined"),
    (("rules", "Z"), [["x", 1.0]], "'Z'", "unreachable"),
    (("rules", "S"), [["A", "B", 0.5], ["W", 0.5]], "'W'", "undefined"),
    (("rules", "A"), [["x", "y", 0.7], [0.3]], "'A'", "empty"),
    (("rules", "x"), [["x", "y", 1.0]], "'x'", "terminal"),
    (("start",), "S2", "'S2'", "not defined"),
    (("rules", "A"), [["x", "B", 1.0]], "'B'", "not layered"),
    (("rules", "B"), [["A", 0.4], ["x", "y", 0.6]], "'A'", "appears at levels 1 and 2"),
    (("rules",), None, "'rules'", "missing"),
])
def test_bad_grammar_names_the_culprit(path, value, name, fragment):
    with pytest.raises(ParameterError) as err:
        Grammar.from_dict(_mutate(path, value))
    assert name in str(err.value) and fragment in str(err.value)


def test_non_terminating_and_mixed_depth_leaves():
    d = _mutate(("rules", "S"), [["A", "B", 0.5], ["W", 0.5]])
    d["rules"]["W"] = [["W", "A", 1.0]]
    with pytest.raises(ParameterError, match="'W' is non-terminating"):
        Grammar.from_dict(d)
    d = json.loads(json.dumps(G2))
    d["rules"]["B"] = [["z", 1.0]]  # a terminal at depth 2 while the others are at depth 3
    with pytest.raises(ParameterError, match="'B' at level 1"):
        Grammar.from_dict(d)


def test_levels_vocab_and_lengths_of_tiny_grammars():
    g1, g2 = Grammar.from_dict(G1), Grammar.from_dict(G2)
    assert g1.levels == (("S",), ("A", "B"), ("x", "y")) and g1.level_of["B"] == 1
    assert g2.levels == (("S",), ("A", "B", "C"), ("X", "Y"))
    for g, raw in ((g1, G1), (g2, G2)):
        lens = [len(t) for t in _language(g)]
        assert (g.min_length, g.max_length) == (min(lens), max(lens))
        assert g.max_length == _raw_span(raw["rules"], "S", None, max)
    v = g2.vocab
    assert v.encode(["x", "z", "[mask]", "[pad]", "[bos]"]) == [0, 2, 3, 4, 5]
    assert v.decode([2, 0, 3]) == ["z", "x", "[mask]"]
    with pytest.raises(ParameterError, match="'w'"):
        v.encode(["w"])


def test_load_grammar_paths_names_and_random_specs(tmp_path, monkeypatch):
    (tmp_path / "tiny.json").write_text(json.dumps(G1))
    monkeypatch.setenv("ICURR_GRAMMAR_PATH", str(tmp_path))
    assert load_grammar("tiny") == Grammar.from_dict(G1)
    assert load_grammar(tmp_path / "tiny.json") == load_grammar(str(tmp_path / "tiny.json"))
    with pytest.raises(ParameterError) as err:
        load_grammar("nope")
    assert str(tmp_path) in str(err.value) and "tiny" in str(err.value)
    g = load_grammar("random:levels=4,seed=3,nts=2,rules=3")
    assert g.rules == random_grammar(4, nts_per_level=2, rules_per_nt=3, generator=np.random.default_rng(3)).rules
    assert g.name == "random:levels=4,seed=3,nts=2,rules=3"
    for bad in ("random:seed=1", "random:levels=4,depth=2", "random:levels=x", "random:levels=1"):
        with pytest.raises(ParameterError):
            load_grammar(bad)


@pytest.mark.parametrize("levels", [2, 3, 4, 5])
def test_random_grammar_is_a_valid_cfg3_family_member(levels):
    gen = torch.Generator().manual_seed(levels)
    for seed in range(4):
        g = random_grammar(levels, generator=np.random.default_rng(seed))
        assert g.depth == levels and [len(lv) for lv in g.levels] == [1] + [3] * (levels - 2) + [3]
        for a in g.nonterminals[: -3]:
            rhss = [rhs for rhs, _ in g.rules[a]]
            assert len(set(rhss)) == 2 and all(2 <= len(r) <= 3 for r in rhss)
            assert all(x != y for r in rhss for x, y in zip(r, r[1:]))
            assert all(g.level_of[s] == g.level_of[a] + 1 for r in rhss for s in r)
            assert [p for _, p in g.rules[a]] == [0.5, 0.5]
        b = sample(g, 300, generator=gen)
        assert g.min_length <= int(b.lengths.min()) and int(b.lengths.max()) <= g.max_length
        if levels <= 3:
            lens = [len(t) for t in _language(g)]
            assert (g.min_length, g.max_length) == (min(lens), max(lens))
    with pytest.raises(ParameterError, match="rules_per_nt"):
        random_grammar(3, rules_per_nt=19, generator=np.random.default_rng(0))
    with pytest.raises(ParameterError, match="levels"):
        random_grammar(1, generator=np.random.default_rng(0))


# ----------------------------------------------------------------------------- sampler

@pytest.mark.parametrize("raw", TINY, ids=["g1", "g2"])
def test_sampled_trees_follow_the_exact_derivation_distribution(raw):
    g = Grammar.from_dict(raw)
    derivs = _derivations(g)
    T, D = g.max_length, g.depth

    def key(tokens, anc, bnd):
        row = np.full((2 * D + 1, T), -1)
        row[0, : len(tokens)], row[1:D + 1, : len(tokens)], row[D + 1:, : len(tokens)] = tokens, anc, bnd
        return row.tobytes()

    probs = {key(g.vocab.encode(t), a, b): p for t, p, a, b in derivs}
    assert len(probs) == len(derivs) and abs(sum(probs.values()) - 1) < 1e-12
    n = 40_000
    batch = sample(g, n, generator=torch.Generator().manual_seed(0))
    pad = g.max_length - batch.tokens.shape[1]
    tok = np.pad(batch.tokens.numpy(), ((0, 0), (0, pad)), constant_values=-1)
    tok[tok == g.vocab.pad_id] = -1
    anc = np.pad(batch.ancestors.numpy(), ((0, 0), (0, 0), (0, pad)), constant_values=-1)
    bnd = np.pad(batch.boundary.numpy().astype(int), ((0, 0), (0, 0), (0, pad)))
    bnd[anc < 0] = -1
    rows, counts = np.unique(np.concatenate([tok[:, None], anc, bnd], 1).reshape(n, -1), axis=0, return_counts=True)
    observed = {r.tobytes(): c for r, c in zip(rows, counts)}
    assert set(observed) <= set(probs)  # every sampled (sentence, annotation) is a real derivation
    obs = np.array([observed.get(k, 0) for k in probs])
    exp = n * np.array(list(probs.values()))
    chi2 = ((obs - exp) ** 2 / exp).sum()
    assert chi2 < stats.chi2.ppf(1 - 1e-6, len(probs) - 1), chi2  # false alarm rate 1e-6 at this seed


def test_parsed_batch_methods_and_argument_checks():
    g = Grammar.from_dict(G2)
    b = sample(g, 50, generator=torch.Generator().manual_seed(1), device="cpu")
    assert len(b) == 50 and b.tokens.shape[1] == int(b.lengths.max())
    assert torch.equal(b.valid.sum(1), b.lengths) and torch.all(b.tokens[~b.valid] == g.vocab.pad_id)
    short = torch.nonzero(b.lengths <= 3).flatten()
    s = b.select(short)
    assert s.tokens.shape == (len(short), 3) and torch.equal(s.ancestors, b.ancestors[short][:, :, :3])
    assert b.to("cpu").tokens is b.tokens or torch.equal(b.to("cpu").tokens, b.tokens)
    with pytest.raises(ParameterError, match="n must"):
        sample(g, 0, generator=torch.Generator())


def _check_tree(g, tokens, length, anc, bnd) -> float:
    """Check one annotated sentence against the grammar; return log P(tree)."""
    D, logp = g.depth, 0.0
    assert bnd[0, : length - 1].sum() == 0 and bnd[0, length - 1]  # root ends at the last token
    for l in range(D):
        assert np.all(anc[l, length:] == -1) and not bnd[l, length:].any()
        if l + 1 < D:
            assert np.all(bnd[l + 1, :length] >= bnd[l, :length])  # nested boundaries
        ends = np.flatnonzero(bnd[l, :length])
        for lo, hi in zip(np.r_[0, ends[:-1] + 1], ends + 1):
            assert len(set(anc[l, lo:hi])) == 1  # one ancestor per span
            parent = g.levels[l][anc[l, lo]]
            if l + 1 < D:
                kid_ends = np.flatnonzero(bnd[l + 1, lo:hi]) + lo
                rhs = tuple(g.levels[l + 1][anc[l + 1, e]] for e in kid_ends)
            else:
                rhs = tuple(g.terminals[t] for t in tokens[lo:hi])
            probs = [p for r, p in g.rules[parent] if r == rhs]
            assert probs, (parent, rhs)
            logp += math.log(probs[0])
    return logp


@pytest.mark.parametrize("levels", [3, 4])
def test_annotations_agree_with_a_reparse(levels):
    g = random_grammar(levels, generator=np.random.default_rng(levels))
    b = sample(g, 64, generator=torch.Generator().manual_seed(levels))
    res = inside(g, torch.nn.functional.one_hot(b.tokens.clamp(max=2), 3).double(), b.lengths)
    assert torch.equal(b.boundary[:, -1], b.valid)  # one token per pre-terminal (file convention)
    for i in range(len(b)):
        n = int(b.lengths[i])
        tree = _check_tree(g, b.tokens[i].numpy(), n, b.ancestors[i].numpy(), b.boundary[i].numpy())
        assert float(res.log_z[i]) >= tree - 1e-9  # P(x) >= P(its tree)
    for l in range(levels):  # every annotated node has positive inside probability for its NT
        bidx, ends = torch.nonzero(b.boundary[:, l], as_tuple=True)
        same = torch.cat([torch.tensor([False]), bidx[1:] == bidx[:-1]])
        starts = torch.where(same, torch.cat([torch.tensor([0]), ends[:-1] + 1]), torch.zeros_like(ends))
        nts = b.ancestors[bidx, l, ends]
        for a in range(len(g.levels[l])):
            sel = nts == a
            sub = type(res)(tuple(t[bidx[sel]] for t in res.tables), res.min_len, res.lengths[bidx[sel]],
                            res.log_z[bidx[sel]])
            vals = span_log_prob(sub, l, a, starts[sel], ends[sel] + 1)
            assert torch.isfinite(vals).all()


# ----------------------------------------------------------------------------- inside

def _tiny_and_random():
    return [Grammar.from_dict(G1), Grammar.from_dict(G2),
            random_grammar(3, generator=np.random.default_rng(0)),
            random_grammar(3, nts_per_level=2, rules_per_nt=3, terminals=2, generator=np.random.default_rng(5))]


@pytest.mark.parametrize("g", _tiny_and_random(), ids=lambda g: g.name)
def test_sentence_log_prob_equals_brute_force(g):
    dist = _language(g)
    sents = list(dist)
    tok, ln = _encode(g, sents)
    lp = sentence_log_prob(g, tok, ln)
    exact = torch.tensor([math.log(dist[s]) for s in sents], dtype=torch.float64)
    assert torch.allclose(lp, exact, rtol=0, atol=1e-12)
    assert abs(torch.logsumexp(lp, 0).item()) < 1e-12  # the sentences' probabilities sum to 1
    rng = np.random.default_rng(0)
    others = {tuple(rng.choice(g.terminals, size=len(s))) for s in sents for _ in range(3)} - set(dist)
    if others:
        tok, ln = _encode(g, sorted(others))
        assert torch.all(sentence_log_prob(g, tok, ln) == -math.inf)
    # all-wildcard emissions over L positions give P(length = L); they sum to 1 over L
    L = torch.arange(1, g.max_length + 1)
    z = inside(g, torch.ones(len(L), g.max_length, len(g.terminals)), L).log_z
    by_len = np.zeros(len(L))
    for s, p in dist.items():
        by_len[len(s) - 1] += p
    assert np.allclose(np.exp(z.numpy()), by_len, rtol=1e-12, atol=0) and abs(torch.logsumexp(z, 0).item()) < 1e-12
    # the mask id is a wildcard: P(x_1 = s_1, length = n) summed by brute force
    s0 = sents[0]
    tok, ln = _encode(g, [s0])
    tok[0, 1:] = g.vocab.mask_id
    marg = sum(p for s, p in dist.items() if len(s) == len(s0) and s[0] == s0[0])
    assert math.isclose(sentence_log_prob(g, tok, ln).item(), math.log(marg), abs_tol=1e-12)


@pytest.mark.parametrize("g", _tiny_and_random(), ids=lambda g: g.name)
def test_masked_posterior_equals_brute_force(g):
    dist, V = _language(g), len(g.terminals)
    sents = sorted(dist)[:12]
    rng = np.random.default_rng(1)
    tok, ln = _encode(g, sents)
    masked = torch.tensor(rng.random(tok.shape) < 0.5) & (torch.arange(tok.shape[1]) < ln[:, None])
    masked[:, 0] = True
    post = masked_posterior(g, tok, ln, masked, chunk=5)
    for i, s in enumerate(sents):
        pos = torch.nonzero(masked[i]).flatten().tolist()
        expect = np.zeros((len(s), V))
        for fill in itertools.product(range(V), repeat=len(pos)):
            x = list(s)
            for p, v in zip(pos, fill):
                x[p] = g.terminals[v]
            q = dist.get(tuple(x), 0.0)
            for p, v in zip(pos, fill):
                expect[p, v] += q
        expect[pos] /= expect[pos].sum(1, keepdims=True)
        unmasked = [t for t in range(len(s)) if t not in pos]
        expect[unmasked] = np.eye(V)[g.vocab.encode([s[t] for t in unmasked])]
        assert np.allclose(post[i, : len(s)].numpy(), expect, atol=1e-12)
        assert torch.all(post[i, len(s):] == 0)
    bad = [s for s in itertools.product(g.terminals, repeat=g.max_length) if s not in dist][:1]
    if bad:
        tok, ln = _encode(g, bad)
        m = torch.zeros_like(tok, dtype=torch.bool)
        m[0, 0] = True
        m[0, 1:] = False
        impossible = not any(len(s) == len(bad[0]) and s[1:] == bad[0][1:] for s in dist)
        assert torch.isnan(masked_posterior(g, tok, ln, m)).all() == impossible


def test_inside_checks_its_arguments():
    g = Grammar.from_dict(G1)
    with pytest.raises(ParameterError, match="emissions must have shape"):
        inside(g, torch.ones(2, 4, 3), torch.tensor([4, 4]))
    with pytest.raises(ParameterError, match="lengths"):
        inside(g, torch.ones(2, 4, 2), torch.tensor([4, 5]))
    with pytest.raises(ParameterError, match="non-negative"):
        inside(g, -torch.ones(1, 4, 2), torch.tensor([4]))
    with pytest.raises(ParameterError, match="tokens must be terminal ids"):
        sentence_log_prob(g, torch.tensor([[0, 7]]), torch.tensor([2]))


def test_cfg3b_long_sentences_have_exact_finite_scores_and_posteriors():
    if "cfg3b" not in available_grammars():
        pytest.skip("cfg3b.json not on the grammar search path")
    g = load_grammar("cfg3b")
    gen = torch.Generator().manual_seed(0)
    b = sample(g, 2, generator=gen)
    masked = (torch.rand(b.tokens.shape, generator=gen) < 0.3) & b.valid
    lp = sentence_log_prob(g, b.tokens, b.lengths)
    for i in range(2):
        tree = _check_tree(g, b.tokens[i].numpy(), int(b.lengths[i]), b.ancestors[i].numpy(), b.boundary[i].numpy())
        assert tree - 1e-9 <= lp[i].item() <= 0 and math.isfinite(tree)
    post = masked_posterior(g, b.tokens, b.lengths, masked)
    assert torch.allclose(post.sum(-1)[b.valid], torch.ones(()).double(), atol=1e-9)
    assert (post.argmax(-1) == b.tokens)[masked].float().mean() > 0.9  # the Bayes predictor is sharp


def test_length_stats_against_exact_moments():
    g = Grammar.from_dict(G1)
    derivs = _derivations(g)
    n = 20_000
    st = length_stats(g, n, generator=torch.Generator().manual_seed(2), chunk=3000)
    assert st["grammar"] == "g1" and st["samples"] == n and st["levels"][0]["counts"] == {"S": n}
    for l, lv in enumerate(g.levels):
        assert st["levels"][l]["nonterminals"] == list(lv)
        for a, name in enumerate(lv):
            counts = np.array([b[l][anc[l] == a].sum() for _, _, anc, b in derivs])
            p = np.array([q for _, q, _, _ in derivs])
            mean, var = (p * counts).sum(), (p * counts ** 2).sum() - (p * counts).sum() ** 2
            assert abs(st["levels"][l]["counts"][name] - n * mean) <= 6 * math.sqrt(n * var) + 1e-9
    cdf = np.cumsum(np.bincount([len(t) for t, _, _, _ in derivs], weights=[q for _, q, _, _ in derivs]))
    for q in (25, 50, 75, 95):
        k = int(np.searchsorted(cdf, q / 100))
        se = math.sqrt(q / 100 * (1 - q / 100) / n)  # std of the empirical CDF at the quantile
        assert min(abs(cdf[k] - q / 100), abs(cdf[k - 1] - q / 100)) > 5 * se  # so the sample quantile is k
        assert st["length_percentiles"][str(q)] == k


def test_packaged_grammars_equal_the_shared_copies_and_load_without_them(monkeypatch, tmp_path):
    """The paper's grammars are package data (``distill/grammars``), byte-identical to
    ``../shared/data/pcfg``; with neither the environment path nor ``../shared`` on the search path
    (a user who installed the package alone), every name still loads, from the package."""
    from distill import grammar as gmod

    packaged = sorted(p.name for p in gmod.PACKAGED_GRAMMARS.glob("*.json"))
    assert packaged == sorted(f"{n}.json" for n in SHARED)
    shared = gmod.PACKAGED_GRAMMARS.parent.parent.parent / "shared" / "data" / "pcfg"
    if shared.is_dir():
        for name in packaged:
            assert (gmod.PACKAGED_GRAMMARS / name).read_bytes() == (shared / name).read_bytes(), name
    monkeypatch.delenv("ICURR_GRAMMAR_PATH", raising=False)
    monkeypatch.chdir(tmp_path)  # ./../shared is not there
    monkeypatch.setattr(gmod, "__file__", str(tmp_path / "site" / "distill" / "grammar.py"))
    assert gmod.grammar_search_path()[-1] == gmod.PACKAGED_GRAMMARS
    assert all(p.parent == gmod.PACKAGED_GRAMMARS for p in gmod.available_grammars().values())
    g = gmod.load_grammar("cfg3b")
    assert (g.min_length, g.max_length) == (138, 432) and len(g.rules["f"]) == 2  # f -> c b a | b a
