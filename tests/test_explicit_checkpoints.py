"""Progressive distillation over explicitly chosen intermediate checkpoints (``checkpoints``; Appendix C.3,
Figure 18's (3, T)-progressive), and hash stability of fields added after run directories were published."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from infra import schedule as S
from infra.config import HASH_NEW_FIELDS, config_hash, config_to_dict
from simulate.config import CompareConfig, StudentConfig, TeacherConfig
from theory._checks import ParameterError


def test_progressive_at_gives_the_chosen_stages():
    sched = S.progressive_at([300, 700], 50, 1000, teacher_steps=1000)
    assert sched.to_list() == [(300, 50), (700, 50), ("final", 900)]
    assert sched.checkpoint_steps() == [300, 700] and sched.total_steps == 1000


@pytest.mark.parametrize("cks, steps, t0", [([700, 300], 1000, 1000), ([300, 1000], 1000, 1000), ([], 1000, 1000),
                                              ([300, 700], 120, 1000)])
def test_progressive_at_refuses_bad_lists(cks, steps, t0):
    with pytest.raises(ParameterError):
        S.progressive_at(cks, 50, steps, teacher_steps=t0)


def test_build_schedule_snaps_each_checkpoint_and_records_them():
    avail = list(range(0, 1001, 100))
    sched, note = S.build_schedule("progressive", steps=600, teacher_steps=1000, spacing=100, available=avail,
                                   stage_steps=40, checkpoints=(290, 640))
    assert sched.to_list() == [(300, 40), (600, 40), ("final", 520)]
    assert note == {"n_checkpoints": 3, "stage_steps": 40, "checkpoints": [300, 600]}
    with pytest.raises(ParameterError, match="its own intermediate checkpoint"):
        S.build_schedule("progressive", steps=600, teacher_steps=1000, spacing=100, available=avail,
                         stage_steps=40, checkpoints=(610, 640))
    with pytest.raises(ParameterError, match="its own intermediate checkpoint"):
        S.build_schedule("progressive", steps=600, teacher_steps=1000, spacing=100, available=avail,
                         stage_steps=40, checkpoints=(500, 990))


def test_config_checks_name_the_field():
    with pytest.raises(ParameterError, match="checkpoints must be strictly increasing"):
        StudentConfig(checkpoints=(600, 300))
    with pytest.raises(ParameterError, match="n_checkpoints must be 0 or len"):
        StudentConfig(checkpoints=(300, 600), n_checkpoints=2)
    with pytest.raises(ParameterError, match=r"student\.checkpoints must lie in \(0, 4000\)"):
        CompareConfig(teacher=TeacherConfig(steps=4000, checkpoint_every=1000),
                      student=StudentConfig(steps=8000, stage_steps=100, checkpoints=(1000, 4000)))
    # the other strategies of a compare ignore the list
    CompareConfig(teacher=TeacherConfig(steps=4000, checkpoint_every=1000),
                  student=StudentConfig(steps=8000, stage_steps=100, checkpoints=(1000, 3000)),
                  strategies=("ce", "progressive"))


def test_a_new_field_at_its_former_value_renames_no_run():
    cfg = StudentConfig(teacher="t")
    data = config_to_dict(cfg)
    assert data["checkpoints"] == []  # config.json lists it
    for key in HASH_NEW_FIELDS["StudentConfig"]:  # the hash of the same config before the fields existed
        del data[key]
    old = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]
    assert config_hash(cfg) == old
    assert config_hash(dataclasses.replace(cfg, checkpoints=(1000,))) != old
    nested = CompareConfig(student=dataclasses.replace(cfg, teacher=""))
    d2 = config_to_dict(nested)
    for section in ("teacher", "student"):
        for key in HASH_NEW_FIELDS.get(d2[section]["kind"], {}):
            del d2[section][key]
    assert config_hash(nested) == hashlib.sha256(json.dumps(d2, sort_keys=True, separators=(",", ":"))
                                                 .encode()).hexdigest()[:12]


@pytest.mark.slow
def test_a_student_trains_on_the_chosen_checkpoints(tmp_path):
    from simulate.student import train_student
    from simulate.teacher import train_teacher

    tcfg = TeacherConfig(d=6, k=2, width=32, steps=800, eval_every=100, checkpoint_every=100, probe_every=0,
                         device="cpu")
    train_teacher(tcfg, tmp_path / "t", progress=False)
    cfg = StudentConfig(teacher=str(tmp_path / "t"), strategy="progressive", checkpoints=(200, 500), stage_steps=100,
                        width=16, steps=600, eval_every=100, probe_every=0, seeds=(0, 1), device="cpu")
    summary = train_student(cfg, tmp_path / "s", progress=False).read_json("summary.json")
    assert summary["schedule"] == [[200, 100], [500, 100], ["final", 400]]
    assert summary["checkpoint_choice"]["checkpoints"] == [200, 500]
