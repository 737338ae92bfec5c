#!/usr/bin/env python3
"""bench/serve_bench.py: load a running `gemmac serve` with C concurrent streams.

usage: serve_bench.py PORT [-c 1,4,8] [-n 64] [-r 3]

For each concurrency C, runs r rounds of C simultaneous streaming
completions (greedy, max_tokens n, ignoring EOS is not possible through the
API, so prompts are chosen that run long) and reports per round: aggregate
decode tokens/s (completion tokens after each stream's first, over the time
from the first first-token to the last token), requests/s, and the time to
first token of every request; then p50/p99 TTFT over all rounds and min and
median of the per-round figures (docs/server.md#figures).
"""
import argparse
import statistics
import threading
import time

import openai

PROMPTS = ["Write a long story about a lighthouse keeper.",
           "Explain in detail how a steam engine works.",
           "List the history of the Roman empire, century by century.",
           "Describe a journey across the Sahara, day by day.",
           "Write a long essay about the ocean.", "Tell the tale of a dragon and a knight.",
           "Describe every planet of the solar system.", "Write a recipe book for bread."]


def one(cl, i, n, out):
    t0 = time.time()
    first = last = None
    ntok = 0
    for ch in cl.completions.create(model="m", prompt=PROMPTS[i % len(PROMPTS)], max_tokens=n,
                                    temperature=0, stream=True,
                                    stream_options={"include_usage": True}):
        now = time.time()
        if ch.usage:
            ntok = ch.usage.completion_tokens
        if ch.choices and ch.choices[0].text:
            first = first or now
            last = now
    out[i] = (t0, first or time.time(), last or time.time(), ntok)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("-c", default="1,4,8")
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-r", type=int, default=3)
    a = ap.parse_args()
    cl = openai.OpenAI(base_url=f"http://127.0.0.1:{a.port}/v1", api_key="x", max_retries=0,
                       timeout=600)
    one(cl, 0, 4, [None])  # warm-up
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
        p99 = ttft[min(len(ttft) - 1, int(0.99 * len(ttft)))]
        print(f"c={c}: decode tok/s min {min(tps):.1f} median {statistics.median(tps):.1f} | "
              f"req/s median {statistics.median(rps):.2f} | TTFT p50 "
              f"{statistics.median(ttft) * 1000:.0f} ms p99 {p99 * 1000:.0f} ms "
              f"({len(ttft)} requests, {a.r} rounds)", flush=True)


if __name__ == "__main__":
    main()
