"""Losses and metrics by task. Each returns sums over the batch's weighted examples (or positions)
plus their `count`, so that train steps divide once and eval adds batches up before dividing.

`weights_B` is 1 for real examples and 0 for eval padding.
"""
import math

import jax.numpy as jnp
import optax


def classify(logits_BK, batch, weights_B):
  loss_B = optax.softmax_cross_entropy_with_integer_labels(logits_BK, batch["label"])
  correct_B = jnp.argmax(logits_BK, -1) == batch["label"]
  return {"loss": jnp.sum(loss_B * weights_B), "accuracy": jnp.sum(correct_B * weights_B),
          "count": jnp.sum(weights_B)}


def regress(pred_B1, batch, weights_B):
  """Mean squared error of a scalar prediction."""
  err_B = (pred_B1[:, 0] - batch["label"]) ** 2
  return {"loss": jnp.sum(err_B * weights_B), "count": jnp.sum(weights_B)}


def sequence(logits_BTK, batch, weights_B):
  """Per-position cross-entropy, over the positions where batch["weights"] is 1."""
  weights_BT = batch["weights"] * weights_B[:, None]
  loss_BT = optax.softmax_cross_entropy_with_integer_labels(logits_BTK, batch["label"])
  correct_BT = jnp.argmax(logits_BTK, -1) == batch["label"]
  return {"loss": jnp.sum(loss_BT * weights_BT), "accuracy": jnp.sum(correct_BT * weights_BT),
          "count": jnp.sum(weights_BT)}


TASKS = {"classify": classify, "regress": regress, "sequence": sequence}
METRICS = {"classify": ("loss", "accuracy"), "regress": ("loss",),
           "sequence": ("loss", "accuracy", "bits")}


def finalize(sums: dict, task: str) -> dict:
  """Sums -> means; sequence tasks add bits per token (loss in base 2), e.g. bits per character."""
  means = {k: v / sums["count"] for k, v in sums.items() if k != "count"}
  if task == "sequence":
    means["bits"] = means["loss"] / math.log(2)
  return means
