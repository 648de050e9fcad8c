"""Transduction tasks for encoder-decoders (nets/seq2seq.py), generated offline. The source's
maximum length L is the builder config (`reversal/l100`, `dates/l100`); source lengths vary within
a batch (reversal: drawn from L/2..L; dates: as many dates as fit in a budget drawn from L/2..L).

- reversal: output token i is input token n-1-i (an alignment that is non-monotonic everywhere).
- dates: dates written in 8 human formats ("5 apr 2021", "april 5, 2021", "04/05/2021", ...),
  joined by "; ", rewritten into ISO 8601's basic form ("20210405"), joined by " ". The alignment
  is monotonic from date to date and non-monotonic inside each (year first; month names become
  digits), as between languages whose word order differs.

Tokens: 0 padding, 1 start (the decoder's first input), 2 end (the target's last token), then the
task's symbols. `seq2seq_batch` turns a source and its target into the model's inputs.
"""
import calendar
import functools
import itertools

import numpy as np
import tensorflow_datasets as tfds

from train.data.spec import DatasetSpec, LengthBuilder, register, variant_length

LENGTHS = (10, 25, 50, 100, 200)
NUM_TRAIN, NUM_VALIDATION, NUM_TEST = 20_000, 1_000, 1_000
PAD, BOS, EOS = 0, 1, 2
SYMBOLS = 10
VOCAB = 3 + SYMBOLS


def seq2seq_batch(source_BL, target_BL, lengths_B):
  """x (B, 2, L+1): the source, and the decoder's input [start, target]; label: [target, end];
  weights: 1 on the target and its end token, 0 on padding. `lengths_B`: the targets' lengths."""
  B, L = source_BL.shape
  label_BT = np.concatenate([target_BL, np.zeros((B, 1), np.int32)], 1)
  label_BT[np.arange(B), lengths_B] = EOS
  decoder_in_BT = np.concatenate([np.full((B, 1), BOS, np.int32), target_BL], 1)
  source_BT = np.concatenate([source_BL, np.zeros((B, 1), np.int32)], 1)
  weights_BT = (np.arange(L + 1) <= lengths_B[:, None]).astype(np.float32)
  return {"x": np.stack([source_BT, decoder_in_BT], 1).astype(np.int32),
          "label": label_BT.astype(np.int32), "weights": weights_BT}


class TransductionBuilder(LengthBuilder):
  """Builder configs `l<L>` (`self.length`: the sources' maximum length L); `FEATURES`: the int32
  features stored, each of length L (True) or a scalar (False)."""
  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.1.0": "Validation and test hold no source seen before (in train, in "
                            "validation, earlier in the split): 4 and 9 examples replaced in "
                            "reversal/l10's validation and test, 57 and 51 in dates/l25's, 1 in "
                            "dates/l50's test; every other example unchanged."}
  SPLIT_SIZES = (NUM_TRAIN, NUM_VALIDATION, NUM_TEST)
  FEATURES: dict[str, bool]

  def _split_generators(self, dl_manager):
    """LengthBuilder's independent draws, but a validation or test source seen before (in train,
    in validation, or earlier in its own split) is replaced by the next draw of a spare stream
    (seeds [L, k, 1], then [L, k, 1, j]): the short configs' spaces are small enough for
    independent draws to repeat, and a test source seen in training is no test. Every other
    example is its draw, as before."""
    del dl_manager
    (train, validation, test), n = self.SPLIT_SIZES, self.length
    splits = {"train": list(self._generate_examples(train, seed=[n, 0]))}
    seen = {tuple(example["source"]) for _, example in splits["train"]}
    for name, count, k in (("validation", validation, 2), ("test", test, 1)):
      seeds = itertools.chain([[n, k, 1]], ([n, k, 1, j] for j in itertools.count(1)))
      spare = (example for seed in seeds  # endless, in draws of `count`
               for _, example in self._generate_examples(count, seed=seed))
      splits[name] = []
      for key, example in self._generate_examples(count, seed=[n, k]):
        while tuple(example["source"]) in seen:
          example = next(spare)
        seen.add(tuple(example["source"]))
        splits[name].append((key, example))
    return splits

  def _info(self):
    n = self.length
    return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
        name: tfds.features.Tensor(shape=(n,), dtype=np.int32) if sequence
        else tfds.features.Scalar(dtype=np.int32) for name, sequence in self.FEATURES.items()}))


class Reversal(TransductionBuilder):
  """Sources of L/2..L symbols (padded to L); the target is the source reversed, then the end
  token."""
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=f"l{n}", description=f"sources of {n // 2}-{n} "
                                             "symbols") for n in LENGTHS]
  FEATURES = {"source": True, "length": False}

  def _generate_examples(self, count, seed):
    rng = np.random.default_rng(seed)
    n = self.length
    lengths = rng.integers(n // 2, n + 1, count)
    symbols = rng.integers(3, VOCAB, (count, n))
    for i in range(count):
      yield i, {"source": np.where(np.arange(n) < lengths[i], symbols[i], PAD).astype(np.int32),
                "length": np.int32(lengths[i])}


def reversal_batch(records, info):
  del info
  source_BL, lengths_B = records["source"], records["length"]
  steps_L = np.arange(source_BL.shape[1])
  # Position i < n of the target holds source position n-1-i.
  index_BL = np.clip(lengths_B[:, None] - 1 - steps_L, 0, source_BL.shape[1] - 1)
  target_BL = np.where(steps_L < lengths_B[:, None],
                       np.take_along_axis(source_BL, index_BL, axis=1), PAD)
  return seq2seq_batch(source_BL, target_BL, lengths_B)


DATE_LENGTHS = (25, 50, 100, 200)
DATE_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz ,-./;"
DATE_VOCAB = 3 + len(DATE_CHARS)
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december")  # not calendar.month_name, which follows the locale
# The first is ISO's extended form; '.' is day-first, '/' month-first, as written in Europe and
# the US. Shortest 8 characters + "; ", so a target (9 per date) is never longer than its source.
DATE_FORMATS = ("{y}-{m:02d}-{d:02d}", "{d:02d}.{m:02d}.{y}", "{d}.{m}.{y}", "{m:02d}/{d:02d}/{y}",
                "{d} {month} {y}", "{month} {d}, {y}", "{d} {mon} {y}", "{mon} {d}, {y}")


def encode_chars(text: str, length: int) -> np.ndarray:
  tokens = [3 + DATE_CHARS.index(c) for c in text]
  return np.array(tokens + [PAD] * (length - len(tokens)), np.int32)


def decode_chars(tokens) -> str:
  return "".join(DATE_CHARS[t - 3] for t in tokens if t >= 3)


def dates_example(rng: np.random.Generator, budget: int) -> tuple[str, str]:
  """(source, target): random dates in random formats while the source fits in `budget`
  characters (at least one date; the first date that does not fit ends it)."""
  written, iso = [], []
  while True:
    y, m = int(rng.integers(1950, 2050)), int(rng.integers(1, 13))
    d = int(rng.integers(1, calendar.monthrange(y, m)[1] + 1))
    month = MONTHS[m - 1]
    text = DATE_FORMATS[rng.integers(len(DATE_FORMATS))].format(y=y, m=m, d=d, month=month,
                                                               mon=month[:3])
    if len("; ".join([*written, text])) > budget:
      if written:
        return "; ".join(written), " ".join(iso)
      continue
    written.append(text)
    iso.append(f"{y}{m:02d}{d:02d}")


class Dates(TransductionBuilder):
  """Sources of at most a budget of L/2..L characters (padded to L; the first date that does not
  fit ends a source, so some are shorter); targets padded to L."""
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=f"l{n}", description=f"sources of at most "
                                             f"{n // 2}-{n} characters") for n in DATE_LENGTHS]
  FEATURES = {"source": True, "target": True}

  def _generate_examples(self, count, seed):
    rng = np.random.default_rng(seed)
    n = self.length
    for i in range(count):
      source, target = dates_example(rng, int(rng.integers(n // 2, n + 1)))
      yield i, {"source": encode_chars(source, n), "target": encode_chars(target, n)}


def dates_batch(records, info):
  del info
  target_BL = records["target"]
  return seq2seq_batch(records["source"], target_BL, np.sum(target_BL != PAD, 1))


def reversal_guess(config) -> float:
  """Token accuracy of a uniform guess on `reversal/lL`'s shortest sources, L/2 symbols: each
  symbol right 1 in SYMBOLS times, the end token always."""
  n = variant_length(config.dataset.name) // 2
  return (1 / SYMBOLS * n + 1) / (n + 1)


@functools.cache
def dates_guess(length: int) -> float:
  """Token accuracy of the best guess from the position alone (years start 19 or 20, months 0 or
  1, ...) on the test split's draw of `dates/l<length>`: what a model that ignores the source
  scores (0.38-0.39)."""
  builder = Dates(config=f"l{length}", data_dir="/nonexistent")  # draws in memory, writes nothing
  records = [e for _, e in builder._generate_examples(NUM_TEST, seed=[length, 1])]
  batch = dates_batch({k: np.stack([e[k] for e in records]) for k in ("source", "target")}, None)
  right = sum(np.bincount(batch["label"][batch["weights"][:, t] > 0, t]).max()
              for t in range(batch["label"].shape[1]) if batch["weights"][:, t].any())
  return float(right / batch["weights"].sum())


def seq2seq_input(cfg):
  """The model input of `reversal/lL` or `dates/lL`: (source, decoder input) x (L + 1) tokens."""
  return (2, variant_length(cfg.name) + 1), np.int32


# exact_match: a whole target of 5 or more symbols guessed right, at most 1e-5.
register("reversal", DatasetSpec("seq2seq", reversal_batch, seq2seq_input, ("source", "length"),
                                 num_outputs=VOCAB, vocab_size=VOCAB,
                                 chance={"accuracy": reversal_guess, "exact_match": 0.0}))
register("dates", DatasetSpec("seq2seq", dates_batch, seq2seq_input, ("source", "target"),
                              num_outputs=DATE_VOCAB, vocab_size=DATE_VOCAB, chance={
                                  "accuracy": lambda config: dates_guess(
                                      variant_length(config.dataset.name)),
                                  "exact_match": 0.0}))
