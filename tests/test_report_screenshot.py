"""The HTML report in a real browser (headless Chromium from the system packages): no image wider than the
viewport, no visible text below MIN_PX CSS pixels. A script injected into a copy of the page measures every
<img> and every visible text node after layout and leaves the result as JSON in the DOM, which Chromium's
``--dump-dom`` prints. A page with a planted 3000 px image and 8 px text must fail, so the check cannot pass
vacuously. Skipped where Chromium is absent."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reports.build import MIN_FONT_PX

ROOT = Path(__file__).resolve().parent.parent
#: The smallest font size allowed anywhere in the page's visible text, in CSS pixels.
MIN_PX = 11
#: Viewport width (CSS pixels): narrower than the page's 1200 px column, so images must scale down.
VIEWPORT = 1000

_MEASURE = """<script>
window.addEventListener('load', () => {
  const vw = document.documentElement.clientWidth;
  const images = [...document.images].map(i => {
    const r = i.getBoundingClientRect();
    return {alt: i.alt, left: r.left, right: r.right, width: r.width};
  });
  const texts = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const node = walk.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || !el || el.tagName === 'SCRIPT' || el.tagName === 'STYLE') continue;
    const cs = getComputedStyle(el), r = el.getBoundingClientRect();
    if (cs.display === 'none' || cs.visibility === 'hidden' || r.width === 0 || r.height === 0) continue;
    texts.push({tag: el.tagName, px: parseFloat(cs.fontSize), text: node.textContent.trim().slice(0, 40)});
  }
  const out = {viewport: vw, scroll_width: document.documentElement.scrollWidth, images: images, texts: texts};
  document.body.innerHTML = '';
  const pre = document.createElement('pre');
  pre.id = 'measure';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


@pytest.fixture(scope="module")
def chromium():
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not found: apt-get install chromium")
    return exe


def measure(chromium: str, page: Path, tmp: Path, width: int = VIEWPORT) -> dict:
    """Lay ``page`` out in headless Chromium at ``width`` CSS pixels; the injected script's measurements."""
    copy = tmp / f"measured_{page.stem}.html"
    text = page.read_text()
    copy.write_text(text.replace("</body>", _MEASURE + "</body>") if "</body>" in text else text + _MEASURE)
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
           f"--window-size={width},900", "--hide-scrollbars", "--virtual-time-budget=5000", "--dump-dom",
           copy.resolve().as_uri()]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="measure">(.*?)</pre>', run.stdout, re.S)
    assert found, f"no measurement from chromium (exit {run.returncode}): {run.stderr[-500:]}"
    return json.loads(html.unescape(found.group(1)))


def problems(m: dict, min_px: float = MIN_PX) -> list[str]:
    """What breaks the page: an image past the viewport's edges, a page wider than the viewport, small text."""
    out = [f"image {i['alt']!r} spans {i['left']:.0f}..{i['right']:.0f} px, viewport {m['viewport']} px"
           for i in m["images"] if i["left"] < -0.5 or i["right"] > m["viewport"] + 0.5]
    if m["scroll_width"] > m["viewport"]:
        out.append(f"page scrolls sideways: {m['scroll_width']} px > {m['viewport']} px")
    out += [f"{t['tag']} text {t['text']!r} at {t['px']} px < {min_px} px" for t in m["texts"] if t["px"] < min_px]
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A report built by reports.build from a results directory with no runs: the page's layout, its notes
    and one figure (theory: two panels, 1000 px wide at 96 CSS pixels per inch)."""
    from reports.build import build_report

    tmp = tmp_path_factory.mktemp("shot")
    (tmp / "runs").mkdir()
    build_report(tmp / "runs", tmp / "report", gap_ds=list(range(5, 60, 6)), n_boot=10)
    return tmp / "report" / "report.html"


def test_stated_minimum_is_the_reports():
    assert MIN_FONT_PX >= MIN_PX


@pytest.mark.slow
def test_built_report_fits_the_viewport_and_text_is_readable(chromium, built, tmp_path):
    m = measure(chromium, built, tmp_path)
    assert m["viewport"] == VIEWPORT and len(m["images"]) == 1 and len(m["texts"]) > 5
    assert m["images"][0]["width"] > 500  # shown, and at a useful size
    assert problems(m) == []


@pytest.mark.slow
def test_committed_gallery_report_fits_the_viewport(chromium, tmp_path):
    page = ROOT / "reports" / "gallery" / "report.html"
    if not page.is_file():
        pytest.skip("no committed reports/gallery/report.html")
    m = measure(chromium, page, tmp_path)
    assert len(m["images"]) >= 3 and problems(m) == []


@pytest.mark.slow
def test_planted_overflow_and_small_text_fail(chromium, built, tmp_path):
    text = built.read_text()
    planted = tmp_path / "planted.html"
    src = re.search(r"src='(data:image/png;base64,[^']+)'", text).group(1)
    planted.write_text(text.replace("</body>", f"<img alt='planted' style='width:3000px;max-width:none' src='{src}'>"
                                    "<p style='font-size:8px'>planted small text</p></body>"))
    found = problems(measure(chromium, planted, tmp_path))
    assert any(p.startswith("image 'planted' spans") for p in found)
    assert any("'planted small text' at 8 px" in p for p in found)
    assert any(p.startswith("page scrolls sideways") for p in found)
