"""Optional metrics sinks: TensorBoard (and Weights & Biases, MLflow) fed the rows of ``metrics.jsonl``.

Off by default. A sink is not a config field (it changes no result, so it must not change a config
hash): it is chosen by the environment, read once per :class:`infra.runloop.RunLoop`:

* ``ICURR_LOG``: a comma list of sink names, ``tensorboard``, ``wandb``, ``mlflow`` (empty or
  ``none``: no sink);
* ``ICURR_LOG_DIR``: where the sinks write; each run directory gets ``ICURR_LOG_DIR/<its name>``.
  Unset: the run directory's own ``tb/`` folder (TensorBoard and W&B files; MLflow writes where its
  tracking URI says), or, inside a sweep, ``OUT/tb/<group>/<name>`` (:func:`default_log_root`: a
  sweep's programs train in work directories that are removed once split).

Every row :meth:`RunLoop.log` appends to a directory is written once: each numeric value (not
``step``, ``run``, ``seed``; bools, strings and non-finite values left out) as a scalar at the
row's ``step``, one TensorBoard run per run of the program (``<dir>/run<r>/``, tag = the metrics column), so that
TensorBoard overlays the seeds; W&B and MLflow get one run per run directory, named after it, with
metrics ``<column>/run<r>`` (:class:`_Wandb`, :class:`_Mlflow`: a resumed program continues its run).
The packages are imported only when a sink is asked for; a missing one raises a one-line
``ParameterError`` naming its extra.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from theory._checks import ParameterError

__all__ = ["SINKS", "requested_sinks", "log_dir_for", "default_log_root", "open_sinks", "MetricsSinks"]

#: The sink names of ``ICURR_LOG``.
SINKS = ("tensorboard", "wandb", "mlflow")

_EXTRA = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
_SKIP = frozenset({"step", "run", "seed"})
_ROOT: ContextVar[Path | None] = ContextVar("icurr_log_root", default=None)


def requested_sinks(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The sink names of ``ICURR_LOG`` (comma list; ``""``/``none``: none), each checked and its
    package importable; ParameterError (one line, the install command) otherwise."""
    env = os.environ if environ is None else environ
    words = [w.strip().lower() for w in env.get("ICURR_LOG", "").split(",") if w.strip()]
    names = tuple(dict.fromkeys(w for w in words if w != "none"))
    bad = [w for w in names if w not in SINKS]
    if bad:
        raise ParameterError(f"ICURR_LOG must be a comma list of {', '.join(SINKS)} (or none), got {bad[0]!r}")
    for name in names:
        module = _import(name)
        if name == "wandb":
            _wandb_login(module)
        elif name == "mlflow":
            _mlflow_store(module)
    return names


def _reason(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _mlflow_store(mlflow) -> None:
    """MLflow's tracking store (``MLFLOW_TRACKING_URI``, else MLflow's default), opened before any work:
    a URI MLflow cannot use is one line instead of MLflow's traceback after the run's files are written."""
    try:
        mlflow.tracking.MlflowClient()
    except Exception as exc:  # noqa: BLE001 - MLflow's own errors for a store it cannot open
        raise ParameterError(f"ICURR_LOG=mlflow cannot open MLflow's tracking store ({_reason(exc)}): set "
                             f"MLFLOW_TRACKING_URI to a tracking server or a database (sqlite:///mlflow.db)") from None


_LOGGED_IN: list[bool] = []  # W&B's login checked once per process


def _wandb_login(wandb) -> None:
    """W&B's credentials, checked before any work (``wandb.login``: a stored key, ``WANDB_API_KEY``, or
    its prompt on a terminal); not needed with ``WANDB_MODE`` offline or disabled. Without them, a
    one-line ParameterError instead of W&B's traceback after the run's files are written."""
    if _LOGGED_IN or os.environ.get("WANDB_MODE", "").strip().lower() in ("offline", "disabled", "dryrun"):
        return
    try:
        wandb.login(verify=False)
    except Exception as exc:  # noqa: BLE001 - W&B's own usage and authentication errors
        raise ParameterError(f"ICURR_LOG=wandb needs a W&B login ({_reason(exc)}): run `wandb login`, set "
                             f"WANDB_API_KEY, or set WANDB_MODE=offline to keep the runs local") from None
    _LOGGED_IN.append(True)


def _import(name: str):
    try:
        if name == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

            return SummaryWriter
        if name == "wandb":
            import wandb

            return wandb
        import mlflow

        return mlflow
    except ImportError:
        raise ParameterError(f"ICURR_LOG={name} needs the {name} package: pip install -e \".[{_EXTRA[name]}]\" "
                             f"from a checkout (pip install 'implicit-curriculum[{_EXTRA[name]}]' from an index)"
                             ) from None


@contextlib.contextmanager
def default_log_root(path) -> Iterator[None]:
    """Inside the block, runs without ``ICURR_LOG_DIR`` log to ``path/<run directory name>`` instead
    of their own ``tb/`` (a sweep's work directories are removed after the split)."""
    token = _ROOT.set(Path(path))
    try:
        yield
    finally:
        _ROOT.reset(token)


def log_dir_for(run_dir, environ: Mapping[str, str] | None = None) -> Path:
    """Where the sinks of run directory ``run_dir`` write (module doc)."""
    env = os.environ if environ is None else environ
    run_dir = Path(run_dir)
    root = env.get("ICURR_LOG_DIR", "").strip()
    if root:
        return Path(root) / run_dir.name
    if _ROOT.get() is not None:
        return _ROOT.get() / run_dir.name
    return run_dir / "tb"


def _scalars(row: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in row.items():
        if k in _SKIP or v is None or isinstance(v, (bool, str)):
            continue
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[k] = float(v)  # non-finite values are null in metrics.jsonl: left out here too
    return out


class _TensorBoard:
    def __init__(self, run_dir: Path, where: Path, config, start: int) -> None:
        self.cls, self.where, self.start, self.writers = _import("tensorboard"), where, start, {}

    def write(self, rows) -> None:
        for row in rows:
            r = int(row.get("run", 0))
            if r not in self.writers:  # purge_step: a resumed run's events after its checkpoint are dropped
                self.writers[r] = self.cls(log_dir=str(self.where / f"run{r}"), purge_step=self.start)
            for k, v in _scalars(row).items():
                self.writers[r].add_scalar(k, v, global_step=int(row["step"]))

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


def _flat(rows) -> dict[int, dict[str, float]]:
    by_step: dict[int, dict[str, float]] = {}
    for row in rows:
        r = int(row.get("run", 0))
        by_step.setdefault(int(row["step"]), {}).update({f"{k}/run{r}": v for k, v in _scalars(row).items()})
    return by_step


def _run_key(where: Path) -> str:
    """A stable id for the sink of log folder ``where``: the same folder (a resumed program) gives the
    same id, two folders two ids (W&B run ids allow letters, digits, ``-`` and ``_``)."""
    return "icurr-" + hashlib.sha256(str(Path(where).resolve()).encode()).hexdigest()[:16]


class _Wandb:
    """One W&B run per run directory, named after it, with a stable id (:func:`_run_key`), so that a
    resumed program continues its run (``resume="allow"``); the runs of one program are open side by
    side (``reinit="create_new"``). W&B's files go to the log folder; ``WANDB_MODE=offline`` keeps
    everything local. A resumed run's rows below W&B's step counter were sent before the kill (a
    resumed run reproduces them bit for bit) and are not sent again."""

    def __init__(self, run_dir: Path, where: Path, config, start: int) -> None:
        wandb = _import("wandb")
        where.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(dir=str(where), name=Path(run_dir).name, id=_run_key(where), resume="allow",
                              config=dict(config), reinit="create_new",
                              project=os.environ.get("WANDB_PROJECT") or "implicit-curriculum",
                              settings=wandb.Settings(console="off", quiet=True))

    def write(self, rows) -> None:
        done = int(getattr(self.run, "step", 0) or 0)
        for step, values in sorted(_flat(rows).items()):
            if step >= done:
                self.run.log(values, step=step)

    def close(self) -> None:
        self.run.finish()


def _params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A config dict as MLflow parameters: nested keys dotted (``teacher.width``), values as JSON text
    (at most 6000 characters, MLflow's limit)."""
    out: dict[str, str] = {}
    for k, v in config.items():
        if isinstance(v, Mapping):
            out.update(_params(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v, default=str)[:6000]
    return out


class _Mlflow:
    """One MLflow run per run directory in experiment ``$MLFLOW_EXPERIMENT_NAME`` (default
    ``implicit-curriculum``) of the tracking URI MLflow is set to, named after the directory, its
    config as parameters. The run is tagged with its log folder's key (``icurr.log_key``,
    :func:`_run_key`) and the last step it holds (``icurr.last_step``): a resumed program finds its
    run again and does not send twice the rows it sent before the kill. Metrics go in batches."""

    def __init__(self, run_dir: Path, where: Path, config, start: int) -> None:
        mlflow = _import("mlflow")
        from mlflow.entities import Param

        self.client = mlflow.tracking.MlflowClient()
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "implicit-curriculum"
        exp = self.client.get_experiment_by_name(name)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(name)
        key = _run_key(where)
        found = self.client.search_runs([exp_id], filter_string=f"tags.`icurr.log_key` = '{key}'", max_results=1)
        if found:
            run = found[0]
            self.run_id = run.info.run_id
            self.done = int(run.data.tags.get("icurr.last_step", -1))
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id = self.client.create_run(exp_id, run_name=Path(run_dir).name,
                                                 tags={"icurr.log_key": key, "icurr.log_dir": str(where),
                                                       "icurr.run_dir": str(run_dir)}
                                                 ).info.run_id
            self.done = -1
            params = [Param(k, v) for k, v in _params(dict(config)).items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters a call
                self.client.log_batch(self.run_id, params=params[i:i + 100])

    def write(self, rows) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for step, values in sorted(_flat(rows).items()) if step > self.done
                   for k, v in values.items()]
        for i in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics a call
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])
        if metrics:
            self.done = max(m.step for m in metrics)
            self.client.set_tag(self.run_id, "icurr.last_step", str(self.done))

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


_CLASSES = {"tensorboard": _TensorBoard, "wandb": _Wandb, "mlflow": _Mlflow}


class MetricsSinks:
    """The sinks of one program: ``write(j, rows)`` sends the rows appended to directory ``j``."""

    def __init__(self, per_dir: Sequence[list]) -> None:
        self.per_dir = list(per_dir)

    def __bool__(self) -> bool:
        return any(self.per_dir)

    def write(self, j: int, rows) -> None:
        if rows and self.per_dir[j]:
            rows = [dict(r) for r in rows]  # the sinks never touch the rows of metrics.jsonl
            for sink in self.per_dir[j]:
                sink.write(rows)

    def close(self) -> None:
        for sinks in self.per_dir:
            for sink in sinks:
                sink.close()
        self.per_dir = [[] for _ in self.per_dir]


def open_sinks(names: Sequence[str], run_dirs, configs, *, start: int = 0) -> MetricsSinks:
    """The sinks ``names`` for each run directory (configs parallel), the program going on from ``start``."""
    return MetricsSinks([[_CLASSES[n](Path(d), log_dir_for(d), c, start) for n in names]
                         for d, c in zip(run_dirs, configs)])

