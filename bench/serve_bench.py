#!/usr/bin/env python3
"""bench/serve_bench.py: load OpenAI-compatible servers with C concurrent streams.

usage: serve_bench.py [PORT] [--gemmac BIN] [--llama PYTHON] [--gguf FILE]
                      [-t 2] [-P 4] [-c 1,4,8] [-n 64] [-r 3]

PORT: a `gemmac serve` already running on 127.0.0.1.  --gemmac BIN starts
`BIN serve --weights FILE -t T -P P` (the built-in Gemma 3 270M graph) and
--llama PYTHON starts llama-cpp-python's own server (`PYTHON -m
llama_cpp.server`, needs its [server] extras) on the same GGUF FILE
(default: scripts/model-path) with T threads; the servers run one after the
other, never together, so that neither takes cores from the other.

For each server and concurrency C, runs r rounds of C simultaneous
streaming completions (greedy, max_tokens n; ignoring EOS is not possible
through the API, so prompts are chosen that run long) and reports: aggregate
decode tokens/s (completion tokens after each stream's first, over the time
from the first first-token to the last token; min and median over the
rounds), requests/s (median), and p50/p99 time to first token over every
request of every round.  Then the ratios the goal names: gemmac's decode
tokens/s at c=4 over its c=1, and over llama-cpp-python's at c=4
(docs/server.md#figures).
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import threading
import time
import urllib.request

import openai

PROMPTS = ["Write a long story about a lighthouse keeper.",
           "Explain in detail how a steam engine works.",
           "List the history of the Roman empire, century by century.",
           "Describe a journey across the Sahara, day by day.",
           "Write a long essay about the ocean.", "Tell the tale of a dragon and a knight.",
           "Describe every planet of the solar system.", "Write a recipe book for bread."]


def one(cl, i, n, out):
    """One streaming completion; out[i] = (start, first text, last text,
    completion tokens).  Tokens come from the usage chunk where the server
    sends one, else one per text chunk (llama-cpp-python sends a token a
    chunk)."""
    t0 = time.time()
    first = last = None
    ntok = chunks = 0
    for ch in cl.completions.create(model="m", prompt=PROMPTS[i % len(PROMPTS)], max_tokens=n,
                                    temperature=0, stream=True,
                                    stream_options={"include_usage": True}):
        now = time.time()
        if getattr(ch, "usage", None):
            ntok = ch.usage.completion_tokens
        if ch.choices and ch.choices[0].text:
            first = first or now
            last = now
            chunks += 1
    out[i] = (t0, first or time.time(), last or time.time(), ntok or chunks)


def run_load(port, a):
    """The load against the server on port; {c: figures}."""
    cl = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0,
                       timeout=600)
    one(cl, 0, 4, [None])  # warm-up
    res = {}
    for c in [int(x) for x in a.c.split(",")]:
        tps, rps, ttft = [], [], []
        for _ in range(a.r):
            out = [None] * c
            th = [threading.Thread(target=one, args=(cl, i, a.n, out)) for i in range(c)]
            t0 = time.time()
            for t in th:
                t.start()
            for t in th:
                t.join()
            t1 = time.time()
            dec = sum(max(o[3] - 1, 0) for o in out)
            span = max(o[2] for o in out) - min(o[1] for o in out)
            tps.append(dec / span if span > 0 else 0)
            rps.append(c / (t1 - t0))
            ttft += [o[1] - o[0] for o in out]
        ttft.sort()
        res[c] = {"tps_min": min(tps), "tps": statistics.median(tps),
                  "rps": statistics.median(rps), "p50": statistics.median(ttft),
                  "p99": ttft[min(len(ttft) - 1, int(0.99 * len(ttft)))], "n": len(ttft)}
        f = res[c]
        print(f"  c={c}: decode tok/s min {f['tps_min']:.1f} median {f['tps']:.1f} | req/s "
              f"median {f['rps']:.2f} | TTFT p50 {f['p50'] * 1e3:.0f} ms p99 "
              f"{f['p99'] * 1e3:.0f} ms ({f['n']} requests, {a.r} rounds)", flush=True)
    return res


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gemmac(a):
    """`gemmac serve` on a free port, once it prints its ready line."""
    p = subprocess.Popen([a.gemmac, "serve", "--weights", a.gguf, "-t", str(a.threads),
                          "-P", str(a.parallel), "--port", "0"],
                         stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            threading.Thread(target=lambda: p.stderr.read(), daemon=True).start()
            return p, int(m.group(1))
    raise SystemExit(f"gemmac serve did not start (exit status {p.wait()})")


def start_llama(a):
    """llama-cpp-python's server on a free port, once /v1/models answers.
    Requests wait for the one model rather than cutting the stream being
    served short (its default)."""
    port = free_port()
    p = subprocess.Popen([a.llama, "-m", "llama_cpp.server", "--model", a.gguf,
                          "--n_threads", str(a.threads), "--n_threads_batch", str(a.threads),
                          "--n_ctx", "4096", "--host", "127.0.0.1", "--port", str(port),
                          "--interrupt_requests", "false"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5)
            return p, port
        except OSError:
            time.sleep(0.5)
    p.kill()
    raise SystemExit("llama_cpp.server did not start (is `llama-cpp-python[server]` "
                     f"installed for {a.llama}?)")


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int, nargs="?")
    ap.add_argument("--gemmac", help="start BIN serve")
    ap.add_argument("--llama", help="start PYTHON -m llama_cpp.server")
    ap.add_argument("--gguf", help="the weights of both (default: scripts/model-path)")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-P", "--parallel", type=int, default=4, help="gemmac's slots")
    ap.add_argument("-c", default="1,4,8")
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-r", type=int, default=3)
    a = ap.parse_args()
    if a.port is not None and a.gemmac:
        ap.error("give PORT (a running gemmac serve) or --gemmac, not both")
    if a.port is None and not a.gemmac and not a.llama:
        ap.error("give PORT or --gemmac, and/or --llama")
    if not a.gguf and (a.gemmac or a.llama):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        a.gguf = subprocess.run([os.path.join(root, "scripts/model-path")], check=True,
                                capture_output=True, text=True).stdout.strip()
    res = {}
    if a.port is not None:
        print(f"gemmac serve on port {a.port}:")
        res["gemmac"] = run_load(a.port, a)
    for name, start in [("gemmac", start_gemmac), ("llama-cpp-python", start_llama)]:
        if not getattr(a, "gemmac" if name == "gemmac" else "llama"):
            continue
        p, port = start(a)
        print(f"{name} on {a.gguf}, {a.threads} threads:", flush=True)
        try:
            res[name] = run_load(port, a)
        finally:
            stop(p)
    g, ll = res.get("gemmac", {}), res.get("llama-cpp-python", {})
    if 1 in g and 4 in g and g[1]["tps"]:
        print(f"gemmac c=4 / c=1 decode tok/s: {g[4]['tps'] / g[1]['tps']:.2f}x (goal >= 2.5)")
    if 4 in g and 4 in ll and ll[4]["tps"]:
        print(f"gemmac / llama-cpp-python decode tok/s at c=4: "
              f"{g[4]['tps'] / ll[4]['tps']:.2f}x (goal >= 2)")


if __name__ == "__main__":
    main()
