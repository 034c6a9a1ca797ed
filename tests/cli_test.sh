#!/bin/sh
# tests/cli_test.sh BUILD_DIR - tests of the lfm2 command-line program, run from the repository
# root (make cli-test). Prints each check; exits non-zero if any fails.
# RUN: a runner for the programs (make wine: RUN=wine, EXE=.exe); the checks that need POSIX
# signals or /dev/full then say that they are skipped, and lfm2-quantize is put through
# tests/quantize_wine_test.sh instead of tests/quantize_test.sh.
B=${1:-build}
RUN=${RUN:-}
EXE=${EXE:-}
[ -z "$RUN" ] || B=$(cd "$B" && pwd) # (wine finds a program by an absolute path)
LFM2="$B/lfm2$EXE"
INSPECT_BIN="$B/lfm2-inspect$EXE"
run_lfm2() { $RUN "$LFM2" "$@"; }
run_inspect() { $RUN "$INSPECT_BIN" "$@"; }
run_quant() { $RUN "$B/lfm2-quantize$EXE" "$@"; }
DATA=tests/data
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lfm2_cli_test.XXXXXX") || exit 1 # (a fresh folder per run: make -j runs the native and the wine CLI tests at once)
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
fails=0
checks=0

pass() { checks=$((checks + 1)); echo "  ok    $1"; }
# waits (up to 120 s) until the --verbose line "[loaded ..." is in file $1: a background job of a
# shell ignores SIGINT until the program installs its handler, after the load
wait_loaded() { k=0; while ! grep -q "loaded" "$1" 2>/dev/null && [ $k -lt 1200 ]; do sleep 0.1; k=$((k + 1)); done; }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "  FAIL  $1"; }


echo "cli tests of $LFM2"
if [ ! -f "$LFM2" ]; then echo "  FAIL  $LFM2 is not built"; exit 1; fi

# --- help ----------------------------------------------------------------------------------------
if run_lfm2 --help > "$TMP/help" 2>&1 && grep -q -- "--repeat-penalty" "$TMP/help"; then
    pass "--help prints the usage and exits 0"
else fail "--help"; fi

# --- one-shot greedy completion on the demo model equals the reference text -----------------------
for k in 0 1 2; do
    p=$(cat "$DATA/cli/demo-p$k.prompt"; printf x); p=${p%x}   # exact text, trailing newline kept
    if run_lfm2 -m models/demo-code-8m --raw --temp 0 --repeat-penalty 1 -n 48 -p "$p" > "$TMP/out$k" 2> "$TMP/err$k" &&
       cmp -s "$TMP/out$k" "$DATA/cli/demo-p$k.expected"; then
        pass "demo-code-8m prompt $k: 48 greedy tokens equal the reference text"
    else
        fail "demo-code-8m prompt $k: output differs from $DATA/cli/demo-p$k.expected"
        sed 's/^/        /' "$TMP/out$k" "$TMP/err$k"
    fi
done

# the same with a thread count and a seed given (greedy ignores the seed)
p=$(cat "$DATA/cli/demo-p0.prompt"; printf x); p=${p%x}
if run_lfm2 -m models/demo-code-8m --raw --temp 0 --repeat-penalty 1 -n 48 -t 1 -s 7 -c 128 -p "$p" > "$TMP/out_t1" 2>/dev/null &&
   cmp -s "$TMP/out_t1" "$DATA/cli/demo-p0.expected"; then
    pass "-t 1 -s 7 -c 128 gives the same greedy text"
else fail "-t 1 -s 7 -c 128 changed the greedy text"; fi

# sampling: the same seed gives the same text, and --verbose reports speeds on stderr only
a=$(run_lfm2 -m models/demo-code-8m --raw -n 40 -s 1234 --temp 0.8 -p "$p" 2>/dev/null)
b=$(run_lfm2 -m models/demo-code-8m --raw -n 40 -s 1234 --temp 0.8 -p "$p" --verbose 2> "$TMP/verbose")
if [ -n "$a" ] && [ "$a" = "$b" ]; then pass "sampling with a fixed seed is reproducible"
else fail "sampling with -s 1234 gave different texts"; fi
kernels=$(run_inspect models/demo-code-8m 2>/dev/null | sed -n 's/^build  *lfm2.h [^,]*, //p')
if grep -q "tok/s" "$TMP/verbose" && grep -q "loaded" "$TMP/verbose" && [ -n "$kernels" ] && grep -qF "kernels $kernels]" "$TMP/verbose"; then
    pass "--verbose prints load time, the kernel set ($kernels) and tokens/s to stderr"
else fail "--verbose output"; sed 's/^/        /' "$TMP/verbose"; fi

# --- one-shot chat on the real-vocabulary model: the chat template's greedy answer ---------------
if run_lfm2 -m "$DATA/realvocab-bf16" --temp 0 --repeat-penalty 1 -n 16 -p "What is C. elegans?" > "$TMP/chat1" 2>/dev/null &&
   cmp -s "$TMP/chat1" "$DATA/cli/realvocab-turn1.expected"; then
    pass "realvocab-bf16 one-shot chat answer equals e2e.json's greedy text"
else fail "realvocab-bf16 one-shot chat answer"; sed 's/^/        /' "$TMP/chat1"; fi

# --- interactive: two turns through a pipe, exit at end of input ---------------------------------
printf 'What is C. elegans?\nAnd why?\n' |
    run_lfm2 -m "$DATA/realvocab-bf16" -i --temp 0 --repeat-penalty 1 -n 16 > "$TMP/chat2" 2> "$TMP/chat2.err"
rc=$?
n1=$(wc -c < "$DATA/cli/realvocab-turn1.expected")
dd if="$TMP/chat2" of="$TMP/chat2.first" bs=1 count="$n1" 2>/dev/null
tail -c +"$((n1 + 1))" "$TMP/chat2" > "$TMP/chat2.second"
if [ $rc -eq 0 ]; then pass "interactive session exits 0 at end of input"
else fail "interactive session exit status $rc"; sed 's/^/        /' "$TMP/chat2.err"; fi
if cmp -s "$TMP/chat2.first" "$DATA/cli/realvocab-turn1.expected"; then pass "interactive turn 1 answers like the one-shot run"
else fail "interactive turn 1"; sed 's/^/        /' "$TMP/chat2"; fi
if [ "$(wc -c < "$TMP/chat2.second")" -gt 1 ] && [ "$(tail -c 1 "$TMP/chat2.second" | od -An -c | tr -d ' ')" = '\n' ] &&
   ! cmp -s "$TMP/chat2.second" "$TMP/chat2.first"; then
    pass "interactive turn 2 gives a second, different answer"
else fail "interactive turn 2 (no second answer)"; sed 's/^/        /' "$TMP/chat2"; fi

# /reset starts over: the same question gives the same greedy answer again
printf 'What is C. elegans?\n/reset\nWhat is C. elegans?\n' |
    run_lfm2 -m "$DATA/realvocab-bf16" -i --temp 0 --repeat-penalty 1 -n 16 > "$TMP/chat3" 2>/dev/null
cat "$DATA/cli/realvocab-turn1.expected" "$DATA/cli/realvocab-turn1.expected" > "$TMP/chat3.expected"
if cmp -s "$TMP/chat3" "$TMP/chat3.expected"; then pass "/reset forgets the conversation"
else fail "/reset"; sed 's/^/        /' "$TMP/chat3"; fi

if [ -z "$RUN" ]; then # POSIX signals and /dev/full: not for a Windows program under Wine
# Ctrl-C (SIGINT) during an answer stops that answer, not the program: it goes on reading input
( printf 'def fibonacci(n):\n'; sleep 4; printf '/quit\n' ) |
    "$LFM2" -m models/demo-code-8m -i -n 0 --temp 0 --verbose > "$TMP/sig.out" 2> "$TMP/sig.err" &
pid=$!
wait_loaded "$TMP/sig.err"
sleep 1
kill -INT $pid 2>/dev/null
wait $pid
rc=$?
if [ $rc -eq 0 ] && grep -q "stopped" "$TMP/sig.err" && [ -s "$TMP/sig.out" ]; then
    pass "Ctrl-C stops the answer, the session goes on and ends normally"
elif [ $rc -eq 0 ] && grep -q "context full" "$TMP/sig.err"; then
    echo "  skip  Ctrl-C: the 4096-token answer was finished before the signal came"
else fail "Ctrl-C during an answer: exit $rc"; sed 's/^/        /' "$TMP/sig.err"; fi

# Ctrl-C during the prefill of a long prompt (one-shot): the prefill stops (the callback is polled
# per layer of every chunk), the program exits with status 130; a second Ctrl-C exits at once
python3 -c "print('x = 1\n' * 1200, end='')" > "$TMP/long.prompt" 2>/dev/null ||
    awk 'BEGIN { for (i = 0; i < 1200; i++) print "x = 1" }' > "$TMP/long.prompt"
n_long=$(run_inspect models/demo-code-8m --tokenize < "$TMP/long.prompt" | wc -w)
"$LFM2" -m models/demo-code-8m --raw -c 8192 -n 4 -t 1 --verbose -p "$(cat "$TMP/long.prompt")" > "$TMP/int.out" 2> "$TMP/int.err" &
pid=$!
wait_loaded "$TMP/int.err"
sleep 1
kill -INT $pid 2>/dev/null
wait $pid
rc=$?
n_pre=$(sed -n 's/.*\[prefill \([0-9]*\) tokens.*/\1/p' "$TMP/int.err")
if [ $rc -eq 130 ] && [ -n "$n_pre" ] && [ "$n_pre" -lt "$n_long" ] && grep -q "stopped" "$TMP/int.err"; then
    pass "Ctrl-C during a $n_long-token prefill stops it ($n_pre tokens decoded) and exits 130"
elif [ $rc -eq 130 ] && [ "$n_pre" = "$n_long" ]; then
    echo "  skip  Ctrl-C in the prefill: the prefill was finished before the signal came (exit 130)"
else fail "Ctrl-C during a long prefill: exit $rc, prefill '$n_pre'"; sed 's/^/        /' "$TMP/int.err"; fi
( printf 'def fibonacci(n):\n'; sleep 20; printf '/quit\n' ) |
    "$LFM2" -m models/demo-code-8m -i -c 8192 -n 0 -t 1 --verbose > "$TMP/int2.out" 2> "$TMP/int2.err" &
pid=$!
wait_loaded "$TMP/int2.err"
sleep 1
kill -INT $pid 2>/dev/null; sleep 0.2; kill -INT $pid 2>/dev/null
wait $pid
rc=$?
if [ $rc -eq 130 ] && [ -s "$TMP/int2.out" ]; then pass "two Ctrl-C during an interactive answer end the program with status 130"
else fail "two Ctrl-C in the interactive mode: exit $rc"; sed 's/^/        /' "$TMP/int2.err"; fi

# --- output errors: a full disk or a closed stdout is an error (one line on stderr, exit 1) ------
for how in full closed; do
    if [ $how = full ]; then
        run_lfm2 -m models/demo-code-8m --raw --temp 0 -n 8 -p "def f" > /dev/full 2> "$TMP/w.err"; rc=$?
    else
        run_lfm2 -m models/demo-code-8m --raw --temp 0 -n 8 -p "def f" >&- 2> "$TMP/w.err"; rc=$?
    fi
    if [ $rc -eq 1 ] && [ "$(wc -l < "$TMP/w.err")" -eq 1 ] && grep -q "cannot write the output" "$TMP/w.err"; then
        pass "output to a $how stdout: exit 1, \"$(cat "$TMP/w.err")\""
    else fail "output to a $how stdout: exit $rc"; sed 's/^/        /' "$TMP/w.err"; fi
done
if [ -w /dev/full ]; then
    printf 'What is C. elegans?\n' | run_lfm2 -m "$DATA/realvocab-bf16" -i --temp 0 -n 4 > /dev/full 2> "$TMP/w.err"; rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l < "$TMP/w.err")" -eq 1 ]; then pass "interactive answer to /dev/full: exit 1, one line"
    else fail "interactive answer to /dev/full: exit $rc"; sed 's/^/        /' "$TMP/w.err"; fi
    run_lfm2 --help > /dev/full 2> "$TMP/w.err"; rc=$?
    if [ $rc -ne 0 ] && [ "$(wc -l < "$TMP/w.err")" -eq 1 ]; then pass "--help to /dev/full: exit $rc, one line"
    else fail "--help to /dev/full: exit $rc"; fi
fi

else echo "  skip  Ctrl-C (SIGINT) and output-error checks: POSIX signals and /dev/full, not run under $RUN"; fi

# --- a model folder with a non-ASCII name (UTF-8 arguments; Windows: the wide API) ---------------
mkdir -p "$TMP/模型" && cp models/demo-code-8m/* "$TMP/模型/"
p=$(cat "$DATA/cli/demo-p0.prompt"; printf x); p=${p%x}
if run_lfm2 -m "$TMP/模型" --raw --temp 0 --repeat-penalty 1 -n 48 -p "$p" > "$TMP/out_utf8" 2>&1 &&
   cmp -s "$TMP/out_utf8" "$DATA/cli/demo-p0.expected"; then
    pass "a folder named 模型 loads and gives the reference text"
else fail "a folder named 模型"; sed 's/^/        /' "$TMP/out_utf8"; fi

# --- errors: non-zero exit and exactly one line on stderr ----------------------------------------
expect_error() { # description, then the command
    what=$1; shift
    "$@" > "$TMP/e.out" 2> "$TMP/e.err" < /dev/null
    rc=$?
    lines=$(wc -l < "$TMP/e.err")
    if [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && [ ! -s "$TMP/e.out" ]; then
        pass "$what: exit $rc, \"$(cat "$TMP/e.err")\""
    else
        fail "$what: exit $rc, $lines stderr lines"
        sed 's/^/        /' "$TMP/e.err"
    fi
}
mkdir -p "$TMP/nosafetensors"
cp models/demo-code-8m/config.json "$TMP/nosafetensors/"
expect_error "unknown flag"            run_lfm2 -m models/demo-code-8m -p hi --bogus
expect_error "bad number"              run_lfm2 -m models/demo-code-8m -p hi --temp abc
expect_error "negative top-k"          run_lfm2 -m models/demo-code-8m -p hi --top-k -3
expect_error "top-p above 1"           run_lfm2 -m models/demo-code-8m -p hi --top-p 1.5
expect_error "flag without its value"  run_lfm2 -m models/demo-code-8m -p
expect_error "no model folder given"   run_lfm2 -p hi
expect_error "no prompt and no -i"     run_lfm2 -m models/demo-code-8m
expect_error "missing folder"          run_lfm2 -m "$TMP/does-not-exist" -p hi
expect_error "folder without weights"  run_lfm2 -m "$TMP/nosafetensors" -p hi
expect_error "model without tokenizer" run_lfm2 -m "$DATA/tiny-bf16" -p hi
expect_error "prompt longer than the context" run_lfm2 -m models/demo-code-8m --raw -c 4 -p "def fibonacci(n): return n"

# --- tools: lfm2-inspect and lfm2-quantize -------------------------------------------------------
if run_inspect models/demo-code-8m > "$TMP/inspect" 2>&1 && grep -q "ffn width  *704" "$TMP/inspect" &&
   grep -q "attention at 2 5 7" "$TMP/inspect" && grep -q "model.embed_tokens.weight" "$TMP/inspect"; then
    pass "lfm2-inspect prints the resolved config and the tensor table"
else fail "lfm2-inspect config/tensor table"; fi
# logits file: [n_ids, vocab] little-endian float32
if run_inspect models/demo-code-8m --ids 2,100,200 --logits "$TMP/l.bin" 2>/dev/null &&
   [ "$(wc -c < "$TMP/l.bin")" -eq $((3 * 8192 * 4)) ]; then
    pass "lfm2-inspect --ids --logits writes 3 x 8192 float32"
else fail "lfm2-inspect --logits"; fi
if printf 'def f(x):\n    return x' | run_inspect models/demo-code-8m --tokenize > "$TMP/ids" &&
   run_inspect models/demo-code-8m --detokenize < "$TMP/ids" > "$TMP/text" &&
   [ "$(cat "$TMP/text")" = "$(printf 'def f(x):\n    return x')" ]; then
    pass "lfm2-inspect --tokenize | --detokenize round-trips"
else fail "lfm2-inspect --tokenize/--detokenize"; fi
if printf '<|im_start|>' | run_inspect "$DATA/realvocab-bf16" --tokenize --special | grep -qx "6" &&
   [ "$(printf '<|im_start|>' | run_inspect "$DATA/realvocab-bf16" --tokenize | wc -w)" -gt 1 ]; then
    pass "lfm2-inspect --tokenize parses special tokens only with --special"
else fail "lfm2-inspect --special"; fi
if [ -f "$B/lfm2-quantize$EXE" ]; then
# a pre-quantized folder holds exactly the weights of quantizing at load time (every value of
# every matrix), in the interleaved layout (U8 records, the layout named in the __metadata__)
for q in q8 q4; do
    if run_quant models/demo-code-8m "$TMP/demo-$q" $q 2>/dev/null &&
       run_inspect "$TMP/demo-$q" --digest > "$TMP/pre.dig" 2>/dev/null &&
       run_inspect models/demo-code-8m --weights $q --digest > "$TMP/load.dig" 2>/dev/null &&
       [ "$(grep -c '^matrix' "$TMP/pre.dig")" -gt 20 ] && cmp -s "$TMP/pre.dig" "$TMP/load.dig" &&
       grep -aq '"lfm2.h.interleave":"x16 v1: rows=16 cols=64 q8_record=1088 q4_record=576"' "$TMP/demo-$q/model.safetensors" &&
       grep -aq '"model.layers.0.feed_forward.w1.weight":{"dtype":"U8","shape":\[[0-9]*,[0-9]*,'"$([ $q = q8 ] && echo 1088 || echo 576)"'\]' "$TMP/demo-$q/model.safetensors" &&
       run_inspect "$TMP/demo-$q" --ids 2,100,200,300 --logits "$TMP/pre.bin" 2>/dev/null; then
        pass "lfm2-quantize $q: the pre-quantized folder (interleaved records) holds the values of load-time $q ($(grep -c '^matrix' "$TMP/pre.dig") matrices, digest $(sed -n 's/^digest //p' "$TMP/pre.dig"))"
    else fail "lfm2-quantize $q"; fi
    # --row-major: the layout of earlier versions (I8 / U8 + NAME_scale), still read (repacked at load)
    if run_quant --row-major models/demo-code-8m "$TMP/demo-$q-rm" $q 2>/dev/null &&
       run_inspect "$TMP/demo-$q-rm" --digest > "$TMP/pre-rm.dig" 2>/dev/null && cmp -s "$TMP/pre-rm.dig" "$TMP/load.dig" &&
       ! grep -aq 'lfm2.h.interleave' "$TMP/demo-$q-rm/model.safetensors" &&
       grep -aq '"model.layers.0.feed_forward.w1.weight_scale":{"dtype":"F16"' "$TMP/demo-$q-rm/model.safetensors"; then
        pass "lfm2-quantize --row-major $q: the older row-major layout, the values of load-time $q"
    else fail "lfm2-quantize --row-major $q"; fi
done
# LFM2-MoE: lfm2-inspect prints the MoE fields, --logits works, lfm2-quantize writes its experts
if run_inspect "$DATA/tiny-moe-bf16" > "$TMP/inspect-moe" 2>&1 && grep -q "experts  *8 per layer, top 2, moe_intermediate_size 48" "$TMP/inspect-moe" &&
   grep -q "482944 (from the config), 261760 active per token" "$TMP/inspect-moe" &&
   run_inspect "$DATA/tiny-moe-f32-sharded" --ids 1,2,3 --logits "$TMP/moe.bin" 2>/dev/null && [ "$(wc -c < "$TMP/moe.bin")" -eq $((3 * 384 * 4)) ]; then
    pass "lfm2-inspect on MoE folders: experts, routing, total and active parameters; --logits"
else fail "lfm2-inspect on an MoE folder"; fi
for q in q8 q4; do
    if run_quant "$DATA/tiny-moe-bf16" "$TMP/moe-$q" $q 2>/dev/null &&
       run_inspect "$TMP/moe-$q" --digest > "$TMP/moe-pre.dig" 2>/dev/null &&
       run_inspect "$DATA/tiny-moe-bf16" --weights $q --digest > "$TMP/moe-load.dig" 2>/dev/null &&
       [ "$(grep -c '^matrix' "$TMP/moe-pre.dig")" -gt 90 ] && cmp -s "$TMP/moe-pre.dig" "$TMP/moe-load.dig" &&
       run_inspect "$TMP/moe-$q" | grep -q "experts.7.w2.weight"; then
        pass "lfm2-quantize $q on an MoE folder: every expert quantized, the values of load-time $q ($(grep -c '^matrix' "$TMP/moe-pre.dig") matrices)"
    else fail "lfm2-quantize $q on an MoE folder"; fi
done
if run_lfm2 -m "$TMP/demo-q8" --raw --temp 0 -n 8 -p "def f" > /dev/null 2>&1; then
    pass "the CLI runs a pre-quantized folder"
else fail "CLI on a pre-quantized folder"; fi
expect_error "lfm2-inspect on a missing folder" run_inspect "$TMP/does-not-exist"
expect_error "lfm2-quantize with a bad type" run_quant models/demo-code-8m "$TMP/x" q5
# a pre-quantized folder runs the kernels of load-time quantization, at every level: its
# interleaved records are used in place (mapped) where the level has the interleaved kernels
# and unpacked to row-major at the others; the older row-major records are repacked into the
# level's layout. So the logits are bit-identical to quantizing the original at load.
for q in q8 q4; do
    for lv in "" SCALAR AVX2 AVX512 NEON; do
        export LFM2_ISA=$lv
        for f in "$TMP/demo-$q" "$TMP/demo-$q-rm"; do
            if run_inspect "$f" --ids 2,100,200,300,4000 --logits "$TMP/pre.bin" 2>/dev/null &&
               run_inspect models/demo-code-8m --weights $q --ids 2,100,200,300,4000 --logits "$TMP/load.bin" 2>/dev/null &&
               cmp -s "$TMP/pre.bin" "$TMP/load.bin"; then
                pass "pre-quantized $q folder ($(basename "$f")) vs load-time $q (LFM2_ISA ${lv:-unset}): logits bit-identical"
            else fail "pre-quantized $q folder ($(basename "$f")) vs load-time $q (LFM2_ISA ${lv:-unset}): logits differ"; fi
        done
        unset LFM2_ISA
    done
done

# lfm2-quantize on real folders: aliases, existing models, folders in use, full disks, odd tensors
if [ -n "$RUN" ]; then # a Windows program under Wine: its commit (renames), refusals, failures
    if RUN="$RUN" EXE="$EXE" sh tests/quantize_wine_test.sh "$B"; then pass "tests/quantize_wine_test.sh"; else fail "tests/quantize_wine_test.sh"; fi
elif sh tests/quantize_test.sh "$B"; then pass "tests/quantize_test.sh"; else fail "tests/quantize_test.sh"; fi

else echo "  skip  lfm2-quantize checks: $B/lfm2-quantize$EXE is not built"; fi

echo "cli tests: $checks checks, $fails failed"
[ $fails -eq 0 ]
