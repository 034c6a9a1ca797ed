#!/bin/sh
# tests/quantize_test.sh BUILD_DIR - lfm2-quantize on real folders in a temporary directory (run by
# tests/cli_test.sh, so by make cli-test): the input is never touched, the output folder is never
# half written and never holds stale files, a process that has the old output mapped keeps
# running, the result loads and holds the input's weights. Exits non-zero if a check fails.
B=${1:-build}
Q="$B/lfm2-quantize"
INSPECT="$B/lfm2-inspect"
LFM2="$B/lfm2"
ODD="$B/make_odd_model"
DATA=tests/data
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lfm2_quantize_test.XXXXXX") || exit 1
MOUNTED=
cleanup() {
    [ -n "$MOUNTED" ] && umount "$MOUNTED" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fails=0
checks=0
pass() { checks=$((checks + 1)); echo "  ok    $1"; }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "  FAIL  $1"; }
# a listing of every file in a folder with its checksum (hidden files included)
snap() { (cd "$1" && find . -type f | LC_ALL=C sort | while read -r f; do cksum "$f"; done) }
# the entries of a folder that lfm2-quantize's temporary siblings would leave behind
leftovers() { ls -A "$1" | grep 'lfm2-quantize' ; }
# runs lfm2-quantize, expecting a refusal: non-zero exit, one line on stderr, nothing written
expect_refusal() { # description, then the arguments
    what=$1; shift
    "$Q" "$@" > "$TMP/q.out" 2> "$TMP/q.err"
    rc=$?
    if [ $rc -ne 0 ] && [ "$(wc -l < "$TMP/q.err")" -eq 1 ] && [ ! -s "$TMP/q.out" ]; then
        pass "$what: refused (exit $rc, \"$(cat "$TMP/q.err")\")"
    else
        fail "$what: exit $rc"
        sed 's/^/        /' "$TMP/q.err"
    fi
}

echo "lfm2-quantize tests of $Q"
for x in "$Q" "$INSPECT" "$LFM2" "$ODD"; do
    if [ ! -x "$x" ]; then echo "  FAIL  $x is not built"; exit 1; fi
done

# --- the output folder is the input, lies inside it, contains it, or is an alias of it ------------
cp -r "$DATA/realvocab-bf16" "$TMP/single"          # one model.safetensors + tokenizer files
cp -r models/demo-code-8m "$TMP/sharded"            # two shards + model.safetensors.index.json
snap "$TMP/single" > "$TMP/single.snap"
snap "$TMP/sharded" > "$TMP/sharded.snap"
expect_refusal "OUT == IN (single file)" "$TMP/single" "$TMP/single" q8
expect_refusal "OUT == IN (sharded), with --force" --force "$TMP/sharded" "$TMP/sharded" q4
expect_refusal "OUT == IN spelled IN/../IN/" "$TMP/single" "$TMP/single/../single/" q8
expect_refusal "OUT inside IN" "$TMP/single" "$TMP/single/q8" q8
expect_refusal "OUT == IN spelled IN/., with --force" --force "$TMP/sharded" "$TMP/sharded/." q8
mkdir -p "$TMP/sharded-copy/sub"; cp -r models/demo-code-8m/. "$TMP/sharded-copy/"
expect_refusal "OUT two levels inside IN, with --force" --force "$TMP/sharded-copy" "$TMP/sharded-copy/sub/q8" q8
mkdir -p "$TMP/outer"
cp -r "$DATA/tiny-bf16" "$TMP/outer/in"
snap "$TMP/outer" > "$TMP/outer.snap"
expect_refusal "IN inside OUT" "$TMP/outer/in" "$TMP/outer" q8
expect_refusal "IN inside OUT, with --force" --force "$TMP/outer/in" "$TMP/outer" q8
ln -s "$TMP/single" "$TMP/alias"
ln -s "$TMP" "$TMP/here"
expect_refusal "OUT a symbolic link to IN" "$TMP/single" "$TMP/alias" q8
expect_refusal "IN a symbolic link to OUT" --force "$TMP/alias" "$TMP/single" q8
expect_refusal "OUT inside IN through a link to their parent" "$TMP/single" "$TMP/here/single/new" q8
expect_refusal "OUT the parent of IN through a link" --force "$TMP/alias" "$TMP/here" q8
if snap "$TMP/single" | cmp -s - "$TMP/single.snap" && snap "$TMP/sharded" | cmp -s - "$TMP/sharded.snap" &&
   snap "$TMP/outer" | cmp -s - "$TMP/outer.snap" && [ ! -e "$TMP/single/q8" ] && [ ! -e "$TMP/here/single/new" ] &&
   [ -z "$(leftovers "$TMP")$(leftovers "$TMP/single")$(leftovers "$TMP/sharded")" ]; then
    pass "after the refusals every input file is byte-identical and nothing was created"
else fail "a refused run changed a folder"; fi

# --- a new folder: loads, holds the values of load-time quantization ---------------------------
if "$Q" "$TMP/sharded" "$TMP/new-q4" q4 2> "$TMP/q.err" && "$INSPECT" "$TMP/new-q4" --digest > "$TMP/a.dig" &&
   "$INSPECT" "$TMP/sharded" --weights q4 --digest > "$TMP/b.dig" && cmp -s "$TMP/a.dig" "$TMP/b.dig" &&
   grep -q "checked" "$TMP/q.err" && [ -z "$(leftovers "$TMP")" ]; then
    pass "a new folder: the digests equal load-time q4 ($(sed -n 's/^digest //p' "$TMP/a.dig")), no temporary left"
else fail "quantize into a new folder"; sed 's/^/        /' "$TMP/q.err"; fi
expect_refusal "an input that is already quantized" "$TMP/new-q4" "$TMP/new-q4-again" q8

# --- an output folder that holds a model: refused without --force; replaced whole with it -------
for mode in exchange by-file; do
    out="$TMP/existing-$mode"
    cp -r models/demo-code-8m "$out"
    echo "not a model file" > "$out/NOTES.txt"
    snap "$out" > "$TMP/existing.snap"
    expect_refusal "OUT holds a model, no --force ($mode)" "$TMP/single" "$out" q8
    if snap "$out" | cmp -s - "$TMP/existing.snap"; then pass "the refused OUT is unchanged ($mode)"; else fail "the refused OUT changed ($mode)"; fi
    if [ $mode = by-file ]; then nx=1; else nx=; fi
    if LFM2_QUANTIZE_NO_EXCHANGE=$nx "$Q" --force "$TMP/single" "$out" q8 2> "$TMP/q.err" &&
       [ -z "$(ls "$out" | grep -e '-of-' -e 'index')" ] && cmp -s "$out/tokenizer.json" "$TMP/single/tokenizer.json" &&
       cmp -s "$out/NOTES.txt" - <<EOF &&
not a model file
EOF
       "$INSPECT" "$out" --digest > "$TMP/a.dig" && "$INSPECT" "$TMP/single" --weights q8 --digest > "$TMP/b.dig" &&
       cmp -s "$TMP/a.dig" "$TMP/b.dig" && [ -z "$(leftovers "$TMP")" ]; then
        pass "--force ($mode): no stale shard or index, the new tokenizer, other files kept, the loaded weights are the new ones"
    else fail "--force into a sharded model folder ($mode)"; sed 's/^/        /' "$TMP/q.err"; ls -la "$out" | sed 's/^/        /'; fi
done

# --- a running process that has the old output mapped keeps running ----------------------------
# lfm2 -i loads the folder (pre-quantized weights are used in place, memory-mapped), waits for a
# line on a FIFO, then answers it (every weight matrix is read); meanwhile the folder is replaced.
for mode in exchange by-file; do
    out="$TMP/live-$mode"
    "$Q" models/demo-code-8m "$out" q4 2>/dev/null
    rm -f "$TMP/fifo"; mkfifo "$TMP/fifo"
    "$LFM2" -m "$out" -i --temp 0 -n 16 -c 256 --verbose < "$TMP/fifo" > "$TMP/live.out" 2> "$TMP/live.err" &
    pid=$!
    exec 3> "$TMP/fifo"
    k=0
    while ! grep -q "loaded" "$TMP/live.err" && [ $k -lt 300 ]; do sleep 0.1; k=$((k + 1)); done
    if [ $mode = by-file ]; then nx=1; else nx=; fi
    LFM2_QUANTIZE_NO_EXCHANGE=$nx "$Q" --force "$DATA/realvocab-bf16" "$out" q8 2> "$TMP/q.err"; qrc=$?
    printf 'def fibonacci(n):\n' >&3
    exec 3>&-
    wait $pid
    rc=$?
    if [ $qrc -eq 0 ] && [ $rc -eq 0 ] && [ -s "$TMP/live.out" ] && "$INSPECT" "$out" --digest > "$TMP/a.dig" &&
       "$INSPECT" "$DATA/realvocab-bf16" --weights q8 --digest > "$TMP/b.dig" && cmp -s "$TMP/a.dig" "$TMP/b.dig"; then
        pass "replacing a folder in use ($mode): the running lfm2 answers from the old mapping (exit 0), the folder holds the new model"
    else fail "replacing a folder in use ($mode): lfm2-quantize exit $qrc, the running lfm2 exit $rc"; sed 's/^/        /' "$TMP/live.err" "$TMP/q.err"; fi
done

# --- a full disk or a file size limit: exit 1, no half folder, the old folder intact -------------
small=
if mkdir -p "$TMP/small" && mount -t tmpfs -o size=3m tmpfs "$TMP/small" 2>/dev/null; then
    MOUNTED="$TMP/small"
    small="$TMP/small"
fi
if [ -n "$small" ]; then
    "$Q" "$DATA/tiny-bf16" "$small/old" q8 2>/dev/null
    snap "$small/old" > "$TMP/old.snap"
    "$INSPECT" "$small/old" --digest > "$TMP/old.dig" 2>/dev/null
    "$Q" models/demo-code-8m "$small/new" q8 > /dev/null 2> "$TMP/q.err"; rc1=$?
    "$Q" --force models/demo-code-8m "$small/old" q8 > /dev/null 2> "$TMP/q.err2"; rc2=$?
    if [ $rc1 -eq 1 ] && [ $rc2 -eq 1 ] && [ ! -e "$small/new" ] && [ -z "$(leftovers "$small")" ] &&
       snap "$small/old" | cmp -s - "$TMP/old.snap" && "$INSPECT" "$small/old" --digest | cmp -s - "$TMP/old.dig" &&
       [ "$(wc -l < "$TMP/q.err")" -eq 1 ]; then
        pass "a full 3 MiB tmpfs: exit 1, no new folder, no temporary, the replaced folder intact (\"$(cat "$TMP/q.err")\")"
    else fail "full disk: exit $rc1 / $rc2"; sed 's/^/        /' "$TMP/q.err" "$TMP/q.err2"; ls -la "$small" | sed 's/^/        /'; fi
else
    echo "  skip  a full tmpfs (cannot mount one here); the file size limit below covers the same path"
fi
cp -r "$TMP/new-q4" "$TMP/limited-old" 2>/dev/null || "$Q" models/demo-code-8m "$TMP/limited-old" q4 2>/dev/null
snap "$TMP/limited-old" > "$TMP/old.snap"
( ulimit -f 2048; exec "$Q" models/demo-code-8m "$TMP/limited-new" q8 ) > /dev/null 2> "$TMP/q.err"; rc1=$?
( ulimit -f 2048; exec "$Q" --force models/demo-code-8m "$TMP/limited-old" q8 ) > /dev/null 2> "$TMP/q.err2"; rc2=$?
if [ $rc1 -eq 1 ] && [ $rc2 -eq 1 ] && [ ! -e "$TMP/limited-new" ] && [ -z "$(leftovers "$TMP")" ] &&
   snap "$TMP/limited-old" | cmp -s - "$TMP/old.snap" && [ "$(wc -l < "$TMP/q.err")" -eq 1 ]; then
    pass "a file size limit (ulimit -f, SIGXFSZ): exit 1, no new folder, no temporary, the old folder intact (\"$(cat "$TMP/q.err")\")"
else fail "file size limit: exit $rc1 / $rc2"; sed 's/^/        /' "$TMP/q.err" "$TMP/q.err2"; fi

# --- tensors that need care in the safetensors header: long names, JSON escapes, 4 dimensions ---
mkdir -p "$TMP/odd" && "$ODD" "$DATA/tiny-bf16" "$TMP/odd" > /dev/null
if "$Q" "$TMP/odd" "$TMP/odd-q8" q8 2> "$TMP/q.err" && "$INSPECT" "$TMP/odd-q8" > "$TMP/odd.txt" 2>&1 &&
   grep -q 'model.extra.conv4d.weight *BF16 *\[2,3,4,5' "$TMP/odd.txt" && grep -q 'model.extra.mnop.*wxyzabcd.weight' "$TMP/odd.txt" &&
   grep -q 'model.extra."quoted" back\\slash' "$TMP/odd.txt" &&
   "$INSPECT" "$TMP/odd-q8" --digest > "$TMP/a.dig" && "$INSPECT" "$TMP/odd" --weights q8 --digest > "$TMP/b.dig" && cmp -s "$TMP/a.dig" "$TMP/b.dig"; then
    pass "a 219-byte tensor name, a name with quote/backslash/tab/newline/control/UTF-8 and a 4-D tensor round-trip"
else fail "odd tensor names / 4-D tensors"; sed 's/^/        /' "$TMP/q.err"; tail -n 5 "$TMP/odd.txt" | sed 's/^/        /'; fi

# --- make-random-model: its q8 / q4 folders are lfm2-quantize's of its bf16 folder -------------
# (the interleaved records by default, --row-major the older layout), byte for byte, with the
# weights and logits of quantizing the bf16 folder at load; odd-small has widths that do not fit
# the 16 x 64 records (row-major there) or the 32-column blocks (bf16 there): its bf16 matrix is
# interleaved (BF16X) after load-time quantization as in the pre-quantized folder, so the logits
# agree bit for bit at the native level too.
RMM="$B/make-random-model"
rmm_leftovers() { ls -A "$1" | grep 'make-random-model' ; }
if [ ! -x "$RMM" ]; then
    fail "$RMM is not built"
else
    for sh in small moe-small odd-small; do
        isa=
        "$RMM" --shape $sh --dtype bf16 -o "$TMP/rm-$sh-bf16" 2> "$TMP/q.err" || { fail "make-random-model --shape $sh --dtype bf16"; continue; }
        for q in q8 q4; do
            r="$TMP/rm-$sh-$q"
            rec=1088; [ $q = q4 ] && rec=576
            if "$RMM" --shape $sh --dtype $q -o "$r" 2> "$TMP/q.err" && "$RMM" --shape $sh --dtype $q --row-major -o "$r-rm" 2>> "$TMP/q.err" &&
               "$Q" "$TMP/rm-$sh-bf16" "$TMP/rq-$sh-$q" $q 2>> "$TMP/q.err" && "$Q" --row-major "$TMP/rm-$sh-bf16" "$TMP/rq-$sh-$q-rm" $q 2>> "$TMP/q.err" &&
               cmp -s "$r/model.safetensors" "$TMP/rq-$sh-$q/model.safetensors" && cmp -s "$r/config.json" "$TMP/rq-$sh-$q/config.json" &&
               cmp -s "$r-rm/model.safetensors" "$TMP/rq-$sh-$q-rm/model.safetensors" &&
               "$INSPECT" "$r" > "$TMP/rm.txt" && grep -q "in_proj.weight *U8 *\[[0-9]*,[0-9]*,$rec *\]" "$TMP/rm.txt" &&
               grep -q '"lfm2.h.interleave":"x16 v1' "$r/model.safetensors" &&
               "$INSPECT" "$r-rm" > "$TMP/rm2.txt" && ! grep -q ",$rec *\]" "$TMP/rm2.txt" && grep -q "in_proj.weight_scale *F16" "$TMP/rm2.txt" &&
               "$INSPECT" "$TMP/rm-$sh-bf16" --weights $q --digest > "$TMP/b.dig" && "$INSPECT" "$r" --digest > "$TMP/a.dig" && cmp -s "$TMP/a.dig" "$TMP/b.dig" &&
               "$INSPECT" "$r-rm" --digest | cmp -s - "$TMP/b.dig" &&
               LFM2_ISA=$isa "$INSPECT" "$TMP/rm-$sh-bf16" --weights $q --ids 1,2,3,4,5,6,7,8 --logits "$TMP/l0.bin" > /dev/null 2>&1 &&
               LFM2_ISA=$isa "$INSPECT" "$r" --ids 1,2,3,4,5,6,7,8 --logits "$TMP/l1.bin" > /dev/null 2>&1 &&
               LFM2_ISA=$isa "$INSPECT" "$r-rm" --ids 1,2,3,4,5,6,7,8 --logits "$TMP/l2.bin" > /dev/null 2>&1 &&
               [ -s "$TMP/l0.bin" ] && cmp -s "$TMP/l0.bin" "$TMP/l1.bin" && cmp -s "$TMP/l0.bin" "$TMP/l2.bin" && [ -z "$(rmm_leftovers "$TMP")" ]; then
                pass "make-random-model --shape $sh --dtype $q: = lfm2-quantize of its bf16 folder byte for byte (interleaved [.., .., $rec] and --row-major), logits bit-identical to load-time $q${isa:+ (LFM2_ISA=$isa)}"
            else fail "make-random-model --shape $sh --dtype $q"; sed 's/^/        /' "$TMP/q.err"; fi
        done
    done
    if grep -q 'w2.weight *BF16 *\[256,520' "$TMP/rm.txt" && grep -q 'experts.0.w2.weight_scale *F16' "$TMP/rm.txt" &&
       grep -q 'embed_tokens.weight_scale *F16 *\[1000,8' "$TMP/rm.txt" && grep -q 'experts.0.w1.weight *U8 *\[6,4,576' "$TMP/rm.txt"; then
        pass "make-random-model --shape odd-small --dtype q4: rows % 16 != 0 or cols % 64 != 0 row-major, cols % 32 != 0 bf16, the rest interleaved"
    else fail "make-random-model odd-small layout"; sed 's/^/        /' "$TMP/rm.txt"; fi
    # a folder replaced in place; a failed write leaves nothing behind and the old folder as it was
    r="$TMP/rm-small-q8"
    "$INSPECT" "$TMP/rm-small-bf16" --weights q4 --digest > "$TMP/b.dig"
    if "$RMM" --shape small --dtype q4 -o "$r/" 2> "$TMP/q.err" && "$INSPECT" "$r" --digest | cmp -s - "$TMP/b.dig" && [ -z "$(rmm_leftovers "$TMP")" ] &&
       [ "$(ls -A "$r" | wc -l)" -eq 2 ]; then
        pass "make-random-model over an existing folder: it holds the new model, no temporary left"
    else fail "make-random-model over an existing folder"; sed 's/^/        /' "$TMP/q.err"; fi
    snap "$r" > "$TMP/old.snap"
    ( ulimit -f 1024; exec "$RMM" --shape moe-small --dtype bf16 -o "$TMP/rm-limited" ) > /dev/null 2> "$TMP/q.err"; rc1=$?
    ( ulimit -f 1024; exec "$RMM" --shape moe-small --dtype bf16 -o "$r" ) > /dev/null 2> "$TMP/q.err2"; rc2=$?
    if [ $rc1 -eq 1 ] && [ $rc2 -eq 1 ] && [ ! -e "$TMP/rm-limited" ] && [ -z "$(rmm_leftovers "$TMP")" ] && snap "$r" | cmp -s - "$TMP/old.snap"; then
        pass "make-random-model past a file size limit: exit 1, no new folder, no temporary, the old folder intact (\"$(cat "$TMP/q.err")\")"
    else fail "make-random-model past a file size limit: exit $rc1 / $rc2"; sed 's/^/        /' "$TMP/q.err" "$TMP/q.err2"; fi
fi

expect_refusal "a bad type" models/demo-code-8m "$TMP/x" q5
echo "lfm2-quantize tests: $checks checks, $fails failed"
[ $fails -eq 0 ]
