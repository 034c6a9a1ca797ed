#!/bin/sh
# tests/quantize_wine_test.sh BUILD_DIR - lfm2-quantize.exe under Wine (run by tests/cli_test.sh
# with RUN=wine EXE=.exe, so by make wine): the Windows commit (a new folder renamed into place;
# an existing one renamed aside, the new one renamed in, the old model files deleted), refusals
# and a failure half-way that leave nothing behind. tests/quantize_test.sh holds the POSIX cases
# (mounts, mapped files, full disks); this is the subset that a Windows program can be put through.
B=${1:-build}
RUN=${RUN:-wine}
EXE=${EXE:-.exe}
DATA=tests/data
TMP=build/win/qtest.$$ # relative: the same path for the shell and the Windows program
rm -rf "$TMP" && mkdir -p "$TMP" || exit 1
trap 'rm -rf "$TMP"' EXIT
fails=0
checks=0
pass() { checks=$((checks + 1)); echo "  ok    $1"; }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "  FAIL  $1"; }
q() { $RUN "$B/lfm2-quantize$EXE" "$@"; }
inspect() { $RUN "$B/lfm2-inspect$EXE" "$@"; }
snap() { (cd "$1" && find . -type f | LC_ALL=C sort | while read -r f; do cksum "$f"; done) }
leftovers() { ls -A "$TMP" | grep 'lfm2-quantize'; }
refused() { # description, then the arguments: non-zero exit, one line on stderr, no sibling left
    what=$1; shift
    q "$@" > "$TMP/q.out" 2> "$TMP/q.err"
    rc=$?
    if [ $rc -ne 0 ] && [ "$(wc -l < "$TMP/q.err")" -eq 1 ] && [ -z "$(leftovers)" ]; then
        pass "$what: refused (exit $rc, \"$(tr -d '\r' < "$TMP/q.err")\")"
    else fail "$what: exit $rc, leftovers: $(leftovers)"; sed 's/^/        /' "$TMP/q.err"; fi
}

echo "lfm2-quantize (Windows) tests of $B/lfm2-quantize$EXE"
cp -r "$DATA/tiny-bf16" "$TMP/in"
snap "$TMP/in" > "$TMP/in.snap"
inspect "$TMP/in" --weights q8 --digest > "$TMP/load8.dig" 2>/dev/null
inspect "$TMP/in" --weights q4 --digest > "$TMP/load4.dig" 2>/dev/null

# a new folder: written whole, renamed into place, loads with the values of load-time q8
if q "$TMP/in" "$TMP/q8" q8 2> "$TMP/q.err" && [ -z "$(leftovers)" ] &&
   inspect "$TMP/q8" --digest > "$TMP/pre.dig" 2>/dev/null && [ "$(grep -c '^matrix' "$TMP/pre.dig")" -gt 5 ] &&
   cmp -s "$TMP/pre.dig" "$TMP/load8.dig" && grep -q '"bits": 8' "$TMP/q8/config.json"; then
    pass "q8 into a new folder: it loads and holds the values of load-time q8 ($(grep -c '^matrix' "$TMP/pre.dig") matrices), no sibling left"
else fail "q8 into a new folder"; sed 's/^/        /' "$TMP/q.err"; fi

# refusals: nothing written, the input untouched
refused "OUT == IN" "$TMP/in" "$TMP/in" q8
refused "OUT == IN spelled with backslashes and capitals, --force" --force "$TMP/in" "$(echo "$TMP/IN" | tr / '\\')" q8
refused "OUT == IN spelled IN/../in/" "$TMP/in" "$TMP/in/../in/" q8
refused "OUT inside IN" "$TMP/in" "$TMP/in/sub" q8
snap "$TMP/q8" > "$TMP/q8.snap"
refused "OUT holds a model, no --force" "$TMP/in" "$TMP/q8" q4
refused "IN already quantized" "$TMP/q8" "$TMP/qq" q4
if [ ! -e "$TMP/in/sub" ] && [ ! -e "$TMP/qq" ] && snap "$TMP/in" | cmp -s - "$TMP/in.snap" && snap "$TMP/q8" | cmp -s - "$TMP/q8.snap"; then
    pass "after the refusals: the input and the existing output are unchanged, no folder made"
else fail "a refusal changed a folder"; fi

# a failure half-way (tokenizer.json is a folder: read after model.safetensors was written)
cp -r "$DATA/tiny-bf16" "$TMP/bad" && mkdir "$TMP/bad/tokenizer.json"
refused "a failure after model.safetensors was written (new folder)" "$TMP/bad" "$TMP/bad-q8" q8
refused "a failure after model.safetensors was written (--force over q8)" --force "$TMP/bad" "$TMP/q8" q4
if [ ! -e "$TMP/bad-q8" ] && snap "$TMP/q8" | cmp -s - "$TMP/q8.snap"; then
    pass "after the failures: no new folder, the existing q8 folder as it was"
else fail "a failure left a folder changed or half-written"; fi

# --force over an existing folder (Windows: renamed aside, the new one renamed in): the old
# model files go, other files stay, no sibling left
echo notes > "$TMP/q8/notes.txt"
if q --force "$TMP/in" "$TMP/q8" q4 2> "$TMP/q.err" && [ -z "$(leftovers)" ] &&
   inspect "$TMP/q8" --digest > "$TMP/pre.dig" 2>/dev/null && cmp -s "$TMP/pre.dig" "$TMP/load4.dig" &&
   grep -q '"bits": 4' "$TMP/q8/config.json" && [ "$(cat "$TMP/q8/notes.txt")" = notes ] &&
   [ "$(ls "$TMP/q8" | LC_ALL=C sort | tr '\n' ' ')" = "config.json generation_config.json model.safetensors notes.txt " ]; then
    pass "--force q4 over the q8 folder: replaced whole (values of load-time q4), notes.txt kept, no sibling left"
else fail "--force q4 over the q8 folder"; sed 's/^/        /' "$TMP/q.err"; ls -A "$TMP" "$TMP/q8"; fi
if snap "$TMP/in" | cmp -s - "$TMP/in.snap"; then pass "the input folder is unchanged"; else fail "the input folder changed"; fi

echo "lfm2-quantize (Windows) tests: $checks checks, $fails failed"
[ $fails -eq 0 ]
