"""Claims: which worker trains a run of a results directory, decided by an OS file lock.

A *key* names what a worker wants to own: a run (its hash) or a group's work directory
(``group-<group id>``). Claiming key ``K`` of results directory ``DIR`` means holding
``fcntl.flock(fd, LOCK_EX | LOCK_NB)`` on ``DIR/.claims/K.lock`` through an open file descriptor.

The protocol (:func:`try_claim`):

1. A worker claims all the keys of a group at once, in sorted order (one global order, so that
   two workers after overlapping sets cannot each hold a part of the other's), without waiting.
   If one key is held by someone else it releases the keys it got and reports the group busy:
   a group is never half-claimed.
2. It keeps the descriptors open for as long as it trains. The kernel drops a flock when the
   last descriptor of its open file is closed, so a worker that dies, SIGKILL included, leaves no
   claim behind: the next worker takes the keys over and resumes from the checkpoints. There is
   no stale-lock timeout to guess.
3. :meth:`Claim.release` deletes each lock file while still holding it, then closes it. Since a
   file may so be deleted under a worker that opened it just before, a worker that has locked a
   descriptor checks that the path still names the inode it locked, and otherwise starts again.
4. After a claim the caller must look again at what is left to do (another worker may have
   finished it between its first look and its claim).
5. The lock files of a dead worker stay behind, unlocked (harmless: the next claim of a key reuses
   its file). :func:`remove_stale` removes them by claiming and releasing each key nobody holds.

:func:`is_claimed` probes a key by taking ``LOCK_SH | LOCK_NB`` for an instant. A claimer that
finds a key locked retries for a fraction of a second (``patience``) before it gives up, so that
such a probe never makes it skip work; a real claim is held for the whole training.

Scope: ``flock`` locks are per host. On a local file system they keep the processes of one
machine apart exactly. On NFS, Linux (2.6.12 and later) emulates ``flock`` with POSIX byte-range
locks, which the server's lock manager (NFSv4, or lockd for NFSv3) enforces across clients, and
which a client can lose if its lease expires during a network partition; mounted with ``nolock``
or ``local_lock=flock`` the locks are local to each client and do NOT keep workers on different
hosts apart. The readable status of a claimed run (``running.json``: pid, host, heartbeat) is
written by its holder for people and for ``icurr sweep status``; it is a hint, never the
decision (see :mod:`experiments.sweep_exec` for its use across hosts).
"""
from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

__all__ = ["CLAIMS", "Claim", "claim_path", "try_claim", "hold", "is_claimed", "remove_stale"]

#: The directory of lock files inside a results directory.
CLAIMS = ".claims"
#: Seconds a claimer keeps retrying a key that another process has locked (see the module doc).
PATIENCE_S = 0.2


def claim_path(root, key: str) -> Path:
    """The lock file of ``key`` in results directory ``root``."""
    if not key or "/" in key or key.startswith("."):
        raise ValueError(f"claim key must be a plain file name, got {key!r}")
    return Path(root) / CLAIMS / f"{key}.lock"


def _open(path: Path) -> int:
    """A descriptor of ``path`` (created if missing), the directory created as needed."""
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the directory was removed by a releaser in between
            continue


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino)


def _lock(path: Path, *, blocking: bool, patience: float) -> int | None:
    """The descriptor of ``path`` locked exclusively, or None when another process holds it."""
    while True:
        fd = _open(path)
        deadline, pause = time.monotonic() + patience, 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return None
                time.sleep(pause)
                pause = min(2 * pause, 0.05)
        if _same_file(fd, path):
            return fd
        os.close(fd)  # locked a file that its holder deleted on release: try the new one


class Claim:
    """Keys held by this process (open, locked descriptors); :meth:`release` gives them back."""

    def __init__(self, root: Path, held: list[tuple[str, int]]) -> None:
        self.root = Path(root)
        self._held = held

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self._held)

    def release(self) -> None:
        """Delete each lock file while holding it, then close it (see the module doc); idempotent."""
        while self._held:
            key, fd = self._held.pop()
            try:
                if _same_file(fd, claim_path(self.root, key)):
                    os.unlink(claim_path(self.root, key))
            except OSError:
                pass
            finally:
                os.close(fd)
        try:
            (self.root / CLAIMS).rmdir()  # only when no other key is held
        except OSError:
            pass

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # a claim dropped without release closes its descriptors
        held = getattr(self, "_held", None)
        if held:
            for _, fd in held:
                try:
                    os.close(fd)
                except OSError:
                    pass
            held.clear()


def try_claim(root, keys, *, patience: float = PATIENCE_S) -> Claim | None:
    """Claim every key of ``keys`` in ``root`` or none: a :class:`Claim`, or None when another
    process holds one of them (the keys taken so far are released). Never waits longer than
    ``patience`` seconds per key."""
    keys = sorted(set(keys))
    claim = Claim(Path(root), [])
    for key in keys:
        fd = _lock(claim_path(root, key), blocking=False, patience=patience)
        if fd is None:
            claim.release()
            return None
        claim._held.append((key, fd))
    return claim


def hold(root, key: str) -> Claim:
    """Claim ``key``, waiting as long as another process holds it (for short critical sections)."""
    fd = _lock(claim_path(root, key), blocking=True, patience=0.0)
    assert fd is not None
    return Claim(Path(root), [(key, fd)])


def is_claimed(root, key: str) -> bool:
    """Whether a live process holds ``key`` now (a probe: shared lock taken and given back at once)."""
    try:
        fd = os.open(claim_path(root, key), os.O_RDONLY)
    except OSError:
        return False  # no lock file: nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)  # closing the descriptor also drops the shared lock
    return False


def lock_keys(root) -> list[str]:
    """The keys whose lock files are in ``root/.claims`` now, sorted (held or left by killed workers).
    The folder can vanish at any moment (the last holder removes it on release): then none."""
    try:
        names = os.listdir(Path(root) / CLAIMS)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n[: -len(".lock")] for n in names if n.endswith(".lock"))


def remove_stale(root) -> list[str]:
    """Remove the lock files of ``root`` that no live process holds (left by killed workers), by
    claiming and releasing each one; returns their keys. Keys held by live processes stay."""
    folder = Path(root) / CLAIMS
    removed = []
    for key in lock_keys(root):
        claim = try_claim(root, [key], patience=0.0)
        if claim is not None:
            claim.release()
            removed.append(key)
    try:
        folder.rmdir()
    except OSError:
        pass
    return removed
