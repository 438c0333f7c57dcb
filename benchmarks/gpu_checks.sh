#!/usr/bin/env bash
# The GPU checks and benchmarks, prepared for a session that is lent a device: ONE script, about 8 minutes
# on an H100/H200, every step time-boxed so that a slow one cannot eat the rest. Run from the repository
# root; the results go to $OUT (default /tmp/gpu_checks) and are then recorded in benchmarks/RESULTS.md.
#
#   bash benchmarks/gpu_checks.sh            # on the device machine (the `run` tool sets $OUT)
#
# 1. the CUDA tests (tests/test_engine.py: the torch block and its CUDA-graph replay against the CPU's
#    float64 iterates; skipped on a machine without CUDA, so CI never needs a GPU);
# 2. batch-1 online SGD at (100, 6), widths 1000 and 50000 and R = 32 runs, backend torch against graph
#    (benchmarks/parity_sgd.py --device cuda);
# 3. slices of the paper's width-50000 teacher with its evaluations and probes (icurr parity teacher
#    --preset paper backend=graph|torch), to extrapolate the 20M steps of Appendix C.1.
set -u
OUT=${OUT:-/tmp/gpu_checks}
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }
python - <<'PY' 2>&1 | tee "$OUT/env.txt"
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "device", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")
PY
python -c "import icurr, safetensors, pandas" 2>/dev/null || pip install -q -e . 2>&1 | tail -2
log "1. CUDA tests"
timeout 120 python -m pytest -q tests/test_engine.py -k "cuda or graph" 2>&1 | tail -5 | tee -a "$OUT/summary.txt"
for backend in torch graph; do
    log "2. parity_sgd.py --backend $backend"
    timeout 150 python benchmarks/parity_sgd.py --device cuda --quick --reps 1 --backend "$backend" \
        --widths 1000 50000 --runs 32 2>&1 | tee "$OUT/parity_$backend.txt" | tail -6 | tee -a "$OUT/summary.txt"
done
log "3. the paper's teacher, (100, 6), width 50000, with its evaluations and probes: backend graph (1M steps), torch (100k)"
for spec in "graph 1000000 100000 240" "torch 100000 50000 150"; do
    set -- $spec
    /usr/bin/time -v timeout "$4" python -m icurr parity teacher --preset paper --device cuda --out "$OUT/teacher_$1" \
        --no-progress backend="$1" steps="$2" eval_every="$3" probe_every="$3" checkpoint_every="$2" seeds=0 2>&1 \
        | grep -E "Elapsed|Maximum resident|error" | sed "s/^/[$1] /" | tee -a "$OUT/summary.txt"
    python -m icurr results "$OUT/teacher_$1" 2>&1 | tail -1 | sed "s/^/[$1] /" | tee -a "$OUT/summary.txt"
done
log "done"
