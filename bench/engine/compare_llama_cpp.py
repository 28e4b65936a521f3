#!/usr/bin/env python3
"""warden bench vs llama-bench on the same GGUF files, side by side.

For each file, runs `warden bench --json` and `llama-bench -o json` back to
back with the same prompt/generation lengths, depth, repetitions and
threads, and prints one markdown table: pp and tg tokens/s (mean ± sd) of
both engines, their ratios, warden's peak RSS against the file + KV cache +
64 MiB budget, and the decode roofline as `warden bench` measures it: the
tokens/s at which reading the bytes one token needs (the weights, packed
copies where warden repacks, and the KV cache it attends over) with the same
threads would take all the time, measured in the same process right after
each generation run (model/roofline.h). warden's percentage is the median
over its runs of each run against the roofline of its own moment;
llama.cpp's is its mean tg against the roofline warden measured in the same
round (a moment apart, so take it as approximate). RSS and load time are the
worst over the rounds.

With --rounds K, each file is measured K times, the two engines alternating
(warden, llama.cpp, warden, ...), and the ratios are the median of the
rounds' ratios with their range: a machine whose memory bandwidth changes
from minute to minute (a VM on a busy host) then gives both engines the same
conditions in each round. The tokens/s shown are the means over the rounds.

--cache-type q8_0 runs both engines with a Q8_0 KV cache (-ctk q8_0 -ctv
q8_0; llama-bench's default flash attention "auto" takes the quantized value
cache on the CPU).

Never builds llama.cpp: pass the path of an existing llama-bench binary.

  bench/engine/compare_llama_cpp.py --warden build/warden \\
      --llama-bench /path/to/llama.cpp/build/bin/llama-bench \\
      -t 2 -p 512 -n 128 -r 3 --rounds 2 FILE...
"""
import argparse
import json
import re
import statistics
import subprocess
import sys


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def cache_flags(args):
    return ["-ctk", args.cache_type, "-ctv", args.cache_type]


def warden_figures(args, path):
    tests = run_json([args.warden, "bench", "-m", path, "-p", str(args.p), "-n", str(args.n), "-d", str(args.d),
                      "-r", str(args.r), "-t", str(args.t), "--json"] + cache_flags(args))
    pp = next(t for t in tests if t["n_gen"] == 0)
    tg = next(t for t in tests if t["n_prompt"] == 0)
    return {
        "pp": (pp["mean"], pp["sd"]),
        "tg": (tg["mean"], tg["sd"]),
        "rss": tg["peak_rss_mib"],
        "kv": tg["kv_cache_mib"],
        "file": tg["file_mib"],
        "load": tg["load_s"],
        "roof": tg["roofline"]["tokens_per_s"],
        "roof_gbs": tg["roofline"]["gb_per_s"],
        "roof_frac": tg["roofline"]["tg_fraction"],
    }


def llama_figures(args, path):
    rows = run_json([args.llama_bench, "-m", path, "-p", str(args.p), "-n", str(args.n), "-d", str(args.d), "-r",
                     str(args.r), "-t", str(args.t), "-o", "json"] + cache_flags(args))
    out = {}
    for row in rows:
        key = "pp" if row["n_prompt"] > 0 else "tg"
        out[key] = (row["avg_ts"], row["stddev_ts"])
    return out


def fmt(pair):
    return f"{pair[0]:.2f} ± {pair[1]:.2f}"


def mean_over_rounds(rounds, key):
    """(mean, mean sd) of one figure's (mean, sd) over the rounds."""
    return (statistics.mean(r[key][0] for r in rounds), statistics.mean(r[key][1] for r in rounds))


def ratio(ws, ls, key):
    """The median of the rounds' warden / llama.cpp ratios, with their range."""
    ratios = sorted(w[key][0] / l[key][0] for w, l in zip(ws, ls))
    text = f"{statistics.median(ratios):.2f}"
    return text if len(ratios) == 1 else f"{text} ({ratios[0]:.2f}-{ratios[-1]:.2f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warden", required=True)
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-d", type=int, default=0, help="tokens already in the KV cache (llama-bench's --n-depth)")
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="alternating runs of both engines per file (default 1)")
    ap.add_argument("--cache-type", choices=["f16", "q8_0"], default="f16", help="KV cache keys and values (-ctk/-ctv)")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")

    at = f" @ d{args.d}" if args.d else ""
    pp, tg = f"pp{args.p}{at}", f"tg{args.n}{at}"
    print(f"| file | warden {pp} | llama.cpp {pp} | pp ratio | warden {tg} | llama.cpp {tg} "
          f"| tg ratio | roofline tg (read GB/s) | warden / llama.cpp % of roofline | warden RSS / budget MiB "
          f"| load s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in args.files:
        ws, ls = [], []
        for _ in range(args.rounds):
            ws.append(warden_figures(args, path))
            ls.append(llama_figures(args, path))
        w = ws[-1]  # file size, KV cache: the same every round
        name = re.sub(r"\.gguf$", "", path.rsplit("/", 1)[-1])
        budget = w["file"] + w["kv"] + 64
        # llama.cpp against the roofline warden measured in the same round.
        llama_frac = statistics.median(l["tg"][0] / r["roof"] for r, l in zip(ws, ls))
        print(f"| {name} ({w['file']:.0f} MiB) | {fmt(mean_over_rounds(ws, 'pp'))} | {fmt(mean_over_rounds(ls, 'pp'))} "
              f"| {ratio(ws, ls, 'pp')} | {fmt(mean_over_rounds(ws, 'tg'))} | {fmt(mean_over_rounds(ls, 'tg'))} "
              f"| {ratio(ws, ls, 'tg')} "
              f"| {statistics.median(r['roof'] for r in ws):.1f} ({statistics.median(r['roof_gbs'] for r in ws):.1f}) "
              f"| {100 * statistics.median(r['roof_frac'] for r in ws):.0f} / {100 * llama_frac:.0f} "
              f"| {max(r['rss'] for r in ws):.0f} / {budget:.0f} | {max(r['load'] for r in ws):.3f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
