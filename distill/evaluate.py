"""Evaluation of Transformer runs on fixed held-out data: loss, accuracy, curriculum measures, probes.

One :class:`Evaluator` per training program; it draws its held-out sets once, from generators
seeded independently of the training data, so every run (seed) and every checkpoint of a teacher
and of its students is measured on the same sentences and the same masks.

* every evaluation: ``test_loss`` (eq. (3) / (9) on the held-out set) and ``test_accuracy`` (top-1
  over the selected positions: masked tokens, boundary tokens, or the parity read-out);
* PCFG, every ``measure_every`` steps: ``m_robust_{n}`` and ``m_close_{n}`` (eqs. (5)-(6), or
  (11)-(12) for next-token models), medians over sampled positions (natural text,
  :mod:`distill.text_task`: on windows of held-out documents; no non-terminal probe);
* PCFG, every ``probe_every`` steps: ``probe_level_{l}`` (and its surface baseline ``probe_base_level_{l}``,
  the same probe on one-hot (token, position) features), the accuracy of the multi-head linear
  probe of Appendix D.3 predicting the level-l non-terminal at span boundaries (levels from the
  root, Definition 4.3; the root level is skipped, it has a single non-terminal);
* parity, every ``probe_every`` steps: the degree-1 correlations of Figure 12
  (``corr1_in_mean``, ``corr1_off_mean``, ``corr1_off_max``, via :func:`simulate.probes.probe`) and
  the attention on the support of Figure 11 (``attn_in_support``, ``attn_off_support``).
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, fields

import numpy as np
import torch

from simulate.probes import probe, probe_summary
from infra.seeding import Stream, generator

from .objectives import weighted_accuracy, weighted_ce
from .tasks import ParityTask

__all__ = ["EvalSettings", "eval_settings", "Evaluator", "autocast"]

_ELEMENTS = 1 << 24  # logits per run and chunk: bounds the memory of large-vocabulary (text) evaluations


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CUDA for ``precision`` auto/bf16; fp32 otherwise."""
    if device.type == "cuda" and precision in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@dataclass(frozen=True)
class EvalSettings:
    """What the evaluator uses of a run's config (the fields of the same names; 0 / empty where a
    family has no such measure: parity Transformers have no n-gram measures, text has no probe)."""

    eval_size: int  # held-out sequences (PCFG sentences, text blocks, parity inputs)
    precision: str = "auto"  # auto / bf16: bf16 autocast on CUDA
    measure_every: int = 0  # steps between M_robust / M_close (PCFG, text)
    measure_ns: tuple[int, ...] = ()  # n of the n-gram measures
    measure_positions: int = 0  # sampled (sentence, position) pairs per measure
    probe_every: int = 0  # steps between probes (PCFG: non-terminals; parity: correlations, attention)
    probe_train: int = 0  # non-terminal probe: training sentences
    probe_test: int = 0  # non-terminal probe: test sentences
    probe_steps: int = 0  # non-terminal probe: Adam steps
    probe_samples: int = 0  # parity probes: Monte Carlo inputs


def eval_settings(cfg) -> EvalSettings:
    """The :class:`EvalSettings` of a Transformer teacher or student config (fields it lacks: 0)."""
    return EvalSettings(**{f.name: getattr(cfg, f.name) for f in fields(EvalSettings) if hasattr(cfg, f.name)})


class Evaluator:
    """Held-out evaluation of all runs of a model for ``task`` with :class:`EvalSettings` ``cfg``."""

    def __init__(self, task, cfg: EvalSettings, device: torch.device, *, chunk: int = 256) -> None:
        if not isinstance(cfg, EvalSettings):
            raise TypeError("Evaluator takes EvalSettings (distill.evaluate.eval_settings(config))")
        self.task, self.cfg, self.device = task, cfg, device
        self.chunk = max(1, min(chunk, _ELEMENTS // (task.max_len * task.n_out)))
        gen = generator(0, Stream.EVAL, device)
        if isinstance(task, ParityTask):
            bits = torch.randint(0, 2, (cfg.eval_size, task.d), generator=gen, device=device)
            self.batch = task.from_x((1 - 2 * bits).float())
            self.parsed = None
        else:  # natural text (distill.text_task): fixed blocks of the held-out documents
            draw = task.heldout if hasattr(task, "heldout") else task.parsed
            self.parsed = draw(gen, cfg.eval_size)
            self.batch = task.from_parsed(self.parsed, gen)
        self._probe_sets = self._segments = self._probe_base = None

    # ------------------------------------------------------------------ model calls
    def _forward(self, model, tokens, valid, **kw):
        with torch.no_grad(), autocast(self.device, self.cfg.precision):
            return model(tokens, valid=valid, **kw)

    def predict_fn(self, model):
        """``(tokens (B, T), valid (B, T)) -> probabilities (R, B, T, C)`` in chunks (for the measures)."""
        def predict(tokens, valid):
            parts = [torch.softmax(self._forward(model, tokens[i:i + self.chunk], valid[i:i + self.chunk])
                                   .logits.float(), -1) for i in range(0, tokens.shape[0], self.chunk)]
            return torch.cat(parts, 1)
        return predict

    def embed_fn(self, model):
        """``(tokens, valid) -> output embeddings (R, B, T, D)``: the final LayerNorm's output, the probe's input."""
        def embed(tokens, valid):
            parts = [self._forward(model, tokens[i:i + self.chunk], valid[i:i + self.chunk],
                                   return_hidden=True).final.float() for i in range(0, tokens.shape[0], self.chunk)]
            return torch.cat(parts, 1)
        return embed

    # ------------------------------------------------------------------ metrics
    def basic(self, model) -> dict[str, np.ndarray]:
        """``test_loss`` and ``test_accuracy`` per run, shape ``(R,)`` each."""
        b = self.batch
        loss, hits, count = 0.0, 0.0, 0.0
        for i in range(0, b.inputs.shape[0], self.chunk):
            sl = slice(i, i + self.chunk)
            logits = self._forward(model, b.inputs[sl], b.valid[sl]).logits.float()
            n_sel = b.selected[sl].sum()
            loss = loss + weighted_ce(logits, b.targets[sl], b.weights[sl])
            hits = hits + weighted_accuracy(logits, b.targets[sl], b.selected[sl]) * n_sel
            count = count + n_sel
        return {"test_loss": torch.as_tensor(loss).cpu().numpy(),
                "test_accuracy": (torch.as_tensor(hits) / max(float(count), 1.0)).cpu().numpy()}

    def measures(self, model) -> dict[str, np.ndarray]:
        """M_robust / M_close per n (PCFG only), medians per run."""
        from .measures import autoregressive_measures, masked_lm_measures

        p = self.parsed
        if hasattr(self.task, "segments"):  # text: single-document windows (Definition 4.2's n-grams, no [SEP])
            if self._segments is None:
                self._segments = self.task.segments(generator(0, Stream.SEGMENTS, self.device), self.cfg.measure_positions)
            p = self._segments
        gen = generator(0, Stream.MEASURE, self.device)
        vocab = self.task.vocab
        n = min(p.tokens.shape[0], self.cfg.measure_positions)  # sentences used: one position each when possible
        per = -(-self.cfg.measure_positions // n)
        tokens, valid = p.tokens[:n], p.valid[:n]
        kw = dict(ns=tuple(self.cfg.measure_ns), positions_per_sentence=per, generator=gen,
                  batch_size=min(512, self.chunk))
        if self.task.causal:
            return autoregressive_measures(self.predict_fn(model), tokens, valid, bos_id=vocab.bos_id,
                                           pad_id=vocab.pad_id, **kw)
        return masked_lm_measures(self.predict_fn(model), tokens, valid, mask_id=vocab.mask_id, **kw)

    def nonterminal_probe(self, model) -> dict[str, np.ndarray]:
        """``probe_level_{l}`` for every level below the root (Appendix D.3), per run, and beside it
        ``probe_base_level_{l}``: the same probe (same sentences, steps and generator) on the one-hot
        (token, position) features of :func:`distill.probes.position_token_features`, computed once per
        evaluator: what the surface string alone gives, the level a model must beat to hold the parse."""
        from .probes import nonterminal_probe_accuracy, position_token_features

        if self._probe_sets is None:
            self._probe_sets = (self.task.parsed(generator(0, Stream.PROBE_TRAIN, self.device), self.cfg.probe_train),
                                self.task.parsed(generator(0, Stream.PROBE_TEST, self.device), self.cfg.probe_test))
        train, test = self._probe_sets
        levels = list(range(1, self.task.grammar.depth))
        kw = dict(n_classes=[len(self.task.grammar.levels[lv]) for lv in levels], steps=self.cfg.probe_steps)
        acc = nonterminal_probe_accuracy(self.embed_fn(model), train, test, levels,
                                         generator=generator(0, Stream.PROBE_TRAIN, self.device), **kw)
        if self._probe_base is None:
            embed = position_token_features(self.task.vocab_size,
                                            max(train.tokens.shape[1], test.tokens.shape[1]))
            self._probe_base = nonterminal_probe_accuracy(embed, train, test, levels,
                                                          generator=generator(0, Stream.PROBE_TRAIN, self.device),
                                                          **kw)[0]
        out = {f"probe_level_{lv}": acc[:, j] for j, lv in enumerate(levels)}
        out.update({f"probe_base_level_{lv}": np.full(acc.shape[0], self._probe_base[j]) for j, lv in enumerate(levels)})
        return out

    def parity_probes(self, model) -> dict[str, np.ndarray]:
        """Degree-1 correlations (Figure 12) and attention on the support (Figure 11), per run."""
        from .probes import attention_paths, support_attention_summary

        task = self.task
        gen = generator(0, Stream.PROBE_TEST, self.device)
        with torch.no_grad(), autocast(self.device, self.cfg.precision):
            res = probe(lambda x: task.readout_logits(model, x).float(), task.d, task.support.tolist(),
                        generator=gen, degrees=(1,), method="mc", n_samples=self.cfg.probe_samples,
                        device=self.device)
        out = {k: v.cpu().numpy() for k, v in probe_summary(res).items()}
        bits = torch.randint(0, 2, (min(self.cfg.probe_samples, 1024), task.d), generator=gen, device=self.device)
        tokens = task.encode((1 - 2 * bits).float())
        attn = self._forward(model, tokens, None, return_attention=True).attentions
        paths = attention_paths([a.float() for a in attn], query=task.position)
        offset = 1 if task.readout == "cls" else 0
        summary = support_attention_summary(paths, task.support.tolist(), list(range(offset, offset + task.d)))
        out.update({k: np.asarray(summary[k]) for k in ("attn_in_support", "attn_off_support")})
        return out

    def rows(self, model, step: int, samples: int, seeds, **extra) -> list[dict]:
        """One metrics row per run of ``model`` (``R`` runs; ``seeds``: one per run) at ``step``,
        ``samples`` seen: ``step, run, seed, samples``, the basic metrics, the measures and probes
        when due (every ``measure_every`` / ``probe_every`` steps of the config), then ``extra``.
        The signature of :meth:`simulate.runner.Evaluator.rows`."""
        cfg = self.cfg
        cols = self.basic(model)
        due = lambda every: every and step % every == 0  # noqa: E731
        if isinstance(self.task, ParityTask):
            if due(cfg.probe_every):
                cols.update(self.parity_probes(model))
        else:
            if due(cfg.measure_every):
                cols.update(self.measures(model))
            if due(cfg.probe_every):  # 0 for text (no parse tree)
                cols.update(self.nonterminal_probe(model))
        rows = []
        for r, seed in enumerate(seeds):
            row = {"step": step, "run": r, "seed": seed, "samples": samples}
            row.update({k: float(np.asarray(v).reshape(-1)[r]) for k, v in cols.items()})
            row.update(extra)
            rows.append(row)
        return rows
