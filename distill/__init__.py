"""Transformers on sparse parity and PCFGs (BERT masked-LM, GPT next-token), the n-gram measures
M_robust / M_close, non-terminal probes and Curriculum Extraction. (Planned; see the issues.)"""
