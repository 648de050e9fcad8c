"""Non-finite guard: the train metrics of a host sync are checked here, and every state is checked
before it is checkpointed, so a NaN/Inf state never replaces the last good checkpoint.

config.nonfinite="stop" stops the run at the first non-finite loss or gradient norm;
"skip" leaves such steps out (optax.apply_if_finite, see train/optim.py), logs how many were skipped
and stops only when the parameters themselves went non-finite."""
import jax
import jax.numpy as jnp
import numpy as np

from train.checkpoint import path_str

WATCHED = ("loss", "grad_norm")


class TrainingDiverged(RuntimeError):
  """The loss, gradient norm or parameters went non-finite; no checkpoint of that state exists."""


@jax.jit
def _finite_leaves(tree):
  return jax.tree.map(
      lambda x: jnp.isfinite(x).all() if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.bool_(True),
      tree)


def first_nonfinite(tree) -> str | None:
  """The path ('params/Dense_0/kernel') of the first leaf holding a NaN/Inf; None if all finite."""
  flags = jax.device_get(_finite_leaves(tree))
  return next((path_str(p) for p, ok in jax.tree_util.tree_flatten_with_path(flags)[0] if not ok),
              None)


def where(latest_step) -> str:
  return (f"the latest checkpoint (step {latest_step or 'none'}) is untouched. Try a lower "
          "config.optimizer.lr, set config.optimizer.grad_clip_norm, or config.nonfinite='skip'")


def summarize(rows: list[dict], step: int, state, latest_step, mode: str) -> dict[str, float]:
  """The mean of each metric over `rows`, the train steps up to `step` (a host sync).

  "stop": TrainingDiverged naming the first non-finite metric and parameter. "skip": the mean over
  the finite steps, with `skipped` counting the others; TrainingDiverged once a parameter is
  non-finite (optax.apply_if_finite gave up)."""
  rows = jax.device_get(rows)
  finite = [all(np.isfinite(r[k]) for k in WATCHED) for r in rows]
  first = step - len(rows) + 1
  if mode == "skip":
    bad_param = first_nonfinite(state)
    if bad_param:
      raise TrainingDiverged(f"{bad_param} became non-finite between steps {first} and "
                             f"{step} after the skipped steps; {where(latest_step)}")
    kept = [r for r, ok in zip(rows, finite) if ok]
    means = {k: float(np.mean([r[k] for r in kept])) if kept else float("nan") for k in rows[0]}
    return {**means, "skipped": len(rows) - len(kept)}
  if not all(finite):
    row = rows[finite.index(False)]
    metric = next(k for k in WATCHED if not np.isfinite(row[k]))
    bad_param = first_nonfinite(state)
    param = f"; first non-finite in the state: {bad_param}" if bad_param else ""
    raise TrainingDiverged(f"{metric} became {float(row[metric])} at step "
                           f"{first + finite.index(False)} (checked at step {step}){param}; "
                           f"{where(latest_step)}")
  return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def check_state(state, step: int, latest_step) -> None:
  """Before a checkpoint: TrainingDiverged naming the first non-finite leaf of the state."""
  bad = first_nonfinite(state)
  if bad:
    raise TrainingDiverged(f"{bad} is non-finite at step {step}, so it is not checkpointed; "
                           f"{where(latest_step)}")
