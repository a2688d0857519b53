#!/usr/bin/env bash
# The 512² realism row on one GPU, both datasets at once (run by hand on a GPU machine, from the repo root):
#
#     SHARED=../shared/data BUDGET=5m bash benchmarks/gpu_realism.sh
#
# Prepares mini-MIAS and cc-cesm at SIZE with patient-level splits, runs benchmarks/gpu_smoke.py (every path
# of the job at tiny size on the GPU; stops here if one breaks), then trains the cascade
# gan/cpu-64 > upscale/cpu-128 > upscale/cpu-256 > upscale/gpu-512 on each dataset's train split, its four
# stages at once for BUDGET each (bench_realism.py --parallel-stages), and measures the C2ST at SIZE px on the
# held-out val + test patients on the GPU. Writes to OUTDIR: realism-{mias,cc}-SIZE.json, the real | synthetic
# grids, one log per dataset, and extras.tar.gz (evaluation.json of each, 8 full-size synthetic images each).
set -euo pipefail
SHARED=${SHARED:-../shared/data}
SIZE=${SIZE:-512}
BUDGET=${BUDGET:-5m}
OUTDIR=${OUTDIR:-benchmarks/results}
WORK=${WORK:-/tmp/gpu-realism}
CURVE=${CURVE:-3}
C2ST_STEPS=${C2ST_STEPS:-300}
PY=${PY:-python3}
FAMILY=${FAMILY:-"gan>upscale>upscale>upscale"}
CHECKPOINT_EVERY=${CHECKPOINT_EVERY:-500}
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD/src:$PWD/benchmarks" PYTHONUNBUFFERED=1
mkdir -p "$WORK" "$OUTDIR"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
started=$(date +%s)
pids=()
for name in mias cc; do
    mkdir -p "$WORK/$name"
    $PY -c "import sys; from pathlib import Path; from bench_evaluate import prepare_shared; \
prepare_shared(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), (sys.argv[4],))" \
        "$SHARED" "$WORK/$name" "$SIZE" "$name" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
echo "prepared in $(($(date +%s) - started)) s"
if ! $PY benchmarks/gpu_smoke.py "$WORK/mias/prepared-mias-$SIZE" "$WORK/smoke" >"$OUTDIR/smoke.txt" 2>&1; then
    tail -n 30 "$OUTDIR/smoke.txt"
    exit 1
fi
cat "$OUTDIR/smoke.txt"
pids=()
for name in mias cc; do
    $PY benchmarks/bench_realism.py --shared "$SHARED" --datasets "$name" --size "$SIZE" --budget "$BUDGET" \
        --families "$FAMILY" --parallel-stages --concurrent 2 --curve-points "$CURVE" --c2st-steps "$C2ST_STEPS" --checkpoint-every "$CHECKPOINT_EVERY" \
        --work "$WORK/$name" --out "$OUTDIR" >"$OUTDIR/log-$name.txt" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
echo "trained and measured in $(($(date +%s) - started)) s (status $status)"
set +eo pipefail  # what follows only gathers files: a missing one must not hide the results
extras="$WORK/extras"
mkdir -p "$extras"
for name in mias cc; do
    tag="${FAMILY//>/-}"
    cp "$WORK/$name/evaluation-$name-$tag-$SIZE/evaluation.json" "$extras/evaluation-$name.json" 2>/dev/null || true
    find "$WORK/$name/generated-$name-$tag-$SIZE" -name '*.png' 2>/dev/null | sort | head -n 8 |
        while read -r f; do cp "$f" "$extras/$name-$(basename "$f")"; done
done
tar -czf "$OUTDIR/extras.tar.gz" -C "$extras" .
tail -n 5 "$OUTDIR"/log-*.txt
exit $status
