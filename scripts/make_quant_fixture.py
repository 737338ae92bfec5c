#!/usr/bin/env python3
"""Regenerates tests/fixtures/quant/: reference (de)quantization results.

The numbers come from the numpy reference code of the PyPI `gguf` package
(gguf.quants), which mirrors ggml's quantize_row_*_ref / dequantize_row_*
bit for bit, and for Q4_1 / Q5_1 and the K-quants (which gguf.quants
cannot quantize) from ggml's C code itself: ggml_quantize_chunk without an
importance matrix, i.e. quantize_row_*_ref, in the libggml-base that
llama-cpp-python ships, through ctypes.  tests/test_dtype.c checks that gmrt_quantize_row and
gmrt_dequantize_row reproduce these bytes exactly.

    pip install gguf numpy llama-cpp-python      # 0.3.36 made the K-quant files
    python3 scripts/make_quant_fixture.py        # writes the fixture files
    python3 scripts/make_quant_fixture.py --check  # compares, writes nothing

Files (all little-endian, no headers):
    in_<name>.f32              input values (float32)
    in_<name>.<type>           gguf.quants.quantize(input, type) bytes, or
                               ggml_quantize_chunk's (QUANTIZED_GGML)
    blk.<type>                 random-but-valid blocks of a type
    blk.<type>.f32             gguf.quants.dequantize(blocks, type)
Everything is seeded, so rerunning reproduces the committed bytes.
"""
import argparse
import pathlib
import sys

import numpy as np

try:
    from gguf import GGMLQuantizationType as T
    from gguf import quants
except ImportError:  # pragma: no cover - message for people running it
    sys.exit("make_quant_fixture.py needs the gguf package: pip install gguf numpy")

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "quant"

# Types gmrt_quantize_row must reproduce, by the file suffix used.
QUANTIZED = {"f16": T.F16, "bf16": T.BF16, "q8_0": T.Q8_0, "q4_0": T.Q4_0, "q5_0": T.Q5_0}
# The same, quantized by ggml's C reference (ggml type ids are gguf's).
QUANTIZED_GGML = {"q4_1": T.Q4_1, "q5_1": T.Q5_1,
                  "q4_k": T.Q4_K, "q5_k": T.Q5_K, "q6_k": T.Q6_K}
# Types whose dequantization is checked on random blocks: (type, block bytes,
# offsets of the f16 scale fields that must hold sane values).
BLOCKS = {
    "q4_0": (T.Q4_0, 18, [0]),
    "q4_1": (T.Q4_1, 20, [0, 2]),
    "q5_0": (T.Q5_0, 22, [0]),
    "q5_1": (T.Q5_1, 24, [0, 2]),
    "q8_0": (T.Q8_0, 34, [0]),
    "q4_k": (T.Q4_K, 144, [0, 2]),
    "q5_k": (T.Q5_K, 176, [0, 2]),
    "q6_k": (T.Q6_K, 210, [208]),
}


def inputs() -> dict:
    """Three 256-value inputs: typical weights, hand-made edge cases, and
    llama.cpp's synthetic 0.1 + 2cos(i)."""
    rng = np.random.default_rng(20240611)
    gauss = (rng.standard_normal(256) * 0.05).astype(np.float32)

    edge = np.zeros((8, 32), dtype=np.float32)
    # block 0 stays all zero: d = 0, every quant at its zero point
    edge[1, :] = 1.0  # all equal: the maximum maps to the lowest quant
    # block 2: amax 127 makes the Q8_0 scale exactly 1, so x.5 values are
    # exact ties (roundf rounds them away from zero, rint would not)
    edge[2, :] = np.arange(-15.5, 16.5, 1.0, dtype=np.float32)
    edge[2, 0] = 127.0
    # blocks 3 and 4: +3 and -3 tie in magnitude; the first one sets the sign
    edge[3, :] = np.linspace(-2.0, 2.0, 32, dtype=np.float32)
    edge[3, 5], edge[3, 20] = 3.0, -3.0
    edge[4, :] = edge[3, :]
    edge[4, 5], edge[4, 20] = -3.0, 3.0
    # block 5: tiny values; the f16 scale underflows to a subnormal or zero
    edge[5, :] = rng.uniform(-1e-6, 1e-6, 32).astype(np.float32)
    # block 6: huge values; the Q4_0/Q5_0 scale overflows f16 to inf
    edge[6, :] = rng.uniform(-1e6, 1e6, 32).astype(np.float32)
    # block 7: values whose quants sit near the rounding boundaries
    edge[7, :] = (np.arange(32, dtype=np.float32) - 16.0) / 2.0 + 0.001
    edge = edge.reshape(-1)

    i = np.arange(256, dtype=np.float32)
    cos = (0.1 + 2.0 * np.cos(i)).astype(np.float32)
    return {"gauss": gauss, "edge": edge, "cos": cos}


def ggml_quantizer():
    """ggml_quantize_chunk from llama-cpp-python's libggml-base, as a
    function (float32 row, ggml type) -> bytes."""
    import ctypes
    try:
        import llama_cpp
    except ImportError:
        sys.exit("the K-quant files need ggml's quantizer: pip install llama-cpp-python")
    lib = ctypes.CDLL(str(pathlib.Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    f = lib.ggml_quantize_chunk
    f.restype = ctypes.c_size_t
    f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                  ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]

    def quantize(x, t):
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.zeros(x.size * 2, dtype=np.uint8)  # more than any 256-block type needs
        n = f(int(t), x.ctypes.data, out.ctypes.data, 0, 1, x.size, None)
        return out[:n].tobytes()
    return quantize


def random_blocks(rng, nbytes: int, scale_offsets, n_blocks: int = 2) -> np.ndarray:
    """Random block bytes with the f16 scales replaced by finite values in
    [2^-10, 2^-4), so that every dequantized value is finite."""
    b = rng.integers(0, 256, size=(n_blocks, nbytes), dtype=np.uint8)
    for off in scale_offsets:
        d = rng.uniform(2.0**-10, 2.0**-4, n_blocks).astype(np.float16)
        b[:, off:off + 2] = d.view(np.uint8).reshape(n_blocks, 2)
    return b


def build() -> dict:
    files = {}
    ggml = ggml_quantizer()
    with np.errstate(over="ignore"):
        for name, x in inputs().items():
            files[f"in_{name}.f32"] = x.astype("<f4").tobytes()
            for suffix, t in QUANTIZED.items():
                q = quants.quantize(x.reshape(1, -1), t)
                files[f"in_{name}.{suffix}"] = np.ascontiguousarray(q).tobytes()
            for suffix, t in QUANTIZED_GGML.items():
                files[f"in_{name}.{suffix}"] = ggml(x, t)
    rng = np.random.default_rng(7)
    for suffix, (t, nbytes, offs) in BLOCKS.items():
        b = random_blocks(rng, nbytes, offs)
        files[f"blk.{suffix}"] = b.tobytes()
        y = quants.dequantize(b.reshape(1, -1), t).astype("<f4")
        files[f"blk.{suffix}.f32"] = y.tobytes()
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="compare with the committed files instead of writing")
    args = ap.parse_args()
    files = build()
    if args.check:
        bad = [n for n, data in files.items()
               if not (OUT / n).exists() or (OUT / n).read_bytes() != data]
        for n in bad:
            print(f"differs: {n}")
        return 1 if bad else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for n, data in sorted(files.items()):
        (OUT / n).write_bytes(data)
    print(f"wrote {len(files)} files ({sum(map(len, files.values()))} bytes) to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
