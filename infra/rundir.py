"""The directory of one run: ``config.json``, ``env.json``, ``metrics.jsonl`` (appended during the
run, one JSON object per evaluation), ``metrics.parquet`` and ``summary.json`` (written at the end),
``ckpt/`` (safetensors checkpoints). Every whole-file write is atomic (temporary file, then
``os.replace``), so a reader never takes a half-written file for a result; ``summary.json`` is
written last and marks the run as finished.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pandas as pd

from theory._checks import ParameterError

from .version import package_version

__all__ = ["RunDir", "atomic_write_text", "env_info", "open_teacher"]


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return _jsonable(v.item())
    return v


def env_info(device: str | None = None) -> dict[str, Any]:
    """Package version, git sha (if the package sits in a git checkout), library versions, device."""
    import numpy
    import torch

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        sha = None
    info = {
        "package_version": package_version(),
        "git_sha": sha,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": str(device) if device is not None else None,
        "cpu_threads": torch.get_num_threads(),
    }
    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


class RunDir:
    """Files of one run below ``path``."""

    def __init__(self, path) -> None:
        self.path = Path(path)

    @property
    def ckpt(self) -> Path:
        return self.path / "ckpt"

    def write_json(self, name: str, obj: Mapping[str, Any]) -> None:
        data = {k: _jsonable(v) for k, v in obj.items()}
        atomic_write_text(self.path / name, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def read_json(self, name: str) -> dict[str, Any]:
        return json.loads((self.path / name).read_text())

    def append_metrics(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append evaluation rows to ``metrics.jsonl`` (flushed and synced)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "metrics.jsonl", "a") as fh:
            for row in rows:
                fh.write(json.dumps({k: _jsonable(v) for k, v in row.items()}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def reset_metrics(self) -> None:
        (self.path / "metrics.jsonl").unlink(missing_ok=True)

    def resume_or_start(self, config: Mapping[str, Any], ckpt, device) -> bool:
        """True when the directory holds a run of this very ``config`` with checkpoints in ``ckpt``
        (a :class:`~simulate.checkpoints.CheckpointDir`): the caller resumes from its latest one.
        Otherwise start afresh: old checkpoints and metrics removed, ``config.json`` and ``env.json``
        written; returns False."""
        if (self.path / "config.json").exists() and self.read_json("config.json") == dict(config) and len(ckpt):
            return True
        self.path.mkdir(parents=True, exist_ok=True)
        for old in ckpt.steps():
            ckpt.path(old).unlink()
        self.reset_metrics()
        self.write_json("config.json", config)
        self.write_json("env.json", env_info(str(device)))
        return False

    def truncate_metrics(self, step: int) -> None:
        """Drop the rows logged after ``step`` (a resumed run logs them again)."""
        df = self.metrics()
        self.reset_metrics()
        if len(df):
            self.append_metrics(df[df["step"] <= step].to_dict("records"))

    def metrics(self) -> pd.DataFrame:
        """All evaluation rows: ``metrics.parquet`` when finished, else the lines of ``metrics.jsonl``
        that were completely written."""
        pq = self.path / "metrics.parquet"
        if pq.exists():
            return pd.read_parquet(pq)
        rows = []
        jl = self.path / "metrics.jsonl"
        if jl.exists():
            for line in jl.read_text().splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a kill: not a result
                    break
        return pd.DataFrame(rows)

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Write ``metrics.parquet`` then ``summary.json`` (last: it marks the run as finished)."""
        df = self.metrics()
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".metrics.", suffix=".parquet.tmp")
        os.close(fd)
        df.to_parquet(tmp, index=False)
        os.replace(tmp, self.path / "metrics.parquet")
        self.write_json("summary.json", summary)

    @property
    def finished(self) -> bool:
        return (self.path / "summary.json").exists()


def open_teacher(path: str, teacher_run: int, load_config: Callable[[Path], Any]) -> tuple[RunDir, Any]:
    """The teacher run directory ``path`` of a student and its config (``load_config(path)``, the
    engine's loader); ParameterError, before any work, when it is missing or ``teacher_run`` is not
    one of its runs."""
    if not path:
        raise ParameterError("teacher must name a teacher run directory (teacher=DIR)")
    teacher = RunDir(path)
    if not (teacher.path / "config.json").exists():
        raise ParameterError(f"teacher {path!r} is not a teacher run directory (no config.json)")
    tcfg = load_config(teacher.path)
    if teacher_run >= len(tcfg.seeds):
        raise ParameterError(f"teacher_run must be in [0, {len(tcfg.seeds) - 1}], got {teacher_run}")
    return teacher, tcfg
