"""The registry of experiment kinds: every kind resolves to its config class and engine function, its
name is what the result store derives from the stored config, and its presets are valid configs."""
from __future__ import annotations

import dataclasses

import pytest

from experiments.registry import FAMILIES, KINDS, family_kinds, get_kind, preset_words, presets
from infra.config import apply_overrides, config_to_dict
from infra.store import kind_of
from theory._checks import ParameterError


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_resolves_and_matches_the_store_rule(name):
    kind = KINDS[name]
    cls = kind.config_class()
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    assert callable(kind.train())
    assert kind_of(cls.__name__) == name  # the store names results by the same kind
    assert kind.role in ("teacher", "student", "compare") and kind.family in FAMILIES
    # MLP sweeps split a point into single-seed runs, except Algorithm 1's, whose seeds are pairs (student
    # seed i, teacher run i) kept in one run directory, like the Transformers'
    assert kind.split_seeds == (kind.engine == "simulate" and kind.family != "parity-two-stage")


def test_families_have_the_three_roles_and_the_expected_names():
    assert FAMILIES == ("parity", "parity-two-stage", "pcfg", "parity-transformer", "text")
    assert set(KINDS) == {"teacher", "student", "compare", *(f"{f}-{r}" for f in FAMILIES[1:]
                                                                for r in ("teacher", "student", "compare"))}
    assert {KINDS[f"parity-two-stage-{r}"].choice for r in ("teacher", "student", "compare")} == {"supervision"}
    for family in FAMILIES:
        assert set(family_kinds(family)) == {"teacher", "student", "compare"}
    assert get_kind("student").family_kind("teacher") is KINDS["teacher"]
    with pytest.raises(ParameterError, match="kind must be one of"):
        get_kind("teachr")


@pytest.mark.parametrize("family", ["parity", "pcfg", "parity-transformer", "text"])
def test_presets_are_data_files_that_give_valid_configs(family):
    table = presets(family)
    assert "paper" in table
    for name, sections in table.items():
        for role, kind in family_kinds(family).items():
            cfg = apply_overrides(kind.config_class()(), preset_words(kind, name))  # validated by __post_init__
            flat = config_to_dict(cfg)
            for section, fields in sections.items():
                if role not in ("compare", section):
                    continue
                for field, value in fields.items():
                    got = flat[section][field] if role == "compare" else flat[field]
                    assert got == value, (name, role, section, field)


def test_paper_presets_hold_the_papers_sizes():
    parity = presets("parity")["paper"]
    assert (parity["teacher"]["d"], parity["teacher"]["k"], parity["teacher"]["width"]) == (100, 6, 50000)
    assert parity["student"]["width"] == 100  # Appendix C.1
    pcfg = presets("pcfg")["paper"]
    assert pcfg["teacher"]["grammar"] == "cfg3b" and pcfg["teacher"]["heads"] == 32 and pcfg["student"]["heads"] == 8
    assert (pcfg["teacher"]["steps"], pcfg["teacher"]["batch"]) == (8000, 512)  # App. D.6
    # the variants differ from paper in one setting each: 16-head students, cfg3f, GPT next-token on cfg3f (App. E)
    p16, pf, pg = (presets("pcfg")[n] for n in ("paper-16heads", "paper-cfg3f", "paper-gpt"))
    assert p16["student"] == {**pcfg["student"], "heads": 16} and p16["teacher"] == pcfg["teacher"]
    assert pf["teacher"] == {**pcfg["teacher"], "grammar": "cfg3f"} and pf["student"] == pcfg["student"]
    assert pg["teacher"] == {**pcfg["teacher"], "grammar": "cfg3f", "objective": "next-token"}
    pt = presets("parity-transformer")["paper"]
    assert (pt["teacher"]["d"], pt["teacher"]["k"], pt["teacher"]["heads"]) == (100, 6, 32)  # App. C.2


def test_unknown_preset_is_one_line():
    with pytest.raises(ParameterError, match="preset must be one of paper"):
        preset_words(KINDS["pcfg-teacher"], "papr")


def test_reading_the_registry_imports_no_engine():
    import subprocess
    import sys

    code = ("import sys, experiments.registry as r; r.presets('pcfg'); [k.name for k in r.KINDS.values()]; "
            "print(sorted(m for m in ('torch', 'simulate', 'distill', 'sympy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
