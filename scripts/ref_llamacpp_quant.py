#!/usr/bin/env python3
"""llama.cpp-quantized copies of conformance fixtures, and llama.cpp's logits on them.

docs/input-checks.md §7.3 grades Q8_0 / Q4_K / Q4_0 by mean KL from the f32
reference, with bounds measured on trained models, "and no more than 10 %
worse than llama.cpp on the same GGUF and text (the tightest fair anchor)".
The conformance fixtures are random-weight models on which 4-bit KL is far
above the trained-model bounds (docs/conformance.md), so this script makes
the anchor: for each variant below it

 1. writes the fixture's checkpoint as an F32 GGUF that llama.cpp loads
    (architecture metadata from config.json, GGUF names and norm weights
    1 + w as make_reference_fixtures.write_model_gguf maps them, docs/models.md
    #gguf-tensors and #norm-plus-one, and a synthetic vocabulary, see vocabulary(); the sequences are
    fed as ids, so no tokenizer is used),
 2. runs llama.cpp on it and checks that its logits match the transformers
    reference (ref.gguf) within F32_NMSE_MAX with the same argmax at every
    position: this is what shows that llama.cpp reads the metadata as
    transformers' config means it (sliding pattern, RoPE bases, query scale),
 3. quantizes it with llama.cpp's own quantizer (llama_model_quantize, pure:
    every matmul weight of the type, the tied embedding Q6_K for the 4-bit
    types as llama.cpp's default recipes make an output head, Q8_0 for
    Q8_0; llama.cpp itself falls back to Q8_0 where a row is not a multiple
    of 256; no importance matrix),
 4. runs llama.cpp on each quantized file over the three token sequences of
    ref.gguf (each from position 0, one batch, logits at every position)

and writes, next to the fixture,

    llamacpp-<type>.gguf       the quantized model as llama.cpp wrote it
    ref-llamacpp-<type>.gguf   llama.cpp's full logits on it, in the reference
                               format of docs/conformance.md (`gemmac eval
                               --ref` reads it; same gemmac.ref.tokens)

tests/test_conformance.c loads each llamacpp-<type>.gguf in gemmac and
requires KL(transformers || gemmac) <= 1.10 x KL(transformers || llama.cpp),
the latter computed from ref-llamacpp-<type>.gguf at test time.

llama.cpp settings: n_ctx 64 (the fixtures' context; llama.cpp pads it to
256), one batch of 32 per sequence after clearing the KV cache, KV cache f32
(the fixtures' graphs have kv_cache: f32), flash attention off, 2 threads.  llama.cpp rounds every quantized matmul's activations to 8 bits
(Q8_0 / Q8_K blocks); gemmac's generic target keeps them in f32.

Variants: gemma3-256 (Q8_0, Q4_0, Q4_K) and gemma3 (Q8_0, Q4_0; its width
32 admits no K-quant).  gemma2's query_pre_attn_scalar 24 != head_dim 16 is
a scale llama.cpp's gemma2 graph does not take from the file (it uses
1/sqrt(head_dim) except for the 27B), and the Gemma 1 variants are not
quantized at load in the suite, so they are left out.

    pip install llama-cpp-python gguf numpy     # 0.3.36 made the fixtures
    python3 scripts/ref_llamacpp_quant.py       # a few seconds; writes the files above
    python3 scripts/ref_llamacpp_quant.py --only gemma3-256 --keep-f32 /tmp/f32.gguf
"""

import argparse
import hashlib
import json
import os
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_reference_fixtures as mrf  # noqa: E402  (gguf_name, synthetic_vocab, write_ref_gguf)

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "conformance"
N_THREADS = 2
F32_NMSE_MAX = 1e-4
# variant -> (checkpoint, quantized types)
VARIANTS = {
    "gemma3-256": ("model-bf16.safetensors", ["q8_0", "q4_0", "q4_k"]),
    "gemma3": ("model.safetensors", ["q8_0", "q4_0"]),
}


def read_safetensors(path):
    """{name: float32 array} from an F32 or BF16 safetensors file (bf16 is
    widened exactly), without torch."""
    raw = Path(path).read_bytes()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    body = memoryview(raw)[8 + hlen:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        if info["dtype"] == "F32":
            x = np.frombuffer(body[a:b], dtype="<f4")
        elif info["dtype"] == "BF16":
            x = (np.frombuffer(body[a:b], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            sys.exit(f"{path}: {name} is {info['dtype']}; expected F32 or BF16")
        out[name] = x.reshape(info["shape"]).astype(np.float32)
    return out


def read_ref(path):
    """(tokens [n_seq, n_pos], logits [n_seq, n_pos, V]) of a reference GGUF."""
    import gguf
    r = gguf.GGUFReader(str(path))
    n_seq = int(r.fields["gemmac.ref.n_seq"].contents())
    n_pos = int(r.fields["gemmac.ref.n_pos"].contents())
    tokens = np.array(r.fields["gemmac.ref.tokens"].contents(), dtype=np.int32)
    logits = next(t for t in r.tensors if t.name == "logits")
    return tokens.reshape(n_seq, n_pos), np.array(logits.data, dtype=np.float32)


def vocabulary(n):
    """(pieces, scores, types) of a synthetic vocabulary both loaders accept.
    The sequences are fed as ids, so no tokenizer ever reads it; gemmac
    requires all 256 byte tokens of a SentencePiece vocabulary.  n = 512:
    the one `gemmac init` writes (make_reference_fixtures.synthetic_vocab,
    also in gemma3's model.gguf).  n = 256 leaves room for nothing but the
    byte tokens <0x00>..<0xFF>, so <bos> = 2, <eos> = 1, <unk> = 3 and
    <pad> = 0 (the default ids) are bytes too."""
    if n == mrf.VOCAB:
        return mrf.synthetic_vocab("gemma3")
    if n != 256:
        sys.exit(f"no synthetic vocabulary of {n} tokens")
    byte = 6  # SentencePiece token type BYTE
    return [f"<0x{b:02X}>" for b in range(n)], [0.0] * n, [byte] * n


def write_f32_gguf(path, variant, config, state):
    """The checkpoint as an F32 GGUF with the metadata llama.cpp's gemma3
    loader reads."""
    import gguf
    a = "gemma3"
    if config["model_type"] != "gemma3_text":
        sys.exit(f"{variant}: only Gemma 3 fixtures are supported")
    w = gguf.GGUFWriter(str(path), a)
    w.add_string("general.name", variant)
    w.add_uint32("general.file_type", 0)  # ALL_F32
    w.add_uint32(f"{a}.context_length", config["max_position_embeddings"])
    w.add_uint32(f"{a}.embedding_length", config["hidden_size"])
    w.add_uint32(f"{a}.block_count", config["num_hidden_layers"])
    w.add_uint32(f"{a}.feed_forward_length", config["intermediate_size"])
    w.add_uint32(f"{a}.attention.head_count", config["num_attention_heads"])
    w.add_uint32(f"{a}.attention.head_count_kv", config["num_key_value_heads"])
    w.add_uint32(f"{a}.attention.key_length", config["head_dim"])
    w.add_uint32(f"{a}.attention.value_length", config["head_dim"])
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", config["rms_norm_eps"])
    w.add_uint32(f"{a}.attention.sliding_window", config["sliding_window"])
    types = config["layer_types"]
    w.add_array(f"{a}.attention.sliding_window_pattern",
                [t == "sliding_attention" for t in types])
    rope = config["rope_parameters"]
    w.add_uint32(f"{a}.rope.dimension_count", config["head_dim"])
    w.add_float32(f"{a}.rope.freq_base", rope["full_attention"]["rope_theta"])
    w.add_float32(f"{a}.rope.freq_base_swa", rope["sliding_attention"]["rope_theta"])
    if rope["sliding_attention"].get("rope_type", "default") != "default":
        sys.exit(f"{variant}: llama.cpp does not scale the sliding layers' RoPE")
    if rope["full_attention"].get("rope_type", "default") == "linear":
        w.add_string(f"{a}.rope.scaling.type", "linear")
        w.add_float32(f"{a}.rope.scaling.factor", rope["full_attention"]["factor"])
    pieces, scores, ttypes = vocabulary(config["vocab_size"])
    w.add_string("tokenizer.ggml.model", "llama")
    w.add_array("tokenizer.ggml.tokens", pieces)
    w.add_array("tokenizer.ggml.scores", scores)
    w.add_array("tokenizer.ggml.token_type", ttypes)
    w.add_uint32("tokenizer.ggml.bos_token_id", 2)
    w.add_uint32("tokenizer.ggml.eos_token_id", 1)
    w.add_uint32("tokenizer.ggml.unknown_token_id", 3)
    w.add_uint32("tokenizer.ggml.padding_token_id", 0)
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_bool("tokenizer.ggml.add_space_prefix", False)
    tensors = {}
    for hf, x in state.items():
        if hf == "lm_head.weight":
            continue  # tied
        if hf.endswith("norm.weight"):
            x = (x + np.float32(1.0)).astype(np.float32)  # docs/models.md#norm-plus-one: GGUF stores 1 + w
        tensors[mrf.gguf_name("gemma3", hf)] = x
    for name in sorted(tensors, key=mrf.gguf_order):
        w.add_tensor(name, np.ascontiguousarray(tensors[name]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def quantize(llama_cpp, src, dst, qtype, width):
    ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
             "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
             "q4_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_S}[qtype]
    p = llama_cpp.llama_model_quantize_default_params()
    p.nthread = N_THREADS
    p.ftype = ftype
    p.pure = True
    if qtype != "q8_0":
        p.token_embedding_type = (llama_cpp.GGML_TYPE_Q6_K if width % 256 == 0
                                  else llama_cpp.GGML_TYPE_Q8_0)
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), p)
    if rc != 0:
        sys.exit(f"llama_model_quantize({qtype}) failed: {rc}")


def run(llama_cpp, model, seqs):
    """llama.cpp's logits [n_seq, n_pos, V], each sequence from position 0."""
    n_seq, n_pos = seqs.shape
    llm = llama_cpp.Llama(model_path=str(model), n_ctx=64, n_batch=n_pos, n_ubatch=n_pos,
                          n_threads=N_THREADS, n_threads_batch=N_THREADS,
                          type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32,
                          flash_attn=False, seed=0, verbose=False)
    V = llm.n_vocab()
    batch = llama_cpp.llama_batch_init(n_pos, 0, 1)
    out = np.zeros((n_seq, n_pos, V), dtype=np.float32)
    try:
        for s in range(n_seq):
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
            batch.n_tokens = n_pos
            for i, t in enumerate(seqs[s]):
                batch.token[i] = int(t)
                batch.pos[i] = i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = 1
            if llama_cpp.llama_decode(llm.ctx, batch) != 0:
                sys.exit(f"{model}: llama_decode failed on sequence {s}")
            for i in range(n_pos):
                out[s, i] = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i),
                                                  shape=(V,))
    finally:
        llama_cpp.llama_batch_free(batch)
    cp = llm.context_params
    settings = (f"n_ctx {llama_cpp.llama_n_ctx(llm.ctx)}, one batch of {n_pos} per sequence, {N_THREADS} threads, "
                f"type_k {cp.type_k}, type_v {cp.type_v} (ggml ids; 0 = f32), "
                f"flash_attn_type {cp.flash_attn_type}")
    del llm
    return out, settings


def kl_stats(ref, ours):
    """Mean and max KL(softmax(ref) || softmax(ours)) over positions, top-1
    agreement and NMSE max, in float64."""
    r = ref.reshape(-1, ref.shape[-1]).astype(np.float64)
    o = ours.reshape(-1, ours.shape[-1]).astype(np.float64)

    def log_softmax(x):
        m = x.max(axis=1, keepdims=True)
        return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    lr, lo = log_softmax(r), log_softmax(o)
    kl = (np.exp(lr) * (lr - lo)).sum(axis=1)
    nmse = ((o - r) ** 2).sum(axis=1) / (r ** 2).sum(axis=1)
    top1 = (r.argmax(axis=1) == o.argmax(axis=1)).mean()
    return kl.mean(), kl.max(), top1, nmse.max()


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def make_variant(llama_cpp, variant, keep_f32):
    ckpt, qtypes = VARIANTS[variant]
    d = FIX / variant
    config = json.loads((d / "config.json").read_text())
    state = read_safetensors(d / ckpt)
    seqs, ref = read_ref(d / "ref.gguf")
    print(f"{variant}: {ckpt}, {seqs.shape[0]} sequences of {seqs.shape[1]} tokens")
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(keep_f32) if keep_f32 else Path(tmp) / "f32.gguf"
        write_f32_gguf(f32, variant, config, state)
        logits, settings = run(llama_cpp, f32, seqs)
        kl, klmax, top1, nmse = kl_stats(ref, logits)
        print(f"  f32   llama.cpp vs transformers: NMSE max {nmse:.2e}, KL mean {kl:.2e}, "
              f"top-1 {100 * top1:.1f} %")
        if not (nmse <= F32_NMSE_MAX and top1 == 1.0):
            sys.exit(f"{variant}: llama.cpp's F32 run does not match the reference "
                     f"(NMSE {nmse:.3g} > {F32_NMSE_MAX} or argmax differs): the GGUF "
                     f"metadata is not read as config.json means it")
        for q in qtypes:
            model = d / f"llamacpp-{q}.gguf"
            quantize(llama_cpp, f32, model, q, config["hidden_size"])
            logits, settings = run(llama_cpp, model, seqs)
            kl, klmax, top1, nmse = kl_stats(ref, logits)
            print(f"  {q:5} llama.cpp vs transformers: KL mean {kl:.4e} max {klmax:.3e}, "
                  f"top-1 {100 * top1:.1f} %  ({model.stat().st_size} bytes)")
            meta = dict(variant=variant, dtype=f"{q} (llama.cpp's quantizer)",
                        source=f"llama-cpp-python {llama_cpp.__version__} on {model.name} "
                               f"(sha256 {sha256(model)})",
                        settings=settings, script="scripts/ref_llamacpp_quant.py",
                        kl_vs_transformers=f"mean {kl:.6e} max {klmax:.6e} top-1 {top1:.4f}")
            mrf.write_ref_gguf(d / f"ref-llamacpp-{q}.gguf", seqs, logits, meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=sorted(VARIANTS), help="one variant")
    ap.add_argument("--keep-f32", metavar="PATH", help="also keep the F32 GGUF (--only)")
    args = ap.parse_args()
    if args.keep_f32 and not args.only:
        sys.exit("--keep-f32 needs --only")
    import llama_cpp
    llama_cpp.llama_backend_init()
    for v in VARIANTS:
        if not args.only or v == args.only:
            make_variant(llama_cpp, v, args.keep_f32)
    total = sum(f.stat().st_size for v in VARIANTS for f in (FIX / v).glob("*llamacpp-*"))
    print(f"llama.cpp files: {total} bytes in all")


if __name__ == "__main__":
    main()
