#!/usr/bin/env python3
"""Decode speed of two warden binaries on one file, run alternately.

    bench/model/ab_decode.py OLD_BINARY NEW_BINARY MODEL.gguf [--rounds 10] [-- BENCH_FLAGS...]

Each round runs `warden bench -p 0 -n 128 -r 3 -t 2` once per binary (the
order swapping every round) and files the run under the memory regime its
own roofline pass measured (flags after `--`, such as `-d 2048 -ctk q8_0`,
go to both binaries' bench): on the 2-core EPYC VM this project measures on,
read bandwidth switches between about 35 and about 60 GB/s every minute or
two, so only runs of the same regime compare. The regime is the vCPUs'
placement (two CCDs in the fast one), so where a binary prints the time a
cache line takes between its threads (since 2026-11-27), that decides: over
100 ns is the fast regime; otherwise the read bandwidth does. Prints per
regime the median tokens/s of each binary, their ranges and the ratio
new / old.
"""
import argparse
import re
import statistics
import subprocess
import sys

FAST_GBS = 50  # roofline read bandwidth above which a run counts as the fast regime
FAST_HANDOFF_NS = 100  # a cache line's trip between the threads above which it does


def run(binary, model, threads, extra):
    out = subprocess.run([binary, "bench", "-m", model, "-p", "0", "-n", "128", "-r", "3", "-t", str(threads)] + extra,
                         capture_output=True, text=True)
    text = out.stdout + out.stderr
    tg = re.search(r"tg128(?: @ d[0-9]+)? \|\s+([0-9.]+)", text)
    gbs = re.search(r"\(([0-9.]+) GB/s", text)
    handoff = re.search(r"passed between its threads in ([0-9.]+) ns", text)
    if out.returncode != 0 or not tg or not gbs:
        sys.exit(f"{binary} bench failed (exit {out.returncode}):\n{text}")
    fast = float(handoff.group(1)) > FAST_HANDOFF_NS if handoff else float(gbs.group(1)) > FAST_GBS
    return float(tg.group(1)), fast


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("model")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    argv = sys.argv[1:]
    bench_flags = argv[argv.index("--") + 1:] if "--" in argv else []
    args = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    runs = {"old": {"fast": [], "slow": []}, "new": {"fast": [], "slow": []}}
    for i in range(args.rounds):
        order = [("old", args.old), ("new", args.new)]
        for name, binary in order if i % 2 == 0 else reversed(order):
            tg, fast = run(binary, args.model, args.threads, bench_flags)
            runs[name]["fast" if fast else "slow"].append(tg)
    for regime in ("fast", "slow"):
        old, new = runs["old"][regime], runs["new"][regime]
        if not old or not new:
            print(f"{regime}: too few runs in this regime to compare")
            continue
        describe = lambda r: f"{statistics.median(r):.1f} ({len(r)} runs, {min(r):.1f}-{max(r):.1f})"
        print(f"{regime}: old {describe(old)} | new {describe(new)} | "
              f"new/old {statistics.median(new) / statistics.median(old):.3f}")


if __name__ == "__main__":
    main()
