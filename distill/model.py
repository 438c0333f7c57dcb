"""One compact pre-LayerNorm Transformer (GPT-2 / BERT style) with a leading run axis.

The models of Section 4 and Appendices C.2, D.5, E: ``layers`` blocks of multi-head attention
and a GELU MLP, width ``D = heads * head_dim`` (the paper scales a model by its number of heads at
a fixed head dimension 8). ``causal=True`` is GPT-2 (next-token prediction, App. C.2 / E),
``causal=False`` is BERT (masked prediction, Definition 4.1).

Every parameter carries a leading run axis of size ``R``: ``R`` independent runs (seeds, teacher
sizes of one shape, ...) train as one tensor program. Linear maps are batched matmuls over that
axis, so run ``r`` computes what a 1-run model with run ``r``'s parameters computes (up to float
rounding of the batched kernels). Parameter shapes (``D`` width, ``F = mlp_ratio * D``):

* ``tok`` (R, vocab, D), ``pos`` (R, max_len, D) learned absolute positions;
* per block ``blocks.l``: ``ln1_w``, ``ln1_b``, ``ln2_w``, ``ln2_b`` (R, 1, D); ``w_qkv`` (R, D, 3D)
  (q, k, v maps side by side), ``b_qkv`` (R, 1, 3D); ``w_o`` (R, D, D), ``b_o`` (R, 1, D);
  ``w_1`` (R, D, F), ``b_1`` (R, 1, F); ``w_2`` (R, F, D), ``b_2`` (R, 1, D);
* ``lnf_w``, ``lnf_b`` (R, 1, D); ``head_w`` (R, D, n_out), ``head_b`` (R, 1, n_out).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from theory._checks import ParameterError, check_int

__all__ = ["TransformerShape", "TransformerOutput", "Transformer"]

_INIT_STD = 0.02


@dataclass(frozen=True)
class TransformerShape:
    """Sizes of one model. ``vocab`` counts every input token (special tokens included), ``n_out``
    the output classes; ``width = heads * head_dim`` (Section 4, App. D.5)."""

    vocab: int
    n_out: int
    max_len: int
    layers: int = 4
    heads: int = 8
    head_dim: int = 8
    mlp_ratio: int = 4
    causal: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab", "n_out", "max_len", "layers", "heads", "head_dim", "mlp_ratio"):
            object.__setattr__(self, name, check_int(f"TransformerShape.{name}", getattr(self, name), 1))
        if not isinstance(self.causal, bool):
            raise ParameterError(f"TransformerShape.causal must be True or False, got {self.causal!r}")

    @property
    def width(self) -> int:
        return self.heads * self.head_dim


@dataclass
class TransformerOutput:
    """``logits`` (R, B, T, n_out); ``attentions``: L tensors (R, B, H, T, T) of attention
    probabilities (rows: queries) or None; ``hidden``: L + 1 tensors (R, B, T, D), the embeddings
    and the residual stream after each block, or None; ``final`` (R, B, T, D): the final-LayerNorm
    output, the "output embeddings" that the probes of Section 4.1.1 / App. D.3 read (with hidden)."""

    logits: torch.Tensor
    attentions: list[torch.Tensor] | None = None
    hidden: list[torch.Tensor] | None = None
    final: torch.Tensor | None = None


def _param_specs(shape: TransformerShape) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, per-run shape, init) in a fixed order; init is 'normal', 'resid', 'zeros' or 'ones'."""
    d, f = shape.width, shape.mlp_ratio * shape.width
    specs = [("tok", (shape.vocab, d), "normal"), ("pos", (shape.max_len, d), "normal")]
    for l in range(shape.layers):
        p = f"blocks.{l}."
        specs += [
            (p + "ln1_w", (1, d), "ones"), (p + "ln1_b", (1, d), "zeros"),
            (p + "w_qkv", (d, 3 * d), "normal"), (p + "b_qkv", (1, 3 * d), "zeros"),
            (p + "w_o", (d, d), "resid"), (p + "b_o", (1, d), "zeros"),
            (p + "ln2_w", (1, d), "ones"), (p + "ln2_b", (1, d), "zeros"),
            (p + "w_1", (d, f), "normal"), (p + "b_1", (1, f), "zeros"),
            (p + "w_2", (f, d), "resid"), (p + "b_2", (1, d), "zeros"),
        ]
    specs += [("lnf_w", (1, d), "ones"), ("lnf_b", (1, d), "zeros"),
              ("head_w", (d, shape.n_out), "normal"), ("head_b", (1, shape.n_out), "zeros")]
    return specs


def _init_run(specs, layers: int, gen: torch.Generator) -> list[torch.Tensor]:
    """GPT-2 init of one run on the CPU: N(0, 0.02^2) weights, residual projections (w_o, w_2)
    N(0, (0.02 / sqrt(2 L))^2), zero biases, LayerNorm ones / zeros. Draws only from ``gen``."""
    out = []
    for _, shp, kind in specs:
        if kind == "ones":
            out.append(torch.ones(shp))
        elif kind == "zeros":
            out.append(torch.zeros(shp))
        else:
            std = _INIT_STD / math.sqrt(2 * layers) if kind == "resid" else _INIT_STD
            out.append(torch.randn(shp, generator=gen) * std)
    return out


class _Block(nn.Module):
    def __init__(self, tensors: dict[str, torch.Tensor]):
        super().__init__()
        for name, t in tensors.items():
            self.register_parameter(name, nn.Parameter(t))


def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``x @ w + b`` per run: x (R, B, T, i), w (R, i, o), b (R, 1, o) -> (R, B, T, o)."""
    r, bsz, t, i = x.shape
    y = torch.baddbmm(b, x.reshape(r, bsz * t, i), w)
    return y.reshape(r, bsz, t, w.shape[-1])


def _layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the last axis (eps 1e-5) with per-run affine w, b (R, 1, D)."""
    y = F.layer_norm(x, x.shape[-1:])
    return y * w[:, None] + b[:, None]


class Transformer(nn.Module):
    """``R`` independent pre-LN Transformers of one :class:`TransformerShape` as one module.

    Run ``r`` is initialised from ``generators[r]`` (CPU generators; default: generator ``r`` seeded
    with ``r``), so that its init does not depend on ``R``; the tensors are then moved to ``device``.
    """

    def __init__(
        self,
        shape: TransformerShape,
        runs: int = 1,
        *,
        generators: Sequence[torch.Generator] | None = None,
        device=None,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        if not isinstance(shape, TransformerShape):
            raise ParameterError(f"shape must be a TransformerShape, got {type(shape).__name__}")
        runs = check_int("runs", runs, 1)
        if generators is None:
            generators = [torch.Generator().manual_seed(r) for r in range(runs)]
        if len(generators) != runs:
            raise ParameterError(f"generators must hold runs = {runs} generators, got {len(generators)}")
        self.shape, self.runs = shape, runs
        specs = _param_specs(shape)
        per_run = [_init_run(specs, shape.layers, g) for g in generators]
        stacked = {name: torch.stack([p[j] for p in per_run]).to(device=device, dtype=dtype)
                   for j, (name, _, _) in enumerate(specs)}
        self.tok = nn.Parameter(stacked.pop("tok"))
        self.pos = nn.Parameter(stacked.pop("pos"))
        self.blocks = nn.ModuleList(
            _Block({k.split(".", 2)[2]: v for k, v in stacked.items() if k.startswith(f"blocks.{l}.")})
            for l in range(shape.layers))
        for name in ("lnf_w", "lnf_b", "head_w", "head_b"):
            self.register_parameter(name, nn.Parameter(stacked[name]))

    # ------------------------------------------------------------------ forward
    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[-1]
        if t > self.shape.max_len:
            raise ParameterError(f"tokens length must be in [1, {self.shape.max_len}] (max_len), got {t}")
        # one F.embedding over the (R * V, D) table with run offsets: its backward is a fast
        # embedding_dense_backward (advanced indexing's index_put backward took ~35 ms per step on
        # an H100 at the paper's scale)
        r, v, d = self.tok.shape
        offsets = torch.arange(r, device=tokens.device).mul_(v)[:, None, None]
        idx = tokens + offsets if tokens.dim() == 3 else tokens[None] + offsets  # (R, B, T)
        x = F.embedding(idx, self.tok.reshape(r * v, d))                         # (R, B, T, D)
        return x + self.pos[:, None, :t]

    def _mask(self, valid: torch.Tensor | None, t: int, device) -> torch.Tensor | None:
        """Boolean (R*B or B, 1, T, T) mask, True = may attend: valid keys (a padded query may also
        attend to itself, so that no row is empty), combined with the causal mask when causal."""
        m = None
        if valid is not None:
            eye = torch.eye(t, dtype=torch.bool, device=device)
            m = valid.reshape(-1, 1, 1, t) | eye
        if self.shape.causal:
            tri = torch.ones(t, t, dtype=torch.bool, device=device).tril()
            m = tri if m is None else m & tri
        return m

    def _attend(self, blk: _Block, h: torch.Tensor, mask, explicit: bool):
        r, b, t, d = h.shape
        nh, hd = self.shape.heads, self.shape.head_dim
        qkv = _linear(h, blk.w_qkv, blk.b_qkv).reshape(r * b, t, 3, nh, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                               # (R*B, H, T, hd)
        if mask is not None and mask.dim() == 4 and mask.shape[0] != r * b:
            mask = mask.expand(r, -1, -1, -1, -1).reshape(r * b, 1, t, t)  # shared (B, T) masks
        probs = None
        if explicit:
            scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            probs = scores.softmax(-1)
            y = probs @ v
            probs = probs.reshape(r, b, nh, t, t)
        elif mask is None:
            y = F.scaled_dot_product_attention(q, k, v)
        elif mask.dim() == 2 and self.shape.causal:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.reshape(r, b, nh, t, hd).transpose(2, 3).reshape(r, b, t, d)
        return _linear(y, blk.w_o, blk.b_o), probs

    def _block(self, blk: _Block, x: torch.Tensor, mask, explicit: bool):
        """One pre-LN block: ``x + attn(LN(x))``, then ``+ MLP(LN(.))``; and the attention map if ``explicit``."""
        a, probs = self._attend(blk, _layer_norm(x, blk.ln1_w, blk.ln1_b), mask, explicit)
        x = x + a
        h = F.gelu(_linear(_layer_norm(x, blk.ln2_w, blk.ln2_b), blk.w_1, blk.b_1), approximate="tanh")
        return x + _linear(h, blk.w_2, blk.b_2), probs

    def forward(
        self,
        tokens: torch.Tensor,
        *,
        valid: torch.Tensor | None = None,
        return_attention: bool = False,
        return_hidden: bool = False,
    ) -> TransformerOutput:
        """Logits (R, B, T, n_out) for ``tokens`` (R, B, T) (per-run inputs) or (B, T) (shared).

        ``valid`` (same shape, bool; False = padding) removes padded keys from every attention
        row; None or all-True with no attentions asked uses SDPA's mask-free (``is_causal``) path.
        Attention probabilities are computed explicitly only when ``return_attention``."""
        if tokens.dim() not in (2, 3) or (tokens.dim() == 3 and tokens.shape[0] != self.runs):
            raise ParameterError(
                f"tokens must have shape (B, T) or (runs={self.runs}, B, T), got {tuple(tokens.shape)}")
        if valid is not None:
            if valid.shape != tokens.shape:
                raise ParameterError(f"valid must have the shape of tokens {tuple(tokens.shape)}, "
                                     f"got {tuple(valid.shape)}")
            if not return_attention and bool(valid.all()):
                valid = None
        t = tokens.shape[-1]
        x = self._embed(tokens)
        mask = self._mask(valid, t, x.device)
        attns, hidden = [], [x]
        for blk in self.blocks:
            x, p = self._block(blk, x, mask, return_attention)
            attns.append(p)
            hidden.append(x)
        final = _layer_norm(x, self.lnf_w, self.lnf_b)
        logits = _linear(final, self.head_w, self.head_b)
        return TransformerOutput(logits, attns if return_attention else None,
                                 hidden if return_hidden else None, final if return_hidden else None)

    def block_output(self, tokens: torch.Tensor, layer: int, *, valid: torch.Tensor | None = None) -> torch.Tensor:
        """The residual stream after block ``layer`` (1-based; 0 = embeddings), ``(R, B, T, D)``,
        computing only blocks ``1..layer`` (Curriculum Extraction aligns these, :mod:`distill.extraction`)."""
        layer = check_int("layer", layer, 0, self.shape.layers)
        if valid is not None and bool(valid.all()):
            valid = None
        x = self._embed(tokens)
        mask = self._mask(valid, tokens.shape[-1], x.device)
        for blk in self.blocks[:layer]:
            x = self._block(blk, x, mask, False)[0]
        return x

    # ------------------------------------------------------------------ utilities
    def select_run(self, r: int) -> "Transformer":
        """Run ``r`` as a new 1-run model (copies of the tensors; shares nothing)."""
        r = check_int("r", r, 0, self.runs - 1)
        p = self.tok
        out = Transformer(self.shape, 1, generators=[torch.Generator()], device=p.device, dtype=p.dtype)
        out.load_state_dict({k: v[r:r + 1].detach().clone() for k, v in self.state_dict().items()})
        return out

    def num_parameters(self, per_run: bool = True) -> int:
        """Number of scalars, per run (default) or over all ``R`` runs."""
        n = sum(p.numel() for p in self.parameters())
        return n // self.runs if per_run else n

    def save(self, path) -> None:
        """Write the state dict to a safetensors file; the shape goes into its metadata."""
        from safetensors.torch import save_file

        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(tensors, str(path), metadata={"shape": json.dumps(asdict(self.shape))})

    @classmethod
    def load(cls, path, *, device=None) -> "Transformer":
        """The model written by :meth:`save` (runs and dtype from the tensors)."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        if "shape" not in meta:
            raise ParameterError(f"path must be a file written by Transformer.save (with a 'shape' "
                                 f"metadata entry), got {path}")
        shape = TransformerShape(**json.loads(meta["shape"]))
        tensors = load_file(str(path))
        runs, dtype = tensors["tok"].shape[0], tensors["tok"].dtype
        model = cls(shape, runs, generators=[torch.Generator() for _ in range(runs)],
                    device=device, dtype=dtype)
        model.load_state_dict(tensors)
        return model
