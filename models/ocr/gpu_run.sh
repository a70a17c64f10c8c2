#!/usr/bin/env bash
# OCR training runs on a lent GPU machine (the `device` tool), which has no datasets, no plate
# fonts and no network: `prepare` packs what the runs need into .gpu/ here, `train` runs there.
#
#   bash models/ocr/gpu_run.sh prepare   # here: .gpu/pools.npz (real crops), .gpu/fonts, .gpu/datasets, .whl/
#   bash models/ocr/gpu_run.sh train     # there: shards on every core, then the runs in RUNS side by side
#
# `train` renders GENS x PER shards of 4,000 synthetic plates (DIE of them in the die fonts, every
# other generator with stacks on 30 %), times a short calibration of all runs at once, then gives
# each run as many steps as fit in TRAIN_S seconds and packs every run's last three snapshots
# (weights only) and logs into $OUT/run_NAME.tar.gz (one a run) for `models.ocr.export` to average here.
# RUNS is a list of "name|extra train options"; every run shares the recipe in COMMON.
set -uo pipefail
PY=${PYTHON:-python3}
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/device-wheels.sh
. scripts/device-wheels.sh

prepare() {
    mkdir -p .gpu/fonts .gpu/datasets
    $PY -m models.ocr.train --pack .gpu/pools.npz || exit 1
    $PY -c "from models.synth.plates import FONT_FILES, DIE_FONT_FILES; print('\n'.join([*FONT_FILES, *DIE_FONT_FILES]))" |
        while read -r f; do mkdir -p ".gpu/fonts$(dirname "$f")" && cp "$f" ".gpu/fonts$f"; done
    rm -rf .gpu/datasets/us-plate-designs
    cp -r "${POLEWATCH_DATASETS:-../shared/datasets}/us-plate-designs" .gpu/datasets/
    fetch_device_wheels
    du -sh .gpu .whl
}

train() {
    [ -f .gpu/pools.npz ] && [ -d .gpu/fonts ] || { echo "no .gpu/ here: run '$0 prepare' first and carry .gpu" >&2; exit 2; }
    OUT=${OUT:-/tmp/gpu-train}
    mkdir -p "$OUT" /tmp/runs
    install_device_wheels
    cp -r .gpu/fonts/usr/share/fonts /usr/share/  # the generator's fonts at the paths it names
    export POLEWATCH_DATASETS=$PWD/.gpu/datasets PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
    t0=$(date +%s)
    $PY -c "from models.synth.plates import _designs; print('plate designs', len(_designs()))"  # inpainted once, cached
    for i in $(seq 0 $((${GENS:-14} - 1))); do
        stack=(); [ $((i % 2)) -eq 1 ] && stack=(--stack-share 0.3)
        $PY -m models.ocr.gen --out /tmp/synth --shards "${PER:-2}" --per-shard "${PER_SHARD:-4000}" --seed $((${SEED0:-20} + i)) "${stack[@]}" \
            --die-font-share "${DIE:-0.3}" > "/tmp/gen_$i.log" 2>&1 &
    done
    wait
    n=$(ls /tmp/synth 2>/dev/null | wc -l)
    echo "shards: $n in $(( $(date +%s) - t0 )) s"
    [ "$n" -gt 0 ] || { tail -n 5 /tmp/gen_0.log; echo "no shards rendered" >&2; exit 1; }
    COMMON=${COMMON:---ca-share 0.10 --br-share 0.18 --us-share 0.12 --lr 2e-3 --batch 128 --seed 51}
    IFS=';' read -ra runs <<< "${RUNS:-A|;B|--all-us}"
    workers=$(( ($(nproc) - ${#runs[@]}) / ${#runs[@]} ))
    # calibration: every run at once for 300 steps; the slowest sets the pace
    for r in "${runs[@]}"; do
        name=${r%%|*}; extra=${r#*|}
        # shellcheck disable=SC2086
        $PY -m models.ocr.train --run "/tmp/cal_$name" --synth /tmp/synth --pools .gpu/pools.npz --device "${DEVICE:-cuda}" \
            --workers "$workers" --steps "${CAL_STEPS:-300}" --epoch-steps "${CAL_STEPS:-300}" $COMMON $extra > "/tmp/cal_$name.log" 2>&1 &
    done
    wait
    per_epoch=$(grep -h -o '[0-9.]* s/epoch' /tmp/cal_*/train.log 2>/dev/null | sort -n | tail -1 | cut -d' ' -f1)
    [ -n "$per_epoch" ] || { tail -n 5 /tmp/cal_*.log; echo "calibration runs failed" >&2; exit 1; }
    steps=$($PY -c "s = int(${CAL_STEPS:-300} / $per_epoch * ${TRAIN_S:-300}) // 1000 * 1000; print(max(${MIN_STEPS:-3000}, min(s, ${MAX_STEPS:-200000})))")
    epoch=$(( steps / 20 ))
    echo "calibration: ${CAL_STEPS:-300} steps in $per_epoch s with ${#runs[@]} runs of $workers workers -> $steps steps, epochs of $epoch"
    for r in "${runs[@]}"; do
        name=${r%%|*}; extra=${r#*|}
        # shellcheck disable=SC2086
        timeout $(( ${TRAIN_S:-300} + 120 )) $PY -m models.ocr.train --run "/tmp/runs/$name" --synth /tmp/synth \
            --pools .gpu/pools.npz --device "${DEVICE:-cuda}" --workers "$workers" --steps "$steps" --epoch-steps "$epoch" \
            --keep-every "$epoch" $COMMON $extra > "/tmp/runs/$name.out" 2>&1 &
    done
    wait
    $PY - <<'PYEOF'
import glob, os, torch
for run in sorted(glob.glob("/tmp/runs/*/")):
    snaps = sorted(glob.glob(run + "step_*.pt"))
    for p in snaps[:-3]:
        os.remove(p)
    for p in snaps[-3:]:
        ck = torch.load(p, map_location="cpu", weights_only=False)
        ck.pop("opt", None)
        torch.save(ck, p)
    for p in ("last.pt", "best.pt"):
        if os.path.exists(run + p):
            os.remove(run + p)
    print(run, [os.path.basename(p) for p in snaps[-3:]])
PYEOF
    for run in /tmp/runs/*/; do  # one archive a run: what comes back is at most 16 MiB a file
        name=$(basename "$run")
        tar -czf "$OUT/run_$name.tar.gz" -C /tmp/runs "$name" "$name.out"
    done
    for r in /tmp/runs/*/train.log; do echo "== $r"; tail -n 3 "$r"; done
    echo "total $(( $(date +%s) - t0 )) s"
    compgen -G "$OUT/run_*.tar.gz" > /dev/null || { echo "no run left snapshots" >&2; exit 1; }
}

case "${1:-}" in
    prepare) prepare ;;
    train) train ;;
    *) echo "usage: $0 prepare|train" >&2; exit 2 ;;
esac
