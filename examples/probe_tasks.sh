#!/usr/bin/env bash
# The four probe tasks of "Exploring LSTMs", end to end through the real command line:
# write the corpus, train the model, measure it. One task per argument (default: all four).
#
#   examples/probe_tasks.sh counter memorizer
#
# Writes probe-data/TASK.txt and checkpoints/TASK/ under the current directory. The settings are
# those of charlstm.probes.RECIPES (examples/probe.py says whether a checkpoint matches them).
# Each model trains in 3-15 s on one CPU thread.
set -euo pipefail

# One thread, pinned (`--threads 1`; examples/probe.py pins it too): a 10-unit model gains nothing
# from a second one, on a busy machine one thread is several times faster, and `--threads auto`
# would run its trial steps on two threads, whose sums round differently, so the weights would
# depend on the load. `--eval-seconds 0`: evaluations by step only, as in the recipe.
here="$(cd "$(dirname "$0")" && pwd)"
charlstm="${CHARLSTM:-charlstm}"   # e.g. CHARLSTM="python -m charlstm" in a source checkout

run() {
    local task=$1 count=$2 hidden=$3 steps=$4 lr=$5
    $charlstm corpus "$task" --out "probe-data/$task.txt" --count "$count" --seed 0
    rm -rf "checkpoints/$task"
    $charlstm train "probe-data/$task.txt" --out "checkpoints/$task" \
        --hidden-size "$hidden" --num-layers 1 --embedding-size 8 \
        --batch-size 32 --seq-len 64 --lr "$lr" --warmup-steps 20 --lr-decay 1 --forget-bias 1 \
        --max-steps "$steps" --eval-every "$steps" --log-every 50 --preview 0 --seed 1 --threads 1 --eval-seconds 0 \
        --ema-decay 0.995 --short-windows 0
    python "$here/probe.py" "$task" "checkpoints/$task"
}

for task in "${@:-counter selective-counter memorizer copy}"; do
    for t in $task; do
        case "$t" in
            counter)           run counter           3000 10  800 3e-2 ;;
            selective-counter) run selective-counter 3000 10 1200 3e-2 ;;
            memorizer)         run memorizer         3000 10 1500 3e-2 ;;
            copy)              run copy              4000 20 1500 2e-2 ;;
            *) echo "unknown task $t (counter, selective-counter, memorizer, copy)" >&2; exit 2 ;;
        esac
    done
done
