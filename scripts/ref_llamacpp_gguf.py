#!/usr/bin/env python3
"""llama.cpp's logits on any GGUF, as a gemmac reference file (a measurement).

For comparing gemmac and llama.cpp on the same full-size file (e.g. `gemmac
init graphs/gemma4-e2b.yaml` weights, docs/gemma4.md "Measured"): runs
llama-cpp-python over ONE sequence from position 0 -- <bos> (id 2) followed
by the fixed pseudo-random ids `gemmac bench` and bench/compare-llamacpp use
(xorshift64) -- with logits at every position, and writes

  --full OUT   every logit (reference format of docs/conformance.md, `logits`
               F32 [V, n_pos, 1]; 256 positions x 262144 = 268 MB: keep it
               out of git), so that `gemmac eval --ref OUT` gives the exact KL;
  --topk OUT   the top-K log-probabilities and the rest's (-k, default 64),
               whose KL is a lower bound of the full one.

Reuses scripts/ref_llamacpp_kl.py (decode: 128-token batches, 2 threads, f16
KV cache, flash attention as llama.cpp decides; topk_rows) and
make_reference_fixtures.write_ref_gguf.  Prints the entropy of llama.cpp's
predictions (how flat they are decides how much top-K leaves out).

    /opt/llamaenv/bin/python scripts/ref_llamacpp_gguf.py /tmp/e2b-q4_0.gguf \
        -n 256 --full /tmp/e2b-q4_0.ref.gguf --topk /tmp/e2b-q4_0.top64.gguf
"""
import argparse
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_reference_fixtures as mrf  # noqa: E402  (write_ref_gguf)
import ref_llamacpp_kl as rk  # noqa: E402  (decode, topk_rows, sha256)

ROOT = Path(__file__).resolve().parent.parent


def bench_tokens(n_vocab, n):
    """bench/compare-llamacpp's bench_tokens (the ids gemmac bench uses)."""
    path = str(ROOT / "bench" / "compare-llamacpp")
    loader = importlib.machinery.SourceFileLoader("compare_llamacpp", path)
    spec = importlib.util.spec_from_loader("compare_llamacpp", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod.bench_tokens(n_vocab, n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gguf")
    ap.add_argument("-n", type=int, default=256, help="positions (with <bos>)")
    ap.add_argument("-k", type=int, default=64, help="K of --topk")
    ap.add_argument("--full", help="write the full logits here")
    ap.add_argument("--topk", help="write the top-K reference here")
    a = ap.parse_args()
    import gguf
    import llama_cpp
    llama_cpp.llama_backend_init()
    V = int(len(gguf.GGUFReader(a.gguf).fields["tokenizer.ggml.tokens"].data))
    ids = [2] + bench_tokens(V, a.n - 1)
    rows = np.zeros((a.n, V), dtype=np.float32)

    def keep(start, r):
        rows[start:start + len(r)] = r
    settings, V2 = rk.decode(llama_cpp, a.gguf, ids, keep)
    assert V2 == V
    x = rows.astype(np.float64)
    lp = x - x.max(1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    h = -(np.exp(lp) * lp).sum(1)
    print(f"entropy of llama.cpp's predictions: mean {h.mean():.3f} min {h.min():.3f} "
          f"max {h.max():.3f} nats (log V = {np.log(V):.3f})")
    source = f"llama-cpp-python {llama_cpp.__version__} on {a.gguf}"
    seqs = np.array(ids, dtype=np.int32).reshape(1, -1)
    if a.full:
        mrf.write_ref_gguf(a.full, seqs, rows.reshape(1, a.n, V),
                           dict(variant=Path(a.gguf).name, dtype="as stored", source=source,
                                settings=settings, script="scripts/ref_llamacpp_gguf.py",
                                covers="bos + gemmac bench's fixed ids"))
        print(f"wrote {a.full}")
    if a.topk:
        tids, tlp, rest = rk.topk_rows(rows, a.k)
        mass = np.exp(tlp.astype(np.float64)).sum(1)
        print(f"top-{a.k} mass: mean {mass.mean():.4f} min {mass.min():.4f}")
        w = gguf.GGUFWriter(a.topk, "gemmac-reference")
        w.add_string("gemmac.ref.kind", "topk")
        w.add_uint32("gemmac.ref.n_seq", 1)
        w.add_uint32("gemmac.ref.n_pos", a.n)
        w.add_uint32("gemmac.ref.n_vocab", V)
        w.add_array("gemmac.ref.tokens", [int(t) for t in ids])
        w.add_array("gemmac.ref.topk_ids", [int(t) for t in tids.reshape(-1)])
        w.add_string("gemmac.ref.source", source)
        w.add_string("gemmac.ref.settings", settings)
        w.add_string("gemmac.ref.script", "scripts/ref_llamacpp_gguf.py")
        w.add_tensor("topk_logprobs", tlp.reshape(1, a.n, a.k))
        w.add_tensor("rest_logprob", rest.reshape(1, a.n))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        print(f"wrote {a.topk}")


if __name__ == "__main__":
    main()
