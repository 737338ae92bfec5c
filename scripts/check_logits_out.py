#!/usr/bin/env python3
"""Checks `gemmac eval --ids ... --logits-out` from outside gemmac, with numpy.

Runs gemmac on the first sequence of a reference GGUF (docs/conformance.md),
writes the logits as .npy and as raw float32, loads both with numpy and
compares them with the reference's logits the way `gemmac eval --ref`
does (NMSE per position, top-1), then checks that the mean NMSE is the one
`gemmac eval --ref -o json` reports for that sequence.  Exit status 0 when
all agree.

  scripts/check_logits_out.py [GEMMAC] [FIXTURE_DIR]
  (defaults: build/gemmac, tests/fixtures/conformance/gemma3; run it with
  a Python that has numpy and gguf, e.g. /opt/refenv/bin/python)
"""
import json
import os
import subprocess
import sys
import tempfile

import gguf
import numpy as np

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
gemmac = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build/gemmac")
fix = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
    root, "tests/fixtures/conformance/gemma3")
graph = os.path.join(root, "tests/conformance", os.path.basename(fix) + ".yaml")
weights = os.path.join(fix, "model.safetensors")

ref = gguf.GGUFReader(os.path.join(fix, "ref.gguf"))
field = ref.fields["gemmac.ref.tokens"]
n_pos = int(ref.fields["gemmac.ref.n_pos"].parts[-1][0])
tokens = [int(field.parts[i][0]) for i in field.data[:n_pos]]
tokens = [t for t in tokens if t >= 0]
ref_logits = next(t for t in ref.tensors if t.name == "logits").data  # [seq][pos][vocab]
want = np.asarray(ref_logits[0][: len(tokens)], dtype=np.float64)

with tempfile.TemporaryDirectory() as tmp:
    ids_file = os.path.join(tmp, "ids.txt")
    with open(ids_file, "w") as f:
        f.write("\n".join(map(str, tokens)) + "\n")
    outs = {}
    for name in ("logits.npy", "logits.f32"):
        path = os.path.join(tmp, name)
        subprocess.run([gemmac, "eval", graph, "--weights", weights, "--ids", ids_file,
                        "--logits-out", path, "-t", "2"], check=True)
        outs[name] = path
    npy = np.load(outs["logits.npy"])
    raw = np.fromfile(outs["logits.f32"], dtype="<f4").reshape(npy.shape)
    ok = npy.dtype == np.float32 and npy.shape == want.shape and np.array_equal(npy, raw)
    print(f".npy: dtype {npy.dtype}, shape {npy.shape}; raw file equal: "
          f"{np.array_equal(npy, raw)}")
    ours = npy.astype(np.float64)
    nmse = ((ours - want) ** 2).sum(axis=1) / (want ** 2).sum(axis=1)
    top1 = (ours.argmax(axis=1) == want.argmax(axis=1)).mean()
    report = json.loads(subprocess.run(
        [gemmac, "eval", graph, "--weights", weights, "--ref", os.path.join(fix, "ref.gguf"),
         "-o", "json", "-t", "2"], check=True, capture_output=True, text=True).stdout)
    seq0 = report["sequences"][0]
    print(f"numpy: NMSE mean {nmse.mean():.6e} max {nmse.max():.6e}, top-1 {top1:.4f}")
    print(f"eval --ref, sequence 0: NMSE mean {seq0['nmse_mean']:.6e} "
          f"max {seq0['nmse_max']:.6e}, top-1 {seq0['top1']:.4f}")
    ok = ok and abs(nmse.mean() - seq0["nmse_mean"]) <= 1e-6 * nmse.mean() \
        and top1 == seq0["top1"]
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)
