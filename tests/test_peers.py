"""The PyTorch peers of the speed table (torch is not a dependency: skipped without it)."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from nets.cnn import ResNet

torch = pytest.importorskip("torch")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_resnet18_peer_has_our_architecture_and_records_a_row(tmp_path):
  from experiments.peers.torch_resnet18 import ResNet18

  ours = jax.eval_shape(lambda: ResNet(num_outputs=10, depth=18, width=8).init(
      jax.random.key(0), jnp.zeros((1, 32, 32, 3))))["params"]
  assert sum(p.numel() for p in ResNet18(width=8).parameters()) == \
      sum(p.size for p in jax.tree.leaves(ours))
  subprocess.run([sys.executable, "-m", "experiments.peers.torch_resnet18", "--batch", "2",
                  "--width", "4", "--steps", "1", "--no-compile", "--out", str(tmp_path)],
                 cwd=REPO, check=True, capture_output=True)
  with open(tmp_path / "torch_resnet18.json") as f:
    result = json.load(f)
  assert result["batch"] == 2 and result["torch_flops_per_step"] > 0
  assert "| torch_resnet18 |" in (tmp_path / "bench.md").read_text()


def test_gpt2_peer_has_our_architecture_and_records_a_row(tmp_path):
  from experiments import gpt2_small
  from experiments.peers.torch_gpt2 import GPT
  from nets import create_model

  m = gpt2_small.get_config().model.to_dict()
  sizes = dict(num_layers=2, num_heads=2, features=32)
  ours = jax.eval_shape(lambda: create_model(**{**m, **sizes}).init(
      jax.random.key(0), jnp.zeros((1, 8), jnp.int32)))["params"]
  theirs = GPT(m["vocab_size"], sizes["num_layers"], sizes["num_heads"], sizes["features"],
               m["max_len"])
  assert sum(p.numel() for p in theirs.parameters()) == sum(p.size for p in jax.tree.leaves(ours))
  subprocess.run([sys.executable, "-m", "experiments.peers.torch_gpt2", "--batch", "1",
                  "--seq_len", "8", "--steps", "1", "--no-compile", "--out", str(tmp_path),
                  *[f"--{k}={v}" for k, v in sizes.items()]],
                 cwd=REPO, check=True, capture_output=True)
  with open(tmp_path / "torch_gpt2.json") as f:
    result = json.load(f)
  assert result["tokens_per_step"] == 8 and result["analytic_flops_per_step"] > 0
  assert "| torch_gpt2 |" in (tmp_path / "bench.md").read_text()
