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


def transduce(logits_BTK, batch, weights_B):
  """`sequence`'s sums (accuracy: per target token), plus exact_match: the fraction of examples
  whose every target token is the argmax. With teacher forcing that is also greedy decoding's
  exact match: given the right prefix at every step, greedy decoding writes the target exactly."""
  sums = sequence(logits_BTK, batch, weights_B)
  wrong_BT = (jnp.argmax(logits_BTK, -1) != batch["label"]) & (batch["weights"] > 0)
  sums["exact_correct"] = jnp.sum(~jnp.any(wrong_BT, -1) * weights_B)
  sums["exact_count"] = jnp.sum(weights_B)
  return sums


TASKS = {"classify": classify, "regress": regress, "sequence": sequence, "seq2seq": transduce}
METRICS = {"classify": ("loss", "accuracy"), "regress": ("loss",),
           "sequence": ("loss", "accuracy", "bits"),
           "seq2seq": ("loss", "accuracy", "bits", "exact_match")}  # datasets may add more
RATIOS = {"recall_accuracy": "recall", "exact_match": "exact"}  # metric: its sums' prefix


def finalize(sums: dict, task: str) -> dict:
  """Sums -> means; sequence tasks add bits per token (loss in base 2), e.g. bits per character."""
  sums = dict(sums)
  ratios = {metric: (sums.pop(f"{prefix}_correct"), sums.pop(f"{prefix}_count"))
            for metric, prefix in RATIOS.items() if f"{prefix}_count" in sums}
  means = {k: v / sums["count"] for k, v in sums.items() if k != "count"}
  if task in ("sequence", "seq2seq"):
    means["bits"] = means["loss"] / math.log(2)
  means.update({metric: correct / count for metric, (correct, count) in ratios.items()})
  return means
