#!/usr/bin/env python3
"""Gemma 3n reference fixtures from Hugging Face transformers for gemmac's conformance tests.

Builds a tiny seeded random-weight Gemma 3n text model with transformers
(Gemma3nForCausalLM + Gemma3nTextConfig), runs it in float32 with
attn_implementation="eager" on the same three fixed token sequences as
scripts/make_reference_fixtures.py (whose helpers this script imports: the
sequences, the forward, the ref.gguf writer, the synthetic vocabulary and the
entropy report; and make_gemma4_fixtures.py's soft-cap report), and writes,
under tests/fixtures/conformance/gemma3n/:

  config.json          the text config transformers saved (what `gemmac import`
                       reads), plus "gemmac_embed_scale"
  model.safetensors    the weights in F32, Hugging Face names exactly as
                       transformers saves them (Gemma 3n norms hold w, used as w)
  model.gguf           the same weights, F32, in llama.cpp's gemma3n layout
                       (convert_hf_to_gguf.py Gemma3NModel: names, shapes,
                       gemma3n.* metadata, altup_proj / altup_unembd_proj
                       stacked, norms NOT +1), with the synthetic
                       SentencePiece vocabulary `gemmac init` writes
  ref.gguf             the reference logits, every position, in exactly the
                       format make_reference_fixtures.py writes

tests/fixtures/conformance/gemma3n-README.md is the contract: config, HF and
GGUF names/shapes/keys and the forward-pass facts read in modeling_gemma3n.py.

Checks run every time: config.json + model.safetensors reloaded by
transformers give the same logits; an independent float64 numpy forward that
reads only model.gguf (gguf_forward, the README's formulas) reproduces them;
entropy, the fraction of gate values zeroed by the Gaussian top-k in the
sparse layers, and soft-cap binding are printed.  --llamacpp PYTHON also
loads the model in llama.cpp (llama-cpp-python, run by that interpreter) and
reports its NMSE against transformers without failing.

Requirements (not installed by this script):
    pip install torch "transformers>=5.23" safetensors gguf numpy
(written with torch 2.15, transformers 5.25.0, gguf 0.19.0).

Random weights are scaled up from transformers' 0.02 init so that everything
binds: matmuls N(0, 1/fan_in); embeddings N(0, 0.3); norm weights and
correct_output_scale 1 + 0.3 N(0, 1) (Gemma 3n norms use w directly); the
AltUp router N(0, 1/fan_in) * D (its input is RMSNorm(x) / D, so the router
logits are O(1) and tanh bends them); prediction and correction coefficient
weights N(0, 0.2^2) (|coefficients| <~ 0.5 with |tanh| <= 1, so the four
streams mix but stay finite).
"""

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_reference_fixtures as mrf  # noqa: E402
import make_gemma4_fixtures as g4  # noqa: E402

OUT = mrf.OUT
VOCAB = mrf.VOCAB
S, F = "sliding_attention", "full_attention"
ROPE = {S: {"rope_type": "default", "rope_theta": 10000.0},
        F: {"rope_type": "default", "rope_theta": 1000000.0}}
NAME = "gemma3n"
FINAL_NORM = 2.0
COEF_STD = 0.2
CFG = dict(
    hidden_size=64, intermediate_size=64, num_hidden_layers=6,
    num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=8,
    layer_types=[S, S, S, F, S, F], rope_parameters=ROPE,
    final_logit_softcapping=15.0,
    vocab_size_per_layer_input=VOCAB, hidden_size_per_layer_input=32,
    altup_num_inputs=4, altup_active_idx=0, altup_correct_scale=True,
    laurel_rank=8, num_kv_shared_layers=2,
    activation_sparsity_pattern=[0.95, 0.95, 0.0, 0.0, 0.0, 0.0])
COVERS = ("Gemma 3n: AltUp 4 streams (router tanh, 4x4 prediction and correction "
          "coefficients, unembed projections), LAuReL rank 8, PLE (P = 32), KV "
          "sharing (last 2 of 6 layers: sliding 4 reads 2, full 5 reads 3), "
          "Gaussian top-k activation sparsity 0.95 on layers 0-1, value norm, "
          "4 query heads / 2 KV heads x 16, window 8, final soft-cap 15, exact "
          "embed scale (sqrt(64) = 8)")


def build_model(seed):
    import torch
    import transformers as tf
    common = dict(vocab_size=VOCAB, max_position_embeddings=64,
                  rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                  pad_token_id=0, bos_token_id=2, eos_token_id=1,
                  tie_word_embeddings=True, attn_implementation="eager")
    config = tf.Gemma3nTextConfig(**{**common, **CFG})
    torch.manual_seed(seed)
    model = tf.Gemma3nForCausalLM(config).float().eval()
    gen = torch.Generator().manual_seed(seed)
    D = config.hidden_size

    def randn(shape):
        return torch.randn(shape, generator=gen)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "lm_head.weight":
                continue  # tied
            last = name.split(".")[-1]
            if name.endswith("norm.weight") or last == "correct_output_scale":
                mean = FINAL_NORM if name == "model.norm.weight" else 1.0
                p.copy_(mean * (1.0 + 0.3 * randn(p.shape)))
            elif "embed_tokens" in name:  # embed_tokens, embed_tokens_per_layer
                p.copy_(randn(p.shape) * mrf.EMBED_STD)
            elif name.endswith("altup.modality_router.weight"):
                p.copy_(randn(p.shape) / math.sqrt(p.shape[-1]) * D)
            elif name.endswith(("altup.prediction_coefs.weight",
                                "altup.correction_coefs.weight")):
                p.copy_(randn(p.shape) * COEF_STD)
            elif p.dim() >= 2:  # [out, in]: N(0, 1/fan_in)
                p.copy_(randn(p.shape) / math.sqrt(p.shape[-1]))
            else:
                raise SystemExit(f"no init rule for {name} {tuple(p.shape)}")
    if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        raise SystemExit("lm_head is not tied to embed_tokens")
    clip = config.altup_coef_clip
    for layer in model.model.layers:
        for w in (layer.altup.prediction_coefs.weight, layer.altup.correction_coefs.weight):
            if float(w.detach().abs().max()) > clip:
                raise SystemExit("coefficient beyond altup_coef_clip: clipping would bind")
    return config, model


# ------------------------------------------------------------ GGUF (llama.cpp)

def gguf_tensors(config, state):
    """HF state dict -> {GGUF name: f32 array in torch (row-major) order},
    as convert_hf_to_gguf.py's Gemma3NModel writes them (norm_shift 0,
    "_scale" names get ".weight", the three altup_projections and the three
    altup_unembed_projections stacked [3, D, D] in index order)."""
    import gguf
    L = config.num_hidden_layers
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA3N, L)
    out, stacks = {}, {"altup_projections": [], "altup_unembed_projections": []}
    for hf, t in state.items():
        x = t.float().numpy().astype(np.float32)
        name = hf
        if name.endswith("_scale"):
            name += ".weight"  # Gemma3NModel.filter_tensors
        for k in stacks:
            if name.startswith(f"model.{k}."):
                stacks[k].append((int(name.split(".")[2]), x))
                break
        else:
            g = tmap.get_name(name, try_suffixes=(".weight",))
            if g is None:
                raise SystemExit(f"no GGUF name for {hf}")
            out[g] = x
    for k, v in stacks.items():
        g = tmap.get_name(f"model.{k}.weight", try_suffixes=(".weight",))
        out[g] = np.stack([x for _, x in sorted(v, key=lambda e: e[0])])
    return out


def gguf_order(name):
    first = ["token_embd.weight", "altup_proj.weight", "altup_unembd_proj.weight",
             "per_layer_token_embd.weight", "per_layer_model_proj.weight",
             "per_layer_proj_norm.weight"]
    if name in first:
        return (-10 + first.index(name), "")
    if name == "output_norm.weight":
        return (1 << 30, "")
    parts = name.split(".")
    return (int(parts[1]), ".".join(parts[2:]))


def sparsity_scales(config):
    """gemma3n.activation_sparsity_scale as Gemma3NModel computes it:
    Normal(0, 1).icdf(f32 s).item() per layer (-inf where s = 0)."""
    import torch
    nd = torch.distributions.normal.Normal(0, 1)
    return [nd.icdf(torch.tensor(s, dtype=torch.float32)).item()
            for s in config.activation_sparsity_pattern]


def write_model_gguf(path, config, state, extra=None):
    """extra: more tensors to add (the llama.cpp load test's K/V copies)."""
    import gguf
    L = config.num_hidden_layers
    w = gguf.GGUFWriter(str(path), "gemma3n")
    w.add_string("general.name", NAME)
    w.add_string("general.type", "gemmac-conformance-fixture")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(L)
    w.add_feed_forward_length(list(config.intermediate_size))
    w.add_head_count(config.num_attention_heads)
    w.add_head_count_kv(config.num_key_value_heads)
    w.add_key_length(config.head_dim)
    w.add_value_length(config.head_dim)
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    w.add_rope_freq_base(config.rope_parameters[F]["rope_theta"])
    w.add_rope_freq_base_swa(config.rope_parameters[S]["rope_theta"])
    w.add_sliding_window(config.sliding_window)
    w.add_final_logit_softcapping(config.final_logit_softcapping)
    w.add_altup_active_idx(config.altup_active_idx)
    w.add_altup_num_inputs(config.altup_num_inputs)
    w.add_embedding_length_per_layer_input(config.hidden_size_per_layer_input)
    w.add_shared_kv_layers(config.num_kv_shared_layers)
    w.add_activation_sparsity_scale(sparsity_scales(config))
    w.add_sliding_window_pattern([t == S for t in config.layer_types])
    mrf.add_synthetic_tokenizer(w, "gemma3")
    tensors = gguf_tensors(config, state)
    tensors.update(extra or {})
    for name in sorted(tensors, key=gguf_order):
        w.add_tensor(name, np.ascontiguousarray(tensors[name]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {n: tuple(reversed(tensors[n].shape)) for n in sorted(tensors, key=gguf_order)}


# ------------------------------------------------------------ checks

def gguf_forward(path, seqs, llamacpp=False):
    """An independent float64 numpy forward from model.gguf alone (its
    metadata and tensors, the formulas of gemma3n-README.md).  Returns the
    logits and, per sparse layer, the fraction of gate values zeroed.

    llamacpp=True follows llama.cpp's gemma3n graph instead where it differs:
    K/V computed on every layer below 20 (n_layer_kv_from_start hard-coded),
    sparsity on every layer below 10 with the sample std (n - 1) and
    multiplier 1.6448533535003662, and exact sqrt(sum x^2) magnitude ratios."""
    import gguf
    r = gguf.GGUFReader(str(path))
    kv = {f.name: f.contents() for f in r.fields.values()}
    T = {t.name: np.array(t.data, dtype=np.float64) for t in r.tensors}
    a = "gemma3n."
    D, L = kv[a + "embedding_length"], kv[a + "block_count"]
    H, Hkv = kv[a + "attention.head_count"], kv[a + "attention.head_count_kv"]
    hd, eps = kv[a + "attention.key_length"], kv[a + "attention.layer_norm_rms_epsilon"]
    swa = kv[a + "attention.sliding_window_pattern"]
    W, cap = kv[a + "attention.sliding_window"], kv[a + "final_logit_softcapping"]
    P, N = kv[a + "embedding_length_per_layer_input"], kv[a + "altup.num_inputs"]
    act = kv[a + "altup.active_idx"]
    spars = kv[a + "activation_sparsity_scale"]
    first_shared = L - kv[a + "attention.shared_kv_layers"]
    if llamacpp:
        first_shared = max(L, 20)
        spars = [1.6448533535003662 if il < 10 else -math.inf for il in range(L)]

    def rms(x, w=None):
        y = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
        return y if w is None else y * w

    def gelu(x):
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

    def mag(x):  # HF: sqrt(max(mean(x^2), 1e-5)); llama.cpp: sqrt(sum x^2)
        m2 = (x * x).mean(-1, keepdims=True)
        return np.sqrt(m2 * x.shape[-1]) if llamacpp else np.sqrt(np.maximum(m2, 1e-5))

    def target(x):
        m2 = (x * x).mean(-1, keepdims=True)
        return np.sqrt(m2 * x.shape[-1]) if llamacpp else np.sqrt(m2)

    def rope(x, il):  # x [n, heads, hd], half-split pairs (i, i + hd/2)
        base = kv[a + ("rope.freq_base_swa" if swa[il] else "rope.freq_base")]
        theta = (np.arange(x.shape[0])[:, None] * base ** (-2.0 * np.arange(hd // 2) / hd)
                 )[:, None, :]
        c, s_ = np.cos(theta), np.sin(theta)
        x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
        return np.concatenate([x1 * c - x2 * s_, x2 * c + x1 * s_], -1)

    out, zeroed = [], {}
    for toks in seqs:
        n = len(toks)
        E = T["token_embd.weight"]
        x0 = E[toks] * math.sqrt(D)
        # PLE, once per token
        pt = (T["per_layer_token_embd.weight"][toks] * math.sqrt(P)).reshape(n, L, P)
        pp = (x0 @ T["per_layer_model_proj.weight"].T * D ** -0.5).reshape(n, L, P)
        ple = (rms(pp, T["per_layer_proj_norm.weight"]) + pt) * 2 ** -0.5
        # AltUp streams
        xs = [x0]
        for i in range(N - 1):
            y = x0 @ T["altup_proj.weight"][i].T
            xs.append(y * target(x0) / mag(y))
        xs = np.stack(xs)  # [N, n, D]
        kvs = {}
        for il in range(L):
            b = lambda k: T.get(f"blk.{il}.{k}.weight")  # noqa: E731

            def router(z):
                return np.tanh(rms(z, b("altup_router_norm")) / D @ b("altup_router").T)
            C = (router(xs[act]) @ b("altup_predict_coef").T).reshape(n, N, N)  # C[t,i,j]
            pred = xs + np.einsum("tij,jtd->itd", C, xs)
            ap = pred[act]
            h = rms(ap, b("attn_norm"))
            laurel = h + rms(h @ b("laurel_l").T @ b("laurel_r").T, b("laurel_post_norm"))
            q = rope(rms((h @ b("attn_q").T).reshape(n, H, hd), b("attn_q_norm")), il)
            if il < first_shared:
                k = rope(rms((h @ b("attn_k").T).reshape(n, Hkv, hd), b("attn_k_norm")), il)
                v = rms((h @ b("attn_v").T).reshape(n, Hkv, hd))
                kvs[swa[il]] = (k, v)
            k, v = kvs[swa[il]]
            g = H // Hkv
            t_, j_ = np.arange(n)[:, None], np.arange(n)[None, :]
            ok = (j_ <= t_) & ((t_ - j_ < W) if swa[il] else True)
            o = np.empty((n, H, hd))
            for hh in range(H):
                sc = np.where(ok, q[:, hh] @ k[:, hh // g].T, -np.inf)  # scale 1.0
                p = np.exp(sc - sc.max(-1, keepdims=True))
                o[:, hh] = (p / p.sum(-1, keepdims=True)) @ v[:, hh // g]
            at = ap + rms(o.reshape(n, H * hd) @ b("attn_output").T, b("post_attention_norm"))
            al = (at + laurel) * 2 ** -0.5
            m = rms(al, b("ffn_norm"))
            gate = m @ b("ffn_gate").T
            if spars[il] > -math.inf:
                sd = gate.std(-1, ddof=1 if llamacpp else 0, keepdims=True)
                gate = np.maximum(gate - (gate.mean(-1, keepdims=True) + sd * spars[il]), 0)
                zeroed[il] = zeroed.get(il, []) + [float((gate == 0).mean())]
            f = (gelu(gate) * (m @ b("ffn_up").T)) @ b("ffn_down").T
            y = al + rms(f, b("post_ffw_norm"))
            c = router(y) @ b("altup_correct_coef").T + 1.0  # [n, N]
            xs = pred + c.T[:, :, None] * (y - pred[act])[None]
            pg = gelu((xs[act] * b("altup_correct_scale")) @ b("inp_gate").T) * ple[:, il]
            pj = rms(pg @ b("proj").T, b("post_norm"))
            xs[[i for i in range(N) if i != act]] += pj  # HF: corrected[1:] (act = 0)
        fin = [xs[0]]
        for i in range(N - 1):
            y = xs[i + 1] @ T["altup_unembd_proj.weight"][i].T
            fin.append(y * target(xs[0]) / mag(y))
        hfin = rms(np.mean(fin, 0), T["output_norm.weight"])
        lo = hfin @ E.T
        out.append(cap * np.tanh(lo / cap))
    return np.stack(out), {il: float(np.mean(z)) for il, z in zeroed.items()}


def config_roundtrip(out, seqs):
    """config.json + model.safetensors loaded back by transformers: logits."""
    import transformers as tf
    from safetensors.torch import load_file
    cj = json.loads((out / "config.json").read_text())
    cj.pop("gemmac_embed_scale")
    config = tf.Gemma3nTextConfig.from_dict(cj, attn_implementation="eager")
    model = tf.Gemma3nForCausalLM(config).float().eval()
    missing, unexpected = model.load_state_dict(load_file(str(out / "model.safetensors")),
                                                strict=False)
    if set(missing) - {"lm_head.weight"} or unexpected:
        raise SystemExit(f"round trip: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    return mrf.forward(model, seqs)


def hf_gate_stats(model, seqs):
    """Fraction of gate_proj outputs the Gaussian top-k zeroes, per sparse
    layer, measured in transformers (hook on act_fn's input)."""
    res, hs = {}, []
    for i, layer in enumerate(model.model.layers):
        if layer.mlp.activation_sparsity > 0:
            def hook(_m, inp, i=i):
                res.setdefault(i, []).append(float((inp[0] == 0).float().mean()))
            hs.append(layer.mlp.act_fn.register_forward_pre_hook(hook))
    mrf.forward(model, seqs)
    for h in hs:
        h.remove()
    return {i: float(np.mean(v)) for i, v in res.items()}


LLAMA_SNIPPET = r"""
import sys, numpy as np
from llama_cpp import Llama
path, toks = sys.argv[1], np.load(sys.argv[2])
llm = Llama(model_path=path, n_ctx=64, n_batch=64, logits_all=True, n_threads=1,
            verbose=True)
out = []
for row in toks:
    llm.reset()
    llm.eval([int(t) for t in row])
    out.append(np.array(llm.scores[:len(row)], dtype=np.float32))
np.save(sys.argv[3], np.stack(out))
"""


def llamacpp_check(python, out, config, state, seqs, logits):
    """Loads model.gguf (and, when that fails, a copy with the K/V tensors
    llama.cpp's loader requires on every layer) in llama.cpp and reports."""
    def nmse(x, ref):
        return float(((x - ref) ** 2).sum() / (ref.astype(np.float64) ** 2).sum())
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        np.save(td / "toks.npy", seqs)

        def run(path):
            p = subprocess.run([python, "-c", LLAMA_SNIPPET, str(path), str(td / "toks.npy"),
                                str(td / "lg.npy")], capture_output=True, text=True)
            if p.returncode != 0:
                errs = [ln for ln in p.stderr.splitlines() if "error loading model" in ln]
                return None, (errs or p.stderr.strip().splitlines() or ["?"])[-1]
            return np.load(td / "lg.npy"), None
        lg, err = run(out / "model.gguf")
        if lg is not None:
            print(f"  llama.cpp on model.gguf: NMSE vs transformers {nmse(lg, logits):.3e}")
            return
        print(f"  llama.cpp cannot load model.gguf: {err}")
        # llama.cpp's gemma3n loader hard-codes n_layer_kv_from_start = 20, so
        # it wants attn_k/attn_v/attn_k_norm on every layer: give the shared
        # layers copies of their source layers' tensors.
        L = config.num_hidden_layers
        first = L - config.num_kv_shared_layers
        src = {i: max(j for j in range(first) if config.layer_types[j] == config.layer_types[i])
               for i in range(first, L)}
        tens = gguf_tensors(config, state)
        extra = {f"blk.{i}.{k}.weight": tens[f"blk.{j}.{k}.weight"]
                 for i, j in src.items() for k in ("attn_k", "attn_v", "attn_k_norm")}
        write_model_gguf(td / "compat.gguf", config, state, extra)
        lg, err = run(td / "compat.gguf")
        if lg is None:
            print(f"  llama.cpp cannot load the K/V-completed copy either: {err}")
            return
        ng, _ = gguf_forward(td / "compat.gguf", seqs, llamacpp=True)
        print(f"  llama.cpp on a copy with attn_k/attn_v/attn_k_norm of layers "
              f"{sorted(src)} copied from {[src[i] for i in sorted(src)]}: NMSE vs "
              f"transformers {nmse(lg, logits):.3e} (max |diff| "
              f"{np.abs(lg - logits).max():.3f}); vs the numpy forward in llama.cpp "
              f"semantics (no KV sharing below layer 20, sparsity on layers < 10 with the "
              f"sample std) {nmse(lg, ng):.3e} (max |diff| {np.abs(lg - ng).max():.3e})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="store_true",
                    help="print the safetensors and GGUF tensor lists")
    ap.add_argument("--llamacpp", metavar="PYTHON",
                    help="a python with llama_cpp (llama-cpp-python) to cross-check")
    args = ap.parse_args()
    import torch
    import transformers
    import gguf  # noqa: F401
    from safetensors.torch import save_file
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    versions = dict(transformers=transformers.__version__, torch=torch.__version__,
                    script="scripts/make_gemma3n_fixtures.py")
    out = OUT / NAME
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    seed = mrf.SEED + sum(map(ord, NAME))
    config, model = build_model(seed)
    seqs = mrf.sequences(seed, config.vocab_size)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
             if k != "lm_head.weight"}
    cj = config.to_dict()
    cj["gemmac_embed_scale"] = "exact"
    (out / "config.json").write_text(json.dumps(cj, indent=2, sort_keys=True) + "\n")
    meta = dict(variant=NAME, family="gemma3n", covers=COVERS, dtype="f32",
                embed_scale=f"exact ({math.sqrt(config.hidden_size)!r})", **versions)
    logits = mrf.forward(model, seqs)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    mrf.write_ref_gguf(out / "ref.gguf", seqs, logits,
                       dict(meta, jax_check="not run (no Gemma 3n JAX cross-check)",
                            **mrf.entropy_meta(logits)))
    mrf.report(NAME, logits, config.vocab_size)
    cap = config.final_logit_softcapping
    mx, frac = g4.softcap_stats(logits, cap)
    print(f"  final soft-cap {cap}: max |logit| {mx:.3f} ({100 * mx / cap:.1f} % of "
          f"the cap), {100 * frac:.1f} % of logits beyond cap/2 (tanh bends them "
          f"by > 7.6 %)")
    with torch.no_grad():
        model.config.final_logit_softcapping = 1e9  # None is refused; tanh(x/1e9)*1e9 = x
        raw = mrf.forward(model, seqs)
        model.config.final_logit_softcapping = cap
    d = logits - raw
    print(f"  without the cap: max |logit| {np.abs(raw).max():.2f}, entropy mean "
          f"{mrf.entropy_stats(raw)[0]:.2f} nats; the cap moves the logits by NMSE "
          f"{float((d ** 2).sum() / (raw ** 2).sum()):.3e}")
    for i, z in hf_gate_stats(model, seqs).items():
        print(f"  layer {i}: Gaussian top-k zeroes {100 * z:.1f} % of the gate values "
              f"(transformers)")
    print(f"  activation_sparsity_scale (f32 icdf): {sparsity_scales(config)}")
    for name in ("prediction_coefs", "correction_coefs"):
        m = max(float(getattr(layer.altup, name).weight.detach().abs().max())
                for layer in model.model.layers)
        print(f"  max |altup.{name}.weight| {m:.3f} (altup_coef_clip "
              f"{config.altup_coef_clip}: no clipping binds)")
    rt = config_roundtrip(out, seqs)
    print(f"  config.json + model.safetensors reloaded: max |diff| "
          f"{np.abs(rt - logits).max():.3e}")
    shapes = write_model_gguf(out / "model.gguf", config, state)
    ng, zeroed = gguf_forward(out / "model.gguf", seqs)
    d = ng - logits
    print(f"  independent numpy forward from model.gguf (README formulas): "
          f"NMSE {float((d ** 2).sum() / (logits.astype(np.float64) ** 2).sum()):.3e}, "
          f"max |diff| {np.abs(d).max():.3e}; gate zeroed "
          + ", ".join(f"layer {i} {100 * z:.1f} %" for i, z in zeroed.items()))
    if args.llamacpp:
        llamacpp_check(args.llamacpp, out, config, state, seqs, logits)
    if args.list:
        for k, t in state.items():
            print(f"    hf   {k} {list(t.shape)}")
        for k, s in shapes.items():
            print(f"    gguf {k} {{{', '.join(map(str, s))}}}")
    size = sum(f.stat().st_size for f in out.iterdir())
    for f in sorted(out.iterdir()):
        print(f"  {f.name}: {f.stat().st_size} bytes")
    print(f"  {NAME}: {size} bytes")
    if size > 4 * 1024 * 1024:
        sys.exit("gemma3n fixtures exceed 4 MB")


if __name__ == "__main__":
    main()
