#!/usr/bin/env python3
"""Summarize one run of tools/peer/run_peer.sh (standard library only).

    python3 tools/peer/summarize.py RUN_DIR > RUN_DIR/summary.md

RUN_DIR holds, per variant V (bf16, f16, f32, q8_0, q4_0, bf16act = llama.cpp bf16 beside lfm2.h bf16 with bf16 activations):
  llama-V.jsonl       llama-bench -o jsonl
  bw-V-pre.jsonl      lfm2-bench --bw-only -o jsonl, right before llama-bench
  bw-V-post.jsonl     the same, right after
  lfm2-V.jsonl        lfm2-bench -o jsonl (absent or empty where lfm2.h has no such weights)
Ratios are lfm2.h / llama.cpp of the same variant and thread count, measured minutes apart in
the same run; "best" compares the fastest repetition of each (less sensitive to other load).
The tg bound is bandwidth / bytes read per token (llama.cpp: the GGUF's tensor bytes; the tied
token_embd is the output matrix; lfm2.h: see tools/lfm2-bench.c).
"""
import json
import os
import sys

VARIANTS = ["bf16", "f16", "f32", "q8_0", "q4_0", "bf16act"]
LFM2_EQUIV = {"bf16": "bf16", "f16": "f16", "f32": "f32", "q8_0": "Q8 (--quant int8)", "q4_0": "Q4 (--quant int4)",
              "bf16act": "bf16 + --bf16-act"}


def read_jsonl(path):
    out = []
    if not os.path.exists(path):
        return out
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def bw_of(rows, threads):
    v = [r["bw_gbs"] for r in rows if r.get("bw_threads") == threads and r.get("bw_gbs", -1) > 0]
    return max(v) if v else None


def fmt(x, nd=2, unit=""):
    return "-" if x is None else f"{x:.{nd}f}{unit}"


def main():
    run = os.path.realpath(sys.argv[1] if len(sys.argv) > 1 else ".")
    print(f"### llama.cpp vs lfm2.h, run `{os.path.basename(os.path.normpath(run))}`\n")
    meta = os.path.join(run, "meta.txt")
    if os.path.exists(meta):
        print("```\n" + open(meta).read().strip() + "\n```\n")
    print("| weights | threads | llama.cpp pp512 t/s | lfm2.h pp512 t/s | pp ratio (best) | llama.cpp tg128 t/s | lfm2.h tg128 t/s |"
          " tg ratio (best) | BW GB/s (llama / lfm2) | tg % of BW bound (llama / lfm2) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v in VARIANTS:
        ll = read_jsonl(os.path.join(run, f"llama-{v}.jsonl"))
        lf = [r for r in read_jsonl(os.path.join(run, f"lfm2-{v}.jsonl")) if "model" in r]
        bw_rows = read_jsonl(os.path.join(run, f"bw-{v}-pre.jsonl")) + read_jsonl(os.path.join(run, f"bw-{v}-post.jsonl"))
        threads = sorted({r["n_threads"] for r in ll} | {r["threads"] for r in lf})
        for t in threads:
            pp = next((r for r in ll if r["n_threads"] == t and r["n_prompt"] > 0 and r["n_gen"] == 0), None)
            tg = next((r for r in ll if r["n_threads"] == t and r["n_gen"] > 0 and r["n_prompt"] == 0), None)
            me = next((r for r in lf if r["threads"] == t), None)
            bw_l = bw_of(bw_rows, t)
            bw_m = me["bw_gbs"] if me and me.get("bw_gbs", -1) > 0 else None

            def cell(r):
                if not r:
                    return "-"
                return f"{r['avg_ts']:.2f} ± {r['stddev_ts']:.2f}"

            def mcell(key):
                if not me:
                    return "n/a"
                return f"{me[key + '_ts']:.2f} ± {me[key + '_sd']:.2f}"

            def ratio(lr, key):
                if not (lr and me):
                    return "-"
                return f"{me[key + '_ts'] / lr['avg_ts']:.2f} ({me[key + '_best'] / max(lr['samples_ts']):.2f})"

            frac_l = (tg["avg_ts"] * tg["model_size"] / (bw_l * 1e9) * 100) if (tg and bw_l) else None
            frac_m = me["tg_frac_of_bound"] * 100 if (me and me.get("tg_frac_of_bound", -1) > 0) else None
            label = v if v == LFM2_EQUIV[v] else f"{v} / {LFM2_EQUIV[v]}"
            print(f"| {label} | {t} | {cell(pp)} | {mcell('pp')} | {ratio(pp, 'pp')} | {cell(tg)} | {mcell('tg')} | {ratio(tg, 'tg')} |"
                  f" {fmt(bw_l, 1)} / {fmt(bw_m, 1)} | {fmt(frac_l, 0, '%')} / {fmt(frac_m, 0, '%')} |")
    print("\nratio = lfm2.h / llama.cpp (mean of reps; in parentheses best rep vs best rep). n/a = lfm2.h has no such weights yet.")


if __name__ == "__main__":
    main()
