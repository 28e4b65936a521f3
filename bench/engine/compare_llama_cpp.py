#!/usr/bin/env python3
"""warden bench vs llama-bench on the same GGUF files, side by side.

For each file, runs `warden bench --json` and `llama-bench -o json` back to
back with the same prompt/generation lengths, repetitions and threads, and
prints one markdown table: pp and tg tokens/s (mean ± sd) of both engines,
their ratios, warden's peak RSS against the file + KV cache + 64 MiB budget,
and the decode roofline: bytes of weights read per generated token divided by
the read bandwidth that bench_bandwidth measures on this machine (if given).

Bytes per token: every weight tensor is read once per token, except that the
token embedding is only indexed (one row) when the file has a separate output
matrix, and of the MoE expert tensors (*_exps) only n_expert_used of
n_expert experts are read.

Never builds llama.cpp: pass the path of an existing llama-bench binary.

  bench/engine/compare_llama_cpp.py --warden build/warden \\
      --llama-bench /path/to/llama.cpp/build/bin/llama-bench \\
      --bandwidth build/bench/bench_bandwidth -t 2 -p 512 -n 128 -r 3 FILE...
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
    }


def llama_figures(args, path):
    rows = run_json([args.llama_bench, "-m", path, "-p", str(args.p), "-n", str(args.n), "-r", str(args.r), "-t",
                     str(args.t), "-o", "json"])
    out = {}
    for row in rows:
        key = "pp" if row["n_prompt"] > 0 else "tg"
        out[key] = (row["avg_ts"], row["stddev_ts"])
    return out


def bytes_per_token(args, path):
    d = run_json([args.warden, "inspect", "--json", path])
    meta = d["metadata"]
    used = next((v for k, v in meta.items() if k.endswith(".expert_used_count")), None)
    total = next((v for k, v in meta.items() if k.endswith(".expert_count")), None)
    names = {t["name"] for t in d["tensors"]}
    read = 0
    for t in d["tensors"]:
        size = t["bytes"]
        if t["name"] == "token_embd.weight" and "output.weight" in names:
            continue  # only looked up, one row per token
        if "_exps." in t["name"] and used and total:
            size = size * used / total
        read += size
    return read


def bandwidth(path):
    """Median over five runs of the better of 1 and 2 threads (single runs on a
    shared VM occasionally report far more than decode ever sees)."""
    best = []
    for _ in range(5):
        out = subprocess.run([path, "--benchmark_format=json"], check=True, capture_output=True, text=True).stdout
        best.append(max(b["bytes_per_second"] for b in json.loads(out)["benchmarks"]))
    return sorted(best)[len(best) // 2]


def fmt(pair):
    return f"{pair[0]:.2f} ± {pair[1]:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warden", required=True)
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--bandwidth", help="path of build/bench/bench_bandwidth (enables the roofline column)")
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    bw = bandwidth(args.bandwidth) if args.bandwidth else None
    if bw:
        print(f"read bandwidth (bench_bandwidth, median of 5 runs of the best of 1 and 2 threads): {bw / 1e9:.1f} GB/s\n")
    print(f"| file | warden pp{args.p} | llama.cpp pp{args.p} | pp ratio | warden tg{args.n} | llama.cpp tg{args.n} "
          f"| tg ratio | roofline tg | warden % of roofline | warden RSS / budget MiB | load s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in args.files:
        w = warden_figures(args, path)
        l = llama_figures(args, path)
        name = re.sub(r"\.gguf$", "", path.rsplit("/", 1)[-1])
        roof = pct = "-"
        if bw:
            limit = bw / bytes_per_token(args, path)
            roof = f"{limit:.1f}"
            pct = f"{100 * w['tg'][0] / limit:.0f} %"
        budget = w["file"] + w["kv"] + 64
        print(f"| {name} ({w['file']:.0f} MiB) | {fmt(w['pp'])} | {fmt(l['pp'])} | {w['pp'][0] / l['pp'][0]:.2f} "
              f"| {fmt(w['tg'])} | {fmt(l['tg'])} | {w['tg'][0] / l['tg'][0]:.2f} | {roof} | {pct} "
              f"| {w['rss']:.0f} / {budget:.0f} | {w['load']:.3f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
