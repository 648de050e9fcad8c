"""python -m train.sample --workdir runs/chars_lstm --prompt "The " [--length 300 --temperature 0.8]

Samples text from a trained character-level language model (any model trained on a text dataset).
Each new character is drawn from the model's prediction over the last `dataset.seq_len` characters,
recomputed in full every step: one compiled function, whatever the model.
"""
import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np

from train import checkpoint, data
from train.config import ConfigError


def sample(apply_fn, variables, prompt_ids: list[int], length: int, window: int, temperature: float,
           top_k: int, seed: int) -> list[int]:
  """`length` new ids after `prompt_ids`; temperature 0 is greedy."""

  @jax.jit
  def next_logits(tokens_1W, last):
    logits_1WV = apply_fn(variables, tokens_1W, train=False)
    return logits_1WV[0, last]

  ids, rng = list(prompt_ids), jax.random.PRNGKey(seed)
  for _ in range(length):
    context = ids[-window:]
    tokens = np.zeros((1, window), np.int32)
    tokens[0, :len(context)] = context  # right-padded: the padding comes after `last`
    logits = next_logits(tokens, len(context) - 1)
    if temperature == 0:
      ids.append(int(jnp.argmax(logits)))
      continue
    if top_k:
      logits = jnp.where(logits < jnp.sort(logits)[-top_k], -jnp.inf, logits)
    rng, key = jax.random.split(rng)
    ids.append(int(jax.random.categorical(key, logits / temperature)))
  return ids[len(prompt_ids):]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="a finished or running text-LM run")
  parser.add_argument("--prompt", default="\n")
  parser.add_argument("--length", type=int, default=300, help="characters to generate")
  parser.add_argument("--temperature", type=float, default=0.8)
  parser.add_argument("--top_k", type=int, default=0, help="0: sample from all characters")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  try:
    config, model, variables, step = checkpoint.load_for_inference(args.workdir)
    if not data.spec_of(config.dataset.name).text:
      raise ConfigError(f"{args.workdir} trained on {config.dataset.name!r}, not a text dataset")
    chars = data.vocabulary(config.dataset)
    unknown = sorted(set(args.prompt) - set(chars))
    if unknown:
      raise ConfigError(f"the prompt has characters the model never saw: {unknown}")
    if not 0 <= args.top_k <= len(chars) or args.temperature < 0 or args.length < 0:
      raise ConfigError(f"need 0 <= --top_k <= {len(chars)} (the vocabulary), --temperature >= 0 "
                        "and --length >= 0")
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  lookup = {c: i for i, c in enumerate(chars)}
  new = sample(model.apply, variables, [lookup[c] for c in args.prompt], args.length,
               config.dataset.seq_len, args.temperature, args.top_k, args.seed)
  print(f"[{args.workdir}, step {step}]", file=sys.stderr)
  print(args.prompt + "".join(chars[i] for i in new))


if __name__ == "__main__":
  main()
