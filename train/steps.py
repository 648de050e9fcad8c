"""The run's state as one pytree, and the pure, jitted train and eval steps."""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct


class TrainState(struct.PyTreeNode):
  step: jax.Array
  params: Any
  opt_state: Any
  batch_stats: Any  # BatchNorm running statistics; {} for models without BatchNorm
  rng: jax.Array  # base key; step s uses fold_in(rng, s), so a resumed run draws the same numbers


def create_state(model: nn.Module, tx: optax.GradientTransformation, x_example, seed: int):
  init_rng, rng = jax.random.split(jax.random.PRNGKey(seed))
  variables = model.init({"params": init_rng, "dropout": init_rng}, x_example, train=False)
  params = variables["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    batch_stats=variables.get("batch_stats", {}), rng=rng)


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, schedule):
  """(state, batch) -> (state, metrics); the state's buffers are donated."""

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)

    def loss_fn(params):
      logits_BK, updates = model.apply(
          {"params": params, "batch_stats": state.batch_stats}, batch["x"], train=True,
          rngs={"dropout": rng}, mutable=["batch_stats"])
      loss = optax.softmax_cross_entropy_with_integer_labels(logits_BK, batch["label"]).mean()
      return loss, (logits_BK, updates)

    (loss, (logits_BK, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    param_updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(
        step=state.step + 1, params=optax.apply_updates(state.params, param_updates),
        opt_state=opt_state, batch_stats=updates.get("batch_stats", state.batch_stats))
    metrics = {
        "loss": loss,
        "accuracy": jnp.mean(jnp.argmax(logits_BK, -1) == batch["label"]),
        "grad_norm": optax.global_norm(grads),
        "lr": schedule(state.step),
    }
    return new_state, metrics

  return jax.jit(train_step, donate_argnums=0)


def make_eval_step(model: nn.Module):
  """(state, batch) -> sums over the batch's real (mask=True) examples."""

  def eval_step(state: TrainState, batch):
    logits_BK = model.apply({"params": state.params, "batch_stats": state.batch_stats},
                            batch["x"], train=False)
    mask_B = batch["mask"]
    loss_B = optax.softmax_cross_entropy_with_integer_labels(logits_BK, batch["label"])
    correct_B = jnp.argmax(logits_BK, -1) == batch["label"]
    return {"loss": jnp.sum(loss_B * mask_B), "correct": jnp.sum(correct_B * mask_B),
            "count": jnp.sum(mask_B)}

  return jax.jit(eval_step)


def evaluate(eval_step, state: TrainState, batches) -> dict[str, float]:
  sums = None
  for batch in batches:
    out = eval_step(state, batch)
    sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
  sums = jax.device_get(sums)
  return {"loss": float(sums["loss"] / sums["count"]),
          "accuracy": float(sums["correct"] / sums["count"])}
