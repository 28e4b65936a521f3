#!/usr/bin/env python3
"""warden bench vs llama-bench on the same GGUF files, side by side.

For each file, runs `warden bench --json` and `llama-bench -o json` back to
back with the same prompt/generation lengths, repetitions and threads, and
prints one markdown table: pp and tg tokens/s (mean ± sd) of both engines,
their ratios, warden's peak RSS against the file + KV cache + 64 MiB budget,
and the decode roofline as `warden bench` measures it: the tokens/s at which
reading the bytes of weights one token needs (packed copies where warden
repacks) with the same threads would take all the time, measured in the same
process right after each generation run (model/roofline.h). warden's
percentage is the median over its runs of each run against the roofline of
its own moment; llama.cpp's is its mean tg against warden's median roofline
(it runs at another moment, so take it as approximate).

Never builds llama.cpp: pass the path of an existing llama-bench binary.

  bench/engine/compare_llama_cpp.py --warden build/warden \\
      --llama-bench /path/to/llama.cpp/build/bin/llama-bench \\
      -t 2 -p 512 -n 128 -r 3 FILE...
"""
import argparse
import json
import re
import subprocess
import sys


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def warden_figures(args, path):
    d = run_json([args.warden, "bench", "-m", path, "-p", str(args.p), "-n", str(args.n), "-r", str(args.r), "-t",
                  str(args.t), "--json"])
    return {
        "pp": (d["pp"]["mean"], d["pp"]["sd"]),
        "tg": (d["tg"]["mean"], d["tg"]["sd"]),
        "rss": d["peak_rss_mib"],
        "kv": d["kv_cache_mib"],
        "file": d["file_mib"],
        "load": d["load_s"],
        "roof": d["roofline"]["tokens_per_s"],
        "roof_gbs": d["roofline"]["gb_per_s"],
        "roof_frac": d["roofline"]["tg_fraction"],
    }


def llama_figures(args, path):
    rows = run_json([args.llama_bench, "-m", path, "-p", str(args.p), "-n", str(args.n), "-r", str(args.r), "-t",
                     str(args.t), "-o", "json"])
    out = {}
    for row in rows:
        key = "pp" if row["n_prompt"] > 0 else "tg"
        out[key] = (row["avg_ts"], row["stddev_ts"])
    return out


def fmt(pair):
    return f"{pair[0]:.2f} ± {pair[1]:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warden", required=True)
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    print(f"| file | warden pp{args.p} | llama.cpp pp{args.p} | pp ratio | warden tg{args.n} | llama.cpp tg{args.n} "
          f"| tg ratio | roofline tg (read GB/s) | warden / llama.cpp % of roofline | warden RSS / budget MiB "
          f"| load s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in args.files:
        w = warden_figures(args, path)
        l = llama_figures(args, path)
        name = re.sub(r"\.gguf$", "", path.rsplit("/", 1)[-1])
        budget = w["file"] + w["kv"] + 64
        print(f"| {name} ({w['file']:.0f} MiB) | {fmt(w['pp'])} | {fmt(l['pp'])} | {w['pp'][0] / l['pp'][0]:.2f} "
              f"| {fmt(w['tg'])} | {fmt(l['tg'])} | {w['tg'][0] / l['tg'][0]:.2f} "
              f"| {w['roof']:.1f} ({w['roof_gbs']:.1f}) "
              f"| {100 * w['roof_frac']:.0f} / {100 * l['tg'][0] / w['roof']:.0f} "
              f"| {w['rss']:.0f} / {budget:.0f} | {w['load']:.3f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
