"""Start-up: ``icurr --help`` and every subcommand's ``--help`` import none of the heavy modules (the
import set is what keeps them under a second; a timed test would be flaky, so the set is what is tested)."""
import subprocess
import sys

HEAVY = ("torch", "sympy", "scipy", "matplotlib", "pandas", "pyarrow", "safetensors", "reports", "tqdm")

CODE = r'''
import sys, contextlib, io
from icurr.cli import main, build_parser
parser = build_parser()
commands = [["--help"]]
for action in parser._subparsers._group_actions:
    for name, sub in action.choices.items():
        commands.append([name, "--help"])
        for a in sub._actions:
            if isinstance(getattr(a, "choices", None), dict):
                commands += [[name, inner, "--help"] for inner in a.choices]
for command in commands:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            main(command)
        except SystemExit as exc:
            assert exc.code in (0, None), (command, exc.code)
    assert "usage: icurr" in out.getvalue(), command
print(len(commands))
print(" ".join(sorted(m for m in HEAVY if m in sys.modules)))
'''


def test_every_help_imports_no_heavy_module():
    out = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + CODE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    count, loaded = (out.stdout.splitlines() + [""])[:2]
    assert int(count) >= 40  # icurr, its commands and their subcommands
    assert loaded == "", f"--help imported {loaded}"
