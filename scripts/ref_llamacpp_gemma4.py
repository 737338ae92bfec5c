#!/usr/bin/env python3
"""llama.cpp anchor files for the Gemma 4 conformance fixtures.

The Gemma 4 counterpart of scripts/ref_llamacpp_quant.py (whose functions it
imports: read_ref, quantize, run, kl_stats, sha256): the fixtures' model.gguf
is already an F32 GGUF in llama.cpp's gemma4 layout
(scripts/make_gemma4_fixtures.py), so for each variant below this script

 1. runs llama.cpp on model.gguf over ref.gguf's three token sequences and
    checks that its logits match the transformers reference (NMSE max <=
    F32_NMSE_MAX, argmax equal at every position),
 2. quantizes model.gguf with llama_model_quantize (pure; the tied embedding
    Q8_0, as llama.cpp makes an output head whose width is not a multiple of
    256; llama.cpp itself leaves the router ffn_gate_inp.weight and every
    1-D tensor in F32),
 3. runs llama.cpp on each quantized file and writes, next to the fixture,

        llamacpp-<type>.gguf       the quantized model as llama.cpp wrote it
        ref-llamacpp-<type>.gguf   llama.cpp's full logits on it (reference
                                   format of docs/conformance.md)

and prints the tensor types of each quantized file (the graph's quant:
section must match them: tests/test_conformance.c,
test_conformance_gemma4_llamacpp_anchor).

Variants: gemma4-q (Q8_0, Q4_0: every matmul width and both tables are
multiples of 32) and gemma4-moe (F32 check only: D = 48 admits no 32-wide
block, so llama.cpp cannot quantize its matmuls to Q8_0 or Q4_0).  gemma4-e
is left out: llama.cpp 0c1e570 asserts on its KV-sharing layout (it assumes
the last two unshared layers are local then global; gemma4-e's are global
then local).

    /opt/llamaenv/bin/python scripts/ref_llamacpp_gemma4.py     # seconds
"""

import argparse
import json
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_reference_fixtures as mrf  # noqa: E402  (write_ref_gguf)
import ref_llamacpp_quant as rq  # noqa: E402  (read_ref, quantize, run, kl_stats, sha256)

FIX = rq.FIX
F32_NMSE_MAX = rq.F32_NMSE_MAX
# variant -> quantized types (an empty list: the F32 check only)
VARIANTS = {
    "gemma4-q": ["q8_0", "q4_0"],
    "gemma4-moe": [],
}


def tensor_types(path):
    """{type name: [tensor names]} of a GGUF file."""
    import gguf
    r = gguf.GGUFReader(str(path))
    out = collections.defaultdict(list)
    for t in r.tensors:
        out[t.tensor_type.name.lower()].append(t.name)
    return dict(out)


def make_variant(llama_cpp, variant):
    d = FIX / variant
    seqs, ref = rq.read_ref(d / "ref.gguf")
    print(f"{variant}: model.gguf, {seqs.shape[0]} sequences of {seqs.shape[1]} tokens")
    logits, settings = rq.run(llama_cpp, d / "model.gguf", seqs)
    kl, klmax, top1, nmse = rq.kl_stats(ref, logits)
    print(f"  f32   llama.cpp vs transformers: NMSE max {nmse:.2e}, KL mean {kl:.2e} "
          f"max {klmax:.2e}, top-1 {100 * top1:.1f} %")
    if not (nmse <= F32_NMSE_MAX and top1 == 1.0):
        sys.exit(f"{variant}: llama.cpp's F32 run does not match the reference "
                 f"(NMSE {nmse:.3g} > {F32_NMSE_MAX} or argmax differs)")
    for q in VARIANTS[variant]:
        model = d / f"llamacpp-{q}.gguf"

        width = json.loads((d / "config.json").read_text())["hidden_size"]
        rq.quantize(llama_cpp, d / "model.gguf", model, q, width)
        types = tensor_types(model)
        for ty, names in sorted(types.items()):
            shown = ", ".join(sorted({n.split(".", 2)[-1] if n.startswith("blk.") else n
                                      for n in names}))
            print(f"  {q:5} {ty:5} {len(names):3} tensors: {shown}")
        logits, settings = rq.run(llama_cpp, model, seqs)
        kl, klmax, top1, nmse = rq.kl_stats(ref, logits)
        print(f"  {q:5} llama.cpp vs transformers: KL mean {kl:.4e} max {klmax:.3e}, "
              f"top-1 {100 * top1:.1f} %  ({model.stat().st_size} bytes)")
        meta = dict(variant=variant, dtype=f"{q} (llama.cpp's quantizer)",
                    source=f"llama-cpp-python {llama_cpp.__version__} on {model.name} "
                           f"(sha256 {rq.sha256(model)})",
                    settings=settings, script="scripts/ref_llamacpp_gemma4.py",
                    kl_vs_transformers=f"mean {kl:.6e} max {klmax:.6e} top-1 {top1:.4f}")
        mrf.write_ref_gguf(d / f"ref-llamacpp-{q}.gguf", seqs, logits, meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=sorted(VARIANTS), help="one variant")
    args = ap.parse_args()
    import llama_cpp
    llama_cpp.llama_backend_init()
    for v in VARIANTS:
        if not args.only or v == args.only:
            make_variant(llama_cpp, v)
    total = sum(f.stat().st_size for v in VARIANTS for f in (FIX / v).glob("*llamacpp-*"))
    print(f"llama.cpp files: {total} bytes in all")


if __name__ == "__main__":
    main()
