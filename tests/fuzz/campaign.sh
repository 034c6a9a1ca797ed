#!/bin/sh
# tests/fuzz/campaign.sh - a long fuzzing run: each named target for a fixed number of executions
# (-runs), one after the other, in the background-friendly way (nice 19), continuing from
# build/fuzz-corpus/<t>. Used for the 10^7-executions runs recorded in tests/fuzz/README.md.
#   tests/fuzz/campaign.sh RUNS target...        e.g. tests/fuzz/campaign.sh 9500000 decode chat
# Logs: build/fuzz-campaign/<t>.log (libFuzzer's final stats at the end); a finding stops the lane
# with the input in build/fuzz-artifacts/<t>/.
set -u
runs=$1; shift
mkdir -p build/fuzz-campaign
for t in "$@"; do
  mkdir -p build/fuzz-corpus/$t build/fuzz-artifacts/$t
  start=$(date +%s)
  if nice -n 19 build/fuzz_$t -runs=$runs -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
       -artifact_prefix=build/fuzz-artifacts/$t/ build/fuzz-corpus/$t tests/fuzz/corpus/$t \
       > build/fuzz-campaign/$t.log 2>&1; then
    echo "$t: $(grep -h 'stat::number_of_executed_units' build/fuzz-campaign/$t.log | sed 's/.*: *//') runs in $(( $(date +%s) - start )) s, no finding"
  else
    echo "$t: FINDING after $(( $(date +%s) - start )) s, see build/fuzz-campaign/$t.log"; exit 1
  fi
done
