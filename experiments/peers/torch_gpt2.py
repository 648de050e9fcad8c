"""The PyTorch peer of `experiments/gpt2_small.py` for the speed table: the same GPT-2 small
(pre-LN, learned positions, tied embeddings, vocabulary 50304), trained with
`F.scaled_dot_product_attention`, bf16 autocast, fused AdamW (CUDA) and `torch.compile`.

  python -m experiments.peers.torch_gpt2 [--batch 16] [--seq_len 1024] [--steps 20] [--no-compile]
      [--out runs/bench]

Times the step each one synchronised (median) and back to back (one sync at the end, mean), on
one random batch kept on the device, and appends a row to OUT/bench.md in `train.tools.bench`'s format
with the same FLOP count (6N + 12·L·d·T per token) and peak table.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from experiments import gpt2_small
from train.tools.bench import analytic_flops, peak_tflops, record


class Block(nn.Module):

  def __init__(self, d: int, heads: int):
    super().__init__()
    self.heads = heads
    self.attention_norm, self.mlp_norm = nn.LayerNorm(d), nn.LayerNorm(d)
    self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
    self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d))

  def forward(self, x_BTD):
    B, T, D = x_BTD.shape
    q, k, v = self.qkv(self.attention_norm(x_BTD)).split(D, dim=-1)
    q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
    h = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    x_BTD = x_BTD + self.out(h.transpose(1, 2).reshape(B, T, D))
    return x_BTD + self.mlp(self.mlp_norm(x_BTD))


class GPT(nn.Module):

  def __init__(self, vocab=50304, layers=12, heads=12, d=768, max_len=1024):
    super().__init__()
    self.embed, self.positions = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
    self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
    self.final_norm = nn.LayerNorm(d)

  def forward(self, tokens_BT):
    x = self.embed(tokens_BT) + self.positions(torch.arange(tokens_BT.shape[1], device=tokens_BT.device))
    for block in self.blocks:
      x = block(x)
    return self.final_norm(x) @ self.embed.weight.T  # tied embeddings


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--seq_len", type=int, default=1024)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--no-compile", dest="compile", action="store_false")
  parser.add_argument("--out", default="runs/bench")
  args = parser.parse_args()
  device = "cuda" if torch.cuda.is_available() else "cpu"
  torch.backends.cuda.matmul.allow_tf32 = True
  model = GPT().to(device)
  num_params = sum(p.numel() for p in model.parameters())
  opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1,
                          fused=device == "cuda")
  tokens = torch.randint(0, 50304, (args.batch, args.seq_len + 1), device=device)
  x, y = tokens[:, :-1], tokens[:, 1:]

  def train_step():
    with torch.autocast(device, dtype=torch.bfloat16):
      loss = F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss

  step = torch.compile(train_step) if args.compile else train_step
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
  t = time.perf_counter()
  step(), sync()
  compile_s = time.perf_counter() - t
  step(), sync()
  times = []
  for _ in range(args.steps):
    t = time.perf_counter()
    step().item()  # .item() waits for the step, as jax.block_until_ready does
    times.append(time.perf_counter() - t)
  t = time.perf_counter()
  for _ in range(args.steps):
    loss = step()
  loss.item()
  back_to_back_ms = (time.perf_counter() - t) / args.steps * 1e3
  step_ms = statistics.median(times) * 1e3

  n_tokens = args.batch * args.seq_len
  flops = analytic_flops(gpt2_small.get_config(), num_params, args.batch, args.seq_len)
  kind = torch.cuda.get_device_name() if device == "cuda" else "cpu"
  best_ms = min(step_ms, back_to_back_ms)
  tflops = flops / best_ms / 1e9
  peak = peak_tflops(kind)
  result = {
      "model": "torch gpt2" + (" (torch.compile)" if args.compile else ""), "params": num_params,
      "batch": args.batch, "tokens_per_step": n_tokens, "devices": 1, "device": kind,
      "dtype": "bfloat16 autocast", "step_ms": round(step_ms, 3),
      "back_to_back_ms": round(back_to_back_ms, 3),
      "examples_per_s": round(args.batch / best_ms * 1e3, 1),
      "tokens_per_s": round(n_tokens / best_ms * 1e3), "compile_s": round(compile_s, 2),
      "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3) if device == "cuda"
                        else None,
      "analytic_flops_per_step": flops, "tflops_per_s": round(tflops, 2), "peak_tflops": peak,
      "mfu": round(tflops / peak, 4) if peak else None, "torch": torch.__version__,
  }
  record(result, "torch_gpt2", "python -m experiments.peers.torch_gpt2 " + " ".join(sys.argv[1:]),
         args.out)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
