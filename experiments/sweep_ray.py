"""The Ray backend of sweeps: one Ray task per group, results in the same directory layout.

Each group runs :func:`experiments.sweep_exec.execute_group` in a Ray worker, so the output directory
must be on storage shared by the cluster's nodes (the same path everywhere). Each task claims its
group itself (:mod:`infra.claims`: an ``flock`` held by the worker process, dropped by the kernel
if the worker dies), so several drivers, or local workers and Ray tasks, may share one directory;
across nodes this relies on the shared file system's locks (see :mod:`infra.claims` on NFS). A group asks Ray for
``gpu_fraction`` of a GPU when it will train on CUDA (``device=cuda``, or ``device=auto`` on a
cluster that has GPUs) and for ``num_gpus=0`` otherwise. Ray is imported lazily; install it with
the ``ray`` extra (``pip install -e ".[ray]"``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from theory._checks import ParameterError, check_real

__all__ = ["import_ray", "group_gpus", "run_groups_ray"]


def import_ray():
    """The ``ray`` module, or an error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ParameterError(
            "backend 'ray' needs the ray package: pip install -e '.[ray]' from a checkout "
            "(pip install 'implicit-curriculum[ray]' from an index)"
        ) from None
    return ray


def _devices(group) -> list[str]:
    cfg = group.config
    if group.kind == "compare":
        return [cfg.teacher.device, cfg.student.device]
    return [cfg.device]


def group_gpus(group, *, gpu_fraction: float, cluster_gpus: float) -> float:
    """The GPU fraction a group asks Ray for: 0 for CPU runs, ``gpu_fraction`` for CUDA runs."""
    devices = _devices(group)
    if "cuda" in devices or ("auto" in devices and cluster_gpus > 0):
        return float(gpu_fraction)
    return 0.0


def run_groups_ray(groups, out, *, address: str | None = None, gpu_fraction: float = 1.0,
                   cpus_per_group: float = 1.0, on_done: Callable[[dict], None] | None = None,
                   allow_thread_change: bool = False) -> list[dict]:
    """Run every group as a Ray task on the cluster at ``address``; ``on_done`` sees each result
    (``allow_thread_change``: as :func:`experiments.sweep_exec.execute_group`).

    An already initialized Ray (``ray.init`` called by the caller) is used as it is; otherwise
    ``ray.init(address=address)`` connects (``"auto"``, ``"ray://host:port"``, or ``"local"`` to
    start a local instance) and the connection is closed at the end.
    """
    check_real("gpu_fraction", gpu_fraction, 0, 1)
    check_real("cpus_per_group", cpus_per_group, 0, lo_open=True)
    ray = import_ray()
    from .sweep_exec import execute_group

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    results = []
    try:
        cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
        if any(group_gpus(g, gpu_fraction=gpu_fraction, cluster_gpus=cluster_gpus) > 0 for g in groups) \
                and cluster_gpus == 0:
            raise ParameterError("device=cuda was asked for but the Ray cluster has no GPU; use device=cpu or auto")
        task = ray.remote(execute_group)
        out = str(Path(out).resolve())
        pending = {task.options(num_cpus=cpus_per_group,
                                num_gpus=group_gpus(g, gpu_fraction=gpu_fraction, cluster_gpus=cluster_gpus),
                                name=f"sweep-group-{g.id}").remote(g, out, allow_thread_change=allow_thread_change): g
                   for g in groups}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                group = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker died: its runs stay unfinished
                    result = {"group": group.id, "done": [], "failed": [s.hash for s in group.runs], "busy": [],
                              "skipped": [], "error": f"{type(exc).__name__}: {exc}"}
                results.append(result)
                if on_done is not None:
                    on_done(result)
    finally:
        if started:
            ray.shutdown()
    return results
