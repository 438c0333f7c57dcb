"""Configs a user can find and shape (#14): ``icurr config list|show``, field lists in ``--help``,
``--config FILE.yaml``, intervals that follow ``steps``, ``[0,1,2]`` list syntax, "did you mean" for
unknown keys, and a ``tiny`` preset for every family."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from experiments.registry import FAMILIES, KINDS, family_kinds, field_docs, get_kind, preset_words, presets
from experiments.sweep import parse_sweep
from infra.config import apply_overrides, config_hash, config_to_dict
from tests.cli_helpers import run_icurr
from theory._checks import ParameterError

#: config_hash of every kind's default config, as published before this change: the defaults (and so
#: every run directory named by them) must not move.
DEFAULT_HASHES = {
    "teacher": "ef8f27bb023e", "student": "4c17973ba463", "compare": "f7a8f786a679",
    "parity-two-stage-teacher": "aeee49164350", "parity-two-stage-student": "828ff8c1e4a5",
    "parity-two-stage-compare": "3be2a1008fe9", "pcfg-teacher": "b8611ff3c329", "pcfg-student": "090e3f7609a9",
    "pcfg-compare": "576163c470d3", "parity-transformer-teacher": "16f889b73807",
    "parity-transformer-student": "4955e44d6a38", "parity-transformer-compare": "874ec46bcade",
    "text-teacher": "773764f47ea2", "text-student": "cae7503a1aee", "text-compare": "b0bf413cc0c3",
}


def _config(kind: str, *words: str):
    k = get_kind(kind)
    return apply_overrides(k.config_class()(), list(words))


def _show_config(*args: str) -> dict:
    out = run_icurr(*args, "--show-config")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# ---------------------------------------------------------------- icurr config show / list

def test_config_show_lists_every_field_with_type_default_range_and_comment():
    out = run_icurr("config", "show", "teacher")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    width = next(i for i, line in enumerate(lines) if line.startswith("width "))
    assert lines[width].split() == ["width", "int", "=", "2000", "range", ">=", "1"]
    assert lines[width + 1].strip() == "hidden width m (the paper: 50000)"  # the field's source comment
    eval_line = next(line for line in lines if line.startswith("eval_every "))
    assert eval_line.split()[1:] == ["int", "=", "1000", "range", "[1,", "steps]"]  # a bound that is a field
    assert "Intervals follow steps" in out.stdout
    fields = {line.split()[0] for line in lines if line and not line.startswith(" ") and " = " in line}
    assert fields == {f for f in config_to_dict(KINDS["teacher"].config_class()()) if f != "kind"}


def test_config_show_json_rows_and_comments_from_the_source():
    out = run_icurr("config", "show", "pcfg-compare", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = {r["field"]: r for r in json.loads(out.stdout)}
    assert rows["teacher.heads"] == {"field": "teacher.heads", "type": "int", "default": "8", "range": "[1, 1024]",
                                     "help": "attention heads (the paper's teacher: 32); width = heads * head_dim"}
    assert rows["student.seeds"]["default"] == "[0,1,2]" and rows["student.seeds"]["type"] == "list of int"
    assert rows["teacher.objective"]["type"] == "mlm | next-token"
    assert rows["student.temperature"]["range"] == ">= 0"
    assert rows["strategies"]["default"] == "[ce,oneshot,equal-split]"
    # a field without its own comment takes the teacher's, saying so
    assert rows["student.lr"]["help"].endswith("(as the teacher's)")


def test_every_field_of_every_kind_is_documented():
    for kind in KINDS.values():
        doc, rows = field_docs(kind)
        assert doc, kind.name
        missing = [r["field"] for r in rows if not r["help"]]
        assert not missing, (kind.name, missing)


def test_config_list_and_unknown_kind():
    out = run_icurr("config", "list", "--format", "json")
    rows = json.loads(out.stdout)
    assert [r["kind"] for r in rows] == list(KINDS)
    assert all("tiny" in r["presets"].split(", ") for r in rows)
    bad = run_icurr("config", "show", "techer")
    assert bad.returncode == 2 and "did you mean 'teacher'" in bad.stderr and len(bad.stderr.splitlines()) == 1
    assert run_icurr("config", "show", "parity-teacher").stdout == run_icurr("config", "show", "teacher").stdout


@pytest.mark.parametrize("family", FAMILIES)
def test_help_points_to_config_show_and_lists_the_fields(family):
    for role, kind in family_kinds(family).items():
        out = run_icurr(family, role, "--help")
        text = " ".join(out.stdout.split())
        assert out.returncode == 0 and f"icurr config show {kind.name}" in text
        if role == "teacher":
            assert "width=" in text and "seeds=[0" in text


def test_help_reads_fields_without_importing_the_engines():
    code = ("import sys, contextlib, io\nfrom icurr.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try: main(['pcfg', 'compare', '--help'])\n    except SystemExit: pass\n"
            "assert 'teacher.FIELD' in out.getvalue()\n"
            "print(sorted(m for m in ('torch', 'pandas', 'simulate.config', 'distill.config') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- --config FILE.yaml

def test_config_file_equals_the_key_value_words(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("width: 64\nsteps: 2000\nseeds: [0, 1]\nlr: 0.1\n")
    from_file = _show_config("parity", "teacher", "--config", str(f))
    from_words = _show_config("parity", "teacher", "width=64", "steps=2000", "seeds=0,1", "lr=0.1")
    assert from_file == from_words and from_file["eval_every"] == 50
    cls = KINDS["teacher"].config_class()
    from infra.config import config_from_dict

    assert config_hash(config_from_dict(cls, from_file)) == config_hash(_config("teacher", "width=64", "steps=2000",
                                                                                 "seeds=0,1", "lr=0.1"))


def test_config_file_of_a_compare_takes_sections_and_dotted_keys(tmp_path):
    nested, dotted = tmp_path / "a.yaml", tmp_path / "b.yaml"
    nested.write_text("teacher:\n  width: 128\n  steps: 4000\nstudent: {width: 16}\nstrategies: [ce, oneshot]\n")
    dotted.write_text("teacher.width: 128\nteacher.steps: 4000\nstudent.width: 16\nstrategies: [ce, oneshot]\n")
    a = _show_config("parity", "compare", "--config", str(nested))
    assert a == _show_config("parity", "compare", "--config", str(dotted))
    assert (a["teacher"]["width"], a["student"]["width"], a["strategies"]) == (128, 16, ["ce", "oneshot"])


def test_config_file_order_preset_then_file_then_words(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("width: 300\nsteps: 1000\n")
    cfg = _show_config("parity", "teacher", "--preset", "tiny", "--config", str(f), "steps=3000")
    assert (cfg["d"], cfg["width"], cfg["steps"]) == (10, 300, 3000)  # preset d, file width, word steps
    assert cfg["eval_every"] == 75  # every step of the chain moved the intervals that follow steps


def test_config_file_errors_are_one_line(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("widht: 64\n")
    out = run_icurr("parity", "teacher", "--config", str(f), "--show-config")
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1
    assert "did you mean 'width'" in out.stderr and str(f) in out.stderr
    f.write_text("width: 64\nwidth: 65\n")
    out = run_icurr("parity", "teacher", "--config", str(f), "--show-config")
    assert out.returncode == 2 and "duplicate key 'width'" in out.stderr
    out = run_icurr("parity", "teacher", "--config", str(tmp_path / "none.yaml"), "--show-config")
    assert out.returncode == 2 and "is not a file" in out.stderr


# ---------------------------------------------------------------- intervals that follow steps

def test_default_config_hashes_are_unchanged():
    assert set(DEFAULT_HASHES) == set(KINDS)
    for name, want in DEFAULT_HASHES.items():
        cfg = KINDS[name].config_class()()
        assert config_hash(cfg) == want, name
        assert apply_overrides(cfg, {}) == cfg


@pytest.mark.parametrize("kind", [k for k in KINDS if not k.startswith("parity-two-stage")])
def test_steps_alone_is_valid_for_every_kind(kind):
    words = ["teacher.steps=2000", "student.steps=2000"] if KINDS[kind].role == "compare" else ["steps=2000"]
    if kind == "compare":  # the MLP student's stage lengths are its own fields, not intervals
        words += ["student.stage_steps=50", "student.extract_steps=500"]
    cfg = _config(kind, *words)
    for section in ((cfg.teacher, cfg.student) if KINDS[kind].role == "compare" else (cfg,)):
        assert section.steps == 2000 and 1 <= section.eval_every <= 2000
        for name in ("checkpoint_every", "probe_every", "measure_every"):
            value = getattr(section, name, 0)
            assert value % section.eval_every == 0 and value <= 2000


def test_two_stage_eval_every_already_follows_its_steps():
    cfg = _config("parity-two-stage-teacher", "T2=2000")
    assert cfg.eval_every == 0  # 0: T2 // 20, resolved when the run starts


def test_intervals_follow_steps_by_the_rule():
    t = _config("teacher", "steps=2000")
    assert (t.eval_every, t.checkpoint_every, t.probe_every) == (50, 100, 100)  # 1000 * 2000 / 40000, x2, x2
    s = _config("pcfg-student", "steps=2000")  # defaults 600 steps: eval 50, measure 300 (x6), probe 600 (x12)
    assert (s.eval_every, s.measure_every, s.probe_every) == (167, 1002, 11 * 167)  # probe clipped to <= steps
    p = _config("parity-transformer-student", "steps=30000")
    assert (p.eval_every, p.probe_every) == (1000, 0)  # 0 stays 0
    tiny = _config("teacher", "steps=10")
    assert (tiny.eval_every, tiny.checkpoint_every, tiny.probe_every) == (1, 2, 2)


def test_given_or_earlier_intervals_are_kept():
    t = _config("teacher", "steps=2000", "eval_every=7")
    assert (t.eval_every, t.checkpoint_every, t.probe_every) == (7, 14, 14)  # the defaults' multiples of eval
    t = _config("teacher", "steps=2000", "checkpoint_every=500")
    assert (t.eval_every, t.checkpoint_every, t.probe_every) == (50, 500, 100)
    earlier = _config("teacher", "eval_every=250")
    later = apply_overrides(earlier, ["steps=4000"])
    assert (later.eval_every, later.checkpoint_every, later.probe_every) == (250, 500, 500)
    twice = apply_overrides(_config("teacher", "steps=2000"), ["steps=8000"])  # still following
    assert (twice.eval_every, twice.checkpoint_every) == (200, 400)
    paper = apply_overrides(apply_overrides(KINDS["teacher"].config_class()(), preset_words(KINDS["teacher"], "paper")),
                            ["steps=1000000"])
    assert paper.eval_every == 100000  # the preset's own intervals are kept


def test_a_sweep_that_names_its_intervals_keeps_them():
    sweep = parse_sweep({"kind": "compare", "base": {"teacher.d": 10, "teacher.k": 2, "teacher.probe_every": 0,
                                                     "student.probe_every": 0, "strategies": ["ce"]},
                         "zip": {"teacher.steps": [4000], "teacher.eval_every": [250],
                                 "teacher.checkpoint_every": [250], "student.steps": [8000],
                                 "student.eval_every": [500]}})
    from experiments.sweep import expand

    run = expand(sweep)[0]  # one run per student seed
    t, s = run.config.teacher, run.config.student
    assert (t.eval_every, t.checkpoint_every, t.probe_every, s.eval_every, s.probe_every) == (250, 250, 0, 500, 0)


# ---------------------------------------------------------------- [0,1,2] list syntax

def test_list_syntax_equals_commas():
    assert _config("teacher", "seeds=[0, 1,2]") == _config("teacher", "seeds=0,1,2")
    assert _config("teacher", "seeds=[0]", "run_lrs=[0.05]").run_lrs == (0.05,)
    assert _config("teacher", "seeds=[0,0]", "run_lrs=[0.05, 1e-3]").run_lrs == (0.05, 0.001)
    assert _config("compare", "strategies=[ce, oneshot]").strategies == ("ce", "oneshot")
    assert _config("teacher", "k=4", "support=[20,3,11,7]").support == _config("teacher", "k=4", "support=3,7,11,20").support
    assert _config("teacher", "run_lrs=[]").run_lrs == ()
    assert _config("pcfg-teacher", "measure_ns=[3, 5]").measure_ns == (3, 5)
    out = run_icurr("parity", "teacher", "seeds=[1,2]", "--show-config")
    assert json.loads(out.stdout)["seeds"] == [1, 2]


@pytest.mark.parametrize("word, message", [
    ("seeds=[0", "seeds must be a list such as [0,1,2]"),
    ("seeds=[0,[1]]", "seeds holds single values, not lists"),
    ("seeds=[0.5]", "seeds must be an integer"),
    ("seeds=[-1]", "seeds must be an integer in [0, "),
    ("width=[1]", "width must be an integer"),
    ("seeds=[{a: 1}]", "seeds items must be numbers or strings"),
])
def test_list_syntax_errors_are_one_line(word, message):
    with pytest.raises(ParameterError, match=None) as err:
        _config("teacher", word)
    assert message in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- did you mean

@pytest.mark.parametrize("kind, word, suggestion", [
    ("teacher", "widht=3", "did you mean 'width'?"),
    ("teacher", "lr_shedule=constant", "did you mean 'lr_schedule'?"),
    ("compare", "teacher.widht=3", "did you mean 'teacher.width'?"),
    ("compare", "student.temprature=1", "'student.temperature'"),
    ("compare", "width=3", "did you mean 'teacher.width' or 'student.width'?"),
    ("compare", "studnet.width=3", "did you mean 'student.width'?"),
    ("compare", "strategy=ce", "did you mean 'strategies'?"),
    ("pcfg-teacher", "grammer=cfg3b", "did you mean 'grammar'?"),
])
def test_unknown_keys_name_the_closest_known_ones(kind, word, suggestion):
    with pytest.raises(ParameterError) as err:
        _config(kind, word)
    text = str(err.value)
    assert "unknown config key" in text and suggestion in text and "\n" not in text


def test_unknown_key_without_a_close_one_lists_the_keys():
    with pytest.raises(ParameterError, match="known keys: backend, batch, checkpoint_every, d,"):
        _config("teacher", "zzz=1")


def test_did_you_mean_in_sweep_files_and_on_the_command_line():
    with pytest.raises(ParameterError, match=r"did you mean 'teacher.width'\? \(base of <sweep>\)"):
        parse_sweep({"kind": "compare", "base": {"teacher": {"widht": 8}}})
    out = run_icurr("parity", "teacher", "widht=3")
    assert out.returncode == 2 and "did you mean 'width'?" in out.stderr


# ---------------------------------------------------------------- tiny presets

@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_a_tiny_preset_that_validates(family):
    assert "tiny" in presets(family)
    for role, kind in family_kinds(family).items():
        cfg = apply_overrides(kind.config_class()(), preset_words(kind, "tiny"))  # validated by __post_init__
        for section in ((cfg.teacher, cfg.student) if role == "compare" else (cfg,)):
            steps = getattr(section, "steps", None) or section.T2
            assert steps <= 5000, (family, role)
            if hasattr(section, "steps"):  # the intervals followed the preset's steps
                assert section.eval_every <= steps // 10, (family, role)


@pytest.mark.slow
def test_tiny_parity_teacher_learns_in_seconds(tmp_path):
    out = run_icurr("parity", "teacher", "--preset", "tiny", "--device", "cpu", "--out", str(tmp_path / "t"),
                    "--no-progress", "--format", "json")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert row["final_accuracy"] == 1.0 and row["samples_to_95"] <= 2000
