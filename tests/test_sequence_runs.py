"""The recurrent experiments end to end at tiny sizes: regression, sequence labelling and a char
LM train through the same loop; sampling and the gradient-flow tool read their checkpoints."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.analysis import bench_seq_len, gates, gradient_flow, seq2seq
from nets import recurrent
from train.tools import length_table, sample
from train.loop import TrainingDiverged, train_and_evaluate


@pytest.fixture
def tiny_rnn(tiny_config, tmp_path):
  def make(experiment, dataset, **overrides):
    config = tiny_config(experiment, num_steps=20, **{"dataset.name": dataset,
                                                       "dataset.data_dir": str(tmp_path / "tfds"),
                                                       "model.features": 8, **overrides})
    return config
  return make


def first_train_loss(workdir) -> float:
  """The loss of the first logged train row (the mean over steps 1-5): the untrained model's."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return next(r for r in map(json.loads, f) if r["split"] == "train")["loss"]


@pytest.mark.slow  # trains for minutes on 2 cores: `make test-slow`
def test_adding_problem_trains_and_gradient_flow_is_measured(tiny_rnn, tmp_path):
  """It learns: the test MSE ends below half the first steps' (20 steps: 1.47 -> 0.62)."""
  workdir = str(tmp_path / "adding")
  results = train_and_evaluate(tiny_rnn("adding_problem", "adding_problem/t10"), workdir)
  assert set(results["final"]) == {"step", "loss"}
  assert results["final"]["loss"] < 0.5 * first_train_loss(workdir)
  # A run the non-finite guard stops (SGD at lr 1e30) is recorded as diverged, not a crash.
  diverged = str(tmp_path / "diverged")
  with pytest.raises(TrainingDiverged):
    train_and_evaluate(tiny_rnn("adding_problem", "adding_problem/t10", **{
        "optimizer.name": "sgd", "optimizer.lr": 1e30, "optimizer.grad_clip_norm": 0.0}), diverged)
  out = str(tmp_path / "flow")
  gradient_flow.main([workdir, diverged, "--out", out, "--examples", "16"])
  with open(os.path.join(out, "gradient_flow.json")) as f:
    flows = json.load(f)
  r = flows[os.path.normpath(workdir)]
  assert r["cell"] == "lstm" and r["step"] == 20
  assert len(r["init"]) == len(r["trained"]) == 10 and min(r["init"]) > 0
  assert os.path.getsize(os.path.join(out, "gradient_flow.png")) > 0
  d = flows[os.path.normpath(diverged)]
  assert "trained" not in d and len(d["init"]) == 10 and " became " in d["diverged"]
  block = gradient_flow.readme_blocks(out)["gradient_flow"]
  assert "| lstm | 1 | adding_problem/t10 | norm 1 | " in block
  assert "| lstm | 1 | adding_problem/t10 | none | " in block
  assert block.endswith(" | diverged (stopped by the non-finite guard) |")
  gates.main([workdir, "--out", out, "--examples", "16", "--example", "3"])
  with open(os.path.join(out, "gates.json")) as f:
    r = json.load(f)[os.path.normpath(workdir)]
  assert r["cell"] == "lstm" and r["step"] == 20 and len(r["trained_memory"]) == 8
  assert [u["chosen by"] for u in r["units"]] == ["longest memory"] * 3 + ["writes most at marks"] * 3
  assert r["units"][0]["memory"] == max(r["trained_memory"])
  assert os.path.getsize(os.path.join(out, "gates.png")) > 0
  assert gates.readme_blocks(out)["gates"].count("\n| lstm | ") == 1
  with pytest.raises(SystemExit) as e:
    gates.main([workdir, "--out", out, "--examples", "16", "--example", "16"])
  assert e.value.code == 2


@pytest.mark.slow  # trains for minutes on 2 cores: `make test-slow`
def test_copy_memory_trains_with_per_step_outputs(tiny_rnn, tmp_path):
  workdir = str(tmp_path / "copy")
  results = train_and_evaluate(tiny_rnn("copy_memory", "copy_memory/t10", **{"model.cell": "gru"}),
                               workdir)
  assert set(results["final"]) == {"step", "loss", "accuracy", "bits", "recall_accuracy"}
  # It learns: below the first steps' loss (2.30, a uniform guess among the 10 outputs) by 15 %
  # (20 steps: 1.76).
  assert results["final"]["loss"] < 0.85 * min(first_train_loss(workdir), np.log(10))


@pytest.mark.slow  # trains for a minute on 2 cores: `make test-slow`
def test_char_lm_trains_and_samples(tiny_rnn, tmp_path, capsys):
  workdir = str(tmp_path / "chars")
  config = tiny_rnn("chars_lstm", "python_reference", **{"dataset.seq_len": 16,
                                                        "eval_batch_size": 512,
                                                        "optimizer.lr": 0.02})
  results = train_and_evaluate(config, workdir)
  # It learns: 15 % below the first steps' loss, and well below a uniform guess (log2 103 = 6.7
  # bits; 20 steps: 4.63 -> 3.62 nats, 5.2 bits).
  assert results["final"]["loss"] < 0.85 * first_train_loss(workdir)
  assert results["final"]["bits"] < 5.5
  capsys.readouterr()
  sample.main(["--workdir", workdir, "--prompt", "def ", "--length", "20", "--temperature", "0"])
  text = capsys.readouterr().out.rstrip("\n")
  assert text.startswith("def ") and len(text) == 24
  for prompt, error in [("\u00e9\u00e9", "never saw"), ("", "at least one character")]:
    with pytest.raises(SystemExit) as exit_info:
      sample.main(["--workdir", workdir, "--prompt", prompt])
    assert exit_info.value.code == 2
    assert error in capsys.readouterr().err


@pytest.mark.slow  # compiles every implementation: `make test-slow`
def test_rnn_benchmark_runs_at_tiny_size(tmp_path):
  from experiments.analysis import bench_rnn
  bench_rnn.main(["--size", "tiny", "--steps", "1", "--dtypes", "float32", "--out", str(tmp_path)])
  with open(tmp_path / "bench_rnn.json") as f:
    record = json.load(f)
  impls = {(r["cell"], r["dtype"], r["impl"]) for r in record["rows"]}
  assert ("lstm", "float32", "ours (scan)") in impls and ("gru", "float32", "flax stock") in impls
  assert all(r["ms"] > 0 for r in record["rows"])
  assert "| lstm | float32 | ours (scan) |" in (tmp_path / "bench_rnn.md").read_text()


def test_gradients_vanish_faster_in_a_simple_rnn_than_in_an_lstm_at_init():
  """The lecture's claim at T = 50: the share of dL/dh that reaches h_0 from the last step."""
  from nets.recurrent import RecurrentNet
  x = np.random.default_rng(0).uniform(size=(64, 50, 2)).astype(np.float32)
  batch = {"x": x, "label": x[:, :, 0].sum(1)}
  ratio = {}
  for cell in ("simple", "lstm"):
    model = RecurrentNet(num_outputs=1, cell=cell, features=32)
    variables = model.init(jax.random.PRNGKey(0), x[:1])
    norms = gradient_flow.hidden_grad_norms(model, variables, batch, "regress")
    ratio[cell] = float(norms[0] / norms[-1])
  assert ratio["simple"] < 1e-3 * ratio["lstm"]


@pytest.mark.slow  # trains for minutes on 2 cores: `make test-slow`
def test_transformer_lm_trains_and_kv_cache_sampling_matches_recomputation(tiny_rnn, tmp_path):
  workdir = str(tmp_path / "gpt")
  config = tiny_rnn("chars_transformer", "python_reference",
                    **{"dataset.seq_len": 16, "eval_batch_size": 512, "model.features": 16,
                       "model.max_len": 16})
  results = train_and_evaluate(config, workdir)
  # It learns: 10 % below the first steps' loss, and below a uniform guess (log2 103 = 6.7 bits;
  # 20 steps: 5.10 -> 4.12 nats, 5.9 bits).
  assert results["final"]["loss"] < 0.9 * first_train_loss(workdir)
  assert results["final"]["bits"] < 6.2
  _, model, variables, _ = sample.checkpoint.load_for_inference(workdir)
  prompt, rng = [5, 6, 7], jax.random.PRNGKey(0)
  cached = sample.sample(model, variables, prompt, 8, 16, 0.0, 0, 1.0, 0)
  recomputed = sample.sample_by_recomputing(model, variables, prompt, 8, 16, 0.0, 0, 1.0, rng)
  assert cached == recomputed and len(cached) == 8


@pytest.mark.slow  # trains for minutes on 2 cores: `make test-slow`
def test_attention_maps_of_a_trained_classifier(tiny_config, tmp_path):
  from experiments.analysis import attention_maps
  workdir = str(tmp_path / "vit")
  config = tiny_config("mnist1d_transformer", num_steps=10,
                       **{"model.features": 16, "model.num_layers": 2, "model.num_heads": 2})
  train_and_evaluate(config, workdir)
  attention_maps.main([workdir, "--example", "3"])
  with open(os.path.join(workdir, "attention_maps.json")) as f:
    maps = json.load(f)
  weights = np.asarray(maps["weights_LNTS"])
  assert weights.shape == (2, 2, 11, 11) and maps["tokens"][:2] == ["CLS", "p0"]
  np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-3)
  assert os.path.getsize(os.path.join(workdir, "attention_maps.png")) > 0
  attention_maps.main([workdir, "--out", str(tmp_path), "--name", "vit"])
  assert {"attention_vit.png", "attention_vit.json"} <= set(os.listdir(tmp_path))


@pytest.mark.slow  # compiles both models at each length: `make test-slow`
def test_throughput_against_sequence_length_runs_at_tiny_size(tmp_path):
  bench_seq_len.main(["--lengths", "8,16", "--tokens", "32", "--steps", "1", "--out", str(tmp_path)])
  with open(tmp_path / "bench_seq_len.json") as f:
    rows = json.load(f)["rows"]
  assert {(r["model"], r["length"], r["batch"]) for r in rows} == {
      ("transformer", 8, 4), ("lstm", 8, 4), ("transformer", 16, 2), ("lstm", 16, 2)}
  assert (tmp_path / "bench_seq_len.png").exists()
  table = (tmp_path / "bench_seq_len.md").read_text().splitlines()[2:]
  assert table[0] == "| T | batch | transformer tokens/s | lstm tokens/s |" and len(table) == 4
  seq2seq.main(["speed", "--lengths", "8", "--tokens", "16", "--steps", "1", "--out", str(tmp_path)])
  with open(tmp_path / "seq2seq_speed.json") as f:
    rows = json.load(f)["rows"]
  assert [(r["model"], r["length"], r["batch"]) for r in rows] == [
      ("RNN, additive", 8, 2), ("Transformer", 8, 2)]


def test_length_table_lines_up_each_models_tokens_per_second_by_length():
  rows = [{"model": "a", "length": 8, "batch": 4, "tokens_per_s": 1000},
          {"model": "b", "length": 8, "batch": 4, "tokens_per_s": 2000},
          {"model": "a", "length": 16, "batch": 2, "tokens_per_s": 1500}]  # b cut off at 16
  assert length_table(rows, "L") == ["| L | batch | a tokens/s | b tokens/s |", "|---|---|---|---|",
                                     "| 8 | 4 | 1,000 | 2,000 |", "| 16 | 2 | 1,500 |  |"]


def adding_batch(T: int, size: int = 64) -> dict:
  """Adding-problem-like inputs: a value and a marker channel; the label sums two marked values."""
  rng = np.random.default_rng(0)
  x = np.stack([rng.uniform(size=(size, T)), np.zeros((size, T))], axis=-1).astype(np.float32)
  x[:, [0, T // 2], 1] = 1.0
  return {"x": x, "label": x[:, [0, T // 2], 0].sum(1)}


@pytest.mark.parametrize("cell_name", ["lstm", "gru"])
def test_recorded_gates_are_the_ones_the_layer_runs_on(cell_name):
  """Rebuilding the layer's outputs from the recorded gates gives the layer's outputs."""
  layer = recurrent.RNNLayer(6, cell=cell_name)
  x_BTD = jax.random.uniform(jax.random.PRNGKey(0), (3, 7, 2))
  params = layer.init(jax.random.PRNGKey(1), x_BTD)["params"]
  h_BTH, _ = layer.apply({"params": params}, x_BTD)
  trace = gates.gate_trace(recurrent.CELLS[cell_name](6), params, x_BTD)
  state_BH, outputs = np.zeros((3, 6)), []
  for t in range(7):
    g = {name: a[t] for name, a in trace.items()}
    if cell_name == "lstm":
      state_BH = g["forget"] * state_BH + g["input"] * g["candidate"]
      outputs.append(g["output"] * np.tanh(state_BH))
    else:
      state_BH = (1 - g["update"]) * g["candidate"] + g["update"] * state_BH
      outputs.append(state_BH)
  np.testing.assert_allclose(np.stack(outputs, 1), h_BTH, atol=1e-6)
  keep, write, written = gates.keep_and_write(cell_name, trace)
  np.testing.assert_allclose(keep + (write if cell_name == "gru" else 1 - keep), 1, atol=1e-6)
  np.testing.assert_allclose(written, write * trace["candidate"])


def test_memory_is_the_steps_a_unit_takes_to_shrink_by_e():
  keep = jnp.full((50, 2, 3), 0.9).at[..., 1].set(np.exp(-1 / 40)).at[..., 2].set(1.0)
  tau = gates.memory(np.asarray(keep))
  np.testing.assert_allclose(tau[:2], [9.49, 40], rtol=1e-3)
  assert tau[2] > 1e12  # a keep gate saturated at 1 (in float32) forgets nothing: the longest


def test_spectral_radius_scales_each_gate_block_of_the_recurrent_weights():
  """model.spectral_radius: every gate's (H, H) block of W_h starts with all its eigenvalues at
  that modulus (orthogonal times rho). Bad values: one line."""
  from nets.recurrent import CELLS, RecurrentNet
  x = np.zeros((1, 2, 2), np.float32)
  for cell in CELLS:
    params = RecurrentNet(num_outputs=1, cell=cell, features=16, spectral_radius=2.5).init(
        jax.random.PRNGKey(0), x)["params"]
    kernel = np.asarray(params["forward_0"]["cell"]["hidden"]["kernel"])
    for block in np.split(kernel, kernel.shape[1] // 16, axis=1):  # one per gate reading h @ W_h
      np.testing.assert_allclose(np.abs(np.linalg.eigvals(block)), 2.5, rtol=1e-4)
  with pytest.raises(ValueError, match=r"^spectral_radius must be > 0 .*, got -1.0"):
    RecurrentNet(num_outputs=1, cell="simple", features=4, spectral_radius=-1.0).init(
        jax.random.PRNGKey(0), x)


def test_gradients_explode_with_distance_when_the_spectral_radius_is_above_one():
  """At init, ||dL/dh_t|| grows with the distance from the last step at radius 2 (by over 100x
  across 50 steps) and shrinks at radius 1."""
  from nets.recurrent import RecurrentNet
  batch = adding_batch(50)
  norms = {}
  for rho in (1.0, 2.0):
    model = RecurrentNet(num_outputs=1, cell="simple", features=32, spectral_radius=rho)
    variables = model.init(jax.random.PRNGKey(0), batch["x"][:1])
    norms[rho] = np.asarray(gradient_flow.hidden_grad_norms(model, variables, batch, "regress"))
  assert norms[2.0][0] > 100 * norms[2.0][-1] and norms[2.0][0] > norms[2.0][25] > norms[2.0][-1]
  assert norms[1.0][0] < norms[1.0][-1]


def test_clipping_caps_the_first_update_of_the_exploding_experiment():
  """The experiment's first SGD step at init: unclipped, the update is lr times a gradient norm in
  the hundreds or more; with optimizer.grad_clip_norm=1 it is at most lr (x 1)."""
  from nets import create_model
  from tests.conftest import load_config
  from train.optim import make_optimizer
  from train.steps import create_state, make_train_step
  batch = {k: jax.numpy.asarray(v) for k, v in adding_batch(50, 50).items()}
  moved = {}
  for clip in (0.0, 1.0):
    config = load_config("exploding_gradients")
    config.optimizer.grad_clip_norm = clip
    model = create_model(**config.model)
    tx, schedule = make_optimizer(config.optimizer, config.num_steps)
    state = create_state(model, tx, batch["x"][:1], seed=0)
    new_state, metrics = jax.jit(make_train_step(model, tx, schedule, "regress"))(state, batch)
    delta = jax.tree.map(lambda a, b: a - b, new_state.params, state.params)
    moved[clip] = float(jax.numpy.sqrt(sum((d ** 2).sum() for d in jax.tree.leaves(delta))))
    assert metrics["grad_norm"] > 100
  lr = config.optimizer.lr
  assert moved[1.0] <= lr * 1.0001 and moved[0.0] > 100 * lr


def test_gru_vs_lstm_table_counts_flops_and_reads_the_registry_runs(tmp_path, monkeypatch,
                                                                   capsys):
  """The GRU-vs-LSTM tool on every task, with the timed step faked (its real one is
  `train.tools.bench`, tested there): FLOPs from XLA match the matmul count 2 G H (D + H) within
  the elementwise ops, the test metrics come from the runs of each grid point (a stale one left
  out), and the README block shows both."""
  from experiments import adding_problem
  from experiments.analysis import gru_vs_lstm
  from train import sweep
  point = {"dataset.name": "adding_problem/t100", "model.cell": "gru"}
  for seed, loss in ((0, 1e-4), (2, 3e-4)):
    run = tmp_path / "runs" / "adding_problem" / sweep.member_name({**point, "seed": seed})
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"final": {"loss": loss}}))
  stale = sweep.apply(adding_problem.get_config(), {**point, "seed": 1, "num_steps": 7,
                                                     "dataset.data_dir": "/elsewhere"})
  run = tmp_path / "runs" / "adding_problem" / sweep.member_name({**point, "seed": 1})
  run.mkdir()
  (run / "results.json").write_text(json.dumps({"final": {"loss": 0.5}}))
  (run / "config.json").write_text(stale.to_json_best_effort())  # trained before a change
  monkeypatch.setattr(gru_vs_lstm.bench, "bench", lambda config, steps: {
      "params": {"lstm": 400, "gru": 300}[config.model.cell], "step_ms": 2.0})
  gru_vs_lstm.main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path), "--steps", "1",
                    "--repeats", "2"])
  rows = {(r["experiment"], r["cell"]): r for r in
          json.loads((tmp_path / "gru_vs_lstm.json").read_text())["rows"]}
  assert len(rows) == 6
  adding = rows["adding_problem", "gru"]
  assert adding["values"] == [1e-4, 3e-4] and adding["seeds"] == 2
  assert adding["stale_runs"] == [run.name]
  assert "in num_steps\n" in capsys.readouterr().err  # not in where its data was
  assert adding["step_ms_repeats"] == [2.0, 2.0]
  assert adding["inputs"] == 2 and adding["flops_per_step_matmuls"] == 2 * 3 * 64 * (2 + 64)
  assert rows["copy_memory", "lstm"]["flops_per_step_matmuls"] == 2 * 4 * 64 * (16 + 64)
  for r in rows.values():
    matmuls = r["flops_per_step_matmuls"]
    assert matmuls <= r["flops_per_step_xla"] <= 1.1 * matmuls
  assert rows["mnist1d_rnn", "lstm"]["seeds"] == 0
  block = gru_vs_lstm.readme_blocks(str(tmp_path))["gru_vs_lstm"]
  assert "| adding problem (T = 100) | gru | 300 | " in block
  assert "0.0002 ± 0.00014 (2 seeds, 1 stale left out)" in block
  assert "params 0.75" in block and "(no runs)" in block


@pytest.mark.slow  # the experiment's seed 0 at full length (3000 steps): `make test-slow`
def test_the_exploding_experiment_diverges_without_clipping_and_learns_with_it(tmp_path):
  """experiments/exploding_gradients.py, seed 0: unclipped, it diverges as the registry's
  `Diverges` has it, either stopped by the non-finite guard (diverged.json) or ending far above
  the baseline (test MSE 102 recorded; which of the two turns on float rounding); clipped, the
  test MSE ends well below the baseline's 0.167 (0.104 recorded)."""
  from experiments.exploding_gradients import EXPECTED
  from tests.conftest import load_config
  from train.workdir import read_diverged
  config = load_config("exploding_gradients")
  config.dataset.data_dir = str(tmp_path / "tfds")
  diverges = EXPECTED[0]  # the registry's verdict: stopped by the guard (inf) or blown up
  try:
    final = train_and_evaluate(config, str(tmp_path / "noclip"))["final"][diverges.metric]
  except TrainingDiverged:
    # Which the guard sees first turns on rounding too (an AMD EPYC: grad_norm; an Intel Xeon:
    # the loss, at step 45).
    error = read_diverged(str(tmp_path / "noclip"))["error"]
    assert error.startswith(("grad_norm became inf", "loss became inf", "loss became nan")), error
    final = float("inf")
  assert diverges.diverged(final)
  config.optimizer.grad_clip_norm = 1.0
  assert train_and_evaluate(config, str(tmp_path / "clip"))["final"]["loss"] < 0.13
