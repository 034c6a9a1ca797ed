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
#   ROUNDS=5                  alternating passes of each program per variant (tools/ab.py)
#   REPS=1                    repetitions of every test inside one pass
#   PP=256 TG=64              prompt / generated tokens (short passes: drift stays small inside one)
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
ROUNDS=${ROUNDS:-5}
REPS=${REPS:-1}
PP=${PP:-256}
TG=${TG:-64}
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
$CC -O2 -Wall -Wextra -Werror -std=c99 -pedantic -fopenmp -o "$BIN/lfm2-bench" "$ROOT/tools/lfm2-bench.c" -lm -lpthread
$CC -O2 -Wall -Wextra -Werror -std=c99 -pedantic -fopenmp -o "$BIN/lfm2-quantize" "$ROOT/tools/lfm2-quantize.c" -lm -lpthread

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

# lfm2.h's int8 / int4 rows run pre-quantized folders (lfm2-quantize: the same weights as
# --quant int8|int4 at load, bit-identical logits, and a load short enough for short passes)
for q in q8 q4; do
    case " $VARIANTS " in *" ${q}_0 "*) ;; *) continue ;; esac
    [ -f "$MODELS/lfm2-$SHAPE-$q/model.safetensors" ] || "$BIN/lfm2-quantize" "$MODELS/lfm2-$SHAPE-bf16" "$MODELS/lfm2-$SHAPE-$q" $q > "$RUN/lfm2-quantize-$q.log" 2>&1
done

# every variant: ROUNDS alternating passes of both programs (tools/ab.py), bandwidth sampled
# right before every pass; the row = medians and the median of the pairwise ratios
cat > "$RUN/summary.md" <<EOT
| weights | llama.cpp pp$PP | lfm2.h pp$PP | ratio (min–max) | llama.cpp tg$TG | lfm2.h tg$TG | ratio (min–max) | lfm2.h tg, % of the bandwidth bound | BW GB/s |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
EOT
for v in $VARIANTS; do
    case $v in
        q8_0) gguf=$MODELS/lfm2-$SHAPE-q8_0.gguf; dir=$MODELS/lfm2-$SHAPE-q8; extra="" ;;
        q4_0) gguf=$MODELS/lfm2-$SHAPE-q4_0.gguf; dir=$MODELS/lfm2-$SHAPE-q4; extra="" ;;
        bf16act) gguf=$MODELS/lfm2-$SHAPE-bf16.gguf; dir=$MODELS/lfm2-$SHAPE-bf16; extra="--bf16-act" ;;
        *)    gguf=$MODELS/lfm2-$SHAPE-$v.gguf;   dir=$MODELS/lfm2-$SHAPE-$v;    extra="" ;;
    esac
    echo "== $v" >&2
    python3 "$ROOT/tools/ab.py" -n "$ROUNDS" --title "$v" --label "$v" --row "$RUN/summary.md" --raw "$RUN/raw-$v.jsonl" \
        --bw "$BIN/lfm2-bench --bw-only -t $THREADS --bw-mib 512 --bw-passes 3 -o jsonl" \
        "lfm2.h=$BIN/lfm2-bench -m $dir -p $PP -n $TG -t $THREADS -r $REPS --no-bw $extra -o jsonl 2>/dev/null" \
        "llama.cpp=$LLAMA/llama-bench -m $gguf -p $PP -n $TG -t $THREADS -r $REPS -o jsonl 2>/dev/null" > "$RUN/ab-$v.md"
done
echo "load avg: $(cut -d' ' -f1-3 /proc/loadavg) (at end)" >> "$RUN/meta.txt"

cat "$RUN/summary.md"
echo
echo "commands: $RUN/commands.txt; raw: $RUN/*.jsonl"
