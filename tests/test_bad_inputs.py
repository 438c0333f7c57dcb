"""Bad input, across the command line and the API: one line naming the parameter (or the file) and its
allowed range, exit code 2 (CLI) or the exception (API), before any work and before any file is written.

The tables below hold configs of every kind, command-line options of every command, theory
subcommands, grammar JSON, corpus files and teacher directories; every CLI row runs in-process
(:func:`cli_helpers.run_icurr`) in a scratch directory whose files are compared before and after.
Then: the grammar a student trains on is its teacher's stored copy, a text student only reads its
teacher's ``text/``, students check their teacher's checkpoints, unreadable runs in ``report`` /
``results`` are left out with one warning line, output paths that cannot be written, a full disk.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_icurr

from infra.config import IcurrWarning, apply_overrides
from theory._checks import ParameterError

BIG = str(10**9)


# ------------------------------------------------------------------ helpers

def snapshot(root: Path) -> dict:
    """Every file and directory below ``root``: its size and modification time."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        st = p.stat()
        out[str(p.relative_to(root))] = (p.is_dir(), 0 if p.is_dir() else st.st_size, st.st_mtime_ns)
    return out


def one_line_error(out, *needles) -> str:
    """The CLI's stderr is one line ``icurr: error: ...`` holding every needle; exit code 2."""
    assert out.returncode == 2, (out.returncode, out.stdout[-500:], out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("icurr: error: "), out.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def one_line_exception(exc_info, *needles) -> str:
    text = str(exc_info.value)
    assert "\n" not in text.strip(), text
    for needle in needles:
        assert needle in text, (needle, text)
    return text


def run_in(scratch: Path, *args):
    """``icurr ARGS`` with ``{s}`` in the arguments replaced by ``scratch``; asserts that nothing under
    ``scratch`` changed and that ``scratch/out`` was not created."""
    before = snapshot(scratch)
    out = run_icurr(*(str(a).replace("{s}", str(scratch)) for a in args))
    assert snapshot(scratch) == before, "files were written"
    assert not (scratch / "out").exists()
    return out


# ------------------------------------------------------------------ fixtures: grammars, corpora, teachers

MLP_TEACHER = ["d=6", "k=2", "width=16", "steps=100", "eval_every=50", "checkpoint_every=50", "probe_every=0",
               "device=cpu"]
MLP_STUDENT = ["width=8", "steps=40", "eval_every=20", "probe_every=0", "seeds=0", "strategy=two-shot",
               "first_checkpoint=50", "stage_steps=20", "device=cpu"]
PCFG_TEACHER = ["grammar=mini", "layers=1", "heads=2", "head_dim=8", "steps=20", "batch=16", "warmup=2",
                "eval_every=10", "eval_size=16", "checkpoint_every=10", "measure_every=0", "probe_every=0",
                "bayes_eval=false", "device=cpu"]
PCFG_STUDENT = ["layers=1", "heads=1", "head_dim=8", "steps=20", "batch=8", "warmup=0", "eval_every=10",
                "eval_size=16", "measure_every=0", "probe_every=0", "seeds=0", "strategy=two-shot",
                "first_checkpoint=10", "device=cpu"]
TEXT_TEACHER = ["documents=blank-line", "vocab_size=96", "min_frequency=1", "seq_len=8", "layers=1", "heads=2",
                "head_dim=8", "steps=20", "batch=8", "warmup=2", "eval_every=10", "eval_size=8",
                "checkpoint_every=10", "measure_every=0", "measure_ns=3", "device=cpu"]
TEXT_STUDENT = ["layers=1", "heads=1", "head_dim=8", "steps=20", "batch=8", "warmup=0", "eval_every=10",
                "eval_size=8", "measure_every=0", "measure_ns=3", "seeds=0", "strategy=two-shot",
                "first_checkpoint=10", "device=cpu"]


def _grammar(seed: int, terminals: int) -> dict:
    from distill.grammar import random_grammar

    return random_grammar(3, terminals=terminals, generator=np.random.default_rng(seed), name="mini").to_dict()


def _corpus_text() -> str:
    words = "the model learns a rule of parity then the student copies each step of its teacher".split()
    rng = np.random.default_rng(0)
    return "\n\n".join(" ".join(rng.choice(words, 12)) for _ in range(120))


@pytest.fixture(scope="module")
def area(tmp_path_factory):
    """Trained tiny teachers of three kinds (MLP, PCFG on the grammar ``mini`` of ``g1/``, text), and a
    second directory ``g2/`` where ``mini`` is another grammar (four terminals instead of three)."""
    from distill.config import PcfgTeacherConfig
    from distill.runs import train_teacher as transformer_teacher
    from distill.text_config import TextTeacherConfig
    from simulate.config import TeacherConfig
    from simulate.teacher import train_teacher as mlp_teacher

    root = tmp_path_factory.mktemp("bad_inputs")
    for name, (seed, terminals) in {"g1": (1, 3), "g2": (2, 4)}.items():
        (root / name).mkdir()
        (root / name / "mini.json").write_text(json.dumps(_grammar(seed, terminals)))
    (root / "corpus").mkdir()
    (root / "corpus" / "words.txt").write_text(_corpus_text())
    mlp_teacher(apply_overrides(TeacherConfig(), MLP_TEACHER), root / "mlp", progress=False)
    old = os.environ.get("ICURR_GRAMMAR_PATH")
    os.environ["ICURR_GRAMMAR_PATH"] = str(root / "g1")
    try:
        transformer_teacher(apply_overrides(PcfgTeacherConfig(), PCFG_TEACHER), root / "pcfg", progress=False)
    finally:
        if old is None:
            os.environ.pop("ICURR_GRAMMAR_PATH")
        else:
            os.environ["ICURR_GRAMMAR_PATH"] = old
    transformer_teacher(apply_overrides(TextTeacherConfig(corpus=str(root / "corpus")), TEXT_TEACHER), root / "text",
                        progress=False)
    return root


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """An empty working directory (the current one) for a CLI row."""
    work = tmp_path / "scratch"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


# ------------------------------------------------------------------ table 1: configs of every kind (API)

CONFIG_ROWS = [
    # MLP engine
    ("teacher", ["width=0"], "width"),
    ("teacher", [f"width={BIG}"], "width"),
    ("teacher", [f"d={BIG}"], "d"),
    ("teacher", [f"batch={BIG}"], "batch"),
    ("teacher", [f"eval_size={BIG}"], "eval_size"),
    ("teacher", [f"probe_samples={BIG}"], "probe_samples"),
    ("teacher", ["steps=1e30"], "steps"),
    ("teacher", [f"steps={2**53}"], "steps"),
    ("teacher", ["steps=1.5"], "steps"),
    ("teacher", ["steps=ten"], "steps"),
    ("teacher", ["steps=1000000", "batch=10000000000"], "steps * batch"),
    ("teacher", [f"seeds={2**53 + 1}"], "seeds"),
    ("teacher", ["seeds=1e20"], "seeds"),
    ("teacher", ["seeds=0,0"], "seeds"),
    ("teacher", [f"support_seed={2**60}"], "support_seed"),
    ("teacher", ["k=30"], "k"),
    ("teacher", ["lr=nan"], "lr"),
    ("teacher", ["lr=inf"], "lr"),
    ("teacher", ["device=tpu"], "device"),
    ("teacher", ["backend=fast"], "backend"),
    ("student", ["backend=native", "device=cuda"], "backend"),
    ("teacher", ["no_such_field=1"], "no_such_field"),
    ("teacher", ["intermediate=5"], "intermediate"),
    ("student", [f"width={BIG}"], "width"),
    ("student", [f"batch={BIG}"], "batch"),
    ("student", ["temperature=-1"], "temperature"),
    ("student", [f"projection_seed={2**60}"], "projection_seed"),
    ("student", ["eval_size=8"], "eval_size"),
    ("compare", [f"student.batch={BIG}"], "student.batch"),
    ("compare", ["teacher.width=0"], "width"),
    ("compare", ["student.steps=1e30"], "steps"),
    # Algorithm 1 (two-stage MLPs)
    ("parity-two-stage-teacher", ["d=9", "k=3"], "k must be even when d is odd"),
    ("parity-two-stage-teacher", ["B1=-1"], "B1"),
    ("parity-two-stage-teacher", ["width=63"], "width must be even"),
    ("parity-two-stage-student", ["width=1"], "width"),
    ("parity-two-stage-student", ["success=maybe"], "success"),
    ("parity-two-stage-student", ["d=8"], "d and k"),
    ("parity-two-stage-compare", ["student.T2=1"], "T2"),
    ("parity-two-stage-compare", ["supervisions=ce"], "supervisions"),
    # PCFG Transformers
    ("pcfg-teacher", ["heads=1024", "head_dim=1024"], "heads"),
    ("pcfg-teacher", [f"batch={BIG}"], "batch"),
    ("pcfg-teacher", [f"eval_size={BIG}"], "eval_size"),
    ("pcfg-teacher", [f"probe_train={BIG}"], "probe_train"),
    ("pcfg-teacher", [f"probe_steps={BIG}"], "probe_steps"),
    ("pcfg-teacher", [f"measure_positions={BIG}"], "measure_positions"),
    ("pcfg-teacher", ["steps=2e16"], "steps"),
    ("pcfg-teacher", ["layers=65"], "layers"),
    ("pcfg-teacher", ["mask_rate=0"], "mask_rate"),
    ("pcfg-teacher", ["bayes_eval=maybe"], "bayes_eval"),
    ("pcfg-teacher", ["grammar="], "grammar"),
    ("pcfg-student", [f"batch={BIG}"], "batch"),
    ("pcfg-student", ["heads=1024", "head_dim=1024"], "heads"),
    ("pcfg-student", ["first_skip=1"], "first_skip"),
    ("pcfg-compare", ["student.steps=1e30"], "steps"),
    # parity Transformers
    ("parity-transformer-teacher", [f"batch={BIG}"], "batch"),
    ("parity-transformer-teacher", [f"d={BIG}"], "d"),
    ("parity-transformer-teacher", [f"probe_samples={BIG}"], "probe_samples"),
    ("parity-transformer-student", [f"probe_samples={BIG}"], "probe_samples"),
    ("parity-transformer-compare", [f"student.batch={BIG}"], "student.batch"),
    # text
    ("text-teacher", [f"batch={BIG}"], "batch"),
    ("text-teacher", ["vocab_size=10"], "vocab_size"),
    ("text-teacher", ["seq_len=100000"], "seq_len"),
    ("text-teacher", [f"split_seed={2**60}"], "split_seed"),
    ("text-teacher", ["heldout=0.9"], "heldout"),
    ("text-student", [f"measure_positions={BIG}"], "measure_positions"),
    ("text-student", ["measure_ns=5000"], "measure_ns"),
    ("text-compare", [f"student.batch={BIG}"], "student.batch"),
]


@pytest.mark.parametrize("kind, words, needle", CONFIG_ROWS, ids=[f"{k}:{' '.join(w)}" for k, w, _ in CONFIG_ROWS])
def test_config_rows(kind, words, needle):
    from experiments.registry import get_kind

    with pytest.raises(ParameterError) as exc:
        apply_overrides(get_kind(kind).config_class()(), words)
    one_line_exception(exc, needle)


def test_integers_are_parsed_exactly():
    from simulate.config import TeacherConfig

    cfg = apply_overrides(TeacherConfig(), ["steps=40_000", "seeds=9007199254740991", "eval_every=1e3"])
    assert (cfg.steps, cfg.seeds, cfg.eval_every) == (40_000, (2**53 - 1,), 1000)
    assert apply_overrides(TeacherConfig(), ["steps=2.5e4"]).steps == 25_000


# ------------------------------------------------------------------ table 2: options of every command (CLI)

CLI_ROWS = [
    # experiments: bad fields, paths and options of every family and role
    (["parity", "teacher", "--out", "{s}/out", f"width={BIG}"], "width"),
    (["parity", "teacher", "--out", "{s}/out", "steps=1e30"], "steps"),
    (["parity", "teacher", "--out", "{s}/out", f"batch={BIG}"], "batch"),
    (["parity", "teacher", "--out", "{s}/out", f"probe_samples={BIG}"], "probe_samples"),
    (["parity", "teacher", "--out", "{s}/out", "width"], "width"),
    (["parity", "teacher", "--out", "{s}/out", "--preset", "papr"], "--preset"),
    (["parity", "teacher", "--out", "{s}/out", "--device", "tpu"], "--device"),
    (["parity", "student", "--out", "{s}/out", "--teacher", "{s}/none"], "teacher"),
    (["parity", "student", "--out", "{s}/out", "--strategy", "ce"], "icurr parity teacher"),  # a ce student: the hint
    (["parity", "student", "--out", "{s}/out", "--teacher", "{s}/none", "--strategy", "fast"], "--strategy"),
    (["parity", "compare", "--out", "{s}/out", f"student.width={BIG}"], "student.width"),
    (["parity", "compare", "--out", "{s}/out", "strategies=slow"], "strategies"),
    (["pcfg", "teacher", "--out", "{s}/out", "--grammar", "no-such-grammar"], "no-such-grammar"),
    (["pcfg", "teacher", "--out", "{s}/out", "--grammar", "random:levels=99"], "levels"),
    (["pcfg", "teacher", "--out", "{s}/out", "objective=next-token", "boundary_level=9",
      "grammar=random:levels=3"], "boundary_level"),
    (["pcfg", "teacher", "--out", "{s}/out", f"batch={BIG}"], "batch"),
    (["pcfg", "teacher", "--out", "{s}/out", "grammar=random:levels=3", "batch=100000000"], "batch"),
    (["pcfg", "student", "--out", "{s}/out", "--teacher", "{s}"], "config.json"),
    (["pcfg", "compare", "--out", "{s}/out", "student.steps=0"], "steps"),
    (["parity-transformer", "teacher", "--out", "{s}/out", f"d={BIG}"], "d"),
    (["parity-transformer", "student", "--out", "{s}/out", "--teacher", ""], "teacher"),
    (["parity-transformer", "compare", "--out", "{s}/out", "student.first_rule=m_robust"], "first_rule"),
    (["text", "teacher", "--out", "{s}/out", "--corpus", "{s}/missing.txt"], "missing.txt"),
    (["text", "teacher", "--out", "{s}/out", "vocab_size=3"], "vocab_size"),
    (["text", "student", "--out", "{s}/out", "--teacher", "{s}/none"], "teacher"),
    (["text", "compare", "--out", "{s}/out", "student.measure_ns=99", "teacher.seq_len=16"], "measure_ns"),
    (["text", "corpus", "--out", "{s}/out", "--max-bytes", "10"], "max_bytes"),
    (["demo", "--out", "{s}/out", "teacher.width=0"], "width"),
    # theory
    (["theory", "fourier", "--n", "0", "--degree", "0"], "n"),
    (["theory", "fourier", "--n", "1e999999999", "--degree", "1"], "n"),
    (["theory", "fourier", "--n", str(10**12), "--degree", "1"], "n"),
    (["theory", "fourier", "--n", str(10**6), "--degree", "3", "--exact"], "n"),
    (["theory", "fourier", "--n", str(10**9), "--degree", "3", "--exact"], "n"),
    (["theory", "fourier", "--n", "20000", "--degree", "0", "--exact"], "n"),
    (["theory", "fourier", "--n", BIG, "--degree", str(5 * 10**8)], "degree"),
    (["theory", "fourier", "--n", "5", "--degree", "6"], "degree"),
    (["theory", "fourier", "--n", "5", "--degree", "2", "--fn", "threshold", "--bias", "1e999999999"], "bias"),
    (["theory", "fourier", "--n", "5", "--degree", "2", "--bias", "1/0"], "bias"),
    (["theory", "gap", "--d", "10", "--k", "11"], "k"),
    (["theory", "gap", "--d", str(10**12), "--k", "3"], "d"),
    (["theory", "gradient", "--d", "10,12", "--k", "3"], "--d"),
    (["theory", "gradient", "--d", "1", "--k", "1"], "d"),
    (["theory", "bounds", "--eps", "1.5"], "eps"),
    (["theory", "bounds", "--tau", "0"], "tau"),
    (["theory", "bounds", "--c", "-1"], "c"),
    (["theory", "bounds", "--width", "0"], "width"),
    # PCFG tools
    (["pcfg", "stats", "--samples", "0"], "samples"),
    (["pcfg", "stats", "--seed", "-1"], "seed"),
    (["pcfg", "stats", "--grammar", "{s}"], "grammar"),
    (["pcfg", "optimal", "--mask-rate", "0"], "mask-rate"),
    (["pcfg", "optimal", "--replacement", "keep"], "replacement"),
    (["pcfg", "optimal", "--samples", "1"], "samples"),
    (["pcfg", "optimal", "--chunk", "0", "--grammar", "random:levels=3"], "chunk"),
    (["pcfg", "probe", "{s}/none"], "none"),
    # report and results
    (["report", "{s}/none", "--out", "{s}/out"], "none"),
    (["report", "{s}", "--out", "{s}/out", "--n-boot", "-5"], "--n-boot"),
    (["report", "{s}", "--out", "{s}/out", "--seed", "-1"], "--seed"),
    (["report", "{s}", "--out", "{s}/out", "--theory-d", "2"], "--theory-d"),
    (["report", "{s}", "--out", "{s}/out", "--frontier-delta", "1.5"], "--frontier-delta"),
    (["report", "{s}", "--out", "{s}/out", "--target", "50"], "--target"),
    (["results", "{s}/none"], "none"),
    (["results", "{s}", "--kind", "other"], "--kind"),
    (["sweep", "status", "{s}/none"], "none"),
]


@pytest.mark.parametrize("args, needle", CLI_ROWS, ids=[" ".join(a[:4]) + f" [{n}]" for a, n in CLI_ROWS])
def test_cli_rows(scratch, args, needle):
    one_line_error(run_in(scratch, *args), needle.replace("{s}", str(scratch)))


# ------------------------------------------------------------------ table 3: output paths that cannot be written

OUT_ROWS = [
    (["parity", "teacher", "--out", "{s}/afile", "d=4", "k=2"], "existing file"),
    (["parity", "teacher", "--out", "{s}/afile/run", "d=4", "k=2"], "lies under"),
    (["pcfg", "teacher", "--out", "{s}/afile", "grammar=random:levels=3"], "existing file"),
    (["text", "corpus", "--out", "{s}/afile/c"], "lies under"),
    (["report", "{s}", "--out", "{s}/afile"], "existing file"),
    (["results", "{s}", "--csv", "{s}/adir"], "existing directory"),
    (["results", "{s}", "--parquet", "{s}/afile/x.parquet"], "lies under"),
    (["demo", "--out", "{s}/afile", "teacher.d=6", "teacher.k=2"], "existing file"),
    (["demo", "--out", "{s}/d", "--report-out", "{s}/afile/r"], "--report-out"),
]


@pytest.mark.parametrize("args, needle", OUT_ROWS, ids=[" ".join(a[:3]) + f" [{n}]" for a, n in OUT_ROWS])
def test_output_path_rows(scratch, args, needle):
    (scratch / "afile").write_text("x")
    (scratch / "adir").mkdir()
    one_line_error(run_in(scratch, *args), needle)


def test_read_only_output_directory(scratch, monkeypatch):
    (scratch / "ro").mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == scratch / "ro" else real(p, mode, **kw))
    one_line_error(run_in(scratch, "parity", "teacher", "--out", "{s}/ro/run", "d=4", "k=2"), "not a writable")
    one_line_error(run_in(scratch, "report", "{s}", "--out", "{s}/ro"), "not a writable")


def test_full_disk_is_one_line(scratch, monkeypatch):
    from infra.rundir import RunDir

    def full(self, rows):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path / "metrics.jsonl"))

    monkeypatch.setattr(RunDir, "append_metrics", full)
    out = run_icurr("parity", "teacher", "--out", str(scratch / "run"), *MLP_TEACHER, "--no-progress")
    one_line_error(out, "No space left on device", "metrics.jsonl")


# ------------------------------------------------------------------ table 4: grammar JSON

NESTED = "[" * 100_000 + "]" * 100_000
GRAMMAR_ROWS = [
    ("terminals-a-string", {"terminals": "ab"}, "terminals"),
    ("terminals-not-strings", {"terminals": [1, 2]}, "terminals"),
    ("terminals-repeated", {"terminals": ["a", "a"]}, "terminals"),
    ("no-rules", {"rules": None}, "rules"),
    ("rules-a-list", {"rules": [1, 2]}, "rules"),
    ("missing-start", {"start": None}, "start"),
    ("start-undefined", {"start": "Q"}, "start"),
    ("probability-above-1", {"rules": {"S": [["a", 1.5]], "a": [["a", 1.0]]}}, "probability"),
    ("probabilities-not-summing", {"rules": {"S": [["a", 0.5]], "a": [["a", 1.0]]}}, "sum to 1"),
    ("undefined-symbol", {"rules": {"S": [["X", 1.0]], "a": [["a", 1.0]]}}, "'X'"),
    ("empty-rhs", {"rules": {"S": [[1.0]], "a": [["a", 1.0]]}}, "empty"),
    ("nested-rhs", {"rules": {"S": [[["a", ["b"]], 1.0]], "a": [["a", 1.0]]}}, "strings"),
]
BAD_FILES = [
    ("not-json", b"{grammar", "not valid JSON"),
    ("empty-file", b"", "not valid JSON"),
    ("truncated", json.dumps(_grammar(1, 3)).encode()[:50], "not valid JSON"),
    ("deeply-nested", NESTED.encode(), "nested too deeply"),
    ("nested-in-rules", ('{"name":"x","start":"S","terminals":["a"],"rules":{"S":' + NESTED + "}}").encode(),
     "nested too deeply"),
    ("not-utf8", b"\xff\xfe\x00{", "UTF-8"),
    ("top-level-list", b"[1, 2, 3]", "JSON object"),
]


def _grammar_file(tmp_path, name, change) -> Path:
    g = _grammar(1, 3)
    for key, value in change.items():
        if value is None:
            g.pop(key)
        else:
            g[key] = value
    if "rules" in change and isinstance(change["rules"], dict):
        g["terminals"] = ["a"]
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(g))
    return path


@pytest.mark.parametrize("name, change, needle", GRAMMAR_ROWS, ids=[r[0] for r in GRAMMAR_ROWS])
def test_grammar_rows(tmp_path, name, change, needle):
    from distill.grammar import load_grammar

    path = _grammar_file(tmp_path, name, change)
    with pytest.raises(ParameterError) as exc:
        load_grammar(str(path))
    one_line_exception(exc, needle, str(path))


@pytest.mark.parametrize("name, data, needle", BAD_FILES, ids=[r[0] for r in BAD_FILES])
def test_grammar_file_rows(scratch, name, data, needle):
    (scratch / "g.json").write_bytes(data)
    one_line_error(run_in(scratch, "pcfg", "stats", "--grammar", "{s}/g.json"), needle, "g.json")
    one_line_error(run_in(scratch, "pcfg", "teacher", "--out", "{s}/out", "--grammar", "{s}/g.json"), needle)


# ------------------------------------------------------------------ table 5: corpus files

CORPUS_ROWS = [
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "not UTF-8"),
    ("nul-bytes", b"text with a \x00 inside", "binary"),
    ("latin-1", "caf\xe9 cr\xe8me br\xfbl\xe9e ".encode("latin-1") * 20, "not UTF-8"),
    ("empty", b"", "no text"),
    ("one-document", b"just one document with words", "heldout"),
]


@pytest.mark.parametrize("name, data, needle", CORPUS_ROWS, ids=[r[0] for r in CORPUS_ROWS])
def test_corpus_rows(scratch, name, data, needle):
    (scratch / "c.txt").write_bytes(data)
    one_line_error(run_in(scratch, "text", "teacher", "--out", "{s}/out", "--corpus", "{s}/c.txt"), needle)


def test_corpus_directory_rows(scratch):
    (scratch / "docs").mkdir()
    one_line_error(run_in(scratch, "text", "teacher", "--out", "{s}/out", "--corpus", "{s}/docs"), "corpus_glob")
    (scratch / "docs" / "a.txt").write_text("fine words " * 50)
    (scratch / "docs" / "b.txt").write_bytes(b"\x00\x01\x02binary")
    one_line_error(run_in(scratch, "text", "teacher", "--out", "{s}/out", "--corpus", "{s}/docs"), "b.txt", "binary")


# ------------------------------------------------------------------ table 6: teacher directories

def _json_edit(rel, **changes):
    def edit(t: Path):
        data = json.loads((t / rel).read_text())
        data.update(changes)
        (t / rel).write_text(json.dumps(data))
    return edit


def _truncate(rel, n=40):
    def edit(t: Path):
        p = t / rel if not rel.startswith("ckpt:") else sorted((t / "ckpt").glob("*.safetensors"))[int(rel[5:])]
        p.write_bytes(p.read_bytes()[:n])
    return edit


def _remove(rel):
    def edit(t: Path):
        p = t / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return edit


def _write(rel, data: bytes):
    return lambda t: (t / rel).write_bytes(data)


def _clear_ckpt(t: Path):
    for p in (t / "ckpt").glob("*"):
        p.unlink()


def _swap_header(t: Path):
    """A checkpoint whose header claims more bytes than the file holds."""
    p = sorted((t / "ckpt").glob("*.safetensors"))[-1]
    data = p.read_bytes()
    p.write_bytes(data[:-8])


TEACHER_ROWS = [
    # MLP teachers (icurr parity student)
    ("mlp", "no-config", _remove("config.json"), "config.json"),
    ("mlp", "truncated-config", _truncate("config.json"), "not valid JSON"),
    ("mlp", "config-a-list", _write("config.json", b"[1]"), "JSON object"),
    ("mlp", "config-other-kind", _json_edit("config.json", kind="PcfgTeacherConfig"), "PcfgTeacherConfig"),
    ("mlp", "config-bad-width", _json_edit("config.json", width="wide"), "width"),
    ("mlp", "config-wrong-width", _json_edit("config.json", width=32), "width 16 != expected 32"),
    ("mlp", "config-wrong-d", _json_edit("config.json", d=7), "d 6 != expected 7"),
    ("mlp", "config-more-seeds", _json_edit("config.json", seeds=[0, 1]), "runs 1 != expected 2"),
    ("mlp", "no-checkpoints", _clear_ckpt, "no checkpoints"),
    ("mlp", "truncated-checkpoint", _truncate("ckpt:1", 100), "truncated"),
    ("mlp", "short-checkpoint", _truncate("ckpt:0", 5), "truncated"),
    ("mlp", "garbage-checkpoint", lambda t: sorted((t / "ckpt").glob("*"))[0].write_bytes(b"x" * 64), "safetensors"),
    ("mlp", "cut-tensors", _swap_header, "truncated"),
    ("mlp", "corrupt-metrics", _write("metrics.parquet", b"not parquet"), "metrics", ["first_checkpoint=auto"]),
    # PCFG teachers (icurr pcfg student)
    ("pcfg", "no-grammar-copy", _remove("grammar.json"), "grammar.json"),
    ("pcfg", "grammar-copy-edited", lambda t: (t / "grammar.json").write_text(
        (t / "grammar.json").read_text().replace('"mini"', '"other"')), "hashes"),
    ("pcfg", "grammar-copy-truncated", _truncate("grammar.json"), "not valid JSON"),
    ("pcfg", "summary-hash-differs", _json_edit("summary.json", grammar_sha256="0" * 64), "summary"),
    ("pcfg", "truncated-summary", _truncate("summary.json"), "summary.json"),
    ("pcfg", "config-wrong-heads", _json_edit("config.json", heads=4), "heads"),
    ("pcfg", "config-wrong-layers", _json_edit("config.json", layers=2), "layers"),
    ("pcfg", "teacher-run-missing", lambda t: None, "teacher_run", ["teacher_run=1"]),
    ("pcfg", "corrupt-metrics", _write("metrics.parquet", b"not parquet"), "metrics", ["first_checkpoint=auto"]),
    ("pcfg", "truncated-checkpoint", _truncate("ckpt:1", 200), "truncated"),
    ("pcfg", "no-checkpoints", _clear_ckpt, "no checkpoints"),
    ("pcfg", "mlp-teacher-config", lambda t: (t / "config.json").write_text(
        json.dumps({"kind": "TeacherConfig"})), "no Transformer teacher config"),
    # text teachers (icurr text student)
    ("text", "no-text-dir", _remove("text"), "text"),
    ("text", "no-tokenizer", _remove("text/tokenizer.json"), "tokenizer.json"),
    ("text", "no-stream", _remove("text/train.npy"), "train.npy"),
    ("text", "corrupt-stream", _write("text/train.npy", b"\x93NUMPY garbage"), "corrupt"),
    ("text", "stream-changed", lambda t: np.save(t / "text" / "train.npy", np.load(t / "text" / "train.npy")[:-1]),
     "token streams hash"),
    ("text", "summary-tokenizer-differs", _json_edit("summary.json", tokenizer_sha256="0" * 64), "tokenizer hash"),
    ("text", "truncated-meta", _truncate("text/meta.json", 10), "corrupt"),
]
STUDENT_ARGS = {"mlp": ("parity", MLP_STUDENT), "pcfg": ("pcfg", PCFG_STUDENT), "text": ("text", TEXT_STUDENT)}


TEACHER_ROWS = [(*r, []) if len(r) == 4 else r for r in TEACHER_ROWS]


@pytest.mark.parametrize("teacher, name, edit, needle, extra", TEACHER_ROWS,
                         ids=[f"{r[0]}:{r[1]}" for r in TEACHER_ROWS])
def test_teacher_directory_rows(area, scratch, teacher, name, edit, needle, extra):
    shutil.copytree(area / teacher, scratch / "t")
    edit(scratch / "t")
    family, words = STUDENT_ARGS[teacher]
    out = run_in(scratch, family, "student", "--teacher", "{s}/t", "--out", "{s}/out", *words, *extra)
    one_line_error(out, needle)


# ------------------------------------------------------------------ what students train on, and where they write

def test_student_trains_on_its_teachers_grammar_from_another_directory(area, tmp_path, monkeypatch):
    """The teacher resolved ``mini`` in g1 (3 terminals); from another working directory, where ``mini``
    is g2's grammar (4 terminals), the student still trains on the teacher's copy (a model of the
    other grammar's vocabulary would not even match the teacher's checkpoints) and says so in one line."""
    from distill.config import PcfgStudentConfig
    from distill.grammar import load_grammar
    from distill.grammar_copy import grammar_sha256, read_grammar_copy
    from distill.runs import build_task, load_teacher_config, train_student

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("ICURR_GRAMMAR_PATH", str(area / "g2"))
    assert load_grammar("mini").vocab.n_terminals == 4
    teacher = area / "pcfg"
    stored = read_grammar_copy(teacher)
    assert stored.vocab.n_terminals == 3
    assert grammar_sha256(stored) == json.loads((teacher / "summary.json").read_text())["grammar_sha256"]
    before = snapshot(teacher)
    cfg = apply_overrides(PcfgStudentConfig(teacher=str(teacher)), PCFG_STUDENT)
    with pytest.warns(IcurrWarning, match="teacher's copy"):
        rd = train_student(cfg, tmp_path / "student", progress=False)
    assert rd.finished and snapshot(teacher) == before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IcurrWarning)
        task = build_task(load_teacher_config(teacher), teacher, student=True)
    assert grammar_sha256(task.grammar) == grammar_sha256(stored)
    # the command line: the warning is one line, the student trains
    out = run_icurr("pcfg", "student", "--teacher", str(teacher), "--out", str(tmp_path / "cli"), *PCFG_STUDENT,
                    "--no-progress", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stderr.splitlines() if line.startswith("icurr: ")] == [
        line for line in out.stderr.splitlines() if line.startswith("icurr: warning: grammar 'mini'")]


def test_resumed_teacher_keeps_its_grammar_copy(area, tmp_path, monkeypatch):
    from distill.config import PcfgTeacherConfig
    from distill.runs import build_task

    shutil.copytree(area / "pcfg", tmp_path / "t")
    monkeypatch.setenv("ICURR_GRAMMAR_PATH", str(area / "g2"))
    cfg = apply_overrides(PcfgTeacherConfig(), PCFG_TEACHER)
    with pytest.warns(IcurrWarning, match="continues on its copy"):
        task = build_task(cfg, tmp_path / "t")
    assert task.grammar.vocab.n_terminals == 3
    fresh = build_task(cfg, tmp_path / "new")  # a new run stores what the name resolves to now
    assert fresh.grammar.vocab.n_terminals == 4 and (tmp_path / "new" / "grammar.json").is_file()


def test_text_student_only_reads_its_teacher(area, tmp_path):
    from distill.runs import train_student
    from distill.text_config import TextStudentConfig

    shutil.copytree(area / "text", tmp_path / "t")
    before = snapshot(tmp_path / "t")
    cfg = apply_overrides(TextStudentConfig(teacher=str(tmp_path / "t")), TEXT_STUDENT)
    rd = train_student(cfg, tmp_path / "s", progress=False)
    assert rd.finished and snapshot(tmp_path / "t") == before  # nothing written into the teacher
    shutil.rmtree(tmp_path / "t" / "text")
    before = snapshot(tmp_path)
    with pytest.raises(ParameterError, match="train that teacher again") as exc:
        train_student(cfg, tmp_path / "s2", progress=False)
    one_line_exception(exc, "text")
    assert snapshot(tmp_path) == before and not (tmp_path / "t" / "text").exists()


def test_mlp_student_checks_every_teacher_checkpoint_before_writing(area, tmp_path):
    from simulate.config import StudentConfig
    from simulate.student import train_student

    shutil.copytree(area / "mlp", tmp_path / "t")
    cfg = apply_overrides(StudentConfig(teacher=str(tmp_path / "t")), MLP_STUDENT)
    _truncate("ckpt:2", 300)(tmp_path / "t")  # the final checkpoint, used by every distilling schedule
    before = snapshot(tmp_path)
    from infra.checkpoints import CheckpointError

    with pytest.raises(CheckpointError) as exc:
        train_student(cfg, tmp_path / "s", progress=False)
    one_line_exception(exc, "truncated")
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------ report and results: unreadable runs

@pytest.fixture
def results_dir(area, tmp_path):
    root = tmp_path / "results"
    for name in ("r1", "r2", "r3"):
        shutil.copytree(area / "mlp", root / name)
    (root / "r2" / "summary.json").write_text('{"kind": "teacher", "ru')
    (root / "r3" / "metrics.parquet").write_bytes(b"PAR1 not really")
    return root


def test_results_say_how_many_runs_they_left_out_and_why(results_dir):
    out = run_icurr("results", str(results_dir), "--format", "json")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)) == 2  # r1 and r3 (its summary is fine)
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("icurr: warning: 1 of 3 finished runs") and "r2: summary.json" in line
    out = run_icurr("results", str(results_dir), "--metrics", "--format", "csv")
    assert out.returncode == 0, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert "r3: metrics.parquet cannot be read" in line and "r2" not in line


def test_report_leaves_unreadable_runs_out_with_a_warning(results_dir, tmp_path):
    out = run_icurr("report", str(results_dir), "--out", str(tmp_path / "report"), "--n-boot", "10", "--no-progress")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines and all(line.startswith("icurr: warning: ") for line in lines), out.stderr
    assert any("r2" in line for line in lines) and any("r3" in line for line in lines)
    assert (tmp_path / "report" / "report.md").is_file()


# ------------------------------------------------------------------ the command line's own rules

def test_exact_values_print_beyond_the_int_string_limit():
    out = run_icurr("theory", "fourier", "--n", "20000", "--degree", "3", "--exact", "--format", "json")
    assert out.returncode == 0, out.stderr
    exact = json.loads(out.stdout)["exact"]
    numerator, denominator = exact.split("/")
    # 2^19997 (2^(n-1) / 4) has 6020 digits, more than sys.get_int_max_str_digits() allows by default
    assert numerator.lstrip("-").isdigit() and denominator.isdigit() and len(denominator) == 6020


def test_debug_shows_the_traceback_behind_the_line(scratch, monkeypatch):
    monkeypatch.setenv("ICURR_DEBUG", "1")
    out = run_icurr("parity", "teacher", "--out", str(scratch / "out"), f"width={BIG}")
    assert out.returncode == 2 and "Traceback" in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("icurr: error: width")
    monkeypatch.delenv("ICURR_DEBUG")
    out = run_icurr("--debug", "theory", "gap", "--d", "10", "--k", "11")
    assert out.returncode == 2 and "Traceback" in out.stderr


def test_unexpected_exceptions_keep_their_traceback(monkeypatch):
    import theory.tables

    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(theory.tables, "fourier_row", boom)
    with pytest.raises(RuntimeError, match="a bug"):
        run_icurr("theory", "fourier", "--n", "5", "--degree", "1")


def test_table_size():
    rows = (len(CONFIG_ROWS) + len(CLI_ROWS) + len(OUT_ROWS) + len(GRAMMAR_ROWS) + 2 * len(BAD_FILES)
            + len(CORPUS_ROWS) + len(TEACHER_ROWS))
    assert rows >= 100, rows
