#!/usr/bin/env python3
"""Writes the seed references of fuzz_eval (tests/fuzz/corpus/eval/seed-*).

fuzz_eval checks references against a model of 32 tokens and a context of
64, so the fixtures' references (a real vocabulary, ~200 KB) would only
reach the first size check; these are the same format (docs/conformance.md)
at that size: full logits, top-K with and without rest_logprob, and a
padded sequence.  Run from the repository root; the output is committed.
"""
import struct
from pathlib import Path

VOCAB, ALIGN = 32, 32


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv_u32(key, v):
    return gstr(key) + struct.pack("<II", 4, v)


def kv_str(key, v):
    return gstr(key) + struct.pack("<I", 8) + gstr(v)


def kv_i32s(key, vals):
    return gstr(key) + struct.pack("<IIQ", 9, 5, len(vals)) + struct.pack(f"<{len(vals)}i", *vals)


def gguf(kvs, tensors):
    """tensors: (name, ne, list of floats); all F32."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    data, infos = b"", b""
    for name, ne, vals in tensors:
        data += b"\0" * (-len(data) % ALIGN)
        infos += gstr(name) + struct.pack(f"<I{len(ne)}QIQ", len(ne), *ne, 0, len(data))
        data += struct.pack(f"<{len(vals)}f", *vals)
    out += infos
    return out + b"\0" * (-len(out) % ALIGN) + data


def ref(tokens, n_pos, k=0, rest=True):
    n_seq = len(tokens) // n_pos
    kvs = [kv_str("gemmac.ref.variant", "fuzz"), kv_u32("gemmac.ref.n_seq", n_seq),
           kv_u32("gemmac.ref.n_pos", n_pos), kv_i32s("gemmac.ref.tokens", tokens)]
    rows = n_seq * n_pos
    if not k:
        return gguf(kvs, [("logits", [VOCAB, n_pos, n_seq],
                           [((i * 7) % 13) / 4.0 - 1.5 for i in range(VOCAB * rows)])])
    kvs.append(kv_i32s("gemmac.ref.topk_ids", [(i * 5) % VOCAB for i in range(k * rows)]))
    lp = [-0.5 - 0.25 * (i % k) for i in range(k * rows)]
    tensors = [("topk_logprobs", [k, n_pos, n_seq], lp)]
    if rest:
        tensors.append(("rest_logprob", [n_pos, n_seq], [-3.0] * rows))
    return gguf(kvs, tensors)


out = Path("tests/fuzz/corpus/eval")
out.mkdir(parents=True, exist_ok=True)
seeds = {
    "seed-logits": ref([1, 2, 3, 4, 5, 6], 3),
    "seed-padded": ref([1, 2, 3, 4, 5, -1, 7, -1, -1], 3),
    "seed-topk": ref([1, 2, 3, 4, 5, 6], 3, k=4),
    "seed-topk-norest": ref([9, 8, 7, 6], 2, k=2, rest=False),
}
for name, b in seeds.items():
    (out / name).write_bytes(b)
