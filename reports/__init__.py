"""Figures and tables that put measured scaling beside the scaling that ``theory`` predicts.

``icurr report DIR --out REPORT_DIR`` (:func:`reports.build.build_report`) reads only the run
directories of ``DIR`` (through :mod:`infra.store`) and writes ``report.md``, a self-contained
``report.html`` and one PNG (200 dpi) + PDF + CSV per figure: strategies (Figure 1, left), the implicit curriculum
(Figure 2), theory alone (zeta_i and the Fourier gap against the paper's statements) and scaling in
d with t-intervals over seeds (:func:`reports.fit.fit_exponent`).
"""
