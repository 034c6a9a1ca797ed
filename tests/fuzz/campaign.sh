#!/bin/sh
# tests/fuzz/campaign.sh - a long fuzzing run: each named target for a fixed number of executions
# (-runs), one after the other, in the background (nice 10), continuing from
# build/fuzz-corpus/<t>. Used for the 10^7-executions runs recorded in tests/fuzz/README.md.
#   tests/fuzz/campaign.sh target:RUNS...        e.g. tests/fuzz/campaign.sh decode:10000000 chat:6000000
# FUZZ_OPTS: more libFuzzer flags for every target (e.g. FUZZ_OPTS=-max_len=1024).
# FUZZ_BIN (default build) is where the fuzz_<t> binaries are: copy them elsewhere to keep
# rebuilding lfm2.h while a campaign runs.
# Logs: build/fuzz-campaign/<t>.log (libFuzzer's final stats at the end); a finding stops the lane
# with the input in build/fuzz-artifacts/<t>/. FUZZ_TIMEOUT (default 1200 s) is the per-input limit
# in wall-clock time: libFuzzer's alarm keeps running while the process is stopped, and pausing
# the lanes (kill -STOP / -CONT) for a few minutes of quiet benchmarks made -timeout=10 and 120
# report "hangs" whose inputs run in milliseconds.
set -u
bin=${FUZZ_BIN:-build}
mkdir -p build/fuzz-campaign
for tr in "$@"; do
  t=${tr%%:*}; runs=${tr#*:}
  mkdir -p build/fuzz-corpus/$t build/fuzz-artifacts/$t
  start=$(date +%s)
  if nice -n 10 $bin/fuzz_$t -runs=$runs -rss_limit_mb=2048 -timeout=${FUZZ_TIMEOUT:-1200} -print_final_stats=1 ${FUZZ_OPTS:-} \
       -artifact_prefix=build/fuzz-artifacts/$t/ build/fuzz-corpus/$t tests/fuzz/corpus/$t \
       > build/fuzz-campaign/$t.log 2>&1; then
    echo "$t: $(grep -h 'stat::number_of_executed_units' build/fuzz-campaign/$t.log | sed 's/.*: *//') runs in $(( $(date +%s) - start )) s, no finding"
  else
    echo "$t: FINDING after $(( $(date +%s) - start )) s, see build/fuzz-campaign/$t.log"; exit 1
  fi
done
