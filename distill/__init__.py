"""The Transformer engine: one model with a leading run axis (:mod:`distill.model`) trained on sparse
parity as a token sequence (App. C.2), BERT masked prediction and GPT next-token prediction on PCFGs
(Section 4.1, App. D-E: grammars, a vectorized annotated sampler, inside-outside and the exact
Bayes-optimal masked predictor) and BERT on natural text (Section 4.2); the n-gram measures M_robust /
M_close, non-terminal and attention probes, and Curriculum Extraction per block. Teachers, students and
comparisons: :mod:`distill.runs`; the training loop: :mod:`distill.engine`.

Below it: :mod:`infra` (run directories, schedules, the outer run loop, ...), :mod:`theory`, and the pure
math of :mod:`simulate` (Boolean-cube data, losses, probes); nothing above it (ARCHITECTURE.md).
"""
