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


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, schedule, task: str,
                    grad_accum_steps: int = 1):
  """(state, batch) -> (state, metrics), not yet jitted. With `grad_accum_steps=k` the batch is
  split into k micro-batches whose gradients are summed in a `lax.scan`, so only one micro-batch's
  activations are alive at a time; the update equals the whole batch's (BatchNorm statistics and
  dropout masks aside)."""
  loss_sums = losses.TASKS[task]

  def grads_and_sums(params, batch_stats, batch, rng, mean: bool):
    """Gradients of the batch's mean loss, or of its sum (to add up micro-batches)."""
    def loss_fn(params):
      out, updates = model.apply(
          {"params": params, "batch_stats": batch_stats}, batch["x"], train=True,
          rngs={"dropout": rng}, mutable=["batch_stats"])
      sums = loss_sums(out, batch, jnp.ones(batch["label"].shape[0]))
      loss = sums["loss"] / sums["count"] if mean else sums["loss"]
      return loss, (sums, updates.get("batch_stats", batch_stats))

    (_, (sums, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return grads, sums, batch_stats

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)
    if grad_accum_steps == 1:
      grads, sums, batch_stats = grads_and_sums(state.params, state.batch_stats, batch, rng, True)
    else:
      # Micro-batch i takes rows i, i + k, ...: every device keeps working on its own rows.
      micro = jax.tree.map(lambda x: x.reshape(-1, grad_accum_steps, *x.shape[1:]).swapaxes(0, 1),
                           batch)

      def accumulate(carry, i_and_batch):
        i, micro_batch = i_and_batch
        grads, sums, batch_stats = carry
        g, s, batch_stats = grads_and_sums(state.params, batch_stats, micro_batch,
                                           jax.random.fold_in(rng, i), False)
        return (jax.tree.map(jnp.add, grads, g), jax.tree.map(jnp.add, sums, s), batch_stats), None

      zeros = lambda tree: jax.tree.map(jnp.zeros_like, tree)
      first_sums = jax.eval_shape(lambda: grads_and_sums(
          state.params, state.batch_stats, jax.tree.map(lambda x: x[0], micro), rng, False)[1])
      carry = (zeros(state.params), zeros(first_sums), state.batch_stats)
      (grads, sums, batch_stats), _ = jax.lax.scan(
          accumulate, carry, (jnp.arange(grad_accum_steps), micro))
      grads = jax.tree.map(lambda g: g / sums["count"], grads)  # the mean over the whole batch
    param_updates, opt_state = tx.update(grads, state.opt_state, state.params)
    # A non-finite step (skipped by optax.apply_if_finite with config.nonfinite="skip") must not
    # leave its BatchNorm statistics behind either.
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(sums["loss"]) & jnp.isfinite(grad_norm)
    batch_stats = jax.tree.map(lambda new, old: jnp.where(finite, new, old), batch_stats,
                               state.batch_stats)
    new_state = state.replace(
        step=state.step + 1, params=optax.apply_updates(state.params, param_updates),
        opt_state=opt_state, batch_stats=batch_stats)
    # optax.apply_if_finite (config.nonfinite="skip") holds the schedule's count still on a
    # skipped step: the rate applied is the schedule's at the steps not skipped.
    skipped = getattr(state.opt_state, "total_notfinite", 0)
    metrics = {**losses.finalize(sums, task), "grad_norm": grad_norm,
               "lr": schedule(state.step - skipped)}
    return new_state, metrics

  return train_step


def make_multi_step(train_step):
  """(state, batches stacked on a leading axis of n steps) -> (state, each step's metrics, [n]):
  n train steps in one call (config.steps_per_call), so the host dispatches once per n steps."""

  def multi_step(state: TrainState, batches):
    return jax.lax.scan(train_step, state, batches)

  return multi_step


def make_eval_step(model: nn.Module, task: str):
  """(state, batch) -> loss/metric sums over the batch's real (mask=True) examples; not jitted."""
  loss_sums = losses.TASKS[task]

  def eval_step(state: TrainState, batch):
    out = model.apply({"params": state.params, "batch_stats": state.batch_stats}, batch["x"],
                      train=False)
    return loss_sums(out, batch, batch["mask"].astype(jnp.float32))

  return eval_step


def evaluate(eval_step, state: TrainState, batches, task: str) -> dict[str, float]:
  sums = None
  for batch in batches:
    out = eval_step(state, batch)
    sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
  return {k: float(v) for k, v in losses.finalize(jax.device_get(sums), task).items()}
