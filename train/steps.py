"""The run's state as one pytree, and the pure, jitted train and eval steps."""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from train import losses


class TrainState(struct.PyTreeNode):
  step: jax.Array
  params: Any
  opt_state: Any
  batch_stats: Any  # BatchNorm running statistics; {} for models without BatchNorm
  rng: jax.Array  # base key; step s uses fold_in(rng, s), so a resumed run draws the same numbers


def init_variables(model: nn.Module, x_example, seed: int):
  """The variables a run with this seed starts from."""
  init_rng, _ = jax.random.split(jax.random.PRNGKey(seed))
  return model.init({"params": init_rng, "dropout": init_rng}, x_example, train=False)


def create_state(model: nn.Module, tx: optax.GradientTransformation, x_example, seed: int):
  _, rng = jax.random.split(jax.random.PRNGKey(seed))
  variables = init_variables(model, x_example, seed)
  params = variables["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    batch_stats=variables.get("batch_stats", {}), rng=rng)


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, schedule, task: str):
  """(state, batch) -> (state, metrics); the state's buffers are donated."""
  loss_sums = losses.TASKS[task]

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)

    def loss_fn(params):
      out, updates = model.apply(
          {"params": params, "batch_stats": state.batch_stats}, batch["x"], train=True,
          rngs={"dropout": rng}, mutable=["batch_stats"])
      sums = loss_sums(out, batch, jnp.ones(batch["label"].shape[0]))
      return sums["loss"] / sums["count"], (sums, updates)

    (_, (sums, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    param_updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(
        step=state.step + 1, params=optax.apply_updates(state.params, param_updates),
        opt_state=opt_state, batch_stats=updates.get("batch_stats", state.batch_stats))
    metrics = {**losses.finalize(sums, task), "grad_norm": optax.global_norm(grads),
               "lr": schedule(state.step)}
    return new_state, metrics

  return jax.jit(train_step, donate_argnums=0)


def make_eval_step(model: nn.Module, task: str):
  """(state, batch) -> loss/metric sums over the batch's real (mask=True) examples."""
  loss_sums = losses.TASKS[task]

  def eval_step(state: TrainState, batch):
    out = model.apply({"params": state.params, "batch_stats": state.batch_stats}, batch["x"],
                      train=False)
    return loss_sums(out, batch, batch["mask"].astype(jnp.float32))

  return jax.jit(eval_step)


def evaluate(eval_step, state: TrainState, batches, task: str) -> dict[str, float]:
  sums = None
  for batch in batches:
    out = eval_step(state, batch)
    sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
  return {k: float(v) for k, v in losses.finalize(jax.device_get(sums), task).items()}
