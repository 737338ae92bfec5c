#!/usr/bin/env python3
"""Reference fixtures from Hugging Face transformers for gemmac's conformance tests.

Builds tiny seeded random-weight Gemma 1/2/3 models with transformers
(GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM + Gemma3TextConfig),
runs them in float32 with attn_implementation="eager" on three fixed token
sequences longer than the smallest sliding window, and writes, per variant,
under tests/fixtures/conformance/<variant>/:

  config.json          the transformers config (what `gemmac import` reads)
  model.safetensors    the weights in F32, Hugging Face names and conventions
                       (norm weights w, used as 1 + w)
  model-bf16.safetensors  (bf16 variants only) the same weights rounded to bf16
  model.gguf           (gemma3 only) the same weights, F32, GGUF names, norm
                       weights 1 + w, and a synthetic SentencePiece vocabulary
                       (the one `gemmac init` writes): the GGUF-path test,
                       independent of the safetensors loader
  ref.gguf             the reference: metadata gemmac.ref.tokens (INT32 array,
                       n_seq x n_pos), tensor "logits" F32 [n_vocab, n_pos,
                       n_seq] in ggml order (every position), plus metadata
                       naming the variant, what it covers and the versions
  ref-bf16.gguf        (bf16 variants with f32 weights too) the same forward,
                       in f32, on the bf16-rounded weights; a bf16-only
                       variant (gemma3-256) has that forward as ref.gguf

and tests/conformance/<variant>.yaml is written by hand (next to this script's
VARIANTS table) from the same numbers.

Requirements (not installed by this script):
    pip install torch transformers safetensors gguf numpy

Token ids are stored as a metadata array rather than an I32 tensor because
gemmac's GGUF reader accepts only the tensor types weights use.

Embedding scale.  transformers multiplies the embedding by sqrt(hidden_size)
cast to the weight dtype: exact in an f32 model, bf16-rounded in a bf16 one
(JAX and gemma.cpp always round to bf16).  The variants cover both kinds:
those marked embed="exact" are the plain f32 model (gemmac YAML
`embed_scale: exact`); those marked embed="bf16" set the model's embed_scale
buffer to bf16(sqrt(D)), which is what the same model loaded in bf16 computes
(YAML `embed_scale: bf16`).  Every variant's D has a sqrt that bf16 does not
represent exactly except gemma2's (D = 64, sqrt 8), so a wrong choice
fails the NMSE bound: bf16 is covered by gemma1-mha (D = 48) and gemma3
(D = 32), exact by gemma1-mqa and gemma3-qscale (D = 48).

Random weights are scaled up from transformers' 0.02 init (embedding std EMBED_STD,
matmuls 1/sqrt(fan_in), norm weights N(0, 0.3)) so that the next-token
distributions are peaked (entropy well below log V) and the logits exercise
the soft-caps; a near-uniform distribution would make every KL look small.

Google DeepMind's `gemma` package (JAX) cross-check (gemmac.ref.jax_check in
each ref.gguf): gemma3-256's weights go through gemma's own Transformer built
with the same tiny TransformerConfig (gemma_params maps the names and einsum
layouts), and the NMSE / max |diff| of its logits against transformers' is
recorded.  Other variants say why not (JAX_ONLY).  Installing it:
`pip install gemma` (3.3.0) did not finish: its dependency kauldron pulls
tensorflow, xmanager and google-cloud-aiplatform, and pip's resolver was
still backtracking over google-api-core versions after ~25 minutes.  What
works, in a virtualenv with --system-site-packages (so torch and
transformers stay importable):
    pip install --no-deps gemma kauldron clu tensorflow gast astunparse \
        termcolor flatbuffers lark immutabledict chex toolz ml_collections
    pip install jax flax etils einops jaxtyping kagglehub typeguard sentencepiece
and then run this script with that virtualenv's python.  Without the package
the references record "not run" and everything else is unchanged.
"""

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "conformance"
VOCAB = 512
N_SEQ = 3
N_POS = 32
SEED = 20240
EMBED_STD = 0.3
# Per-variant changes to those draws.  At D = 256 with two layers the tied
# head sees mostly the input token's own embedding (its self-logit grows with
# sqrt(D)), so every prediction is "repeat the input" with entropy ~0: a
# smaller embedding, post-norms around 3 (the layers' outputs outweigh the
# embedding in the residual) and a final norm around 6 (trained Gemma
# checkpoints also have large final-norm weights) give ~2.7 nats instead.
INIT_OF = {"gemma3-256": dict(embed_std=0.03, post_norm_mean=2.0, final_norm_mean=5.0)}

JAX_VARIANTS = {"gemma3-256"}
JAX_ONLY = ("the gemma package cross-check runs on gemma3-256 only: its "
            "TransformerConfig has no free query scale (gemma2, gemma3-qscale), "
            "scales the embedding by the exact sqrt(D) of f32 weights (gemma1-mha, "
            "gemma3 use bf16's), and Gemma 1 needs other options")
# name, family, config, embed kind, files, what it covers.  files: "f32"
# model.safetensors + ref.gguf; "bf16" model-bf16.safetensors + ref-bf16.gguf
# (next to f32) or, without f32, model-bf16.safetensors + ref.gguf (the f32
# forward on the bf16-rounded weights); "gguf" model.gguf (the GGUF-path
# test's copy, kept for one variant only, to keep the fixtures small).
VARIANTS = [
    ("gemma1-mqa", "gemma", dict(
        hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=3, num_key_value_heads=1, head_dim=16),
     "exact", {"f32"},
     "Gemma 1, MQA, 3 heads (not a power of two), H*hd=48=D, exact embed scale"),
    ("gemma1-mha", "gemma", dict(
        hidden_size=48, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, head_dim=16),
     "bf16", {"f32"},
     "Gemma 1, MHA, H*hd=64 != D=48 (like 7B), bf16-rounded embed scale"),
    ("gemma2", "gemma2", dict(
        hidden_size=64, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        sliding_window=8, query_pre_attn_scalar=24,
        attn_logit_softcapping=2.0, final_logit_softcapping=12.0,
        layer_types=["sliding_attention", "full_attention"] * 2),
     "exact", {"f32", "bf16"},
     "Gemma 2, GQA 4/2, both soft-caps (2.0 and 12.0, small enough to bend the "
     "logits), alternating sliding(8)/global, query_pre_attn_scalar 24 != "
     "head_dim 16 (a query-scale override)"),
    ("gemma3", "gemma3", dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=6,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32,
        sliding_window=8, query_pre_attn_scalar=32,
        rope_parameters={
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            "full_attention": {"rope_type": "linear", "factor": 8.0,
                               "rope_theta": 1000000.0}}),
     "bf16", {"f32", "bf16", "gguf"},
     "Gemma 3, QK-norm, 5:1 pattern (6 layers), local theta 1e4 / global 1e6 "
     "with linear RoPE scaling 8 on the global layer, window 8, bf16-rounded "
     "embed scale"),
    ("gemma3-qscale", "gemma3", dict(
        hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=3, num_key_value_heads=3, head_dim=16,
        sliding_window=5, query_pre_attn_scalar=40,
        layer_types=["sliding_attention", "full_attention"],
        rope_parameters={
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}}),
     "exact", {"f32"},
     "Gemma 3, 3 heads MHA, query_pre_attn_scalar 40 (27B-style override), "
     "window 5, exact embed scale"),
    ("gemma3-256", "gemma3", dict(
        vocab_size=256, hidden_size=256, intermediate_size=256,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        head_dim=128, sliding_window=8, query_pre_attn_scalar=128,
        layer_types=["sliding_attention", "full_attention"],
        rope_parameters={
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}}),
     "exact", {"bf16"},
     "Gemma 3, every matmul input width a multiple of 256 (D = heads x "
     "head_dim = ffn = 256) so Q4_K applies; MQA 2/1, QK-norm, sliding(8) / "
     "global; BF16 weights only, reference = f32 forward on them"),
]


def bf16_round(x):
    """Rounds a float32 array to bf16 (nearest even) and back to float32."""
    a = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    a = (a + 0x7FFF + ((a >> 16) & 1)) >> 16 << 16
    return a.astype(np.uint32).view(np.float32)


def build_model(family, cfg, seed, init):
    import torch
    import transformers as tf
    common = dict(vocab_size=VOCAB, max_position_embeddings=64,
                  rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                  pad_token_id=0, bos_token_id=2, eos_token_id=1,
                  tie_word_embeddings=True, attn_implementation="eager")
    cls = {"gemma": (tf.GemmaConfig, tf.GemmaForCausalLM),
           "gemma2": (tf.Gemma2Config, tf.Gemma2ForCausalLM),
           "gemma3": (tf.Gemma3TextConfig, tf.Gemma3ForCausalLM)}[family]
    config = cls[0](**{**common, **cfg})
    torch.manual_seed(seed)
    model = cls[1](config).float().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                mean = (init.get("post_norm_mean", 0.0) if ".post_" in name else
                        init.get("final_norm_mean", 0.0) if name == "model.norm.weight"
                        else 0.0)
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3 + mean)
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * init.get("embed_std", EMBED_STD))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
    return config, model


def embed_module(model):
    return model.model.embed_tokens


def set_embed_scale(model, kind, d):
    """kind 'bf16': the scale a bf16 checkpoint of this model uses."""
    import torch
    emb = embed_module(model)
    s = math.sqrt(d)
    if kind == "bf16":
        s = float(bf16_round(np.array([s], dtype=np.float32))[0])
    emb.embed_scale.fill_(torch.tensor(s, dtype=torch.float32))
    return s


def sequences(seed, vocab):
    rng = np.random.default_rng(seed)
    seqs = rng.integers(5, vocab, size=(N_SEQ, N_POS), dtype=np.int64)
    seqs[:, 0] = 2  # BOS
    seqs[1, 1:9] = seqs[1, 9:17]  # a repeat, so attention finds exact matches
    return seqs


def forward(model, seqs):
    import torch
    with torch.no_grad():
        out = model(input_ids=torch.tensor(seqs), use_cache=False)
    return out.logits.float().numpy()  # [n_seq, n_pos, V]


# ------------------------------------------------------------ GGUF writing

def gguf_name(family, hf):
    """GGUF tensor name of a Hugging Face parameter name (docs/models.md#gguf-tensors)."""
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    parts = hf.split(".")
    n, rest = parts[2], ".".join(parts[3:])
    table = {
        "input_layernorm.weight": "attn_norm",
        "self_attn.q_proj.weight": "attn_q",
        "self_attn.k_proj.weight": "attn_k",
        "self_attn.v_proj.weight": "attn_v",
        "self_attn.o_proj.weight": "attn_output",
        "self_attn.q_norm.weight": "attn_q_norm",
        "self_attn.k_norm.weight": "attn_k_norm",
        "post_attention_layernorm.weight":
            "ffn_norm" if family == "gemma" else "post_attention_norm",
        "pre_feedforward_layernorm.weight": "ffn_norm",
        "post_feedforward_layernorm.weight": "post_ffw_norm",
        "mlp.gate_proj.weight": "ffn_gate",
        "mlp.up_proj.weight": "ffn_up",
        "mlp.down_proj.weight": "ffn_down",
    }
    return f"blk.{n}.{table[rest]}.weight"


def synthetic_vocab(family):
    """The vocabulary `gemmac init` writes (compiler/init.c vb_fill)."""
    normal, unknown, control, unused, byte = 1, 2, 3, 5, 6
    pieces, types = [], []

    def add(p, t):
        if len(pieces) < VOCAB:
            pieces.append(p)
            types.append(t)
    for i, p in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]):
        add(p, unknown if i == 3 else control)
    sot = 105 if family == "gemma3" else 106
    while len(pieces) < sot:
        add(f"<unused{len(pieces) - 5}>", control)
    add("<start_of_turn>", control)
    add("<end_of_turn>", control)
    for b in range(256):
        add(f"<0x{b:02X}>", byte)
    add("\u2581", normal)
    for c in range(0x21, 0x7F):
        add(chr(c), normal)
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    for ch in letters:
        add("\u2581" + ch, normal)
    for a in letters:
        for b in letters:
            add(a + b, normal)
    k = 0
    while len(pieces) < VOCAB:
        add(f"<synthetic{k}>", unused)
        k += 1
    scores = [-float(i) if t == normal else 0.0 for i, t in enumerate(types)]
    return pieces, scores, types


def add_synthetic_tokenizer(w, family):
    """The tokenizer.ggml.* keys of the synthetic SentencePiece vocabulary
    (`gemmac init`'s), as every fixture model.gguf carries them."""
    pieces, scores, types = synthetic_vocab(family)
    w.add_string("tokenizer.ggml.model", "llama")
    w.add_array("tokenizer.ggml.tokens", pieces)
    w.add_array("tokenizer.ggml.scores", scores)
    w.add_array("tokenizer.ggml.token_type", types)
    w.add_uint32("tokenizer.ggml.bos_token_id", 2)
    w.add_uint32("tokenizer.ggml.eos_token_id", 1)
    w.add_uint32("tokenizer.ggml.unknown_token_id", 3)
    w.add_uint32("tokenizer.ggml.padding_token_id", 0)
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_bool("tokenizer.ggml.add_space_prefix", False)


def write_model_gguf(path, family, config, state):
    import gguf
    w = gguf.GGUFWriter(str(path), family)
    a = family
    w.add_string("general.name", path.parent.name)
    w.add_string("general.type", "gemmac-conformance-fixture")
    w.add_uint32(f"{a}.context_length", config.max_position_embeddings)
    w.add_uint32(f"{a}.embedding_length", config.hidden_size)
    w.add_uint32(f"{a}.block_count", config.num_hidden_layers)
    w.add_uint32(f"{a}.feed_forward_length", config.intermediate_size)
    w.add_uint32(f"{a}.attention.head_count", config.num_attention_heads)
    w.add_uint32(f"{a}.attention.head_count_kv", config.num_key_value_heads)
    w.add_uint32(f"{a}.attention.key_length", config.head_dim)
    w.add_uint32(f"{a}.attention.value_length", config.head_dim)
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", config.rms_norm_eps)
    add_synthetic_tokenizer(w, family)
    tensors = {}
    for hf, t in state.items():
        if hf == "lm_head.weight":
            continue  # tied
        x = t.float().numpy().astype(np.float32)
        if hf.endswith("norm.weight"):
            x = (x + np.float32(1.0)).astype(np.float32)  # docs/models.md#norm-plus-one: GGUF stores 1 + w
        tensors[gguf_name(family, hf)] = x
    for name in sorted(tensors, key=gguf_order):
        w.add_tensor(name, np.ascontiguousarray(tensors[name]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gguf_order(name):
    if name == "token_embd.weight":
        return (-1, "")
    if name == "output_norm.weight":
        return (1 << 30, "")
    parts = name.split(".")
    return (int(parts[1]), parts[2])


def write_ref_gguf(path, seqs, logits, meta):
    import gguf
    w = gguf.GGUFWriter(str(path), "gemmac-reference")
    w.add_string("gemmac.ref.kind", "logits")
    w.add_uint32("gemmac.ref.n_seq", seqs.shape[0])
    w.add_uint32("gemmac.ref.n_pos", seqs.shape[1])
    w.add_uint32("gemmac.ref.n_vocab", logits.shape[2])
    w.add_array("gemmac.ref.tokens", [int(x) for x in seqs.reshape(-1)])
    for k, v in meta.items():
        w.add_string(f"gemmac.ref.{k}", str(v))
    # numpy [n_seq, n_pos, V] is ggml ne [V, n_pos, n_seq]
    w.add_tensor("logits", np.ascontiguousarray(logits, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ------------------------------------------------------------ main

def entropy_stats(logits):
    lp = logits - logits.max(-1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    h = -(np.exp(lp) * lp).sum(-1)
    return float(h.mean()), float(h.min()), float(h.max())


def make_variant(name, family, cfg, embed, files, covers, versions, jax_check):
    import torch
    from safetensors.torch import save_file
    out = OUT / name
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # a variant's file set may have changed
        old.unlink()
    seed = SEED + sum(map(ord, name))
    config, model = build_model(family, cfg, seed, INIT_OF.get(name, {}))
    scale = set_embed_scale(model, embed, config.hidden_size)
    seqs = sequences(seed, config.vocab_size)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
             if k != "lm_head.weight"}
    cj = config.to_dict()
    cj["gemmac_embed_scale"] = embed
    (out / "config.json").write_text(json.dumps(cj, indent=2, sort_keys=True) + "\n")
    meta = dict(variant=name, family=family, covers=covers, dtype="f32",
                embed_scale=f"{embed} ({scale!r})", **versions)
    logits = None
    if "f32" in files:
        logits = forward(model, seqs)
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
        jax = jax_check(name, family, config, state, seqs, logits)
        write_ref_gguf(out / "ref.gguf", seqs, logits, dict(meta, jax_check=jax,
                                                            **entropy_meta(logits)))
        report(name, logits, config.vocab_size)
    if "gguf" in files:
        write_model_gguf(out / "model.gguf", family, config, state)
    if "bf16" in files:
        state16 = {k: v.to(torch.bfloat16) for k, v in state.items()}
        save_file(state16, str(out / "model-bf16.safetensors"), metadata={"format": "pt"})
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(torch.bfloat16).float())
        logits16 = forward(model, seqs)
        state_r = {k: v.to(torch.bfloat16).float() for k, v in state.items()}
        jax = jax_check(name, family, config, state_r, seqs, logits16)
        meta16 = dict(meta, dtype="bf16 weights, f32 forward", jax_check=jax,
                      **entropy_meta(logits16))
        write_ref_gguf(out / ("ref-bf16.gguf" if logits is not None else "ref.gguf"),
                       seqs, logits16, meta16)
        if logits is not None:
            d = logits16 - logits
            print(f"  bf16 weights move the logits by NMSE "
                  f"{float((d ** 2).sum() / (logits ** 2).sum()):.3e}")
        else:
            report(name + " (bf16 weights)", logits16, config.vocab_size)


def entropy_meta(logits):
    h = entropy_stats(logits)
    return dict(entropy=f"mean {h[0]:.3f} min {h[1]:.3f} max {h[2]:.3f} nats")


def report(name, logits, vocab):
    h = entropy_stats(logits)
    print(f"{name}: logits std {logits.std():.3f}, entropy mean/min/max "
          f"{h[0]:.2f}/{h[1]:.2f}/{h[2]:.2f} nats (log V = {math.log(vocab):.2f})")


def jax_check(name, family, config, state, seqs, logits):
    """Runs the same weights through Google DeepMind's `gemma` package (JAX)
    and returns what gemmac.ref.jax_check records: NMSE and max |diff| of
    its logits against transformers', or why it was not run."""
    if name not in JAX_VARIANTS:
        return f"not run for this variant ({JAX_ONLY})"
    try:
        import jax
        import jax.numpy as jnp
        from gemma import gm
        from gemma.gm.nn import _config, _modules
    except ImportError as e:
        return f"not run: the gemma package does not import here ({e})"
    jax.config.update("jax_default_matmul_precision", "highest")
    kinds = {"sliding_attention": _modules.AttentionType.LOCAL_SLIDING,
             "full_attention": _modules.AttentionType.GLOBAL}
    rope = config.rope_parameters
    cfg = _config.TransformerConfig(
        final_logit_softcap=None, num_embed=config.vocab_size,
        embed_dim=config.hidden_size, hidden_dim=config.intermediate_size,
        num_heads=config.num_attention_heads, head_dim=config.head_dim,
        num_kv_heads=config.num_key_value_heads, use_post_attn_norm=True,
        use_post_ffw_norm=True, use_qk_norm=True,
        attention_types=[kinds[t] for t in config.layer_types],
        sliding_window_size=config.sliding_window, transpose_gating_einsum=True,
        local_base_frequency=int(rope["sliding_attention"]["rope_theta"]),
        global_base_frequency=int(rope["full_attention"]["rope_theta"]))
    params = gemma_params(config, {k: v.float().numpy() for k, v in state.items()})
    model = gm.nn.Transformer(config=cfg)
    out = model.apply({"params": params}, jnp.asarray(seqs, dtype=jnp.int32))
    jl = np.asarray(out.logits, dtype=np.float64)
    d = jl - logits
    nmse = (d ** 2).sum(-1) / (logits.astype(np.float64) ** 2).sum(-1)
    agree = float((jl.argmax(-1) == logits.argmax(-1)).mean())
    return (f"gemma {gemma_version()} (jax {jax.__version__}), f32, highest matmul "
            f"precision: NMSE max {nmse.max():.3e} mean {nmse.mean():.3e}, max |diff| "
            f"{np.abs(d).max():.3e}, argmax agreement {100 * agree:.1f} %")


def gemma_version():
    from importlib.metadata import version
    return version("gemma")


def gemma_params(config, w):
    """The gemma package's parameter tree from HF-named f32 arrays (its
    einsum layouts: q [H, D, hd], kv [2, KV, D, hd], out [H, hd, D], gating
    [2, F, D], linear [F, D]; norms hold w, used as 1 + w like HF)."""
    H, KV, hd = config.num_attention_heads, config.num_key_value_heads, config.head_dim
    D = config.hidden_size

    def heads(m, n):  # [n*hd, D] -> [n, D, hd]
        return m.reshape(n, hd, D).transpose(0, 2, 1)
    p = {"embedder": {"input_embedding": w["model.embed_tokens.weight"]},
         "final_norm": {"scale": w["model.norm.weight"]}}
    for i in range(config.num_hidden_layers):
        g = lambda k: w[f"model.layers.{i}.{k}.weight"]  # noqa: E731
        p[f"layer_{i}"] = {
            "attn": {"q_einsum": {"w": heads(g("self_attn.q_proj"), H)},
                     "kv_einsum": {"w": np.stack([heads(g("self_attn.k_proj"), KV),
                                                  heads(g("self_attn.v_proj"), KV)])},
                     "attn_vec_einsum": {"w": g("self_attn.o_proj").T.reshape(H, hd, D)},
                     "_query_norm": {"scale": g("self_attn.q_norm")},
                     "_key_norm": {"scale": g("self_attn.k_norm")}},
            "mlp": {"gating_einsum": np.stack([g("mlp.gate_proj"), g("mlp.up_proj")]),
                    "linear": g("mlp.down_proj").T},
            "pre_attention_norm": {"scale": g("input_layernorm")},
            "post_attention_norm": {"scale": g("post_attention_layernorm")},
            "pre_ffw_norm": {"scale": g("pre_feedforward_layernorm")},
            "post_ffw_norm": {"scale": g("post_feedforward_layernorm")}}
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="one variant name")
    args = ap.parse_args()
    import torch
    import transformers
    import gguf  # noqa: F401
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    versions = dict(transformers=transformers.__version__, torch=torch.__version__,
                    script="scripts/make_reference_fixtures.py")
    for v in VARIANTS:
        if args.only and v[0] != args.only:
            continue
        make_variant(*v, versions, jax_check)
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"{OUT}: {total} bytes in all")
    if total > 6 * 1024 * 1024:
        sys.exit("fixtures exceed 6 MB")


if __name__ == "__main__":
    main()
