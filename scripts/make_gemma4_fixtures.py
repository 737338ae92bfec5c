#!/usr/bin/env python3
"""Gemma 4 reference fixtures from Hugging Face transformers for gemmac's conformance tests.

Builds tiny seeded random-weight Gemma 4 text models with transformers
(Gemma4ForCausalLM + Gemma4TextConfig, transformers >= 5.23), runs them in
float32 with attn_implementation="eager" on the same three fixed token
sequences as scripts/make_reference_fixtures.py (whose helpers this script
imports: the sequences, the forward, bf16_round, the ref.gguf writer, the
synthetic vocabulary and the entropy report), and writes, per variant, under
tests/fixtures/conformance/<variant>/:

  config.json          the text config transformers saved (what `gemmac import`
                       reads), plus "global_head_dim" and
                       "num_global_key_value_heads" as Google's published
                       config.json files have them (transformers folds them into
                       "per_layer_config" and drops them), and
                       "gemmac_embed_scale"
  model.safetensors    the weights in F32, Hugging Face names exactly as
                       transformers saves them (Gemma 4 norms hold w, used as w)
  model.gguf           the same weights, F32, in llama.cpp's gemma4 layout
                       (convert_hf_to_gguf.py Gemma4Model: names, shapes,
                       gemma4.* metadata, rope_freqs.weight, norms NOT +1), with
                       the synthetic SentencePiece vocabulary `gemmac init`
                       writes (tokenizer.ggml.model "llama", not Gemma 4's BPE)
  ref.gguf             the reference logits, every position, in exactly the
                       format make_reference_fixtures.py writes
  model-bf16.safetensors (with "st"), ref-bf16.gguf
                       (variants with "bf16" in their files: gemma4-q) the
                       weights rounded to bf16 and the f32 forward on them
  model-bf16.gguf      (with "bf16" and "gguf") model.gguf with every 2+-D
                       tensor BF16 and every 1-D tensor F32, bf16-rounded
                       (rope_freqs exact), general.file_type MOSTLY_BF16

tests/fixtures/conformance/gemma4-README.md is the contract: configs, GGUF
names/shapes/keys and the forward-pass facts read in modeling_gemma4.py.

Requirements (not installed by this script):
    pip install torch "transformers>=5.23" safetensors gguf numpy
(written with torch 2.15, transformers 5.25.0, gguf 0.19.0; the gguf package
must know MODEL_ARCH.GEMMA4, its TensorNameMap names the tensors).

Random weights are scaled up from transformers' 0.02 init so that the
next-token distributions are peaked and everything binds: matmuls
N(0, 1/fan_in), embeddings N(0, EMBED_STD), norm weights 1 + 0.3 N(0, 1)
(Gemma 4 norms use w directly), router weights N(0, 1) (its input has RMS
D^-1/2, so this gives router logits of O(1) and varying expert choices), the
router scale, per-expert scale and layer_scalar uniform in [0.5, 1.5].
"""

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_reference_fixtures as mrf  # noqa: E402

OUT = mrf.OUT
VOCAB = mrf.VOCAB
S, F = "sliding_attention", "full_attention"
ROPE = {S: {"rope_type": "default", "rope_theta": 10000.0},
        F: {"rope_type": "proportional", "partial_rotary_factor": 0.25,
            "rope_theta": 1000000.0}}

# Final-norm weight means: the tied head's logits scale with them (without
# changing the residual stream), so the distributions are peaked and the
# soft-cap binds (trained Gemma checkpoints also have large final-norm weights).
FINAL_NORM = {"gemma4-e": 2.5, "gemma4-moe": 2.5, "gemma4-q": 2.5}

# name, config, embed kind ("exact": the f32 model's sqrt(D); "bf16": the
# scale a bf16 checkpoint uses, bf16(sqrt(D))), files, what it covers
VARIANTS = [
    ("gemma4-e", dict(
        hidden_size=48, intermediate_size=48, num_hidden_layers=6,
        num_attention_heads=3, num_key_value_heads=1, head_dim=16,
        global_head_dim=32, sliding_window=8,
        layer_types=[S, S, F, S, S, F], rope_parameters=ROPE,
        final_logit_softcapping=15.0,
        hidden_size_per_layer_input=8, vocab_size_per_layer_input=VOCAB,
        num_kv_shared_layers=2, use_double_wide_mlp=True,
        attention_k_eq_v=False, enable_moe_block=False),
     "exact", {"f32", "gguf"},
     "Gemma 4 E-model: per-layer embeddings (P = 8), KV sharing (last 2 of 6 "
     "layers: local 4 reads layer 3, global 5 reads layer 2), double-wide MLP "
     "(96 = 2 x 48) on the shared layers, 3 query heads / 1 KV head, local head_dim 16 "
     "/ global 32, proportional RoPE 0.25 on globals (4 of 16 pairs), window 8, "
     "final soft-cap 15, layer_scalar != 1, exact embed scale (D = 48)"),
    ("gemma4-moe", dict(
        hidden_size=48, intermediate_size=32, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        global_head_dim=32, num_global_key_value_heads=1, sliding_window=8,
        layer_types=[S, F, S, F], rope_parameters=ROPE,
        final_logit_softcapping=15.0,
        hidden_size_per_layer_input=0, num_kv_shared_layers=0,
        use_double_wide_mlp=False, attention_k_eq_v=True,
        enable_moe_block=True, num_experts=6, top_k_experts=2,
        moe_intermediate_size=16),
     "bf16", {"f32", "gguf", "st"},
     "Gemma 4 MoE: 6 experts top-2 (width 16) beside the dense MLP (32) in "
     "every layer, router scale and per-expert scale != 1, K = V on the global "
     "layers with 1 global KV head (local 2), local head_dim 16 / global 32, "
     "proportional RoPE 0.25, window 8, final soft-cap 15, layer_scalar != 1, "
     "bf16-rounded embed scale (sqrt(48) = 6.92820 -> 6.9375)"),
    ("gemma4-q", dict(
        hidden_size=64, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        global_head_dim=32, num_global_key_value_heads=1, sliding_window=8,
        layer_types=[S, F, S, F], rope_parameters=ROPE,
        final_logit_softcapping=15.0,
        hidden_size_per_layer_input=32, vocab_size_per_layer_input=VOCAB,
        num_kv_shared_layers=2, use_double_wide_mlp=True,
        attention_k_eq_v=True, enable_moe_block=True, num_experts=4,
        top_k_experts=2, moe_intermediate_size=32),
     "exact", {"f32", "gguf", "bf16"},  # no "st": the GGUF routes only
     "Gemma 4 with quantizable widths (bf16 and Q8_0 bounds of reliability "
     "\u00a77.3): every matmul input width (64, 128, 32), the embedding row (64) "
     "and the PLE row (L*P = 128) are multiples of 32; D = 64, 4 query heads, "
     "local 2 KV heads x 16, K = V globals with 1 KV head x 32, PLE (P = 32), "
     "KV sharing (layer 2 (S) reads 0, layer 3 (F) reads 1), double-wide dense "
     "MLP (128) on the shared layers, MoE 4 experts top-2 (width 32) beside the "
     "dense MLP (64), proportional RoPE 0.25, window 8, final soft-cap 15, "
     "layer_scalar != 1, exact embed scale (sqrt(64) = 8, also exact in bf16); "
     "bf16 files: model-bf16.safetensors, model-bf16.gguf, ref-bf16.gguf"),
]


def build_model(cfg, seed, final_norm):
    import torch
    import transformers as tf
    common = dict(vocab_size=VOCAB, max_position_embeddings=64,
                  rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                  pad_token_id=0, bos_token_id=2, eos_token_id=1,
                  tie_word_embeddings=True, attn_implementation="eager")
    config = tf.Gemma4TextConfig(**{**common, **cfg})
    torch.manual_seed(seed)
    model = tf.Gemma4ForCausalLM(config).float().eval()
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape):
        return torch.rand(shape, generator=gen) + 0.5  # [0.5, 1.5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "lm_head.weight":
                continue  # tied
            if "norm" in name.split(".")[-2]:  # every Gemma4RMSNorm with a scale
                mean = final_norm if name == "model.norm.weight" else 1.0
                p.copy_(mean * (1.0 + 0.3 * torch.randn(p.shape, generator=gen)))
            elif "embed_tokens" in name:  # embed_tokens, embed_tokens_per_layer
                p.copy_(torch.randn(p.shape, generator=gen) * mrf.EMBED_STD)
            elif name.endswith("router.proj.weight"):
                p.copy_(torch.randn(p.shape, generator=gen))
            elif name.endswith(("router.scale", "router.per_expert_scale")):
                p.copy_(uniform(p.shape))
            elif p.dim() >= 2:  # [.., out, in]: N(0, 1/fan_in)
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
            else:
                raise SystemExit(f"no init rule for {name} {tuple(p.shape)}")
        for layer in model.model.layers:  # a buffer, not a parameter
            layer.layer_scalar.copy_(uniform(layer.layer_scalar.shape))
    if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        raise SystemExit("lm_head is not tied to embed_tokens")
    return config, model


def set_embed_scale(model, kind, d):
    import torch
    s = math.sqrt(d)
    if kind == "bf16":
        s = float(mrf.bf16_round(np.array([s], dtype=np.float32))[0])
    model.model.embed_tokens.embed_scale.fill_(torch.tensor(s, dtype=torch.float32))
    return s


def config_json(config, cfg, embed):
    cj = config.to_dict()
    cj["global_head_dim"] = cfg["global_head_dim"]
    cj["num_global_key_value_heads"] = cfg.get("num_global_key_value_heads")
    cj["gemmac_embed_scale"] = embed
    return cj


# ------------------------------------------------------------ GGUF (llama.cpp)

def gguf_tensors(config, cfg, state):
    """HF state dict -> {GGUF name: f32 array in torch (row-major) order},
    as convert_hf_to_gguf.py's Gemma4Model writes them (norm_shift 0)."""
    import gguf
    L = config.num_hidden_layers
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA4, L)
    out = {}
    for hf, t in state.items():
        x = t.float().numpy().astype(np.float32)
        name = hf
        if name.endswith("layer_scalar"):
            name += ".weight"  # Gemma4Model.filter_tensors
        if ".experts." in name and not name.endswith(".weight"):
            name += ".weight"
        bid = int(name.split(".")[2]) if name.startswith("model.layers.") else None
        if name.endswith("router.scale"):
            g = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.FFN_GATE_INP].format(bid=bid) + ".scale"
        elif name.endswith("router.per_expert_scale"):
            g = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.FFN_DOWN_EXP].format(bid=bid) + ".scale"
        else:
            g = tmap.get_name(name, try_suffixes=(".weight",))
            if g is None:
                raise SystemExit(f"no GGUF name for {hf}")
        out[g] = x
    # rope_freqs: freq factors of the global layers' proportional RoPE
    ghd = cfg["global_head_dim"]
    p = config.rope_parameters[F]["partial_rotary_factor"]
    n_rot = int(ghd * p / 2)
    out["rope_freqs.weight"] = np.array([1.0] * n_rot + [1e30] * (ghd // 2 - n_rot),
                                        dtype=np.float32)
    return out


def gguf_order(name):
    first = ["token_embd.weight", "rope_freqs.weight", "per_layer_token_embd.weight",
             "per_layer_model_proj.weight", "per_layer_proj_norm.weight"]
    if name in first:
        return (-10 + first.index(name), "")
    if name == "output_norm.weight":
        return (1 << 30, "")
    parts = name.split(".")
    return (int(parts[1]), ".".join(parts[2:]))


def write_model_gguf(path, config, cfg, state, bf16=False):
    """bf16: every tensor of 2+ dimensions (matmuls, embeddings, expert
    stacks, the router) is written BF16, every 1-D tensor (norms, scales,
    layer_output_scale) F32 holding the bf16-rounded value; rope_freqs, which
    the converter generates rather than reads, stays exact (1.0 / 1e30)."""
    import gguf
    layer_types = list(config.layer_types)
    swa = [t == S for t in layer_types]
    L = config.num_hidden_layers
    n_shared = config.num_kv_shared_layers
    w = gguf.GGUFWriter(str(path), "gemma4")
    w.add_string("general.name", path.parent.name)
    w.add_string("general.type", "gemmac-conformance-fixture")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16 if bf16 else gguf.LlamaFileType.ALL_F32)
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(L)
    ff = config.intermediate_size
    if config.use_double_wide_mlp:
        w.add_feed_forward_length([ff if i < L - n_shared else 2 * ff for i in range(L)])
    else:
        w.add_feed_forward_length(ff)
    w.add_head_count(cfg["num_attention_heads"])
    kv, gkv = cfg["num_key_value_heads"], cfg.get("num_global_key_value_heads")
    if gkv is not None:
        w.add_head_count_kv([kv if s else gkv for s in swa])
    else:
        w.add_head_count_kv(kv)
    w.add_key_length(cfg["global_head_dim"])
    w.add_value_length(cfg["global_head_dim"])
    w.add_key_length_swa(cfg["head_dim"])
    w.add_value_length_swa(cfg["head_dim"])
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    w.add_rope_freq_base(config.rope_parameters[F]["rope_theta"])
    w.add_rope_freq_base_swa(config.rope_parameters[S]["rope_theta"])
    w.add_rope_dimension_count(cfg["global_head_dim"])
    w.add_rope_dimension_count_swa(cfg["head_dim"])
    w.add_sliding_window(config.sliding_window)
    w.add_sliding_window_pattern(swa)
    w.add_final_logit_softcapping(config.final_logit_softcapping)
    w.add_shared_kv_layers(n_shared)
    w.add_embedding_length_per_layer_input(config.hidden_size_per_layer_input or 0)
    if config.enable_moe_block:
        w.add_expert_count(config.num_experts)
        w.add_expert_used_count(config.top_k_experts)
        w.add_expert_feed_forward_length(config.moe_intermediate_size)
    mrf.add_synthetic_tokenizer(w, "gemma3")
    tensors = gguf_tensors(config, cfg, state)
    types = {}
    for name in sorted(tensors, key=gguf_order):
        x = np.ascontiguousarray(tensors[name])
        if bf16 and name != "rope_freqs.weight":
            x = mrf.bf16_round(x)
        if bf16 and x.ndim >= 2:
            bits = (x.view(np.uint32) >> 16).astype(np.uint16)
            w.add_tensor(name, bits, raw_dtype=gguf.GGMLQuantizationType.BF16)
            types[name] = "BF16"
        else:
            w.add_tensor(name, x)
            types[name] = "F32"
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {n: (tuple(reversed(tensors[n].shape)), types[n])
            for n in sorted(tensors, key=gguf_order)}


# ------------------------------------------------------------ checks

def gguf_forward(path, seqs, embed_scale):
    """An independent float64 numpy forward from model.gguf alone (its
    metadata and tensors, the formulas of gemma4-README.md): checks the GGUF
    layout and the README's contract against transformers' logits."""
    import gguf
    r = gguf.GGUFReader(str(path))
    kv = {f.name: f.contents() for f in r.fields.values()}
    def tensor(t):
        if t.tensor_type == gguf.GGMLQuantizationType.BF16:
            bits = np.ascontiguousarray(t.data).view(np.uint16)
            bits = bits.reshape(tuple(int(n) for n in reversed(t.shape)))
            return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        return np.array(t.data, dtype=np.float64)
    T = {t.name: tensor(t) for t in r.tensors}
    a = "gemma4."
    D, L = kv[a + "embedding_length"], kv[a + "block_count"]
    H, eps = kv[a + "attention.head_count"], kv[a + "attention.layer_norm_rms_epsilon"]
    hkv = kv[a + "attention.head_count_kv"]
    hkv = hkv if isinstance(hkv, list) else [hkv] * L
    swa = kv[a + "attention.sliding_window_pattern"]
    W, cap = kv[a + "attention.sliding_window"], kv[a + "final_logit_softcapping"]
    P = kv[a + "embedding_length_per_layer_input"]
    first_shared = L - kv[a + "attention.shared_kv_layers"]
    k_used = kv.get(a + "expert_used_count")

    def rms(x, w=None):
        y = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
        return y if w is None else y * w

    def gelu(x):
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

    def rope(x, il):  # x [n, heads, hd], half-split pairs (i, i + hd/2)
        hd = x.shape[-1]
        n_rot = kv[a + ("rope.dimension_count_swa" if swa[il] else "rope.dimension_count")]
        base = kv[a + ("rope.freq_base_swa" if swa[il] else "rope.freq_base")]
        ff = np.ones(hd // 2) if swa[il] else T["rope_freqs.weight"]
        theta = (np.arange(x.shape[0])[:, None] * base ** (-2.0 * np.arange(hd // 2) / n_rot)
                 / ff)[:, None, :]
        c, s_ = np.cos(theta), np.sin(theta)
        x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
        return np.concatenate([x1 * c - x2 * s_, x2 * c + x1 * s_], -1)

    out = []
    for toks in seqs:
        n = len(toks)
        E = T["token_embd.weight"]
        x = E[toks] * embed_scale
        if P:
            tok = (T["per_layer_token_embd.weight"][toks] * math.sqrt(P)).reshape(n, L, P)
            prj = (x @ T["per_layer_model_proj.weight"].T * D ** -0.5).reshape(n, L, P)
            ple = (rms(prj, T["per_layer_proj_norm.weight"]) + tok) * 2 ** -0.5
        kvs = {}
        for il in range(L):
            b = lambda k: T.get(f"blk.{il}.{k}.weight")  # noqa: E731
            h = rms(x, b("attn_norm"))
            q = h @ b("attn_q").T
            hd = q.shape[1] // H
            q = rope(rms(q.reshape(n, H, hd), b("attn_q_norm")), il)
            if il < first_shared:
                kr = (h @ b("attn_k").T).reshape(n, hkv[il], hd)
                vr = kr if b("attn_v") is None else (h @ b("attn_v").T).reshape(n, hkv[il], hd)
                kvs[swa[il]] = (rope(rms(kr, b("attn_k_norm")), il), rms(vr))
            k, v = kvs[swa[il]]
            g = H // k.shape[1]
            t_, j_ = np.arange(n)[:, None], np.arange(n)[None, :]
            ok = (j_ <= t_) & ((t_ - j_ < W) if swa[il] else True)
            o = np.empty((n, H, hd))
            for hh in range(H):
                sc = q[:, hh] @ k[:, hh // g].T  # scale 1.0
                sc = np.where(ok, sc, -np.inf)
                p = np.exp(sc - sc.max(-1, keepdims=True))
                o[:, hh] = (p / p.sum(-1, keepdims=True)) @ v[:, hh // g]
            at = x + rms(o.reshape(n, H * hd) @ b("attn_output").T, b("post_attention_norm"))
            m = rms(at, b("ffn_norm"))
            f = (gelu(m @ b("ffn_gate").T) * (m @ b("ffn_up").T)) @ b("ffn_down").T
            if f"blk.{il}.ffn_gate_inp.weight" in T:
                f1 = rms(f, b("post_ffw_norm_1"))
                ri = rms(at) * T[f"blk.{il}.ffn_gate_inp.scale"] * D ** -0.5
                lg = ri @ b("ffn_gate_inp").T
                pr = np.exp(lg - lg.max(-1, keepdims=True))
                pr /= pr.sum(-1, keepdims=True)
                me = rms(at, b("pre_ffw_norm_2"))
                gu, dn = b("ffn_gate_up_exps"), b("ffn_down_exps")  # [E, 2I, D], [E, D, I]
                I_ = dn.shape[2]
                f2 = np.zeros_like(f)
                for t in range(n):
                    sel = np.argsort(-pr[t])[:k_used]
                    wsel = pr[t, sel] / pr[t, sel].sum() * T[f"blk.{il}.ffn_down_exps.scale"][sel]
                    for e, we in zip(sel, wsel):
                        z = gu[e] @ me[t]
                        f2[t] += we * (dn[e] @ (gelu(z[:I_]) * z[I_:]))
                f = f1 + rms(f2, b("post_ffw_norm_2"))
            y = at + rms(f, b("post_ffw_norm"))
            if P:
                z = gelu(y @ b("inp_gate").T) * ple[:, il]
                y = y + rms(z @ b("proj").T, b("post_norm"))
            x = y * b("layer_output_scale")
        lo = rms(x, T["output_norm.weight"]) @ E.T
        out.append(cap * np.tanh(lo / cap))
    return np.stack(out)


def config_roundtrip(out, state, embed_scale, seqs):
    """config.json + model.safetensors loaded back by transformers: logits."""
    import torch
    import transformers as tf
    from safetensors.torch import load_file
    cj = json.loads((out / "config.json").read_text())
    cj.pop("gemmac_embed_scale")
    config = tf.Gemma4TextConfig.from_dict(cj, attn_implementation="eager")
    model = tf.Gemma4ForCausalLM(config).float().eval()
    missing, unexpected = model.load_state_dict(load_file(str(out / "model.safetensors")),
                                                strict=False)
    if set(missing) - {"lm_head.weight"} or unexpected:
        raise SystemExit(f"round trip: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    with torch.no_grad():
        model.model.embed_tokens.embed_scale.fill_(embed_scale)
    return mrf.forward(model, seqs)

def expert_stats(model, seqs):
    """Distinct experts chosen (top-k) per MoE layer over all tokens, via hooks."""
    import torch
    chosen = {}

    def hook(i):
        def f(_mod, _inp, out):
            chosen.setdefault(i, []).append(out[2].reshape(-1, out[2].shape[-1]))
        return f
    hs = [layer.router.register_forward_hook(hook(i))
          for i, layer in enumerate(model.model.layers) if layer.enable_moe_block]
    mrf.forward(model, seqs)
    for h in hs:
        h.remove()
    res = {}
    for i, idx in chosen.items():
        idx = torch.cat(idx)
        sets = {tuple(sorted(r.tolist())) for r in idx}
        res[i] = (sorted(set(idx.reshape(-1).tolist())), len(sets))
    return res


def softcap_stats(logits, cap):
    a = np.abs(logits)
    return float(a.max()), float((a > 0.5 * cap).mean())


# What make_variant writes (and so removes first).  A variant without "st"
# in its files keeps model.safetensors only for the reload check: the
# tests read it through the GGUF routes, and the files stay small.
OWN_FILES = ("config.json", "model.safetensors", "model-bf16.safetensors", "model.gguf",
             "model-bf16.gguf", "ref.gguf", "ref-bf16.gguf")


def make_variant(name, cfg, embed, files, covers, versions):
    import torch
    from safetensors.torch import save_file
    out = OUT / name
    out.mkdir(parents=True, exist_ok=True)
    for old in OWN_FILES: # ref_llamacpp_gemma4.py's files stay
        (out / old).unlink(missing_ok=True)
    seed = mrf.SEED + sum(map(ord, name))
    config, model = build_model(cfg, seed, FINAL_NORM[name])
    scale = set_embed_scale(model, embed, config.hidden_size)
    seqs = mrf.sequences(seed, config.vocab_size)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
             if k != "lm_head.weight"}
    (out / "config.json").write_text(
        json.dumps(config_json(config, cfg, embed), indent=2, sort_keys=True) + "\n")
    meta = dict(variant=name, family="gemma4", covers=covers, dtype="f32",
                embed_scale=f"{embed} ({scale!r})", **versions)
    logits = mrf.forward(model, seqs)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    mrf.write_ref_gguf(out / "ref.gguf", seqs, logits,
                       dict(meta, jax_check="not run (no Gemma 4 JAX cross-check)",
                            **mrf.entropy_meta(logits)))
    mrf.report(name, logits, config.vocab_size)
    cap = config.final_logit_softcapping
    mx, frac = softcap_stats(logits, cap)
    print(f"  final soft-cap {cap}: max |logit| {mx:.3f} ({100 * mx / cap:.1f} % of "
          f"the cap), {100 * frac:.1f} % of logits beyond cap/2 (tanh bends them "
          f"by > 7.6 %)")
    if config.enable_moe_block:
        for i, (experts, n_sets) in expert_stats(model, seqs).items():
            print(f"  layer {i}: experts chosen {experts}, {n_sets} distinct top-"
                  f"{config.top_k_experts} sets over {seqs.size} tokens")
    print(f"  layer_scalar: " + ", ".join(
        f"{float(layer.layer_scalar):.3f}" for layer in model.model.layers))
    with torch.no_grad():
        model.config.final_logit_softcapping = None
        raw = mrf.forward(model, seqs)
        model.config.final_logit_softcapping = cap
    h_raw = mrf.entropy_stats(raw)[0]
    d = logits - raw
    print(f"  without the cap: max |logit| {np.abs(raw).max():.2f}, entropy mean "
          f"{h_raw:.2f} nats; the cap moves the logits by NMSE "
          f"{float((d ** 2).sum() / (raw ** 2).sum()):.3e}")
    rt = config_roundtrip(out, state, scale, seqs)
    print(f"  config.json + model.safetensors reloaded: max |diff| "
          f"{np.abs(rt - logits).max():.3e}")
    shapes = shapes16 = None
    if "gguf" in files:
        shapes = write_model_gguf(out / "model.gguf", config, cfg, state)
        ng = gguf_forward(out / "model.gguf", seqs, scale)
        d = ng - logits
        print(f"  independent numpy forward from model.gguf (README formulas): "
              f"NMSE {float((d ** 2).sum() / (logits.astype(np.float64) ** 2).sum()):.3e}, "
              f"max |diff| {np.abs(d).max():.3e}")
    if "bf16" in files:
        state16 = {k: v.to(torch.bfloat16) for k, v in state.items()}
        if "st" in files:
            save_file(state16, str(out / "model-bf16.safetensors"), metadata={"format": "pt"})
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(torch.bfloat16).float())
            for layer in model.model.layers:
                layer.layer_scalar.copy_(layer.layer_scalar.to(torch.bfloat16).float())
        logits16 = mrf.forward(model, seqs)
        mrf.write_ref_gguf(out / "ref-bf16.gguf", seqs, logits16,
                           dict(meta, dtype="bf16 weights, f32 forward",
                                jax_check="not run", **mrf.entropy_meta(logits16)))
        d = logits16 - logits
        print(f"  bf16 weights move the logits by NMSE "
              f"{float((d ** 2).sum() / (logits ** 2).sum()):.3e}, max |diff| "
              f"{np.abs(d).max():.3e}")
        mrf.report(name + " (bf16 weights)", logits16, config.vocab_size)
        mx, frac = softcap_stats(logits16, cap)
        print(f"  bf16 weights: max |logit| {mx:.3f}, {100 * frac:.1f} % beyond cap/2")
        if config.enable_moe_block:
            for i, (experts, n_sets) in expert_stats(model, seqs).items():
                print(f"  bf16 weights, layer {i}: experts chosen {experts}, {n_sets} "
                      f"distinct top-{config.top_k_experts} sets")
        if "gguf" in files:
            shapes16 = write_model_gguf(out / "model-bf16.gguf", config, cfg, state,
                                        bf16=True)
            ng = gguf_forward(out / "model-bf16.gguf", seqs, scale)
            d = ng - logits16
            print(f"  numpy forward from model-bf16.gguf vs the f32 forward on bf16 "
                  f"weights: NMSE "
                  f"{float((d ** 2).sum() / (logits16.astype(np.float64) ** 2).sum()):.3e}, "
                  f"max |diff| {np.abs(d).max():.3e}")
    if "st" not in files:
        (out / "model.safetensors").unlink()
    return state, shapes, shapes16


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="one variant name")
    ap.add_argument("--list", action="store_true",
                    help="print the safetensors and GGUF tensor lists")
    args = ap.parse_args()
    import torch
    import transformers
    import gguf  # noqa: F401
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    versions = dict(transformers=transformers.__version__, torch=torch.__version__,
                    script="scripts/make_gemma4_fixtures.py")
    total = 0
    for v in VARIANTS:
        if args.only and v[0] != args.only:
            continue
        state, shapes, shapes16 = make_variant(*v, versions)
        if args.list:
            for k, t in state.items():
                print(f"    hf   {k} {list(t.shape)} {str(t.dtype).replace('torch.', '')}")
            for tag, sh in (("gguf", shapes), ("bf16", shapes16)):
                for k, (s, ty) in (sh or {}).items():
                    print(f"    {tag} {k} {{{', '.join(map(str, s))}}} {ty}")
        size = sum(f.stat().st_size for f in (OUT / v[0]).iterdir())
        print(f"  {v[0]}: {size} bytes")
        total += size
    print(f"gemma4 fixtures: {total} bytes in all")
    if total > 8 * 1024 * 1024:
        sys.exit("gemma4 fixtures exceed 8 MB")


if __name__ == "__main__":
    main()
