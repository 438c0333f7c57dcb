"""Experiments, above both engines: the registry of experiment kinds (which config class, which
engine function, which presets), sweeps and their executors (local processes or Ray), and the demo.
The command line (:mod:`icurr`) and the reports read this layer; the engines never import it.
"""
