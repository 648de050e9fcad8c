"""The lecture's claims measured on trained runs or on the models themselves: one module a claim,
each a command (`python -m experiments.analysis.X`) that writes JSON and plots, and, where the
README shows its result, a `readme_blocks()` that `python -m train.tools.reproduce --readme` calls.
"""
import json
import os


def json_blocks(docs: str, formats: dict) -> dict[str, str]:
  """README blocks {name: fmt(docs/name.json)}, "(not run yet)" where that JSON is absent."""
  blocks = {}
  for name, fmt in formats.items():
    path = os.path.join(docs, f"{name}.json")
    blocks[name] = "(not run yet)"
    if os.path.exists(path):
      with open(path) as f:
        blocks[name] = fmt(json.load(f))
  return blocks
