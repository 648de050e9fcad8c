"""Commands that work on any run or experiment: reproduce (the results registry), report (tables and
curves over runs), sample (text from a trained LM), bench (step time, throughput, MFU), time_by_op
(a profile's longest ops), gpu (`make gpu`: the GPU tests and benchmarks in one command); here,
what several of them share (argument types, table cells). No jax here: `gpu` must not import it."""
import argparse


def positive_int(text: str) -> int:
  """argparse type for a count or size (steps, tokens, a batch): an integer >= 1, else argparse's
  one-line usage error rather than a traceback from deep inside."""
  value = int(text)  # a ValueError: argparse says "invalid positive_int value"
  if value < 1:
    raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
  return value


def positive_ints(text: str) -> list[int]:
  """argparse type for a comma-separated list of counts or sizes, each >= 1 ("64,128,256")."""
  return [positive_int(t) for t in text.split(",")]


def fmt(v, spec: str = "") -> str:
  """A table cell: `v` formatted, empty where not measured (None)."""
  return "" if v is None else format(v, spec)


def length_table(rows: list[dict], length_name: str = "T") -> list[str]:
  """`length_sweep`'s rows as Markdown: a line per length, a tokens/s column per model."""
  models = list(dict.fromkeys(r["model"] for r in rows))
  lines = [f"| {length_name} | batch | " + " | ".join(f"{m} tokens/s" for m in models) + " |",
           "|---|---|" + "---|" * len(models)]
  for length in sorted({r["length"] for r in rows}):
    by = {r["model"]: r for r in rows if r["length"] == length}
    lines.append(f"| {length} | {next(iter(by.values()))['batch']} | "
                 + " | ".join(fmt(by.get(m, {}).get("tokens_per_s"), ",") for m in models) + " |")
  return lines
