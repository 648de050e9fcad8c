"""What the PyTorch peers share: the device, the timing of a train step as `train.tools.bench`
times ours, and the fields of the row they record beside ours."""
import statistics
import time

import torch

from train.tools.bench import peak_tflops


def device() -> str:
  return "cuda" if torch.cuda.is_available() else "cpu"


def time_step(step, steps: int) -> dict:
  """`step()` returns a loss tensor. Its first call (eager warm-up or `torch.compile`'s
  compilation) is `compile_s`; after one more warm-up call, the median of `steps` synchronised calls
  (`.item()` waits for the step, as `jax.block_until_ready` does) and the mean of at least `steps`
  calls for at least 2 s back to back with one sync at the end, as ours."""
  t = time.perf_counter()
  step().item()
  compile_s = time.perf_counter() - t
  step().item()
  if torch.cuda.is_available():
    torch.cuda.reset_peak_memory_stats()  # the timed steps' peak, not the eager or compiling one's
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    step().item()
    times.append(time.perf_counter() - t)
  step_ms = statistics.median(times) * 1e3
  n = max(steps, int(2000 / step_ms) + 1)
  t = time.perf_counter()
  for _ in range(n):
    loss = step()
  loss.item()
  back_to_back_ms = (time.perf_counter() - t) / n * 1e3
  return {"step_ms": round(step_ms, 3), "back_to_back_ms": round(back_to_back_ms, 3),
          "compile_s": round(compile_s, 2)}


def row(model: str, num_params: int, batch: int, dtype: str, times: dict, flops: float,
        tokens_per_step: int | None = None) -> dict:
  """A row in `train.tools.bench`'s format (rates from the better of the two step times)."""
  on_gpu = torch.cuda.is_available()
  kind = torch.cuda.get_device_name() if on_gpu else "cpu"
  best_ms = min(times["step_ms"], times["back_to_back_ms"])
  tflops = flops / best_ms / 1e9
  peak = peak_tflops(kind)
  return {
      "model": model, "params": num_params, "batch": batch, "tokens_per_step": tokens_per_step,
      "devices": 1, "device": kind, "dtype": dtype, **times,
      "examples_per_s": round(batch / best_ms * 1e3, 1),
      "tokens_per_s": round(tokens_per_step / best_ms * 1e3) if tokens_per_step else None,
      "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3) if on_gpu else None,
      "tflops_per_s": float(f"{tflops:.3g}"), "peak_tflops": peak,
      "mfu": round(tflops / peak, 4) if peak else None, "torch": torch.__version__,
  }
