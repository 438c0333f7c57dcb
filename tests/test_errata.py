import subprocess
import sys

from theory.errata import ERRATA_PATH, render


def test_committed_errata_match_the_code():
    assert ERRATA_PATH.read_text() == render(), "run: python -m theory.errata --write theory/ERRATA.md"


def test_theory_imports_no_torch():
    code = (
        "import sys, theory, theory.errata, theory.tables, theory.bounds, theory.gap, theory.gradient;"
        "from icurr.cli import main; main(['theory', 'gap', '--d', '11', '--k', '2', '--format', 'json']);"
        "assert 'torch' not in sys.modules, 'theory imported torch'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
