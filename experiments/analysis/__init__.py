"""The lecture's claims measured on trained runs or on the models themselves: one module a claim,
each a command (`python -m experiments.analysis.X`) that writes JSON and plots, and, where the
README shows its result, a `readme_blocks()` that `python -m train.tools.reproduce --readme` calls.
"""
import json
import os


def json_block(docs: str, name: str, markdown) -> dict[str, str]:
  """{name: markdown(the JSON in docs/<name>.json)}, the usual `readme_blocks()`; "(not run yet)"
  while the analysis has not written it."""
  path = os.path.join(docs, f"{name}.json")
  if not os.path.exists(path):
    return {name: "(not run yet)"}
  with open(path) as f:
    return {name: markdown(json.load(f))}
