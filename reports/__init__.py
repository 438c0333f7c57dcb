"""Figures and tables that put measured scaling beside the scaling that ``theory`` predicts.
(Planned; see the issues.)"""
