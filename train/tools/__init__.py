"""Commands that work on any run or experiment: reproduce (the results registry), report (tables and
curves over runs), sample (text from a trained LM), bench (step time, throughput, MFU), time_by_op
(a profile's longest ops), gpu (`make gpu`: the GPU tests and benchmarks in one command)."""
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
