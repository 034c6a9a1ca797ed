#!/bin/sh
# llama.cpp (llama-bench) beside lfm2.h (tools/lfm2-bench) on the SAME random LFM2 model, in one
# run, with the memory bandwidth sampled right before and after each measurement. For
# developers; not run by CI. Run tools/peer/build_llama.sh first.
#
#   sh tools/peer/run_peer.sh                     # results in $PEER/runs/<date>/summary.md
#
# Environment (defaults):
#   PEER=/tmp/lfm2-peer       work folder (llama.cpp build, models, runs), outside the repository
#   SHAPE=350m                350m | 1.2b
#   VARIANTS="bf16 f16 f32 q8_0 q4_0"   (bf16act: llama.cpp bf16 beside lfm2.h bf16 --bf16-act)
#   THREADS=2                 thread counts, comma separated (llama-bench and lfm2-bench syntax)
#   REPS=3                    repetitions of every test
#   PP=512 TG=128             prompt / generated tokens
#   SKIP_LFM2=0               1 = only llama.cpp
#
# Models: tools/make-random-model writes the HF folders ($PEER/models/lfm2-$SHAPE-{bf16,f16,f32});
# tools/peer/hf_to_gguf_lfm2.py converts each to GGUF with the same bytes (matrices keep their
# dtype; norms and conv taps F32 as llama.cpp wants); llama-quantize makes q8_0 / q4_0 from the
# bf16 GGUF. lfm2.h runs the folders; for q8_0 / q4_0 it runs the bf16 folder with
# --quant int8 / int4 (lfm2_model_params.weights = LFM2_WEIGHTS_Q8 / _Q4, converted at load).
# Disk: ~5 GB for 350m (all variants), ~17 GB for 1.2b.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PEER=${PEER:-/tmp/lfm2-peer}
SHAPE=${SHAPE:-350m}
VARIANTS=${VARIANTS:-"bf16 f16 f32 q8_0 q4_0"}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
PP=${PP:-512}
TG=${TG:-128}
SKIP_LFM2=${SKIP_LFM2:-0}
LLAMA=$PEER/llama.cpp/build/bin
MODELS=$PEER/models
RUN=$PEER/runs/$(date +%Y%m%d-%H%M%S)
BIN=$ROOT/build
CC=${CC:-gcc}

[ -x "$LLAMA/llama-bench" ] || { echo "no $LLAMA/llama-bench: run tools/peer/build_llama.sh first" >&2; exit 1; }
/usr/bin/python3 -c 'import numpy' 2>/dev/null || { echo "/usr/bin/python3 needs numpy: apt-get install python3-numpy" >&2; exit 1; }
mkdir -p "$MODELS" "$RUN" "$BIN"

# our tools (same flags as the Makefile's bench target)
$CC -O2 -march=native -Wall -Wextra -Werror -std=c99 -pedantic -fopenmp -o "$BIN/make-random-model" "$ROOT/tools/make-random-model.c" -lm
$CC -O2 -march=native -Wall -Wextra -Werror -std=c99 -pedantic -fopenmp -o "$BIN/lfm2-bench" "$ROOT/tools/lfm2-bench.c" -lm -lpthread

# models (kept between runs)
need=""
for v in $VARIANTS; do
    case $v in
        bf16|f16|f32) need="$need $v " ;;
        bf16act)      need="$need bf16 " ;;
        q8_0|q4_0)    need="$need bf16 " ;;
        *) echo "unknown variant $v (bf16 f16 f32 q8_0 q4_0 bf16act)" >&2; exit 1 ;;
    esac
done
for dt in bf16 f16 f32; do
    case "$need" in *" $dt "*) ;; *) continue ;; esac
    dir=$MODELS/lfm2-$SHAPE-$dt
    [ -f "$dir/model.safetensors" ] || "$BIN/make-random-model" --shape "$SHAPE" --dtype "$dt" -o "$dir"
    [ -f "$dir.gguf" ] || PYTHONPATH=$PEER/llama.cpp/gguf-py /usr/bin/python3 "$ROOT/tools/peer/hf_to_gguf_lfm2.py" "$dir" "$dir.gguf"
done
for q in q8_0 q4_0; do
    case " $VARIANTS " in *" $q "*) ;; *) continue ;; esac
    out=$MODELS/lfm2-$SHAPE-$q.gguf
    Q=$(echo "$q" | tr a-z A-Z)
    [ -f "$out" ] || "$LLAMA/llama-quantize" "$MODELS/lfm2-$SHAPE-bf16.gguf" "$out" "$Q" > "$RUN/quantize-$q.log" 2>&1
done

{
    echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine:  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, $(free -g | awk '/Mem:/{print $2}') GiB"
    echo "llama.cpp: $(git -C "$PEER/llama.cpp" rev-parse --short HEAD) ($(tr -d '\n ' < "$PEER/package/llama/llama.cpp.info.json" 2>/dev/null || echo '?'))"
    echo "lfm2.h:   $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'uncommitted') $(grep -m1 'define LFM2_VERSION_STRING' "$ROOT/lfm2.h" | awk '{print $3}')"
    echo "model:    random LFM2-$SHAPE shapes (tools/make-random-model), pp$PP / tg$TG, threads $THREADS, $REPS reps"
    echo "load avg: $(cut -d' ' -f1-3 /proc/loadavg) (at start)"
} > "$RUN/meta.txt"
cat "$RUN/meta.txt"

for v in $VARIANTS; do
    case $v in
        q8_0) gguf=$MODELS/lfm2-$SHAPE-q8_0.gguf; dir=$MODELS/lfm2-$SHAPE-bf16; quant=int8 ;;
        q4_0) gguf=$MODELS/lfm2-$SHAPE-q4_0.gguf; dir=$MODELS/lfm2-$SHAPE-bf16; quant=int4 ;;
        bf16act) gguf=$MODELS/lfm2-$SHAPE-bf16.gguf; dir=$MODELS/lfm2-$SHAPE-bf16; quant="none --bf16-act" ;;
        *)    gguf=$MODELS/lfm2-$SHAPE-$v.gguf;   dir=$MODELS/lfm2-$SHAPE-$v;    quant=none ;;
    esac
    echo "== $v: llama-bench" >&2
    "$BIN/lfm2-bench" --bw-only -t "$THREADS" -o jsonl > "$RUN/bw-$v-pre.jsonl" 2>/dev/null
    echo "$LLAMA/llama-bench -m $gguf -p $PP -n $TG -t $THREADS -r $REPS" >> "$RUN/commands.txt"
    "$LLAMA/llama-bench" -m "$gguf" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" -o jsonl > "$RUN/llama-$v.jsonl" 2> "$RUN/llama-$v.log"
    "$BIN/lfm2-bench" --bw-only -t "$THREADS" -o jsonl > "$RUN/bw-$v-post.jsonl" 2>/dev/null
    if [ "$SKIP_LFM2" != 1 ]; then
        echo "== $v: lfm2-bench" >&2
        echo "$BIN/lfm2-bench -m $dir -p $PP -n $TG -t $THREADS -r $REPS --quant $quant" >> "$RUN/commands.txt"
        # shellcheck disable=SC2086
        "$BIN/lfm2-bench" -m "$dir" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" --quant $quant -o jsonl \
            > "$RUN/lfm2-$v.jsonl" 2> "$RUN/lfm2-$v.log" || echo "   (lfm2-bench: $(tail -1 "$RUN/lfm2-$v.log"))" >&2
    fi
done
echo "load avg: $(cut -d' ' -f1-3 /proc/loadavg) (at end)" >> "$RUN/meta.txt"

python3 "$ROOT/tools/peer/summarize.py" "$RUN" > "$RUN/summary.md"
cat "$RUN/summary.md"
echo
echo "commands: $RUN/commands.txt; raw: $RUN/*.jsonl"
