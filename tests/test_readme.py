"""The README's first screen, run as written: its two commands are the install-and-demo line and the
test line that ``.ci/run`` runs; the demo line runs on its defaults in a fresh directory (its
``pip install -e .`` part is what CI has just done, so only the part after ``&&`` is run here)."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def first_commands() -> list[str]:
    """The commands of the README's first code block, comments stripped."""
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_the_first_screen_holds_the_two_commands_and_ci_runs_the_second():
    install_demo, install_test = first_commands()
    assert install_demo == "pip install -e . && icurr demo"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == install_test == 'pip install -e ".[test]" && python -m pytest -q'


@pytest.mark.slow
def test_the_demo_line_runs_as_written(tmp_path):
    """``icurr demo`` on its defaults (about 20 s on 2 quiet cores), in an empty directory: it ends
    with the strategies' finding and the report's path, and writes the report there."""
    command = first_commands()[0].split("&&", 1)[1].strip()
    argv = shlex.split(command)
    assert argv[0] == "icurr"
    out = subprocess.run([sys.executable, "-m", "icurr", *argv[1:]], cwd=tmp_path,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "report: runs/demo/report/report.md" in out.stdout
    assert (tmp_path / "runs" / "demo" / "report" / "report.html").stat().st_size > 0
    assert len(list((tmp_path / "runs" / "demo" / "runs").glob("*/summary.json"))) == 5
