#!/usr/bin/env bash
# An architecture experiment in a minute: Gemma 3 270M with 4 KV heads
# (grouped-query attention) instead of 1 (multi-query), on random weights.
# It compares parameters, memory and speed of the two variants; neither needs
# a checkpoint.
#   examples/experiment.sh            (after scripts/build)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for kv in 1 4; do
  # q8_0 everywhere: gemmac init writes f32/f16/bf16/q8_0/q5_0/q4_0.
  sed -e "s/kv_heads: 1/kv_heads: $kv/" -e "s/name: gemma3_270m/name: g270m_kv$kv/" \
      -e '/^quant:/,$d' graphs/gemma3-270m.yaml > "$tmp/kv$kv.yaml"
  printf 'quant:\n  embed: q8_0\n  attn: q8_0\n  ffn: q8_0\n  kv_cache: f16\n' >> "$tmp/kv$kv.yaml"
  echo "== kv_heads $kv"
  build/gemmac plan "$tmp/kv$kv.yaml" | grep -E "parameters|KV cache per token|KV cache at full"
  build/gemmac init "$tmp/kv$kv.yaml" -o "$tmp/kv$kv.gguf" --seed 1
  build/gemmac run "$tmp/kv$kv.yaml" --weights "$tmp/kv$kv.gguf" --raw -p "hello" -n 32 \
      --greedy -t 2 2>&1 >/dev/null | grep prefill
done
