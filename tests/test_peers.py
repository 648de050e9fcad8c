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
