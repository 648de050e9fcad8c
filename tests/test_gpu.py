"""The GPU tier: what only a GPU can show (`make gpu` runs it with `pytest -m gpu`).

Every test that takes `accelerator` runs twice: `[gpu]` (marked `gpu`, skipped with the reason
where jax has no GPU) and `[dry_run]`, the same code with the CPU standing in for the GPU, which
`make test-slow` runs at tiny sizes so that this file cannot rot. What has no CPU stand-in
(cuDNN's kernels, the full default run) is `gpu`-only.

Tolerances (stated here once):
  - bfloat16 kernels against 'xla' in bfloat16: relative L2 error <= 2e-2 (outputs, gradients);
  - the train step, GPU float32 (matmul precision 'highest', i.e. no TF32) against CPU float32:
    loss and gradient norm of each of 3 steps within 1e-3 relative;
  - bfloat16 against float32 on the same device over the same 3 steps: within 5e-2 relative;
  - 4 steps in one call (config.steps_per_call) against one call each, float32 at 'highest':
    1e-4 relative (each step's loss and gradient norm, the parameters after);
  - the cuDNN LSTM against the scan in float32, precision 'highest': 1e-4 (outputs, gradients);
  - the GPU's checkpoint restored onto the CPU: bit for bit what it restores onto the GPU;
  - a run resumed on the CPU from the GPU's checkpoint: rows up to the checkpoint identical, the
    later losses within 1e-3 relative of the GPU's own (run at matmul precision 'highest'). A
    perturbation of 1e-5 relative in the checkpoint's parameters moves them by at most 1e-6 on the
    CPU (2026-11-27, docs/registry/resume_sensitivity.py): float32 rounding on either device
    stays far inside 1e-3, which only a real difference (another state, other batches) exceeds.
"""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nets
from nets import layers
from nets.attention import MultiHeadAttention
from nets.recurrent import RNNLayer
from nets.decoding import init_cache
from nets.transformer import TransformerLM
from tests.test_faults import as_killed_after
from tests.kill_harness import metric_rows
from train import checkpoint, data, optim, sharding
from train.loop import setup, train_and_evaluate
from train.steps import create_state, make_train_step

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
gpu_only = pytest.mark.gpu


@pytest.fixture(params=[pytest.param("gpu", marks=pytest.mark.gpu),
                        pytest.param("dry_run", marks=pytest.mark.slow)])
def accelerator(request):
  """The device under test: the GPU, or the CPU standing in for it (dry run)."""
  return jax.devices("gpu" if request.param == "gpu" else "cpu")[0]


def dry(device) -> bool:
  return device.platform == "cpu"


def normal(seed, shape, dtype=jnp.float32):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def relative_error(a, b) -> float:
  a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
  return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def flat(tree) -> np.ndarray:
  return np.concatenate([np.ravel(np.asarray(a, np.float32)) for a in jax.tree.leaves(tree)])


def assert_relative(a_tree, b_tree, tol):
  """Relative L2 error of the whole tree (a leaf that is zero in exact arithmetic, such as the key
  bias's gradient, is rounding noise on its own)."""
  a, b = flat(a_tree), flat(b_tree)
  assert a.shape == b.shape and np.all(np.isfinite(a))
  assert relative_error(a, b) <= tol, (relative_error(a, b), tol)


# --- attention kernels ---------------------------------------------------------------------------

@pytest.mark.parametrize("kernel", ["dot_product", pytest.param("cudnn", marks=gpu_only)])
def test_attention_kernels_equal_xla_in_bfloat16(accelerator, kernel):
  """Outputs and gradients (inputs and parameters) with causal, padding and both masks."""
  if kernel == "cudnn" and dry(accelerator):
    pytest.skip("cuDNN's attention kernel needs a GPU")
  B, T, D, N = (2, 16, 32, 2) if dry(accelerator) else (2, 256, 512, 8)
  x_BTD = jax.device_put(normal(0, (B, T, D), jnp.bfloat16), accelerator)
  lengths_B = jax.device_put(jnp.array([T, T // 3]), accelerator)
  xla = MultiHeadAttention(N, D, dtype=jnp.bfloat16)
  params = jax.device_put(xla.init(jax.random.key(0), x_BTD)["params"], accelerator)
  params = jax.tree.map(lambda p: p + 0.1 * jax.device_put(normal(1, p.shape), accelerator), params)

  def outputs_and_grads(module, causal, lengths):
    def loss(params, x_BTD):
      out_BTD = module.apply({"params": params}, x_BTD, causal=causal, lengths=lengths)
      return jnp.sum(out_BTD.astype(jnp.float32) * jnp.cos(jnp.arange(D))), out_BTD
    grads, out = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))(params, x_BTD)
    return out, grads

  masks = [(True, None), (False, lengths_B), (True, lengths_B)]
  for causal, lengths in masks[-1:] if dry(accelerator) else masks:
    (out, (g_params, g_x)), (ref, (ref_params, ref_x)) = (
        outputs_and_grads(xla.clone(kernel=kernel), causal, lengths),
        outputs_and_grads(xla, causal, lengths))
    for a, b in [(out, ref), (g_params, ref_params), (g_x, ref_x)]:
      assert_relative(a, b, 2e-2)


@pytest.mark.parametrize("kernel", ["dot_product", pytest.param("cudnn", marks=gpu_only)])
def test_kv_cache_decoding_with_each_kernel_equals_xla(accelerator, kernel):
  """A prefix, then one step at a time, in bfloat16, against 'xla' on the full sequence."""
  if kernel == "cudnn" and dry(accelerator):
    pytest.skip("cuDNN's attention kernel needs a GPU")
  B, T, V = 2, 16, 50
  model = TransformerLM(vocab_size=V, num_outputs=V, num_layers=2, num_heads=2,
                        features=32 if dry(accelerator) else 128, max_len=T, dtype="bfloat16",
                        pos_encoding="rotary")
  tokens_BT = jax.device_put(jnp.asarray(np.random.default_rng(0).integers(0, V, (B, T))),
                             accelerator)
  params = jax.device_put(model.init(jax.random.key(0), tokens_BT)["params"], accelerator)
  full = jax.jit(model.apply)({"params": params}, tokens_BT)
  fused = model.clone(attention_kernel=kernel)
  decode = jax.jit(lambda cache, x: fused.apply({"params": params, "cache": cache}, x,
                                                decode=True, mutable=["cache"]))
  steps, state = decode(jax.device_put(init_cache(fused, B, T), accelerator), tokens_BT[:, :8])
  for t in range(8, T):
    step, state = decode(state["cache"], tokens_BT[:, t:t + 1])
    steps = jnp.concatenate([steps, step], axis=1)
  assert_relative(steps, full, 2e-2)


# --- train steps ---------------------------------------------------------------------------------

FAMILIES = {  # experiment, and overrides that keep the dry run small
    "cnn": ("mnist1d_cnn", {"model.features": (16, 16, 16)}),
    "rnn": ("mnist1d_rnn", {"model.features": 16}),
    "transformer": ("mnist1d_transformer", {"model.num_layers": 1, "model.features": 32}),
}


def train_metrics(config, device, num_steps=3):
  """Loss and gradient norm of the first steps of `config` on `device`, from the same init and
  batches on every device."""
  reader = data.reader(config.dataset, "train")
  batches = data.train_iterator(config, reader)
  model = nets.create_model(**config.model)
  tx, schedule = optim.make_optimizer(config.optimizer, config.num_steps)
  x_example = reader(np.arange(1))["x"]
  with jax.default_device(device):
    state = jax.jit(lambda: create_state(model, tx, x_example, config.seed))()
    step = jax.jit(make_train_step(model, tx, schedule, reader.spec.task))
    rows = []
    for _ in range(num_steps):
      state, metrics = step(state, jax.device_put(next(batches), device))
      rows.append({k: float(metrics[k]) for k in ("loss", "grad_norm")})
  return rows


def assert_rows_close(rows, reference, rtol):
  for row, ref in zip(rows, reference, strict=True):
    for k in ref:
      assert np.isfinite(row[k]) and abs(row[k] - ref[k]) <= rtol * abs(ref[k]), (k, row, ref)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_train_step_on_the_device_equals_cpu_and_bfloat16_stays_close(accelerator, tiny_config,
                                                                        family):
  """(The dry run skips the CPU against itself, and runs one family: the code is the same.)"""
  if dry(accelerator) and family != "cnn":
    pytest.skip("the dry run covers this code with the cnn family")
  experiment, overrides = FAMILIES[family]
  config = tiny_config(experiment, **(overrides if dry(accelerator) else {}))
  with jax.default_matmul_precision("highest"):
    on_device = train_metrics(config, accelerator)
    if not dry(accelerator):
      assert_rows_close(on_device, train_metrics(config, jax.devices("cpu")[0]), 1e-3)
  config.model.dtype = "bfloat16"
  assert_rows_close(train_metrics(config, accelerator), on_device, 5e-2)


def test_a_call_of_several_steps_equals_the_steps_one_by_one(accelerator, tiny_config):
  """config.steps_per_call: 4 steps scanned in one call (a while loop on the device) against the
  same 4 steps one call each, from the same state and batches, float32 at precision 'highest':
  each step's loss and gradient norm, and the parameters after, within 1e-4 relative."""
  config = tiny_config("mnist1d_cnn", **({"model.features": (16, 16, 16)} if dry(accelerator)
                                         else {}))
  with jax.default_device(accelerator), jax.default_matmul_precision("highest"):
    run = setup(config)
    drawn = run.train_iter.with_states()
    ids = np.stack([next(drawn)[0] for _ in range(4)])
    one_by_one, metrics = run.init(), []
    for ids_B in ids:
      one_by_one, m = run.train_step(one_by_one, data.pipeline.gather(
          run.train_data, ids_B, run.batch_sharding))
      metrics.append(m)
    in_one_call, stacked = run.multi_step(run.init(), data.pipeline.gather(
        run.train_data, ids, sharding.stacked(run.batch_sharding)))
  for k in ("loss", "grad_norm"):
    np.testing.assert_allclose(stacked[k], [float(m[k]) for m in metrics], rtol=1e-4)
  assert_relative(in_one_call.params, one_by_one.params, 1e-4)


# --- checkpoints and a full run ------------------------------------------------------------------

def resume_on_cpu(config, workdir):
  """Resumes `workdir` in a fresh CPU-only process (JAX_PLATFORMS=cpu)."""
  config_path = os.path.join(workdir, "resume_config.json")
  with open(config_path, "w") as f:
    f.write(config.to_json_best_effort())
  code = ("import json, sys, ml_collections; from train.loop import train_and_evaluate; "
          "train_and_evaluate(ml_collections.ConfigDict(json.load(open(sys.argv[1]))), sys.argv[2])")
  done = subprocess.run([sys.executable, "-c", code, config_path, str(workdir)], cwd=REPO,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True)
  assert done.returncode == 0, f"the resume on the CPU failed:\n{done.stderr[-3000:]}"


def restored_here_and_on_cpu(config, workdir, step):
  """The checkpoint of `step` restored onto the default device (as the loop lays it out) and
  onto the CPU, in this process."""
  run = setup(config)
  cpu = jax.sharding.SingleDeviceSharding(jax.devices("cpu")[0])
  on_cpu = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=cpu),
                        run.abstract_state)
  manager = checkpoint.open_manager(str(workdir), config.checkpoint)
  try:
    return (checkpoint.restore(manager, step, run.abstract_state)[0],
            checkpoint.restore(manager, step, on_cpu)[0])
  finally:
    manager.close()


def test_checkpoint_from_the_device_resumes_on_cpu(accelerator, tiny_config, tmp_path):
  """A run trained on jax's default device (the GPU; the loop uses every device of the default
  backend), cut after its step-20 checkpoint: its state restores onto the CPU bit for bit as onto
  the device, and the run resumed on the CPU ends where the device's own run ended. The device
  computes in full float32 (no TF32), as the CPU does."""
  config = tiny_config("mnist1d_cnn")
  ref_dir, cut_dir = tmp_path / "device", tmp_path / "cpu"
  with jax.default_matmul_precision("highest"):
    train_and_evaluate(config, str(ref_dir))
  as_killed_after(ref_dir, cut_dir, 20)
  on_device, on_cpu = restored_here_and_on_cpu(config, cut_dir, 20)
  assert {d.platform for a in jax.tree.leaves(on_cpu) for d in a.devices()} == {"cpu"}
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(on_cpu), jax.device_get(on_device))
  resume_on_cpu(config, cut_dir)
  with open(cut_dir / "results.json") as f:
    assert json.load(f)["resumed_from_step"] == 20
  ref_rows, rows = metric_rows(ref_dir), metric_rows(cut_dir)
  assert [r for r in rows if r["step"] <= 20] == [r for r in ref_rows if r["step"] <= 20]
  later = lambda rows: [{"loss": r["loss"]} for r in rows if r["step"] > 20 and "loss" in r]
  assert_rows_close(later(rows), later(ref_rows), 1e-3)


@gpu_only
def test_default_experiment_reaches_its_accuracy_on_one_gpu(data_dir, tmp_path):
  from experiments import mnist1d_cnn

  expected = mnist1d_cnn.EXPECTED[0]
  config = mnist1d_cnn.get_config()
  config.dataset.data_dir = data_dir
  results = train_and_evaluate(config, str(tmp_path / "run"))
  assert abs(results["final"][expected.metric] - expected.value) <= expected.tolerance, results


# --- the cuDNN LSTM ------------------------------------------------------------------------------

@gpu_only
@pytest.mark.parametrize("reverse", [False, True])
def test_cudnn_lstm_equals_the_scan(reverse):
  """Outputs, final carry and gradients (params, inputs, initial carry), with padding (a zero
  length too) and a given initial carry. The CPU runs this against jax's jnp reference of cuDNN's
  math in tests/test_recurrent_cudnn.py."""
  B, T, D, H = 8, 64, 32, 64
  x_BTD = normal(0, (B, T, D))
  lengths_B = jnp.array([T, 1, 0, T // 2, T - 1, 3, T, 17])
  carry = (normal(1, (B, H)), normal(2, (B, H)))
  scan = RNNLayer(H, "lstm", reverse=reverse)
  params = scan.init(jax.random.key(0), x_BTD)["params"]
  params = jax.tree.map(lambda p: p + 0.1 * normal(3, p.shape), params)
  assert layers.cuda_problem() is None

  def loss(backend, params, x_BTD, carry):
    h_BTH, (c_BH, h_BH) = scan.clone(backend=backend).apply(
        {"params": params}, x_BTD, lengths_B=lengths_B, initial_carry=carry)
    return jnp.sum(h_BTH * normal(4, h_BTH.shape)) + jnp.sum(c_BH ** 2) + jnp.sum(h_BH), \
        (h_BTH, c_BH, h_BH)

  grad = jax.jit(jax.grad(loss, argnums=(1, 2, 3), has_aux=True), static_argnums=0)
  with jax.default_matmul_precision("highest"):
    cudnn, scanned = grad("cudnn", params, x_BTD, carry), grad("scan", params, x_BTD, carry)
  for a, b in zip(jax.tree.leaves(cudnn), jax.tree.leaves(scanned), strict=True):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)

