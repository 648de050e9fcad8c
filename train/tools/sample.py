"""python -m train.tools.sample --workdir runs/rnn/chars_lstm --prompt "The " [--length 300 --temperature 0.8]

Samples text from a trained character-level language model (any model trained on a text dataset):
a Transformer LM decodes with its KV cache; other models (the LSTM) are re-run on the last
`dataset.seq_len` characters for each new one. Greedy at temperature 0; top-k and top-p filtering.
"""
import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np

from nets.decoding import generate, sample_logits
from nets.transformer import TransformerLM
from train import checkpoint, data
from train.config import ConfigError


def sample(model, variables, prompt_ids: list[int], length: int, window: int, temperature: float,
           top_k: int, top_p: float, seed: int) -> list[int]:
  """`length` new ids after `prompt_ids` (temperature 0 is greedy). A TransformerLM decodes with
  its KV cache; any other model is re-run on the last `window` ids for every new one."""
  rng = jax.random.PRNGKey(seed)
  if isinstance(model, TransformerLM):
    prompt_1T = jnp.asarray([prompt_ids[-window:]], jnp.int32)
    new_1N = generate(model, variables["params"], prompt_1T, length, rng, temperature, top_k, top_p)
    return [int(i) for i in new_1N[0]]
  return sample_by_recomputing(model, variables, prompt_ids, length, window, temperature, top_k,
                               top_p, rng)


def sample_by_recomputing(model, variables, prompt_ids, length, window, temperature, top_k, top_p,
                          rng) -> list[int]:
  @jax.jit
  def next_id(tokens_1W, last, key):
    logits_1WV = model.apply(variables, tokens_1W, train=False)
    return sample_logits(key, logits_1WV[:, last], temperature, top_k, top_p)[0]

  ids = list(prompt_ids)
  for key in jax.random.split(rng, length):
    context = ids[-window:]
    tokens = np.zeros((1, window), np.int32)
    tokens[0, :len(context)] = context  # right-padded: the padding comes after `last`
    ids.append(int(next_id(tokens, len(context) - 1, key)))
  return ids[len(prompt_ids):]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="a finished or running text-LM run")
  parser.add_argument("--prompt", default="\n")
  parser.add_argument("--length", type=int, default=300, help="characters to generate")
  parser.add_argument("--temperature", type=float, default=0.8)
  parser.add_argument("--top_k", type=int, default=0, help="0: sample from all characters")
  parser.add_argument("--top_p", type=float, default=1.0, help="nucleus sampling; 1: off")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  try:
    config, model, variables, step = checkpoint.load_for_inference(args.workdir)
    if not data.spec_of(config.dataset.name).text:
      raise ConfigError(f"{args.workdir} trained on {config.dataset.name!r}, not a text dataset")
    chars = data.vocabulary(config.dataset)
    if not args.prompt:
      raise ConfigError("--prompt must hold at least one character (the model continues it)")
    unknown = sorted(set(args.prompt) - set(chars))
    if unknown:
      raise ConfigError(f"the prompt has characters the model never saw: {unknown}")
    if (not 0 <= args.top_k <= len(chars) or not 0 < args.top_p <= 1 or args.temperature < 0
        or args.length < 1):
      raise ConfigError(f"need 0 <= --top_k <= {len(chars)} (the vocabulary), 0 < --top_p <= 1, "
                        "--temperature >= 0 and --length >= 1")
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  lookup = {c: i for i, c in enumerate(chars)}
  new = sample(model, variables, [lookup[c] for c in args.prompt], args.length,
               config.dataset.seq_len, args.temperature, args.top_k, args.top_p, args.seed)
  print(f"[{args.workdir}, step {step}]", file=sys.stderr)
  print(args.prompt + "".join(chars[i] for i in new))


if __name__ == "__main__":
  main()
