#!/usr/bin/env python3
"""Scales every attn_q_norm.weight of a Gemma 4 GGUF by 1/sqrt(its head dim), in place.

Gemma 4 attends with query scale 1 (the trained q_norm weights carry the
scale).  `gemmac init` writes norm weights near 1, so with head_dim 256 / 512
the attention logits q.k have a standard deviation of ~16 / ~23: softmax is
nearly one-hot, and which key wins flips under any rounding.  A full-size
random-weight model is then chaotic (docs/gemma4.md "Measured": llama.cpp
against itself with an f16 instead of an f32 KV cache, KL 0.30, top-1 14 %),
and no engine comparison on it means anything.  Dividing q_norm by
sqrt(head_dim) gives the attention logits unit variance, as 1/sqrt(d)
scaling would.  Only F32 1-D tensors change; the file stays the same size
and the same for both engines.

    /opt/llamaenv/bin/python scripts/temper_qnorm.py /tmp/e2b-q4_0.gguf
"""
import sys

import numpy as np


def main():
    import gguf
    for path in sys.argv[1:]:
        r = gguf.GGUFReader(path, "r+")
        n = 0
        for t in r.tensors:
            if t.name.endswith("attn_q_norm.weight"):
                assert t.tensor_type == gguf.GGMLQuantizationType.F32, t.name
                hd = int(t.shape[0])
                t.data[...] = (t.data * np.float32(1 / np.sqrt(hd))).astype(np.float32)
                n += 1
        r.data.flush()
        print(f"{path}: {n} attn_q_norm tensors scaled by 1/sqrt(head_dim)")


if __name__ == "__main__":
    main()
