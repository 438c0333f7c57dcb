"""Online SGD on (100, 6)-sparse parity: the blocked engine against a plain PyTorch loop.

Measured in one process on the same machine, batch size 1, input dimension d = 100:

* plain loop: a pre-generated data set behind ``DataLoader(batch_size=1)``,
  ``nn.Sequential(nn.Linear(d, m), nn.ReLU(), nn.Linear(m, 2))``, cross-entropy, autograd,
  ``torch.optim.SGD`` and a per-step learning-rate assignment to the param group (warmup +
  cosine schedule);
* engine: ``simulate.blocked.train_online`` with the same loss and schedule, data generated on
  the device in chunks inside the timed region, ``R`` runs with per-run learning rates.

Run ``python benchmarks/parity_sgd.py`` (about 2 minutes on 2 cores) or with ``--quick``.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from simulate import blocked, data  # noqa: E402
from simulate.losses import lr_schedule  # noqa: E402
from simulate.model import init_default  # noqa: E402

D, K, LR = 100, 6, 0.01


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(width: int, steps: int, seed: int = 0, device: torch.device = torch.device("cpu")) -> float:
    """Steps per second of the textbook PyTorch loop (timed after 20 warm-up steps); on CUDA the
    data set and the model live on the device."""
    gen = torch.Generator().manual_seed(seed)
    n = steps + 20
    x, _, label = data.sparse_parity_batch(n, D, data.first_support(K), generator=gen)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x.to(device), label.to(device)), batch_size=1)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(D, width), torch.nn.ReLU(), torch.nn.Linear(width, 2)).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    sched = lr_schedule("cosine", warmup=n // 10, total=n)
    lrs = (LR * sched(torch.arange(n))).tolist()
    loss_fn = torch.nn.CrossEntropyLoss()
    t0 = None
    for i, (xb, yb) in enumerate(loader):
        if i == 20:
            _sync(device)
            t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lrs[i]
        opt.zero_grad()
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()
    _sync(device)
    return steps / (time.perf_counter() - t0)


def engine(width: int, runs: int, steps: int, backend: str, seed: int = 0,
           device: torch.device = torch.device("cpu")) -> tuple[float, str, int]:
    """(steps per second, backend, block size) of ``train_online`` for ``runs`` runs at once, data
    drawn on ``device``."""
    gen = torch.Generator(device=device).manual_seed(seed)
    support = data.first_support(K).to(device)
    params = init_default(runs, width, D, 2, generator=gen, device=device)
    lr = (LR * torch.linspace(0.5, 1.5, runs) if runs > 1 else torch.tensor([LR])).to(device)
    sched = lr_schedule("cosine", warmup=steps // 10, total=steps)

    def sampler(n):
        x, _, label = data.sparse_parity_batch(n, D, support, generator=gen)
        return x, label

    name = blocked.resolve_backend(backend, params.W.device)
    T = blocked.default_block_size(width, D, runs)
    blocked.train_online(params, sampler, min(steps, 2 * T + 5), lr, loss="ce", backend=name)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    blocked.train_online(params, sampler, steps, lr, loss="ce", schedule=sched, backend=name)
    _sync(device)
    dt = time.perf_counter() - t0
    if not bool(torch.isfinite(params.W).all()):
        raise RuntimeError("engine diverged")
    return steps / dt, name, T


LIMIT_LOOP = Path(__file__).resolve().parents[2] / "shared" / "bench" / "limit_loop.py"


def limit_rate(width: int, steps: int) -> float | None:
    """Steps/s of the hand-tuned limit loop (``../shared/bench/limit_loop.py``, one thread), or None
    when it is absent or fails; it builds its C++ extension once into ``~/.cache/implicit_curriculum``."""
    if not LIMIT_LOOP.is_file():
        return None
    cwd = Path.home() / ".cache" / "implicit_curriculum" / "limit_loop"
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, str(LIMIT_LOOP), "--width", str(width), "--steps", str(steps),
                           "--threads", "1"], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    for line in proc.stdout.splitlines():
        if line.startswith("steps_per_s="):
            return float(line.split("=", 1)[1])
    return None


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="about 4x fewer steps and 2 repetitions")
    ap.add_argument("--reps", type=int, default=None, help="repetitions, best kept (default 3, quick 2)")
    ap.add_argument("--backend", default="auto", choices=blocked.BACKENDS)
    ap.add_argument("--widths", type=int, nargs="+", default=[100, 1000, 50000])
    ap.add_argument("--runs", type=int, default=32, help="R of the batched measurement")
    ap.add_argument("--device", default="cpu", help="cpu or cuda: where both loops run (default cpu)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    s = 0.25 if args.quick else 1.0
    reps = args.reps or (2 if args.quick else 3)

    def n(x):
        return max(50, int(x * s))

    plain_steps = {100: n(4000), 1000: n(4000), 50000: n(300)}
    engine_steps = {100: n(800_000), 1000: n(200_000), 50000: n(6000)}
    batched_steps = {100: n(80_000), 1000: n(12_000)}

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    print(f"torch {torch.__version__}, device {where}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"d = {D}, k = {K}, batch size 1, cross-entropy, warmup+cosine lr")
    print(f"load average at start: {_load()}; plain loop and engine alternate, best of {reps} kept")
    settings = [(m, 1) for m in args.widths] + [(m, args.runs) for m in (100, 1000) if m in args.widths]
    rows = []
    for m, R in settings:
        best_plain, best_engine, name, T = 0.0, 0.0, "", 0
        for _ in range(reps):  # alternate, so that both see the same machine load
            best_plain = max(best_plain, plain_loop(m, plain_steps.get(m, n(int(4e6 / m) + 100)), device=device))
            steps = (engine_steps if R == 1 else batched_steps).get(m, n(int(2e8 / (m * R)) + 1000))
            rate, name, T = engine(m, R, steps, args.backend, device=device)
            best_engine = max(best_engine, rate * R)
        label = f"single run, width {m}" if R == 1 else f"R = {R} runs, width {m} (model-steps/s)"
        rows.append((label, best_plain, best_engine, name, T))

    print(f"{'setting':<40} {'plain steps/s':>14} {'engine':>14} {'ratio':>8}  backend, block")
    for label, p, e, name, T in rows:
        print(f"{label:<40} {p:>14,.0f} {e:>14,.0f} {e / p:>7.1f}x  {name}, T={T}")
    print("targets: single run >= 25x at widths 100 and 1000; R = 32: >= 100x (width 100), >= 50x (width 1000)")
    if LIMIT_LOOP.is_file() and device.type == "cpu":
        limit_steps = {100: n(5_000_000), 1000: n(2_000_000)}
        print(f"against the limit loop ({LIMIT_LOOP.name}; one thread each, alternating, best of {reps}):")
        print(f"{'setting':<40} {'limit steps/s':>14} {'engine':>14} {'engine/limit':>13}")
        threads = torch.get_num_threads()
        for m in [w for w in (100, 1000) if w in args.widths]:
            best_limit, best_engine = 0.0, 0.0
            for _ in range(reps):
                best_limit = max(best_limit, limit_rate(m, limit_steps[m]) or 0.0)
                torch.set_num_threads(1)
                try:
                    best_engine = max(best_engine, engine(m, 1, engine_steps[m], args.backend, device=device)[0])
                finally:
                    torch.set_num_threads(threads)
            ratio = f"{best_engine / best_limit:13.2f}" if best_limit else f"{'n/a':>13}"
            print(f"{f'single run, width {m}':<40} {best_limit:>14,.0f} {best_engine:>14,.0f} {ratio}")
        print("target: engine/limit >= 0.5 at widths 100 and 1000")
    print(f"load average at end: {_load()}")


if __name__ == "__main__":
    main()
