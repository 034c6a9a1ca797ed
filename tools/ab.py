#!/usr/bin/env python3
"""Alternating A/B speed measurement that survives bandwidth drift (standard library only).

    python3 tools/ab.py [-n ROUNDS] [--bw "CMD"] [--title T] NAME=CMD NAME=CMD [NAME=CMD ...]

Runs the commands in turn, round after round (A B A B ...; every round starts with the other
program than the round before, so neither always runs first), ROUNDS times (default 5), each pass
short. Right before every pass it runs the --bw command (default `build/lfm2-bench --bw-only -t 2
--bw-mib 512 --bw-passes 3 -o jsonl`) and keeps that bandwidth sample beside the pass. Each CMD
prints JSON lines, either lfm2-bench's (`-o jsonl`: pp_ts, tg_ts, bytes_per_token) or
llama-bench's (`-o jsonl`: n_prompt / n_gen, avg_ts, model_size). The report, in markdown:
  - per program and test (pp / tg): median tokens/s with min-max over the rounds, the median
    bandwidth beside its passes, and for tg the median of (tokens/s x bytes per token / that
    pass's bandwidth) = the fraction of the bandwidth bound. The bytes per token are lfm2-bench's
    count of the weights one token reads (for a mixture of experts: only the chosen experts); a
    program that reports none (llama-bench gives only its file size, which for a MoE is 5-10x what
    a token reads) is charged the lfm2-bench program's count of the same test, since the two run
    the same weights; with no lfm2-bench program in the run it falls back to its file size;
  - per test: the median of the pairwise ratios (round r of the first program / round r of each
    other one) with its min-max: this is the number to quote.
Also writes every raw row with its round and bandwidth as JSON lines to --raw FILE if given.
Tests never assert on these numbers; they are for the README and the bench notes.
"""
import argparse
import json
import shlex
import statistics
import subprocess
import sys


def run_rows(cmd):
    p = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit("ab.py: command failed (exit %d): %s" % (p.returncode, cmd))
    rows = []
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def metrics(rows):
    """{(test, threads): (tokens/s, bytes per token or None)} from lfm2-bench or llama-bench rows."""
    out = {}
    for r in rows:
        if "pp_ts" in r:  # lfm2-bench
            t = r.get("threads")
            out[("pp%d" % r["n_prompt"], t)] = (r["pp_ts"], None)
            out[("tg%d" % r["n_gen"], t)] = (r["tg_ts"], r.get("bytes_per_token"))
        elif "avg_ts" in r:  # llama-bench
            t = r.get("n_threads")
            if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0:
                out[("pp%d" % r["n_prompt"], t)] = (r["avg_ts"], None)
            elif r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0:
                out[("tg%d" % r["n_gen"], t)] = (r["avg_ts"], None, r.get("model_size"))
    return out


def charge_bytes(res):
    """Fill in the bytes per token of programs that report none (see the docstring)."""
    active = {}
    for n in res:
        for m, _ in res[n]:
            for k, v in m.items():
                if v[1]:
                    active.setdefault(k, v[1])
    for n in res:
        for m, _ in res[n]:
            for k, v in list(m.items()):
                if not v[1] and len(v) > 2:
                    m[k] = (v[0], active.get(k, v[2]))


def bw_sample(cmd):
    rows = run_rows(cmd)
    v = [r["bw_gbs"] for r in rows if r.get("bw_gbs", -1) > 0]
    return max(v) if v else None


def fmt_range(v, f="%.2f"):
    return (f + " (" + f + "–" + f + ")") % (statistics.median(v), min(v), max(v))


def append_row(a, progs, res, keys):
    """| label | B pp | A pp | A/B pp | B tg | A tg | A/B tg | A % of bound | BW |, A = first program"""
    (na, _), (nb, _) = progs[0], progs[1]
    cells = [a.label or na]
    fr, bws = "-", []
    for test in ("pp", "tg"):
        k = next((k for k in keys if k[0].startswith(test)), None)
        if k is None:
            cells += ["-", "-", "-"]
            continue
        va = [m[k][0] for m, _ in res[na] if k in m]
        vb = [m[k][0] for m, _ in res[nb] if k in m]
        rs = [res[na][i][0][k][0] / res[nb][i][0][k][0] for i in range(a.rounds) if k in res[na][i][0] and k in res[nb][i][0]]
        cells += ["%.1f" % statistics.median(vb), "%.1f" % statistics.median(va), "**%.2f** (%.2f–%.2f)" % (statistics.median(rs), min(rs), max(rs))]
        if test == "tg":
            f = [m[k][0] * m[k][1] / (bw * 1e9) for m, bw in res[na] if k in m and bw and m[k][1]]
            bws = [bw for m, bw in res[na] if bw]
            if f:
                fr = "%.0f%% (%.0f–%.0f%%)" % (100 * statistics.median(f), 100 * min(f), 100 * max(f))
    cells += [fr, "%.0f–%.0f" % (min(bws), max(bws)) if bws else "-"]
    with open(a.row, "a") as f:
        f.write("| " + " | ".join(cells) + " |\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--rounds", type=int, default=5)
    ap.add_argument("--bw", default="build/lfm2-bench --bw-only -t 2 --bw-mib 512 --bw-passes 3 -o jsonl")
    ap.add_argument("--title", default="")
    ap.add_argument("--raw", default="")
    ap.add_argument("--row", default="", help="append one summary row (first program vs the second) to this markdown file")
    ap.add_argument("--label", default="", help="the row's first cell")
    ap.add_argument("progs", nargs="+", help="NAME=CMD")
    a = ap.parse_args()
    progs = []
    for p in a.progs:
        if "=" not in p:
            raise SystemExit("ab.py: expected NAME=CMD, got %r" % p)
        n, c = p.split("=", 1)
        progs.append((n, c))
    if len(progs) < 2:
        raise SystemExit("ab.py: need at least two programs")
    res = {n: [] for n, _ in progs}  # name -> list per round of (metrics, bw)
    raw = open(a.raw, "w") if a.raw else None
    for r in range(a.rounds):
        order = progs if r % 2 == 0 else progs[::-1]
        for n, c in order:
            bw = bw_sample(a.bw) if a.bw else None
            m = metrics(run_rows(c))
            if not m:
                raise SystemExit("ab.py: %s printed no JSON rows: %s" % (n, c))
            res[n].append((m, bw))
            sys.stderr.write("# round %d %s: %s, BW %s GB/s\n" % (r + 1, n, ", ".join(
                "%s/t%s %.2f" % (k[0], k[1], v[0]) for k, v in sorted(m.items())), "%.1f" % bw if bw else "-"))
            if raw:
                raw.write(json.dumps({"round": r + 1, "prog": n, "cmd": c, "bw_gbs": bw,
                                      "metrics": {"%s/t%s" % k: v[0] for k, v in m.items()}}) + "\n")
                raw.flush()
    charge_bytes(res)
    keys = sorted(set().union(*[set(m) for n, _ in progs for m, _ in res[n]]))
    if a.title:
        print("### " + a.title + "\n")
    print("%d alternating rounds; tokens/s as median (min–max); BW = read bandwidth sampled right before each pass.\n" % a.rounds)
    print("| test | threads | program | tokens/s | BW GB/s | % of bound |")
    print("|---|---:|---|---:|---:|---:|")
    for k in keys:
        for n, _ in progs:
            v = [m[k][0] for m, _ in res[n] if k in m]
            if not v:
                continue
            bws = [bw for m, bw in res[n] if k in m and bw]
            frac = [m[k][0] * m[k][1] / (bw * 1e9) for m, bw in res[n] if k in m and bw and m[k][1]]
            print("| %s | %s | %s | %s | %s | %s |" % (k[0], k[1], n, fmt_range(v), "%.1f" % statistics.median(bws) if bws else "-",
                                                    "%.0f%%" % (100 * statistics.median(frac)) if frac else "-"))
    print("\n| test | threads | ratio | median (min–max) of the pairwise ratios |")
    print("|---|---:|---|---:|")
    base = progs[0][0]
    for k in keys:
        for n, _ in progs[1:]:
            rs = [res[base][i][0][k][0] / res[n][i][0][k][0] for i in range(a.rounds)
                  if k in res[base][i][0] and k in res[n][i][0] and res[n][i][0][k][0] > 0]
            if rs:
                print("| %s | %s | %s / %s | %s |" % (k[0], k[1], base, n, fmt_range(rs, "%.3f")))
    if a.row:
        append_row(a, progs, res, keys)
    print("\ncommands:\n")
    for n, c in progs:
        print("- %s: `%s`" % (n, c))
    if a.bw:
        print("- bandwidth: `%s`" % a.bw)


if __name__ == "__main__":
    main()
