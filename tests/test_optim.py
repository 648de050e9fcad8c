import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nets
from train.config import base_config
from train.steps import create_state, make_train_step
from train.optim import make_optimizer, make_schedule


def opt_config(**overrides):
  opt = base_config().optimizer
  opt.update(overrides)
  return opt


def test_warmup_cosine_schedule():
  sched = make_schedule(opt_config(lr=1.0, schedule="cosine", warmup_steps=10, min_lr_ratio=0.1), 110)
  np.testing.assert_allclose([sched(0), sched(5), sched(10), sched(110)], [0, 0.5, 1.0, 0.1], atol=1e-6)


def test_step_schedule_with_warmup():
  sched = make_schedule(opt_config(lr=1.0, schedule="step", warmup_steps=10,
                                   step_boundaries=(0.5, 0.75), step_factor=0.1), 100)
  np.testing.assert_allclose([sched(5), sched(49), sched(50), sched(74), sched(75)],
                             [0.5, 1.0, 0.1, 0.1, 0.01], atol=1e-6)


def test_constant_schedule():
  assert make_schedule(opt_config(lr=0.3), 100)(77) == pytest.approx(0.3)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "adamw"])
def test_every_optimizer_descends(name):
  tx, _ = make_optimizer(opt_config(name=name, lr=0.1), 100)
  params = {"w": jnp.array([3.0, -2.0])}
  state = tx.init(params)
  loss = lambda p: jnp.sum(p["w"] ** 2)
  for _ in range(20):
    updates, state = tx.update(jax.grad(loss)(params), state, params)
    params = optax.apply_updates(params, updates)
  assert loss(params) < 13.0 / 4


@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_weight_decay_skips_biases_and_norm_scales(name):
  tx, _ = make_optimizer(opt_config(name=name, lr=0.1, weight_decay=0.5), 100)
  params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,)), "scale": jnp.ones((2,)),
            "query": {"kernel": jnp.ones((4, 2, 2)), "bias": jnp.ones((2, 2))},  # heads x head_dim
            "blocks": {"norm": {"scale": jnp.ones((3, 2)), "bias": jnp.ones((3, 2))}}}  # scanned
  zero_grads = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zero_grads, tx.init(params), params)
  assert np.all(np.asarray(updates["kernel"]) < 0)
  assert np.all(np.asarray(updates["query"]["kernel"]) < 0)
  for no_decay in (updates["bias"], updates["scale"], updates["query"]["bias"],
                   *jax.tree.leaves(updates["blocks"])):
    np.testing.assert_array_equal(no_decay, 0)


def test_gradient_clipping():
  tx, _ = make_optimizer(opt_config(name="sgd", lr=1.0, grad_clip_norm=1.0), 100)
  params = {"w": jnp.zeros(4)}
  updates, _ = tx.update({"w": jnp.full(4, 10.0)}, tx.init(params), params)
  assert optax.tree.norm(updates) == pytest.approx(1.0)


def test_the_logged_lr_is_the_rate_applied_after_a_skipped_step():
  """With nonfinite='skip' a NaN step leaves the schedule's count behind the step: after it, the
  logged lr is the one the update used (SGD: the update is -lr * gradient)."""
  tx, schedule = make_optimizer(opt_config(name="sgd", lr=1.0, schedule="constant",
                                           warmup_steps=10), 100, max_skips=5)
  model = nets.create_model("mlp", num_outputs=2, hidden=())
  x = np.ones((4, 3), np.float32)
  state = create_state(model, tx, x[:1], 0)
  step = jax.jit(make_train_step(model, tx, schedule, "classify"))
  batch = {"x": x, "label": np.array([0, 1, 0, 1]), "mask": np.ones(4, bool)}
  for b in (batch, {**batch, "x": x * np.nan}):
    state, _ = step(state, b)
  before = state.params
  state, metrics = step(state, batch)  # step 2, after one skip: the warm-up's rate at 1, 0.1
  grads = jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(
      model.apply({"params": p}, x), batch["label"]).mean())(before)
  assert float(metrics["lr"]) == pytest.approx(float(schedule(1)))
  applied = jax.tree.map(lambda a, b, g: (a - b) / -g, state.params, before, grads)
  np.testing.assert_allclose(jax.tree.leaves(applied)[0], float(schedule(1)), rtol=1e-4)
