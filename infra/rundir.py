"""The directory of one run: ``config.json``, ``env.json``, ``metrics.jsonl`` (appended during the
run, one JSON object per evaluation), ``metrics.parquet`` and ``summary.json`` (written at the end),
``ckpt/`` (safetensors checkpoints). Every whole-file write is atomic (temporary file, then
``os.replace``), so a reader never takes a half-written file for a result; ``summary.json`` is
written last and marks the run as finished. Files get the mode of a plainly created file (``0o666``
less the umask, read once at import: 0644 under the usual 022).

Before an entry point trains into a directory it claims it (:meth:`RunDir.claim_for`): the stored
``config.json`` is compared with the requested config (old field names through
:data:`infra.config.CONFIG_ALIASES`, missing fields as their defaults), and a run of another config
is refused with the first differing field unless ``overwrite``; a matching finished run is left as it
is, a matching unfinished one resumes (under the thread count it was trained with, unless
``allow_thread_change``).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pandas as pd

from theory._checks import ParameterError

from .config import config_from_dict, config_to_dict, renamed_config_keys
from .version import package_version

__all__ = ["RunDir", "RunConflictError", "atomic_write", "atomic_write_text", "config_difference", "env_info",
           "open_teacher", "FILE_MODE", "UMASK"]

log = logging.getLogger(__name__)


def _read_umask() -> int:
    """The process's umask, without changing it where Linux tells it (``/proc/self/status``); else set
    and restored at once (at import, before any thread of this package runs)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


#: The umask at import, and the mode of every file written here (that of a plainly created file).
UMASK = _read_umask()
FILE_MODE = 0o666 & ~UMASK


def atomic_write(path, write: Callable[[str], Any]) -> Path:
    """Write the whole file ``path`` atomically: ``write(tmp)`` fills a temporary file beside it, which
    gets :data:`FILE_MODE`, is synced and renamed onto ``path`` (``os.replace``); on any error the
    temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)  # mkstemp creates 0600
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return _jsonable(v.item())
    return v


def _now() -> str:
    """The time now, ISO 8601 in UTC to the second: ``2025-01-31T12:00:00+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """(commit sha, dirty: tracked files changed) of the checkout holding this package; (None, None)
    when the package is not in a git checkout of its own (installed, no git). Once per process."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
    try:
        top = Path(git("rev-parse", "--show-toplevel"))
        if not (top / "infra" / "rundir.py").samefile(__file__):  # another project's checkout around an install
            return None, None
        return git("rev-parse", "HEAD") or None, bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, None


def env_info(device: str | None = None) -> dict[str, Any]:
    """Package version, git sha and dirty flag (if the package sits in its git checkout, else None),
    library versions, device, CPU threads, host, command line (``sys.argv``) and start time (UTC)."""
    import numpy
    import torch

    sha, dirty = git_state()
    info = {
        "package_version": package_version(),
        "git_sha": sha,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": str(device) if device is not None else None,
        "cpu_threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "argv": list(sys.argv),
        "started": _now(),
    }
    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


# ---------------------------------------------------------------- comparing configs

class RunConflictError(ParameterError):
    """A directory that holds a run of another config, or one that would resume under another thread count."""


_MISSING = object()


def _show(v) -> str:
    return "(absent)" if v is _MISSING else json.dumps(v)


def _same(a, b) -> bool:
    if a == b:
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, str) and isinstance(b, str) and a and b:  # one path spelled two ways (relative, absolute)
        try:
            return os.path.samefile(a, b)
        except (OSError, ValueError):
            return False
    return False


def _first_difference(stored: Mapping, wanted: Mapping, prefix: str = "") -> str | None:
    for key in [*wanted, *(k for k in stored if k not in wanted)]:
        a, b = stored.get(key, _MISSING), wanted.get(key, _MISSING)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            inner = _first_difference(a, b, f"{prefix}{key}.")
            if inner is not None:
                return inner
        elif not _same(a, b):
            return f"{prefix}{key} {_show(a)} != {_show(b)}"
    return None


def _as_dict(config) -> dict:
    return config_to_dict(config) if dataclasses.is_dataclass(config) else dict(config)


def config_difference(stored: Mapping[str, Any], config) -> str | None:
    """The first field (nested ones dotted: ``teacher.width``) in which a stored config dict
    (``config.json``) differs from ``config`` (a config dataclass or its dict), as ``"width 64 != 128"``
    (stored, then requested); None when they are the same config. Old field names are renamed
    (:func:`infra.config.renamed_config_keys`); with a dataclass ``config`` the stored dict is loaded
    as its class first, so fields added since take their defaults; two strings naming the same
    existing path are the same."""
    stored = renamed_config_keys(dict(stored))
    if dataclasses.is_dataclass(config):
        try:
            stored = config_to_dict(config_from_dict(type(config), stored))
        except Exception:  # noqa: BLE001 - another kind, unknown keys, a config no longer valid: compare as stored
            pass
    return _first_difference(stored, _as_dict(config))


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

    def _read_env(self) -> dict[str, Any]:
        try:
            return self.read_json("env.json")
        except (OSError, ValueError):
            return {}

    # ------------------------------------------------------------ claiming the directory for a config

    def config_difference(self, config) -> str | None:
        """The first field in which this directory's ``config.json`` differs from ``config``
        (:func:`config_difference`); None when it holds this config."""
        try:
            stored = self.read_json("config.json")
        except (OSError, ValueError) as exc:
            return f"config.json unreadable ({exc})"
        return config_difference(stored, config)

    def plan_for(self, config, *, overwrite: bool = False, allow_thread_change: bool = False) -> str:
        """What :meth:`claim_for` would do, without touching the directory (or the refusal it raises):
        ``"finished"``, ``"resume"``, ``"start"``, or ``"replace"`` (``overwrite`` of an existing run)."""
        if not (self.path / "config.json").is_file():
            return "start"
        if overwrite:
            return "replace"
        diff = self.config_difference(config)
        if diff is not None:
            raise RunConflictError(f"--out {self.path} holds a run of another config: {diff} "
                                   f"(use --overwrite to replace it)")
        if self.finished:
            return "finished"
        if not self.has_checkpoints():
            return "start"
        self._check_threads(allow_thread_change)
        return "resume"

    def has_checkpoints(self) -> bool:
        """Whether ``ckpt/`` holds a checkpoint file (``step_<digits>.safetensors``, :mod:`infra.checkpoints`)."""
        return self.ckpt.is_dir() and any(p.name[5:-12].isdigit() for p in self.ckpt.glob("step_*.safetensors"))

    def claim_for(self, config, *, overwrite: bool = False, allow_thread_change: bool = False) -> str:
        """Claim the directory for ``config`` before any training: ``"finished"`` (a finished run of
        this config: leave it as it is), ``"resume"`` (an unfinished one with checkpoints: resume from
        the latest that loads) or ``"start"`` (nothing of this config to continue: train from step 0).

        A directory holding a run of another config (the first differing field named; old field
        names and missing new fields as in :func:`config_difference`) raises :class:`RunConflictError`
        and is left untouched, unless ``overwrite``, which removes the old run's files (any run,
        finished or not, of this config or another) and starts afresh. A resume under another CPU
        thread count than the run was trained with raises unless ``allow_thread_change`` (CPU results
        depend on it; ARCHITECTURE.md, Determinism). Finished / replaced runs are logged (INFO)."""
        plan = self.plan_for(config, overwrite=overwrite, allow_thread_change=allow_thread_change)
        if plan == "replace":
            log.info("replacing the run in %s (overwrite)", self.path)
            self.clear()
            return "start"
        if plan == "finished":
            log.info("finished (not retrained): %s", self.path)
        elif plan == "resume" and self.read_json("config.json") != _as_dict(config):
            self.write_json("config.json", _as_dict(config))  # old field names: the resume compares dicts
        elif plan == "start" and (self.path / "metrics.jsonl").exists():
            log.info("restarting from step 0 (no checkpoint to resume from): %s", self.path)
        return plan

    def _check_threads(self, allow: bool) -> None:
        import torch

        env = self._read_env()
        if str(env.get("device") or "").startswith("cuda"):
            return
        then = (env.get("resumes") or [{}])[-1].get("cpu_threads", env.get("cpu_threads"))
        now = torch.get_num_threads()
        if then is not None and then != now and not allow:
            raise RunConflictError(
                f"--out {self.path} was trained with {then} CPU threads and this process has {now}: its resumed "
                f"numbers would differ from an unkilled run's (set OMP_NUM_THREADS={then}, or use "
                f"--allow-thread-change to resume anyway)")

    def clear(self) -> None:
        """Remove the run's files: ``summary.json`` first (the run no longer looks finished), then the
        metrics, checkpoints (quarantined ones too), ``env.json`` and ``config.json``; other files stay."""
        for name in ("summary.json", "metrics.parquet", "metrics.jsonl", "env.json", "config.json"):
            (self.path / name).unlink(missing_ok=True)
        if self.ckpt.is_dir():
            for old in self.ckpt.glob("step_*"):
                if old.is_file():
                    old.unlink()

    def resume_or_start(self, config: Mapping[str, Any], ckpt, device) -> bool:
        """True when the directory holds a run of this very ``config`` with checkpoints in ``ckpt``
        (a :class:`~infra.checkpoints.CheckpointFiles`): the caller resumes from its latest one.
        Otherwise start afresh (:meth:`start_afresh`); returns False. (Entry points claim the
        directory first, :meth:`claim_for`, so a run of another config never gets here.)"""
        if (self.path / "config.json").exists() and self.config_difference(config) is None and len(ckpt):
            return True
        self.start_afresh(config, device)
        return False

    def start_afresh(self, config: Mapping[str, Any], device) -> None:
        """Old run files removed (:meth:`clear`), ``config.json`` and ``env.json`` written."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.clear()
        self.write_json("config.json", config)
        self.write_json("env.json", env_info(str(device)))

    def note_resume(self, step: int) -> None:
        """Add a resume (step, time, CPU threads, host, command line) to ``env.json``'s ``resumes``."""
        import torch

        env = self._read_env()
        env.setdefault("resumes", []).append({"step": step, "time": _now(), "cpu_threads": torch.get_num_threads(),
                                              "host": socket.gethostname(), "argv": list(sys.argv)})
        self.write_json("env.json", env)

    # ------------------------------------------------------------ metrics

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

    def _log_lines(self) -> list[tuple[str, dict]]:
        """The completely written lines of ``metrics.jsonl`` with their rows (up to a line cut by a kill)."""
        out = []
        jl = self.path / "metrics.jsonl"
        if jl.exists():
            for line in jl.read_text().splitlines():
                try:
                    out.append((line, json.loads(line)))
                except json.JSONDecodeError:  # a line cut by a kill: not a result
                    break
        return out

    def truncate_metrics(self, step: int) -> None:
        """Keep the rows logged at or before ``step`` (a resumed run logs the later ones again): the
        kept lines, as they were, replace ``metrics.jsonl`` atomically (a kill leaves the old log or
        the new one, never a part); a ``metrics.parquet`` of the unfinished run is removed."""
        kept = [line for line, row in self._log_lines() if row.get("step", 0) <= step]
        atomic_write_text(self.path / "metrics.jsonl", "".join(line + "\n" for line in kept))
        (self.path / "metrics.parquet").unlink(missing_ok=True)

    def metrics(self) -> pd.DataFrame:
        """All evaluation rows: ``metrics.parquet`` when finished, else the lines of ``metrics.jsonl``
        that were completely written."""
        pq = self.path / "metrics.parquet"
        if pq.exists():
            return pd.read_parquet(pq)
        return pd.DataFrame([row for _, row in self._log_lines()])

    @staticmethod
    def divergence(df: pd.DataFrame) -> dict[int, int]:
        """``{run: step}``: the first logged step of each run whose row is marked ``diverged``
        (a non-finite loss or parameter, :class:`infra.runloop.RunLoop`); runs that never diverged are absent."""
        if not len(df) or "diverged" not in df.columns:
            return {}
        bad = df[df["diverged"].fillna(False).astype(bool)]
        runs = bad["run"] if "run" in bad.columns else pd.Series(0, index=bad.index)
        return {int(r): int(g.min()) for r, g in bad["step"].groupby(runs)}

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Write ``metrics.parquet`` then ``summary.json`` (last: it marks the run as finished).

        The summary gets ``diverged`` (whether any run diverged) and, in each entry of ``runs``,
        ``diverged_at`` (the step its loss or parameters first became non-finite, else None), from the
        rows the loop marked; ``env.json`` gets the end time."""
        df = self.metrics()
        atomic_write(self.path / "metrics.parquet", lambda tmp: df.to_parquet(tmp, index=False))
        div = self.divergence(df)
        summary = dict(summary, diverged=bool(div))
        if isinstance(summary.get("runs"), list):
            summary["runs"] = [dict(r, diverged_at=div.get(r.get("run"))) if isinstance(r, Mapping) else r
                               for r in summary["runs"]]
        env = self._read_env()
        if env:
            self.write_json("env.json", dict(env, ended=_now()))
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
