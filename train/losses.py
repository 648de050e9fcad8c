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
  """Per-position cross-entropy, over the positions where batch["weights"] is 1; with a
  batch["recall"] mask (the copy task's answer positions), recall_accuracy over those alone."""
  weights_BT = batch["weights"] * weights_B[:, None]
  loss_BT = optax.softmax_cross_entropy_with_integer_labels(logits_BTK, batch["label"])
  correct_BT = jnp.argmax(logits_BTK, -1) == batch["label"]
  sums = {"loss": jnp.sum(loss_BT * weights_BT), "accuracy": jnp.sum(correct_BT * weights_BT),
          "count": jnp.sum(weights_BT)}
  if "recall" in batch:
    recall_BT = batch["recall"] * weights_B[:, None]
    sums["recall_correct"] = jnp.sum(correct_BT * recall_BT)
    sums["recall_count"] = jnp.sum(recall_BT)
  return sums


TASKS = {"classify": classify, "regress": regress, "sequence": sequence}
METRICS = {"classify": ("loss", "accuracy"), "regress": ("loss",),
           "sequence": ("loss", "accuracy", "bits")}  # datasets may add more (DatasetSpec)


def finalize(sums: dict, task: str) -> dict:
  """Sums -> means; sequence tasks add bits per token (loss in base 2), e.g. bits per character."""
  sums = dict(sums)
  recall = {k: sums.pop(k) for k in ("recall_correct", "recall_count") if k in sums}
  means = {k: v / sums["count"] for k, v in sums.items() if k != "count"}
  if task == "sequence":
    means["bits"] = means["loss"] / math.log(2)
  if recall:
    means["recall_accuracy"] = recall["recall_correct"] / recall["recall_count"]
  return means
