"""The one figure style of reports/ (reports.style): tick labels, fixed strategy colours, wrapped panel
grids, the saver (PNG at 200 dpi + PDF), and legends that name settings, never run hashes."""
from __future__ import annotations

import re
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from infra.schedule import STRATEGIES  # noqa: E402
from reports import figures as F  # noqa: E402
from reports import style as S  # noqa: E402
from reports import transformer_figures as TF  # noqa: E402
from reports.extraction import _plot as plot_extraction  # noqa: E402
from simulate.two_stage_config import SUPERVISIONS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HASH = re.compile(r"[0-9a-f]{12}")


@pytest.fixture
def drawn(monkeypatch):
    """Figures the plot functions save, kept open (``reports.style.save`` recorded, then run)."""
    figs = []
    real = S.save

    def keep(fig, path, **kw):
        fig.canvas.draw()
        figs.append(fig)
        texts = [t.get_text() for t in fig.findobj(Text) if t.get_visible()]
        colours = {}
        for ax in fig.axes:
            for line in ax.get_lines():
                colours.setdefault(line.get_label(), matplotlib.colors.to_hex(line.get_color()))
        keep.records.append({"texts": texts, "colours": colours, "fig": fig})
        return real(fig, path, **kw)

    keep.records = []
    monkeypatch.setattr(S, "save", keep)
    return keep.records


# ---------------------------------------------------------------- tick labels

@pytest.mark.parametrize("value, text", [
    (0, "0"), (0.001, "0.001"), (0.5, "0.5"), (1, "1"), (150, "150"), (999.6, "1k"), (2500, "2.5k"),
    (20_000, "20k"), (80_000, "80k"), (100_000, "100k"), (120_000, "120k"), (12_345, "12.3k"),
    (1_500_000, "1.5M"), (20_000_000, "20M"), (3e9, "3G"), (2e-5, "2e-5"), (-20_000, "-20k"), (1e15, "1e+15"),
])
def test_engineering_labels(value, text):
    assert S.format_eng(value) == text


def _tick_labels(ax, which="x"):
    ax.figure.canvas.draw()
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = sorted(axis.get_view_interval())
    return [(t.get_loc(), t.label1) for t in axis.get_major_ticks()
            if t.label1.get_visible() and t.label1.get_text() and lo <= t.get_loc() <= hi]


def test_sample_axis_labels_are_short_and_never_collide():
    """The gallery's samples axis (0 .. 150k) drew "80000100000120000140000" at 100 dpi before."""
    with plt.rc_context(S.RC):
        fig, (ax,) = S.panel_grid(1)
        ax.plot([0, 150_000], [0.5, 1.0])
        S.count_axis(ax, "x")
        ticks = _tick_labels(ax)
        assert [lab.get_text() for _, lab in ticks] == ["0", "50k", "100k", "150k"]
        boxes = [lab.get_window_extent() for _, lab in ticks]
        assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:]))  # left to right, with a gap
        plt.close(fig)


def test_log_axis_ticks_at_the_data_values():
    with plt.rc_context(S.RC):
        fig, (ax,) = S.panel_grid(1)
        ds = [12, 16, 24, 32, 48]
        ax.plot(ds, [3e3, 6e3, 1.7e4, 5.2e4, 1.7e5], "o")
        S.count_axis(ax, "x", log=True, at=ds)
        S.count_axis(ax, "y", log=True)
        assert [lab.get_text() for _, lab in _tick_labels(ax, "x")] == ["12", "16", "24", "32", "48"]
        assert [lab.get_text() for _, lab in _tick_labels(ax, "y")] == ["5k", "10k", "20k", "50k", "100k", "200k"]
        assert len(ax.xaxis.get_minor_locator().tick_values(10, 50)) == 0  # no unlabelled minor ticks between
        plt.close(fig)


# ---------------------------------------------------------------- colours

def test_every_strategy_and_supervision_has_its_own_fixed_colour():
    names = [*STRATEGIES, "teacher"]
    assert set(names) <= set(S.STRATEGY_STYLES)
    colours = [S.colour_of(n) for n in names]
    markers = [S.marker_of(n) for n in names]
    assert len(set(colours)) == len(names) and len(set(markers)) == len(names)
    assert S.colour_of("labels") == S.colour_of("ce")  # Algorithm 1's label loss takes ce's place
    assert all(S.colour_of(s) in colours for s in SUPERVISIONS)
    owned = {matplotlib.colors.to_hex(c) for c in colours}
    for name in (f"other-{i}" for i in range(40)):  # unknown names: fixed by the name, never a strategy's colour
        c = S.colour_of(name)
        assert c == S.FALLBACK_COLOURS[zlib.crc32(name.encode()) % len(S.FALLBACK_COLOURS)]
        assert matplotlib.colors.to_hex(c) not in owned
    assert not owned & {matplotlib.colors.to_hex(c) for c in S.OTHER_COLOURS}  # non-strategy lines too


def _strategy_curves(strategies):
    rows = [{"d": 12, "k": 3, "student_width": 32, "strategy": s, "samples": n, "median": 0.5 + i * 0.01 + n / 4e4,
             "q25": 0.5, "q75": 0.9, "n": 3} for i, s in enumerate(strategies) for n in range(0, 20_001, 2000)]
    return pd.DataFrame(rows)


def test_a_strategy_has_the_same_colour_in_two_different_figures(tmp_path, drawn):
    F.plot_strategies(_strategy_curves(["ce", "two-shot", "progressive"]), tmp_path / "mlp.png")
    students = pd.DataFrame([{"experiment": "e1", "strategy": s, "samples": n, "median": 0.5 + n / 1e5, "min": 0.4,
                              "max": 0.9, "n": 2} for s in ("two-shot", "ce", "oneshot") for n in (0, 1000, 2000)])
    experiments = pd.DataFrame({"experiment": ["e1"], "label": ["cfg3b, run 0123456789ab"],
                                "reference_accuracy": [0.9]})
    TF.plot_pcfg_students(students, experiments, tmp_path / "pcfg.png")
    mlp, pcfg = (r["colours"] for r in drawn)
    for s in ("ce", "two-shot"):
        (a,), (b,) = ([c for lab, c in fig.items() if lab.startswith(s + " ")] for fig in (mlp, pcfg))
        assert a == b == matplotlib.colors.to_hex(S.colour_of(s))
    assert pcfg["oneshot (n=2)"] == "#ff7f0e" and mlp["progressive (n=3)"] == "#2ca02c"
    assert len({mlp[k] for k in mlp if not k.startswith("_")}) == 3


# ---------------------------------------------------------------- layout and saving

def _cells(axes):
    return [(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start) for ax in axes]


def test_five_panels_wrap_into_two_rows_of_at_most_three():
    fig, axes = S.panel_grid(5)
    assert len(axes) == 5 and _cells(axes) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert sum(ax.get_visible() for ax in fig.axes) == 5
    w, h = fig.get_size_inches()
    assert (w, h) == pytest.approx((3 * S.PANEL[0], 2 * S.PANEL[1]))
    plt.close(fig)
    fig, groups = S.group_grid([5, 2, 1])  # one group per experiment: each starts its own row
    assert [_cells(g) for g in groups] == [[(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)], [(2, 0), (2, 1)], [(3, 0)]]
    plt.close(fig)


def test_pcfg_teacher_with_five_panels_wraps(tmp_path, drawn):
    curve = pd.DataFrame({"experiment": "e1", "step": [0, 500, 1000], "test_loss": [3.0, 2.0, 1.5],
                          "test_accuracy": [0.1, 0.5, 0.7], "m_robust_2": [0.5, 0.3, 0.2], "m_close_2": [0.4, 0.3, 0.1],
                          "probe_level_1": [0.3, 0.6, 0.8]})
    experiments = pd.DataFrame({"experiment": ["e1"], "label": ["cfg3b, d_model=64, run 0123456789ab"],
                                "reference_accuracy": [0.7]})
    assert len(TF.pcfg_teacher_panels(curve)) == 5
    TF.plot_pcfg_teacher(curve, pd.DataFrame(), experiments, tmp_path / "t.png")
    axes = [ax for ax in drawn[0]["fig"].axes if ax.get_visible()]
    assert len(axes) == 5 and max(c for _, c in _cells(axes)) == 2 and max(r for r, _ in _cells(axes)) == 1
    texts = " | ".join(drawn[0]["texts"])
    assert "cfg3b, d_model=64" in texts and not HASH.search(texts)


def _png_dpi(data: bytes) -> float:
    at = data.index(b"pHYs")
    x, unit = int.from_bytes(data[at + 4:at + 8], "big"), data[at + 12]
    assert unit == 1  # pixels per metre
    return x * 0.0254


def test_save_writes_png_at_200_dpi_and_a_pdf_beside_it(tmp_path):
    fig, (ax,) = S.panel_grid(1)
    ax.plot([0, 1], [0, 1])
    paths = S.save(fig, tmp_path / "fig.png")
    assert paths == [tmp_path / "fig.png", tmp_path / "fig.pdf"]
    data = (tmp_path / "fig.png").read_bytes()
    assert _png_dpi(data) == pytest.approx(200, abs=0.1)
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 0.85 * 4.8 * 200 < w <= 4.8 * 200 + 20 and 0.85 * 3.6 * 200 < h <= 3.6 * 200 + 20  # cropped to the ink
    assert (tmp_path / "fig.pdf").read_bytes()[:5] == b"%PDF-"
    assert b"CreationDate" not in (tmp_path / "fig.pdf").read_bytes()  # a redraw gives the same bytes
    assert not plt.fignum_exists(fig.number)


def test_every_figure_of_the_package_is_saved_through_the_style():
    """No figure module saves on its own (100 dpi PNGs without a PDF were the old default)."""
    for path in sorted((ROOT / "reports").glob("*.py")):
        if path.name != "style.py":
            assert "savefig(" not in path.read_text(), path.name


# ---------------------------------------------------------------- legends

def test_legends_and_titles_name_settings_not_run_hashes(tmp_path, drawn):
    runs = ["4b4b3fb00859", "523bc3aa0001", "9f201d000002"]
    curves = pd.DataFrame([{"run_hash": r, "extract_layer": 1, "samples": n, "extract_mse": 0.2 / (1 + n) + i * 1e-3}
                           for i, r in enumerate(runs) for n in (0, 1000, 2000)])
    table = pd.DataFrame({"run_hash": runs[0], "coordinate": range(6), "spread": np.linspace(0.3, 0.05, 6),
                          "in_support": [True, True, False, False, False, False]})
    settings = {r: "student: $d$=24, $k$=5, width 64" for r in runs}
    plot_extraction(table, curves, settings, tmp_path / "x.png")
    assert (tmp_path / "x.png").is_file() and (tmp_path / "x.pdf").is_file()
    assert "student: $d$=24, $k$=5, width 64, layer 1 (runs=3)" in drawn[0]["texts"]  # one line per setting
    F.plot_strategies(_strategy_curves(["ce"]), tmp_path / "s.png")
    texts = [t for r in drawn for t in r["texts"]]
    assert not [t for t in texts if HASH.search(t)]
    assert any("(n=3)" in t for t in texts)
    assert S.no_hash("d=24, k=5, run 0123456789ab") == "d=24, k=5"
