#!/usr/bin/env python3
"""Aggregate decode throughput of `warden serve` vs llama-server, N parallel streams.

Starts each server in turn on 127.0.0.1 with the same model file, the same
number of slots and threads, sends N concurrent streaming chat requests
(greedy, ignore_eos, the same max_tokens) and reports, per server, the total
generated tokens divided by the wall time of the wave, plus latency figures,
then the ratio warden / llama-server. Never builds llama.cpp: pass the path of
an existing llama-server binary (or --skip-llama to measure warden alone).

  bench/server/parallel_throughput.py --warden build/warden \\
      --llama-server /work/ref/llama.cpp/build/bin/llama-server \\
      --model /tmp/qwen3-0.6b-q8_0.gguf --streams 8 --tokens 64 --threads 2
"""
import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("server did not become ready")


def one_stream(port, i, tokens, out):
    body = json.dumps({
        "model": "bench",
        "messages": [{"role": "user", "content": f"Request {i}: write a long story about the sea."}],
        "max_tokens": tokens, "temperature": 0, "ignore_eos": True, "stream": True,
        "stream_options": {"include_usage": True},
    })
    start = time.time()
    first = None
    generated = 0
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        out[i] = {"error": f"HTTP {r.status}: {r.read()[:200]!r}"}
        return
    buf = b""
    while True:
        chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            if not event.startswith(b"data: ") or event == b"data: [DONE]":
                continue
            j = json.loads(event[6:])
            # First token: the first chunk that carries generated text.
            if first is None and j.get("choices") and j["choices"][0].get("delta", {}).get("content"):
                first = time.time()
            if j.get("usage"):
                generated = j["usage"]["completion_tokens"]
    out[i] = {"tokens": generated, "latency": time.time() - start, "ttft": (first or time.time()) - start}


def wave(port, streams, tokens):
    out = [None] * streams
    threads = [threading.Thread(target=one_stream, args=(port, i, tokens, out)) for i in range(streams)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    errors = [o["error"] for o in out if o and "error" in o]
    if errors:
        raise RuntimeError(errors[0])
    total = sum(o["tokens"] for o in out)
    lat = sorted(o["latency"] for o in out)
    ttft = sorted(o["ttft"] for o in out)
    # Decode-phase rate: tokens after the last stream's first byte (all
    # prompts prefilled) over the time left; excludes prompt processing.
    decode_window = wall - ttft[-1]
    return {"tokens": total, "seconds": wall, "tps": total / wall, "latency_p50": lat[len(lat) // 2],
            "latency_max": lat[-1], "ttft_p50": ttft[len(ttft) // 2], "ttft_max": ttft[-1],
            "decode_tps": (total - len(out)) / decode_window if decode_window > 0 else 0.0}


def measure(name, cmd, port, args):
    print(f"[{name}] {' '.join(cmd)}", file=sys.stderr)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        wave(port, args.streams, 8)  # warm-up
        best = None
        for _ in range(args.repeat):
            w = wave(port, args.streams, args.tokens)
            if best is None or w["tps"] > best["tps"]:
                best = w
        return best
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warden", default="build/warden")
    ap.add_argument("--llama-server", help="path of an existing llama-server binary")
    ap.add_argument("--skip-llama", action="store_true")
    ap.add_argument("--model", required=True)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=64, help="tokens generated per stream")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--ctx", type=int, default=1024, help="context per slot")
    ap.add_argument("--repeat", type=int, default=2, help="waves per server (the best counts)")
    args = ap.parse_args()
    if not args.skip_llama and not args.llama_server:
        ap.error("give --llama-server PATH (or --skip-llama)")

    results = {}
    port = free_port()
    # Both servers get the same flags: -c is the total, divided over the -np slots.
    results["warden"] = measure("warden", [args.warden, "serve", "-m", args.model, "--port", str(port),
                                           "-np", str(args.streams), "-t", str(args.threads),
                                           "-c", str(args.ctx * args.streams), "--alias", "bench"], port, args)
    if not args.skip_llama:
        port = free_port()
        results["llama-server"] = measure(
            "llama-server", [args.llama_server, "-m", args.model, "--port", str(port), "--host", "127.0.0.1",
                             "-np", str(args.streams), "-t", str(args.threads), "-c", str(args.ctx * args.streams),
                             "--alias", "bench", "-cb"], port, args)
    for name, r in results.items():
        print(f"{name:13s} {r['tokens']:6d} tokens in {r['seconds']:7.2f} s = {r['tps']:8.1f} tokens/s aggregate; "
              f"latency p50 {r['latency_p50']:.2f} s, max {r['latency_max']:.2f} s; first token p50 {r['ttft_p50']:.2f} s, "
              f"max {r['ttft_max']:.2f} s; decode phase {r['decode_tps']:.1f} tokens/s")
    if "llama-server" in results:
        w, l = results["warden"], results["llama-server"]
        print(f"ratio warden / llama-server: {w['tps'] / l['tps']:.2f} aggregate, "
              f"{w['decode_tps'] / max(l['decode_tps'], 1e-9):.2f} decode phase")


if __name__ == "__main__":
    main()
