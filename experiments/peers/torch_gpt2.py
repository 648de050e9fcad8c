"""The PyTorch peer of `experiments/gpt2_small.py` for the speed table: the same GPT-2 small
(pre-LN, learned positions, tied embeddings, vocabulary 50304), trained with
`F.scaled_dot_product_attention`, bf16 autocast, fused AdamW (CUDA) and `torch.compile` of the
model and loss (the optimiser's step stays eager and fused, as in nanoGPT).

  python -m experiments.peers.torch_gpt2 [--batch 16] [--seq_len 1024] [--steps 20] [--no-compile]
      [--num_layers 12] [--num_heads 12] [--features 768] [--out runs/bench]

The sizes default to the config's (smaller ones make the CPU dry run of `make gpu`). Times the step
as `train.tools.bench` times ours (experiments/peers/timing.py), on one random batch kept on the
device, and appends a row to OUT/bench.md with the same FLOP count (6N + 12·L·d·T per token).
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F
from torch import nn

from experiments import gpt2_small
from experiments.peers import timing
from train.tools.bench import analytic_flops, record
from train.tools import positive_int


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
    positions_T = torch.arange(tokens_BT.shape[1], device=tokens_BT.device)
    x = self.embed(tokens_BT) + self.positions(positions_T)
    for block in self.blocks:
      x = block(x)
    return self.final_norm(x) @ self.embed.weight.T  # tied embeddings


def main():
  config = gpt2_small.get_config()
  m = config.model
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=positive_int, default=config.batch_size)
  parser.add_argument("--seq_len", type=positive_int, default=config.dataset.seq_len)
  parser.add_argument("--steps", type=positive_int, default=20)
  parser.add_argument("--no-compile", dest="compile", action="store_false")
  parser.add_argument("--num_layers", type=positive_int, default=m.num_layers)
  parser.add_argument("--num_heads", type=positive_int, default=m.num_heads)
  parser.add_argument("--features", type=positive_int, default=m.features)
  parser.add_argument("--out", default="runs/bench")
  args = parser.parse_args()
  if args.seq_len > m.max_len:
    sys.exit(f"error: --seq_len={args.seq_len} exceeds the learned positions' max_len={m.max_len}")
  m.num_layers, m.num_heads, m.features = args.num_layers, args.num_heads, args.features
  device = timing.device()
  torch.backends.cuda.matmul.allow_tf32 = True
  model = GPT(m.vocab_size, m.num_layers, m.num_heads, m.features, m.max_len).to(device)
  num_params = sum(p.numel() for p in model.parameters())
  opt_cfg = config.optimizer
  decay = [p for p in model.parameters() if p.ndim > 1]  # as train.optim.decay_mask
  no_decay = [p for p in model.parameters() if p.ndim <= 1]
  opt = torch.optim.AdamW([{"params": decay, "weight_decay": opt_cfg.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}], lr=opt_cfg.lr,
                          betas=(opt_cfg.b1, opt_cfg.b2), fused=device == "cuda")
  tokens = torch.randint(0, m.vocab_size, (args.batch, args.seq_len + 1), device=device)
  x, y = tokens[:, :-1], tokens[:, 1:]

  def forward_loss(x, y):
    with torch.autocast(device, dtype=torch.bfloat16):
      return F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())

  loss_fn = torch.compile(forward_loss) if args.compile else forward_loss

  def train_step():
    loss = loss_fn(x, y)
    loss.backward()
    if opt_cfg.grad_clip_norm:
      torch.nn.utils.clip_grad_norm_(model.parameters(), opt_cfg.grad_clip_norm)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss

  times = timing.time_step(train_step, args.steps)
  flops = analytic_flops(config, num_params, args.batch, args.seq_len)
  name = "torch gpt2" + (" (torch.compile)" if args.compile else "")
  result = timing.row(name, num_params, args.batch, "bfloat16 autocast", times, flops,
                      tokens_per_step=args.batch * args.seq_len)
  result["analytic_flops_per_step"] = flops
  record(result, "torch_gpt2", "python -m experiments.peers.torch_gpt2 " + " ".join(sys.argv[1:]),
         args.out)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
