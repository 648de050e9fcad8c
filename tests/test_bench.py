"""`python -m train.tools.bench`: times an experiment's real train step and records it."""
import gzip
import json
import os
import subprocess
import sys

import pytest

from train.tools import bench
from train.tools.time_by_op import markdown, time_by_op

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_times_the_step_and_records_a_row(tiny_config, tmp_path):
  config = tiny_config("mnist1d_mlp", batch_size=32, eval_batch_size=200)
  result = bench.bench(config, steps=3, profile_dir=str(tmp_path / "trace"))
  assert result["params"] == 15_210 and result["batch"] == 32
  assert result["step_ms"] > 0 and result["back_to_back_ms"] > 0 and result["compile_s"] > 0
  assert result["examples_per_s"] > 0 and result["tokens_per_s"] is None
  assert result["xla_flops_per_step"] > 6 * 15_210 * 32 * 0.9  # at least the matmuls' 6N per example
  assert result["mfu"] is None  # no peak is known for a CPU
  assert not result["xla_counts_a_loop_once"] and result["tflops_per_s"] > 0
  assert os.listdir(tmp_path / "trace")  # the profiler wrote a trace, and read it:
  ops = result["time_by_op"]  # XLA:CPU's thunks (a CPU trace has no device tracks)
  assert ops and all(r["ms_per_step"] > 0 and " tf_XLA" in r["track"] for r in ops)
  assert ops == sorted(ops, key=lambda r: -r["ms_per_step"])
  assert "loop_share" not in result  # no full run unless asked (with_loop)
  bench.record(result, "mnist1d_mlp", "python -m train.tools.bench ...", str(tmp_path / "out"))
  bench.record(result, "mnist1d_mlp", "python -m train.tools.bench ...", str(tmp_path / "out"))
  table = (tmp_path / "out" / "bench.md").read_text().splitlines()
  assert len(table) == 4 and table[2].startswith("| ") and "mnist1d_mlp" in table[3]
  assert json.loads((tmp_path / "out" / "mnist1d_mlp.json").read_text())["step_ms"] > 0


@pytest.mark.slow  # a bench of its own (5-9 s): make test-slow
def test_the_lm_flop_formula_agrees_with_xla(tiny_config):
  """6N + 12·L·d·T per token against XLA's count of the same (unscanned) step: within 10%."""
  config = tiny_config("chars_transformer", batch_size=4, eval_batch_size=4)
  config.dataset.seq_len = 64
  config.model.update(num_layers=2, features=128, max_len=64, dropout=0.0)
  result = bench.bench(config, steps=2)
  assert result["tokens_per_step"] == 4 * 64
  ratio = result["analytic_flops_per_step"] / result["xla_flops_per_step"]
  assert 0.9 < ratio < 1.1, ratio


@pytest.mark.slow  # a bench of its own (5-9 s): make test-slow
def test_the_xla_count_includes_the_convolutions(tiny_config):
  """The count is of the step as lowered, before XLA's rewrites, so on a GPU it still holds the
  convolutions that the compiled program hands to cuDNN. Here: at least the 3 convolutions' 2 FLOPs
  per multiply-add, forward and backward (the first layer's input gradient aside)."""
  config = tiny_config("mnist1d_cnn", batch_size=32, eval_batch_size=200)
  assert (tuple(config.model.features), config.model.kernel_size, config.model.strides,
          config.model.padding) == ((64, 64, 64), 5, 2, 1)
  macs = [19 * 5 * 1 * 64, 9 * 5 * 64 * 64, 4 * 5 * 64 * 64]  # lengths 40 -> 19 -> 9 -> 4
  per_example = 2 * (3 * sum(macs) - macs[0])
  result = bench.bench(config, steps=1)
  assert result["xla_flops_per_step"] >= 0.95 * per_example * 32, result["xla_flops_per_step"]


def test_the_lowered_count_on_a_pjrt_plugin_backend_comes_from_the_cpu_client(tiny_config,
                                                                              monkeypatch):
  """A GPU backend is a PJRT plugin, for which jax's Lowered.cost_analysis raises (and returns
  None): the count is then the CPU client's analysis of the same lowered module, the same."""
  from jax._src.interpreters import pxla

  import train.loop
  from train import data

  run = train.loop.setup(tiny_config("mnist1d_cnn", batch_size=32, eval_batch_size=200))
  state = run.init()
  batch, _ = next(data.prefetch_to_device(run.train_iter, run.batch_sharding, run.train_data))
  lowered = run.train_step.lower(state, batch)
  direct = bench.lowered_flops(lowered)
  monkeypatch.setattr(pxla.xb, "using_pjrt_c_api", lambda backend: True)
  assert lowered.cost_analysis() is None  # what a GPU gives
  assert bench.lowered_flops(lowered) == direct > 0


@pytest.mark.slow  # a bench of its own (5-9 s): make test-slow
def test_no_tflops_from_xla_for_a_program_with_a_loop(tiny_config):
  """An RNN scans over time: XLA counts the loop body once, so no TFLOP/s are derived from it."""
  config = tiny_config("mnist1d_rnn", batch_size=32, eval_batch_size=200)
  config.model.features = 8
  result = bench.bench(config, steps=1)
  assert result["xla_counts_a_loop_once"] and result["tflops_per_s"] is None
  assert result["xla_flops_per_step"] > 0


def test_mfu_from_flops_step_time_peak_and_devices():
  """4e12 FLOPs a step in 10 ms is 400 TFLOP/s: 40.4 % of one H100 SXM (989 TFLOP/s), 5.06 % of
  eight; no peak (a CPU), no MFU."""
  assert bench.mfu(4e12, 10.0, 989.0, 1) == pytest.approx(400 / 989)
  assert bench.mfu(4e12, 10.0, 989.0, 8) == pytest.approx(0.050556, rel=1e-4)
  assert bench.mfu(4e12, 10.0, None, 1) is None and bench.mfu(None, 10.0, 989.0, 1) is None


@pytest.mark.slow  # a bench of its own (5-9 s): make test-slow
def test_bench_reports_mfu_against_a_known_peak(tiny_config, monkeypatch):
  """The whole path, with a made-up 1 GFLOP/s peak for this CPU: MFU = FLOP/s achieved over it."""
  monkeypatch.setattr(bench, "PEAK_TFLOPS", {"cpu": 1e-3})
  result = bench.bench(tiny_config("mnist1d_mlp", batch_size=32, eval_batch_size=200), steps=3)
  assert result["peak_tflops"] == 1e-3 and result["devices"] == 1
  seconds = min(result["step_ms"], result["back_to_back_ms"]) / 1e3  # rounded to 1 us: ~0.3 %
  assert result["mfu"] == pytest.approx(result["xla_flops_per_step"] / seconds / 1e9, rel=0.01)


@pytest.mark.parametrize("device_kind, peak", [("NVIDIA H100 80GB HBM3", 989.0),
                                               ("NVIDIA H200", 989.0), ("TPU v4", 275.0),
                                               ("NVIDIA H100 PCIe", 756.0),
                                               ("NVIDIA H100 NVL", 835.0), ("NVIDIA L40S", 362.0),
                                               ("NVIDIA L40", 181.0), ("NVIDIA L4", 121.0),
                                               ("cpu", None)])
def test_peaks_by_device_kind(device_kind, peak):
  assert bench.peak_tflops(device_kind) == peak


@pytest.mark.slow
def test_bench_cli_on_mock_data_of_a_dataset_not_prepared_here(tmp_path):
  """The MNIST CNN on MNIST's shapes, from TFDS mock data: no download needed."""
  out = subprocess.run(
      [sys.executable, "-m", "train.tools.bench", "--config=experiments/mnist_cnn.py",
       "--steps=1", "--mock_data", f"--out={tmp_path}", f"--config.dataset.data_dir={tmp_path}",
       "--config.batch_size=4", "--config.eval_batch_size=4", "--config.model.features=(4,4)"],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  result = json.loads((tmp_path / "mnist_cnn.json").read_text())
  assert result["model"] == "convnet" and result["batch"] == 4
  assert "--mock_data" in result["command"]


def test_the_loop_rate_spans_the_first_to_the_last_logged_step(tiny_config, monkeypatch):
  """Steps 10 -> 30 of batch 50 in 3 s (eval and checkpoints between them count): 1000 examples /
  3 s = 333.3/s; at 1.5 ms a step back to back (1.0 before the run, 2.0 after) the device could
  take 50 / 1.5e-3 = 33,333/s, so the loop keeps it 1 % busy."""
  def fake_run(config, workdir):
    rows = [{"step": 10, "split": "train", "time": 100.0}, {"step": 20, "split": "train", "time": 101.0},
            {"step": 20, "split": "validation", "time": 102.5}, {"step": 30, "split": "train", "time": 103.0}]
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in rows)

  monkeypatch.setattr("train.loop.train_and_evaluate", fake_run)
  result = bench.loop_rate(tiny_config("mnist1d_mlp", batch_size=50), 1.0, lambda: 2.0)
  assert result == {"loop_steps": 20, "loop_examples_per_s": 333.3, "back_to_back_after_ms": 2.0,
                    "loop_share": 0.01}


@pytest.mark.slow  # a real run, bench's compiles and the parking on the host: make test-slow
def test_the_loop_rate_of_a_real_run_in_calls_of_several_steps(tiny_config):
  """bench --loop with config.steps_per_call: the step timed alone and in calls, then the run
  (the bench's arrays parked on the host meanwhile), then the step again."""
  config = tiny_config("mnist1d_mlp", batch_size=32, eval_batch_size=200)
  config.update(num_steps=40, log_every=10, eval_every=20, steps_per_call=4)
  result = bench.bench(config, steps=2, with_loop=True, back_to_back_s=0.05)
  assert result["steps_per_call"] == 4 and result["call_step_ms"] > 0
  assert result["loop_steps"] == 30 and 0 < result["loop_examples_per_s"]
  assert result["back_to_back_after_ms"] > 0 and result["loop_share"] > 0


def test_time_by_op_reads_the_device_streams_per_step(tmp_path):
  """A GPU-like trace of 2 steps: the kernels on the device's stream tracks, not the XLA-ops track
  derived from them, nor the host's events; a GPU trace without device tracks gives nothing
  unless the host's XLA threads are asked for (a CPU run)."""
  meta = lambda pid, tid, kind, name: {"ph": "M", "pid": pid, "tid": tid, "name": kind,
                                       "args": {"name": name}}
  op = lambda pid, tid, name, dur: {"ph": "X", "pid": pid, "tid": tid, "name": name, "ts": 0,
                                    "dur": dur}
  host = [meta(2, 0, "process_name", "/host:CPU"), meta(2, 3, "thread_name", "bench.py"),
          meta(2, 4, "thread_name", "tf_XLAEigen/1"), op(2, 3, "PjitFunction", 9e6),
          op(2, 4, "fusion.7", 500)]
  device = [meta(1, 0, "process_name", "/device:GPU:0"), meta(1, 7, "thread_name", "Stream #7"),
            meta(1, 9, "thread_name", "Stream #9"), meta(1, 8, "thread_name", "XLA Ops"),
            *[op(1, 7, "gemm", 3000) for _ in range(4)], op(1, 7, "fusion_1", 4000),
            op(1, 9, "memcpy", 1000), op(1, 8, "dot.1", 12000)]

  def rows_of(events, **kwargs):
    trace_dir = tmp_path / str(len(list(tmp_path.iterdir()))) / "plugins" / "profile" / "run"
    trace_dir.mkdir(parents=True)
    with gzip.open(trace_dir / "perfetto_trace.json.gz", "wt") as f:
      json.dump({"traceEvents": events}, f)
    return time_by_op(str(trace_dir.parents[2]), steps=2, top=2, **kwargs)

  rows = rows_of(device + host)
  assert rows == [
      {"track": "/device:GPU:0 Stream #7", "op": "gemm", "ms_per_step": 6.0,
       "calls_per_step": 2.0, "share_of_track": 0.75, "track_ms_per_step": 8.0},
      {"track": "/device:GPU:0 Stream #7", "op": "fusion_1", "ms_per_step": 2.0,
       "calls_per_step": 0.5, "share_of_track": 0.25, "track_ms_per_step": 8.0}]
  assert "| `gemm` | /device:GPU:0 Stream #7 | 6.0 | 2.0 | 75.0% | 8.0 |" in markdown(rows)
  assert rows_of(host, host_fallback=False) == []
  assert [r["op"] for r in rows_of(host)] == ["fusion.7"]
