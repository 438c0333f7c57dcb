"""Masked LM on natural text (Section 4.2): corpus loader, python-docs corpus, WordPiece tokenizer,
packing, the task's batches, configs, a tiny teacher + students that learn, the CLI, sweeps, reports."""
from __future__ import annotations

import collections
import json
import math
import re
import sys

import numpy as np
import pytest
import torch

from distill import corpus as C
from distill.text_config import TextCompareConfig, TextStudentConfig, TextTeacherConfig
from distill.text_data import cut_blocks, pack_documents, prepare_text
from distill.text_task import TextMaskedLMTask
from distill.text_tokenizer import SPECIALS, TextTokenizer, require_tokenizers, train_wordpiece
from infra.config import apply_overrides
from theory._checks import ParameterError

pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def docs():
    return C.python_docs_documents()


@pytest.fixture(scope="module")
def split(docs):
    return C.split_documents(docs, 0.1, 0)


@pytest.fixture(scope="module")
def prepared():
    """The CPU default's corpus and tokenizer (python-docs, vocabulary 1024), in memory."""
    return prepare_text(TextTeacherConfig())


def _sentences(docs, lo=6, hi=40):
    out = []
    for d in docs:
        out += [s for s in re.split(r"(?<=[.!?])\s+", d.text) if lo <= len(s.split()) <= hi]
    return out


# ------------------------------------------------------------------ corpus

def test_loader_file_directory_glob_and_blank_line_blocks(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("First paragraph, line one.\nline two.\n\n  \n\nSecond paragraph.\n\n\nThird.\n")
    (tmp_path / "sub" / "a.txt").write_text("A document in a subdirectory.")
    (tmp_path / "empty.txt").write_text("  \n\n")
    (tmp_path / "notes.md").write_text("Markdown is not *.txt.")
    docs = C.load_documents(str(tmp_path))
    assert [d.name for d in docs] == ["b.txt", "sub/a.txt"]  # sorted, recursive, empty file skipped
    assert docs[1].text == "A document in a subdirectory."
    blocks = C.load_documents(str(tmp_path), documents="blank-line")
    assert [d.name for d in blocks] == ["b.txt#0", "b.txt#1", "b.txt#2", "sub/a.txt#0"]
    assert blocks[0].text == "First paragraph, line one.\nline two." and blocks[2].text == "Third."
    assert [d.name for d in C.load_documents(str(tmp_path), glob="*.md")] == ["notes.md"]
    assert [d.name for d in C.load_documents(str(tmp_path / "b.txt"), documents="blank-line")][-1] == "b.txt#2"
    with pytest.raises(ParameterError, match="does not exist"):
        C.load_documents(str(tmp_path / "missing"))
    with pytest.raises(ParameterError, match=r"no files matching '\*\.rst'"):
        C.load_documents(str(tmp_path), glob="*.rst")
    with pytest.raises(ParameterError, match="holds no text"):
        C.load_documents(str(tmp_path / "empty.txt"))
    with pytest.raises(ParameterError, match="documents"):
        C.load_documents(str(tmp_path), documents="paragraph")


def test_split_is_by_name_deterministic_and_about_the_fraction():
    docs = [C.Document(f"doc{i}", "x") for i in range(4000)]
    train, held = C.split_documents(docs, 0.1, seed=3)
    train2, held2 = C.split_documents(list(reversed(docs)), 0.1, seed=3)
    assert {d.name for d in held} == {d.name for d in held2} and len(train) + len(held) == 4000
    assert abs(len(held) / 4000 - 0.1) < 5 * math.sqrt(0.1 * 0.9 / 4000)
    assert {d.name for d in C.split_documents(docs, 0.1, seed=4)[1]} != {d.name for d in held}
    with pytest.raises(ParameterError, match="held-out"):
        C.split_documents(docs[:1], 0.1)


@pytest.mark.slow
def test_python_docs_corpus_is_english_prose(docs):
    stats = C.text_stats(docs)
    assert 500_000 < stats["bytes"] <= 2_000_000 and stats["documents"] > 200
    assert stats["plain_word_fraction"] > 0.85  # prose, not code
    words = collections.Counter(w.lower().strip(".,;:()\"'") for d in docs for w in d.text.split())
    top = [w for w, _ in words.most_common(10)]
    assert top[0] == "the" and {"a", "of", "to", "is"} <= set(top)
    assert not any(re.search(r"(?:^|\s)>>>\s", d.text) for d in docs)  # doctests removed
    assert any(d.name.startswith("topics.") for d in docs) and any(d.name == "json" for d in docs)
    small = C.python_docs_documents(100_000)
    assert C.text_stats(small)["bytes"] <= 100_000
    assert {d.name: d.text for d in small}.items() <= {d.name: d.text for d in docs}.items()


@pytest.mark.slow
def test_python_docs_corpus_is_reproducible(docs, tmp_path):
    import sysconfig

    again = C._python_docs_all.__wrapped__(sysconfig.get_paths()["stdlib"])  # a fresh build, not the cache
    assert C.text_stats(again)["sha256"] == C.text_stats(docs)["sha256"]
    manifest = C.write_corpus(C.python_docs_documents(60_000), tmp_path / "corpus")
    loaded = C.load_documents(str(tmp_path / "corpus"))
    assert [d.text for d in loaded] == [d.text for d in C.python_docs_documents(60_000)]
    assert manifest["sha256"] == C.text_stats(C.python_docs_documents(60_000))["sha256"]
    assert "PSF" in (tmp_path / "corpus" / "SOURCE.md").read_text()
    with pytest.raises(ParameterError, match="already holds"):
        C.write_corpus(loaded, tmp_path / "corpus")


# ------------------------------------------------------------------ tokenizer

def test_tokenizer_round_trip_special_ids_and_determinism(split, prepared, tmp_path):
    train, held = split
    tk = prepared.tokenizer
    assert [tk.tok.token_to_id(s) for s in SPECIALS] == [0, 1, 2, 3, 4]
    assert (tk.pad_id, tk.unk_id, tk.cls_id, tk.sep_id, tk.mask_id) == (0, 1, 2, 3, 4)
    assert tk.vocab_size == 1024
    sentences = _sentences(held)
    assert len(sentences) > 200
    ids = [tk.encode(s) for s in sentences]
    unk = sum(x.count(tk.unk_id) for x in ids) / sum(map(len, ids))
    assert unk < 0.002
    clean = [(s, x) for s, x in zip(sentences, ids) if tk.unk_id not in x]
    assert len(clean) > 0.95 * len(sentences)
    for s, x in clean:
        assert tk.decode(x) == tk.normalize(s)
    assert tk.normalize("Héllo,  WORLD!") == "hello , world !"
    tk.save(tmp_path / "tokenizer.json")
    assert TextTokenizer.load(tmp_path / "tokenizer.json").encode(sentences[0]) == ids[0]
    # tokenizers' own WordPiece trainer is not deterministic (huggingface/tokenizers#1794); ours is
    again = train_wordpiece(lambda: (d.text for d in train), 1024)
    assert again.sha256 == tk.sha256


def test_missing_tokenizers_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(ParameterError, match=r"pip install -e '\.\[text\]' from a checkout"):
        require_tokenizers()


# ------------------------------------------------------------------ packing and the task

def test_pack_documents_and_cut_blocks():
    stream, docs = pack_documents([[5, 6, 7], [8], [], [9, 10]], sep_id=3)
    assert stream.tolist() == [5, 6, 7, 3, 8, 3, 9, 10]
    assert docs.tolist() == [[0, 3], [4, 1], [5, 0], [6, 2]]
    assert cut_blocks(stream, 3).tolist() == [[5, 6, 7], [3, 8, 3]]


def test_prepared_streams_hold_every_document(split, prepared):
    train, held = split
    for name, docs in (("train", train), ("heldout", held)):
        stream, index = prepared.streams[name], prepared.docs[name]
        assert len(index) == len(docs)
        assert int((stream == 3).sum()) == len(docs) - 1  # one [SEP] between consecutive documents
        assert len(stream) == int(index[:, 1].sum()) + len(docs) - 1
        for d, (start, n) in list(zip(docs, index))[:: max(1, len(docs) // 8)]:
            assert stream[start:start + n].tolist() == prepared.tokenizer.encode(d.text)
        blocks = cut_blocks(stream, 32)
        assert blocks.shape == (len(stream) // 32, 32)
        assert np.array_equal(np.concatenate([blocks.reshape(-1), stream[blocks.size:]]), stream)


def test_task_batches_masking_rates_and_heldout(prepared, one_thread):
    task = TextMaskedLMTask(prepared, 32, 0.3, corpus="python-docs")
    V = task.vocab_size
    assert (task.n_out, task.max_len, task.pad_id, task.causal) == (V, 32, 0, False)
    g = torch.Generator().manual_seed(0)
    b = task.sample(g, 512)
    assert b.inputs.shape == (512, 32) and bool(b.valid.all())
    windows = np.lib.stride_tricks.sliding_window_view(prepared.streams["train"].astype(np.int64), 32)
    starts = {w.tobytes() for w in windows}
    assert all(row.numpy().tobytes() in starts for row in b.targets[:64])  # blocks of the training stream
    sep = b.targets == 3
    assert not (b.selected & sep).any() and torch.equal(b.inputs[sep], b.targets[sep])
    n, m = int((~sep).sum()), int(b.selected.sum())
    assert abs(m / n - 0.3) < 5 * math.sqrt(0.3 * 0.7 / n)
    inp, tgt = b.inputs[b.selected], b.targets[b.selected]
    mask = int((inp == 4).sum())
    changed = int(((inp != tgt) & (inp != 4)).sum())
    assert abs(mask / m - 0.8) < 5 * math.sqrt(0.8 * 0.2 / m)
    assert abs(changed / m - 0.1) < 5 * math.sqrt(0.1 * 0.9 / m)  # random tokens (rarely equal to the target)
    assert int((inp[(inp != tgt) & (inp != 4)] < 5).sum()) == 0  # random replacements are never special
    assert torch.equal(b.inputs[~b.selected], b.targets[~b.selected])
    assert torch.allclose(b.weights.sum(), torch.tensor(1.0))
    held = task.heldout(torch.Generator().manual_seed(0), 100)
    blocks = cut_blocks(prepared.streams["heldout"], 32)
    rows = {r.tobytes() for r in blocks.astype(np.int64)}
    assert held.tokens.shape == (100, 32) and all(r.numpy().tobytes() in rows for r in held.tokens)
    assert len({r.numpy().tobytes() for r in held.tokens}) == 100
    seg = task.segments(torch.Generator().manual_seed(0), 200)
    h = seg.valid.sum(1)
    assert bool((h >= 8).all()) and bool((seg.tokens[seg.valid] != 3).all())
    assert bool((seg.tokens[~seg.valid] == 0).all())
    assert bool((seg.valid == (torch.arange(32) < h[:, None])).all())  # a prefix, then padding


def test_configs_reject_bad_values_naming_the_field(tmp_path):
    for kw, name in [({"vocab_size": 10}, "vocab_size"), ({"seq_len": 4}, "seq_len"), ({"heldout": 0.7}, "heldout"),
                     ({"documents": "para"}, "documents"), ({"corpus": ""}, "corpus"),
                     ({"mask_rate": 0.0}, "mask_rate"),
                     ({"measure_ns": (40,)}, "measure_ns"), ({"checkpoint_every": 150}, "checkpoint_every")]:
        with pytest.raises(ParameterError, match=name):
            TextTeacherConfig(**kw)
    with pytest.raises(ParameterError, match="temperature"):
        TextStudentConfig(temperature=-1.0)
    with pytest.raises(ParameterError, match="measure_ns"):
        apply_overrides(TextCompareConfig(), ["student.measure_ns=40"])
    with pytest.raises(ParameterError, match="unknown config key 'probe_every'"):
        apply_overrides(TextTeacherConfig(), ["probe_every=100"])
    with pytest.raises(ParameterError, match="does not exist"):
        prepare_text(TextTeacherConfig(corpus=str(tmp_path / "nothing")))
    (tmp_path / "one.txt").write_text("Only one document here, so nothing can be held out.")
    with pytest.raises(ParameterError, match="held-out documents"):
        prepare_text(TextTeacherConfig(corpus=str(tmp_path / "one.txt")))


# ------------------------------------------------------------------ runs that learn

@pytest.fixture(scope="module")
def repetitive(tmp_path_factory, docs):
    """A small corpus of real python-docs sentences, 12 of them repeated in random order: a tiny model
    learns its context in a few hundred steps (blank-line documents)."""
    rng = np.random.default_rng(0)
    pool = sorted(set(_sentences(docs, 8, 12)))[:12]
    root = tmp_path_factory.mktemp("repetitive")
    paras = [" ".join(pool[i] for i in rng.integers(0, len(pool), 4)) for _ in range(300)]
    (root / "sentences.txt").write_text("\n\n".join(paras))
    return root


TINY = ["documents=blank-line", "vocab_size=256", "seq_len=16", "batch=32", "heads=4", "head_dim=8", "lr=5e-3",
        "warmup=20", "eval_every=50", "checkpoint_every=50", "measure_every=150", "measure_positions=32",
        "eval_size=64", "device=cpu"]


@pytest.mark.slow
def test_text_teacher_and_students_learn(repetitive, tmp_path, one_thread):
    from distill.runs import build_task, train_student, train_teacher
    from reports.build import build_report

    tcfg = apply_overrides(TextTeacherConfig(corpus=str(repetitive)), [*TINY, "steps=300"])
    trd = train_teacher(tcfg, tmp_path / "teacher", progress=False)
    df = trd.metrics()
    heldout = np.load(tmp_path / "teacher" / "text" / "heldout.npy")
    p = np.bincount(heldout[heldout != 3]) / int((heldout != 3).sum())
    entropy = float(-(p[p > 0] * np.log(p[p > 0])).sum())  # the best loss without context
    first, last = float(df["test_loss"].iloc[0]), float(df["test_loss"].iloc[-1])
    assert last < first - 1.5 and last < entropy - 0.5, (first, last, entropy)  # measured: 5.46, 3.24, 4.42
    assert df["m_robust_3"].dropna().iloc[-1] > df["m_robust_3"].dropna().iloc[0] + 0.02  # uses the 3-gram
    summary = trd.read_json("summary.json")
    assert summary["task"] == "text-mlm" and summary["vocab_size"] == TextTokenizer.load(
        tmp_path / "teacher" / "text" / "tokenizer.json").vocab_size
    stamp = (tmp_path / "teacher" / "text" / "train.npy").stat().st_mtime_ns
    student = ["heads=2", "head_dim=8", "steps=100", "batch=32", "lr=5e-3", "warmup=10", "eval_every=50",
               "measure_every=100", "measure_positions=32", "eval_size=64", "seeds=0", "device=cpu"]
    rows = {}
    for strategy in ("ce", "equal-split"):
        scfg = apply_overrides(TextStudentConfig(teacher=str(tmp_path / "teacher"), strategy=strategy), student)
        srd = train_student(scfg, tmp_path / strategy, progress=False)
        rows[strategy] = (srd.metrics(), srd.read_json("summary.json"))
    ce, split = rows["ce"][0], rows["equal-split"][0]
    assert float(ce["test_loss"].iloc[-1]) < float(ce["test_loss"].iloc[0]) - 0.5  # measured: 5.47 -> 4.44
    # a student of near-argmax labels (tau = 1e-20) of an early checkpoint: its loss on the true tokens may
    # rise (confident copies of a weak teacher), its accuracy does not
    assert float(split["test_accuracy"].iloc[-1]) > 10 / 256
    sched = rows["equal-split"][1]["schedule"]
    assert set(split["source"].iloc[1:]) <= {str(s) for s, _ in sched} and sched[0][0] != "final"
    assert (tmp_path / "teacher" / "text" / "train.npy").stat().st_mtime_ns == stamp  # reused, not rebuilt
    with pytest.raises(ParameterError, match="no Transformer teacher config"):
        train_student(apply_overrides(TextStudentConfig(teacher=str(tmp_path / "ce")), student), tmp_path / "bad",
                      progress=False)
    sections = build_report(tmp_path, tmp_path / "report", n_boot=10)
    titles = [s.title for s in sections if s.figure]
    assert any(t.startswith("Text teacher") for t in titles) and any(t.startswith("Text students") for t in titles)
    assert (tmp_path / "report" / "text" / "pcfg_teacher.png").is_file()
    summary_path = tmp_path / "teacher" / "summary.json"
    summary_path.write_text(json.dumps({**summary, "tokenizer_sha256": "0" * 64}))
    with pytest.raises(ParameterError, match="not the one"):  # a finished teacher's tokenizer is checked
        build_task(tcfg, tmp_path / "teacher")


# ------------------------------------------------------------------ command line, sweeps, reports

def _main(*args):
    from icurr.cli import main

    return main(list(args))


def test_cli_corpus_show_config_and_errors(tmp_path, capsys):
    _main("text", "corpus", "--out", str(tmp_path / "c"), "--max-bytes", "30000", "--format", "json")
    row = json.loads(capsys.readouterr().out)[0]
    assert row["documents"] == len(list((tmp_path / "c").glob("*.txt"))) > 0 and row["bytes"] <= 30000
    _main("text", "teacher", "--show-config", "--corpus", str(tmp_path / "c"), "seq_len=16")
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["kind"], cfg["corpus"], cfg["seq_len"]) == ("TextTeacherConfig", str(tmp_path / "c"), 16)
    _main("text", "compare", "--show-config", "--preset", "paper")
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["teacher"]["layers"], cfg["teacher"]["heads"], cfg["teacher"]["head_dim"]) == (12, 12, 64)
    assert (cfg["student"]["heads"], cfg["teacher"]["lr"], cfg["student"]["temperature"]) == (4, 1e-4, 1e-20)
    with pytest.raises(SystemExit) as exc:
        _main("text", "teacher", "vocab_size=3", "--out", str(tmp_path / "x"))
    assert exc.value.code == 2 and "vocab_size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _main("text", "student", "--teacher", str(tmp_path / "none"), "--out", str(tmp_path / "y"))
    assert "not a teacher run directory" in capsys.readouterr().err


def test_sweep_kinds_and_report_family():
    from reports.transformer_data import family_of
    from experiments.sweep import config_class, expand, parse_sweep

    assert config_class("text-compare") is TextCompareConfig
    sweep = parse_sweep({"kind": "text-teacher", "base": {"steps": 400, "warmup": 10},
                         "grid": {"vocab_size": [512, 1024]}})
    assert [r.config.vocab_size for r in expand(sweep)] == [512, 1024]
    assert [family_of(k) for k in ("text-teacher", "text-student", "text-compare")] == ["text"] * 3
