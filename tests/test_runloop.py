"""The engine-agnostic outer run loop (infra.runloop.RunLoop) and the narrow inputs of the engines."""
import inspect

import pytest
import torch

from infra.checkpoints import CheckpointFiles, write_safetensors
from infra.rundir import RunDir
from infra.runloop import RunLoop
from theory._checks import ParameterError

CONFIG = {"kind": "toy", "steps": 10}


class Toy:
    """A 'training program' of ``runs`` runs whose state is a counter, checkpointed as a tensor."""

    def __init__(self, path, *, runs=2, config=CONFIG, checkpoint_every=4, keep=True, dirs=None):
        self.state, self.restored = 0, []
        self.rds = dirs or [RunDir(path)]
        self.ck = CheckpointFiles(self.rds[0].ckpt) if checkpoint_every is not None else None
        self.runs = runs
        self.loop = RunLoop(self.rds if dirs else self.rds[0], config, evaluate=self.evaluate, total_steps=10,
                            checkpoints=self.ck, save=self.save if self.ck is not None else None,
                            checkpoint_every=checkpoint_every or 0, keep_checkpoints=keep, progress=False)

    def evaluate(self, step, source="labels"):
        return [{"step": step, "run": r, "state": self.state, "test_accuracy": 0.5, "source": source}
                for r in range(self.runs)]

    def save(self, step):
        write_safetensors(self.ck.path(step), {"state": torch.tensor([self.state])}, {"step": str(step)})

    def restore(self):
        step = self.ck.latest()
        self.restored.append(step)
        return step

    def run(self, start_or_resume=True, stop_after=None):
        start = self.loop.start_or_resume("cpu", self.restore) if start_or_resume else 0
        self.state = start
        if start == 0:
            self.loop.log(0)
        for step in range(start + 1, 11):
            self.state = step
            if step % 2 == 0 or step == 10:
                self.loop.log(step, source=f"s{step}")
            if stop_after == step:
                raise KeyboardInterrupt
        self.loop.close()
        return start


def test_fresh_run_writes_config_rows_and_checkpoints_on_cadence(tmp_path):
    toy = Toy(tmp_path)
    assert toy.run() == 0
    rd = RunDir(tmp_path)
    assert rd.read_json("config.json") == CONFIG and (tmp_path / "env.json").exists()
    df = rd.metrics()
    assert list(df["step"]) == [s for s in (0, 2, 4, 6, 8, 10) for _ in range(2)]
    assert list(df["source"])[:4] == ["labels", "labels", "s2", "s2"]
    assert toy.ck.steps() == [0, 4, 8, 10]  # every checkpoint_every steps and at total_steps
    assert toy.restored == []


def test_students_keep_only_the_latest_checkpoint(tmp_path):
    toy = Toy(tmp_path, keep=False)
    toy.run()
    assert toy.ck.steps() == [10]


def test_resume_restores_the_latest_checkpoint_and_drops_later_rows(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        Toy(tmp_path).run(stop_after=6)  # rows of 6 logged, its checkpoint never due (4, 8)
    assert RunDir(tmp_path).metrics()["step"].max() == 6
    toy = Toy(tmp_path)
    assert toy.run() == 4 and toy.restored == [4]
    df = RunDir(tmp_path).metrics()
    steps = [s for s in (0, 2, 4, 6, 8, 10) for _ in range(2)]
    assert list(df["step"]) == steps and list(df["run"]) == [0, 1] * 6
    assert toy.ck.steps() == [0, 4, 8, 10]


def test_kill_between_rows_and_checkpoint_resumes_from_the_previous_one(tmp_path):
    """Rows are appended before the checkpoint is written: a kill in between logs them again."""
    toy = Toy(tmp_path)
    original = toy.save

    def dying(step):
        if step == 8:
            raise KeyboardInterrupt
        original(step)

    toy.loop.save = dying
    with pytest.raises(KeyboardInterrupt):
        toy.run()
    assert RunDir(tmp_path).metrics()["step"].max() == 8 and toy.ck.steps() == [0, 4]
    again = Toy(tmp_path)
    assert again.run() == 4
    assert list(RunDir(tmp_path).metrics()["step"]) == [s for s in (0, 2, 4, 6, 8, 10) for _ in range(2)]


def test_another_config_or_no_checkpoints_start_afresh(tmp_path):
    Toy(tmp_path).run()
    other = Toy(tmp_path, config=dict(CONFIG, steps=11))
    assert other.run() == 0 and other.restored == []
    assert other.ck.steps() == [0, 4, 8, 10] and len(RunDir(tmp_path).metrics()) == 12
    plain = Toy(tmp_path / "plain", checkpoint_every=None)
    plain.run()
    again = Toy(tmp_path / "plain", checkpoint_every=None)  # same config, but nothing to resume from
    assert again.run() == 0 and len(RunDir(tmp_path / "plain").metrics()) == 12
    assert not (tmp_path / "plain" / "ckpt").exists()


def test_several_directories_get_equal_shares_of_the_rows(tmp_path):
    dirs = [RunDir(tmp_path / "a"), RunDir(tmp_path / "b")]
    toy = Toy(None, runs=4, checkpoint_every=None, dirs=dirs, config=[{"x": 1}, {"x": 2}])
    toy.run()
    assert dirs[1].read_json("config.json") == {"x": 2}
    for rd, runs in zip(dirs, ({0, 1}, {2, 3})):  # the loop splits; numbering runs per directory is the engine's
        df = rd.metrics()
        assert len(df) == 12 and set(df["run"]) == runs
    with pytest.raises(ParameterError, match="rows for 2 run directories"):
        Toy(None, runs=3, checkpoint_every=None, dirs=dirs, config=[{}, {}]).run()
    with pytest.raises(ParameterError, match="exactly one run directory"):
        Toy(None, dirs=dirs, config=[{}, {}])
    with pytest.raises(ParameterError, match="one config per run directory"):
        Toy(None, checkpoint_every=None, dirs=dirs, config=[{}])


def test_evaluators_share_one_rows_signature():
    from distill.evaluate import Evaluator as TransformerEvaluator
    from simulate.runner import Evaluator as MLPEvaluator

    names = [list(inspect.signature(E.rows).parameters) for E in (MLPEvaluator, TransformerEvaluator)]
    assert names[0] == names[1] == ["self", "model", "step", "samples", "seeds", "extra"]


def test_mlp_evaluator_probes_on_its_own_cadence():
    from simulate import data as D
    from simulate.model import init_default
    from simulate.runner import Evaluator, parity_task

    task = parity_task(6, D.first_support(2))
    ev = Evaluator(task, eval_size=64, probe_samples=256, probe_every=4, device=torch.device("cpu"))
    params = init_default(2, 8, 6, 2, generator=torch.Generator().manual_seed(0))
    rows = ev.rows(params, 4, 40, (7, 8), source="x")
    assert [r["seed"] for r in rows] == [7, 8] and [r["samples"] for r in rows] == [40, 40]
    assert all("corr1_in_mean" in r and r["source"] == "x" for r in rows)
    assert all("corr1_in_mean" not in r for r in ev.rows(params, 2, 20, (7, 8)))


def test_sgd_and_fit_settings_hold_what_the_engines_read():
    from distill.config import PcfgStudentConfig, PcfgTeacherConfig
    from distill.engine import FitSettings, fit_settings
    from simulate.config import TeacherConfig
    from simulate.runner import SGDSettings, sgd_settings

    cfg = TeacherConfig(seeds=(0, 1), run_lrs=(0.1, 0.2), lr_schedule="cosine", warmup=5, steps=100, batch=4,
                        eval_every=50, checkpoint_every=50, probe_every=0)
    s = sgd_settings(cfg, repeat=2)
    assert isinstance(s, SGDSettings) and s.lr == (0.1, 0.2, 0.1, 0.2) and (s.batch, s.steps) == (4, 100)
    assert s.rates().dtype == torch.float64 and s.rates().shape == (4,)
    assert s.multiplier() is not None and sgd_settings(TeacherConfig(lr_schedule="constant")).multiplier() is None
    assert sgd_settings(TeacherConfig(lr=0.3)).rates() == 0.3
    t = fit_settings(PcfgTeacherConfig(seeds=(3,)))
    assert isinstance(t, FitSettings) and t.seeds == (3,) and (t.alpha, t.temperature, t.top_k) == (0.0, 1.0, 0)
    st = fit_settings(PcfgStudentConfig(alpha=0.25, temperature=0.5, top_k=3))
    assert (st.alpha, st.temperature, st.top_k) == (0.25, 0.5, 3)
