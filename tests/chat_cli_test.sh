#!/bin/sh
# tests/chat_cli_test.sh BUILD_DIR - the chat tools end to end (run by make cli-test):
#   every render of tests/data/chat/chat_golden.json through lfm2-inspect --chat (byte-identical,
#   or a non-zero exit where the template refuses), every golden tool-call text through
#   lfm2-inspect --parse-tool-calls (and every bad one refused), the CLI's --tools / --template /
#   --reasoning on the realvocab-bf16 folder, an unknown template refused naming its file, and
#   examples/tool_loop.
B=${1:-build}
D=tests/data/chat
T=$(mktemp -d "${TMPDIR:-/tmp}/lfm2_chat_cli.XXXXXX") || exit 1 # (a fresh folder per run, removed at exit)
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
fail=0; n=0
ok() { n=$((n + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
for j in $D/renders/*.json; do
    base=${j%.json}
    name=$(basename "$base")
    case "$name" in
        [0-9]*_lfm2.5_*) tpl=lfm2.5 ;;
        [0-9]*_lfm2-tools_*) tpl=lfm2-tools ;;
        *) tpl=lfm2 ;;
    esac
    if [ -f "$base.expected" ]; then
        if "$B/lfm2-inspect" --chat "$j" --template "$tpl" > "$T/out" 2> "$T/err" && cmp -s "$T/out" "$base.expected"; then ok
        else bad "render $name differs"; cat "$T/err"; fi
    else
        if "$B/lfm2-inspect" --chat "$j" --template "$tpl" > "$T/out" 2> "$T/err"; then bad "render $name must be refused"
        elif [ -s "$T/err" ]; then ok; else bad "render $name: no message"; fi
    fi
done
echo "chat renders through lfm2-inspect --chat: $n ok"
# the folder's template (realvocab-bf16: lfm2) and the ids of lfm2_chat_tokenize
"$B/lfm2-inspect" tests/data/realvocab-bf16 --chat $D/renders/00_lfm2_single-user.json > "$T/out" && cmp -s "$T/out" $D/renders/00_lfm2_single-user.expected && ok || bad "--chat with the folder's template"
"$B/lfm2-inspect" tests/data/realvocab-bf16 --chat $D/renders/13_lfm2_special-text-in-content.json --ids-out > "$T/ids" || bad "--ids-out"
specials=$(tr ' ' '\n' < "$T/ids" | grep -c -x -e 6 -e 7 -e 1)
[ "$specials" = 4 ] && ok || bad "injected <|im_end|><|im_start|> must stay text: $specials special ids of 1/6/7 (want 4: the template's)"
# tool calls
m=0
for t in $D/calls/good-*.txt; do
    if "$B/lfm2-inspect" --parse-tool-calls < "$t" > "$T/out" 2> "$T/err" && cmp -s "$T/out" "${t%.txt}.expected"; then m=$((m + 1))
    else bad "parse $(cat "$t")"; cat "$T/err"; fi
done
for t in $D/calls/bad-*.txt; do
    if "$B/lfm2-inspect" --parse-tool-calls < "$t" > "$T/out" 2> "$T/err"; then bad "bad call text accepted: $(cat "$t")"
    elif grep -q "byte [0-9]" "$T/err"; then m=$((m + 1)); else bad "no byte offset for $(cat "$t")"; fi
done
echo "tool-call texts through lfm2-inspect --parse-tool-calls: $m ok (7 parsed, 10 refused)"
[ $m = 17 ] || bad "17 tool-call texts"
# an unknown template is refused naming the file, unless one is chosen
mkdir -p "$T/model"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do ln -s "$(pwd)/tests/data/realvocab-bf16/$f" "$T/model/$f"; done
printf '{{ messages }}' > "$T/model/chat_template.jinja"
if "$B/lfm2" -m "$T/model" -p hi -n 2 --temp 0 > "$T/out" 2> "$T/err"; then bad "an unknown template must be refused"
elif grep -q "chat_template.jinja" "$T/err"; then ok; else bad "the message must name chat_template.jinja: $(cat "$T/err")"; fi
"$B/lfm2" -m "$T/model" --template lfm2 -p hi -n 2 --temp 0 > "$T/out" 2> "$T/err" && ok || bad "--template overrides an unknown template: $(cat "$T/err")"
"$B/lfm2-inspect" "$T/model" --chat $D/renders/00_lfm2_single-user.json > "$T/out" 2> "$T/err" && bad "inspect: unknown template accepted" || ok
# the CLI with tools, each template, reasoning hidden; tool_loop
printf '[{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}]' > "$T/tools.json"
for tpl in lfm2 lfm2-tools lfm2.5; do
    echo '{"time": "12:00"}' | "$B/lfm2" -m tests/data/realvocab-bf16 --tools "$T/tools.json" --template $tpl --reasoning hide -p "What time is it?" -n 8 --temp 0 > "$T/out" 2> "$T/err" && ok || bad "lfm2 --tools --template $tpl: $(cat "$T/err")"
done
printf 'hi\nagain\n' | "$B/lfm2" -m tests/data/realvocab-bf16 -i -n 4 --temp 0 --verbose > "$T/out" 2> "$T/err" && ok || bad "lfm2 -i two turns"
"$B/lfm2" -m tests/data/realvocab-bf16 --tools "$T/missing.json" -p hi > /dev/null 2>&1 && bad "a missing --tools file" || ok
"$B/lfm2" -m tests/data/realvocab-bf16 --reasoning maybe -p hi > /dev/null 2>&1 && bad "--reasoning maybe" || ok
"$B/tool_loop" tests/data/realvocab-bf16 "What is 2 + 3?" > "$T/out" 2> "$T/err" && ok || bad "tool_loop: $(cat "$T/err")"
echo "chat CLI: $n checks ok, $fail failed"
[ $fail = 0 ]
