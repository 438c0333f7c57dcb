"""Tests of distill.model: the Transformer with a leading run axis."""
from __future__ import annotations

import math

import pytest
import torch

from distill.model import Transformer, TransformerShape
from theory._checks import ParameterError


pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gens(*seeds: int) -> list[torch.Generator]:
    return [gen(s) for s in seeds]


SHAPE = TransformerShape(vocab=11, n_out=7, max_len=16, layers=2, heads=2, head_dim=4)


def model(causal: bool = False, runs: int = 3, dtype=torch.float32) -> Transformer:
    shape = TransformerShape(**{**SHAPE.__dict__, "causal": causal})
    m = Transformer(shape, runs, generators=gens(*range(10, 10 + runs)), dtype=dtype)
    # perturb the zero-initialised biases / LayerNorm so that every parameter matters in the tests
    with torch.no_grad():
        g = gen(99)
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=dtype))
    return m


def tokens(b: int = 5, t: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 11, (b, t), generator=gen(seed))


def test_shape_validation_names_the_field():
    with pytest.raises(ParameterError, match="TransformerShape.heads"):
        TransformerShape(vocab=5, n_out=3, max_len=8, heads=0)
    with pytest.raises(ParameterError, match="TransformerShape.causal"):
        TransformerShape(vocab=5, n_out=3, max_len=8, causal=1)
    with pytest.raises(ParameterError, match="generators"):
        Transformer(SHAPE, 2, generators=gens(1))
    with pytest.raises(ParameterError, match="max_len"):
        model()(tokens(t=17))
    assert TransformerShape(vocab=5, n_out=3, max_len=8, heads=32).width == 256


def test_parameter_shapes_and_count():
    m = Transformer(SHAPE, 3, generators=gens(1, 2, 3))
    d, f, l = 8, 32, 2
    sd = m.state_dict()
    assert sd["tok"].shape == (3, 11, d) and sd["pos"].shape == (3, 16, d)
    assert sd["blocks.1.w_qkv"].shape == (3, d, 3 * d) and sd["blocks.0.w_o"].shape == (3, d, d)
    assert sd["blocks.0.w_1"].shape == (3, d, f) and sd["blocks.0.b_1"].shape == (3, 1, f)
    assert sd["blocks.0.ln1_w"].shape == (3, 1, d) and sd["head_w"].shape == (3, d, 7)
    per_block = 2 * 2 * d + d * 3 * d + 3 * d + d * d + d + d * f + f + f * d + d
    expected = 11 * d + 16 * d + l * per_block + 2 * d + d * 7 + 7
    assert m.num_parameters() == expected
    assert m.num_parameters(per_run=False) == 3 * expected


def test_init_statistics_gpt2():
    shape = TransformerShape(vocab=50, n_out=40, max_len=64, layers=4, heads=8, head_dim=8)
    m = Transformer(shape, 2, generators=gens(0, 1))
    sd = m.state_dict()
    # std estimates from >= 8000 draws: relative error ~ 1/sqrt(2 * 8000) < 1%; allow 5%
    assert sd["blocks.0.w_qkv"].std().item() == pytest.approx(0.02, rel=0.05)
    assert sd["blocks.2.w_2"].std().item() == pytest.approx(0.02 / math.sqrt(8), rel=0.05)
    assert sd["blocks.3.w_o"].std().item() == pytest.approx(0.02 / math.sqrt(8), rel=0.05)
    assert torch.all(sd["blocks.1.b_1"] == 0) and torch.all(sd["blocks.1.ln2_w"] == 1)
    assert torch.all(sd["lnf_b"] == 0)


def test_output_shapes_shared_and_per_run_inputs():
    m = model()
    x = tokens()
    out = m(x, return_attention=True, return_hidden=True)
    assert out.logits.shape == (3, 5, 12, 7)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (3, 5, 2, 12, 12)
    assert len(out.hidden) == 3 and out.hidden[2].shape == (3, 5, 12, 8)
    assert out.final.shape == (3, 5, 12, 8)
    plain = m(x)
    assert plain.attentions is None and plain.hidden is None and plain.final is None
    # per-run inputs (R, B, T): run r sees its own batch
    xr = torch.stack([x, tokens(seed=1), tokens(seed=2)])
    per = m(xr).logits
    assert torch.allclose(per[0], plain.logits[0], atol=1e-6)
    assert torch.allclose(per[1], m(xr[1]).logits[1], atol=1e-6)
    with pytest.raises(ParameterError, match="tokens"):
        m(torch.zeros(2, 5, 12, dtype=torch.long))


@pytest.mark.parametrize("causal", [False, True])
def test_runs_equal_single_run_models(causal):
    m = model(causal)
    x = tokens()
    valid = torch.arange(12)[None] < torch.tensor([12, 9, 5, 12, 1])[:, None]
    full = m(x, valid=valid).logits
    for r in range(3):
        one = m.select_run(r)
        assert one.runs == 1
        assert torch.allclose(one(x, valid=valid).logits[0], full[r], atol=1e-6, rtol=0)
    # select_run shares nothing
    one = m.select_run(0)
    with torch.no_grad():
        one.tok.add_(1.0)
    assert torch.allclose(m(x, valid=valid).logits, full)


def test_init_of_a_run_does_not_depend_on_runs():
    a = Transformer(SHAPE, 1, generators=gens(7))
    b = Transformer(SHAPE, 3, generators=gens(5, 6, 7))
    for k, v in a.state_dict().items():
        assert torch.equal(v[0], b.state_dict()[k][2]), k


@pytest.mark.parametrize("causal", [False, True])
def test_causal_mask(causal):
    m = model(causal)
    x = tokens()
    y = x.clone()
    y[:, 8] = (y[:, 8] + 1) % 11
    diff = (m(x).logits - m(y).logits).abs().amax(dim=(0, 1, 3))          # (T,)
    assert diff[8] > 1e-4
    if causal:
        assert torch.all(diff[:8] == 0)
    else:
        assert torch.all(diff[:8] > 1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_padding_changes_nothing_at_valid_positions(causal):
    m = model(causal)
    x = tokens()
    valid = torch.arange(12)[None] < torch.tensor([12, 9, 5, 7, 3])[:, None]
    y = torch.where(valid, x, (x + 3) % 11)
    a, b = m(x, valid=valid).logits, m(y, valid=valid).logits
    assert torch.allclose(a[:, valid], b[:, valid], atol=1e-6, rtol=0)
    assert (a[:, ~valid] - b[:, ~valid]).abs().max() > 1e-4
    # the valid prefix alone gives the same logits as the padded batch
    assert torch.allclose(m(x[1:2, :9]).logits[:, 0], a[:, 1, :9], atol=1e-5, rtol=0)


@pytest.mark.parametrize("causal", [False, True])
def test_explicit_attention_equals_sdpa(causal):
    m = model(causal)
    x = tokens()
    valid = torch.arange(12)[None] < torch.tensor([12, 9, 5, 7, 3])[:, None]
    for v in (None, valid):
        fast = m(x, valid=v).logits
        slow = m(x, valid=v, return_attention=True)
        assert torch.allclose(fast, slow.logits, atol=1e-5, rtol=0)
    att = slow.attentions
    for a in att:
        assert torch.allclose(a.sum(-1), torch.ones(()), atol=1e-6)
        # valid queries put zero weight on padded keys
        qv, kp = valid[None, :, None, :, None], ~valid[None, :, None, None, :]
        assert torch.all(a.masked_select(qv & kp) == 0)
        if causal:
            assert torch.all(a.triu(1) == 0)


def test_safetensors_round_trip(tmp_path):
    from safetensors.torch import load_file, save_file

    m = model(True)
    x = tokens()
    path = tmp_path / "m.safetensors"
    m.save(path)
    back = Transformer.load(path)
    assert back.shape == m.shape and back.runs == 3
    assert torch.equal(back(x).logits, m(x).logits)
    # the plain state_dict also round-trips through safetensors' own functions
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "s.safetensors"))
    with pytest.raises(ParameterError, match="Transformer.save"):
        Transformer.load(tmp_path / "s.safetensors")
    other = Transformer(m.shape, 3, generators=gens(0, 1, 2))
    other.load_state_dict(load_file(str(tmp_path / "s.safetensors")))
    assert torch.equal(other(x).logits, m(x).logits)


def test_float64_and_device_of_inputs():
    m = model(False, runs=2, dtype=torch.float64)
    out = m(tokens())
    assert out.logits.dtype == torch.float64 and out.logits.device == torch.device("cpu")


def test_tiny_model_learns_previous_token_copy():
    """Causal model, target y_t = x_{t-1} (needs attention to the previous position). Chance is 1/8;
    with seeds 0, 1 both runs reach > 0.95 accuracy in 150 Adam steps (measured: 1.0 from step ~50)."""
    shape = TransformerShape(vocab=8, n_out=8, max_len=10, layers=2, heads=2, head_dim=16, causal=True)
    m = Transformer(shape, 2, generators=gens(0, 1))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = gen(123)
    for _ in range(150):
        x = torch.randint(0, 8, (32, 10), generator=g)
        logits = m(x).logits[:, :, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, 8), x[:, :-1].repeat(2, 1, 1).reshape(-1), reduction="mean") * 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.randint(0, 8, (512, 10), generator=gen(7))
    with torch.no_grad():
        acc = (m(x).logits[:, :, 1:].argmax(-1) == x[:, :-1]).double().mean(dim=(1, 2))
    assert acc.shape == (2,)
    assert torch.all(acc > 0.95), acc
