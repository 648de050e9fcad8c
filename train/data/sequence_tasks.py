"""The adding problem and the copy-memory task (Hochreiter & Schmidhuber 1997; Arjovsky et al.
2016): long-range dependency benchmarks whose length T is a builder config (`adding_problem/t100`).

Only the random part of each example is stored; the batch functions below build the model inputs.
"""
import numpy as np
import tensorflow_datasets as tfds

from train.data.spec import DatasetSpec, LengthBuilder, register, variant_length

LENGTHS = (10, 50, 100, 200, 400)  # 10 and 50 keep tests and smoke runs small
NUM_TRAIN, NUM_VALIDATION, NUM_TEST = 20_000, 2_000, 2_000
COPY_SYMBOLS, COPY_ALPHABET = 10, 8  # remember 10 symbols drawn from 1..8; 0 = blank, 9 = "go"


class _LengthBuilder(LengthBuilder):
  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.1.0": "A validation split (seed [T, 2]); train and test unchanged."}
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=f"t{t}", description=f"T = {t}") for t in LENGTHS]
  SPLIT_SIZES = (NUM_TRAIN, NUM_VALIDATION, NUM_TEST)


class AddingProblem(_LengthBuilder):
  """T values in U(0, 1), two of them marked (one in each half); the target is their sum.

  Predicting the mean (1.0) scores MSE 1/6 = 0.167: a model must beat that to have learned.
  """

  def _info(self):
    return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
        "values": tfds.features.Tensor(shape=(self.length,), dtype=np.float32),
        "markers": tfds.features.Tensor(shape=(2,), dtype=np.int32),
        "target": tfds.features.Scalar(dtype=np.float32),
    }))

  def _generate_examples(self, n, seed):
    rng = np.random.default_rng(seed)
    half = self.length // 2
    values = rng.uniform(size=(n, self.length)).astype(np.float32)
    markers = np.stack([rng.integers(0, half, n), rng.integers(half, self.length, n)], 1)
    for i in range(n):
      yield i, {"values": values[i], "markers": markers[i].astype(np.int32),
                "target": values[i, markers[i]].sum()}


class CopyMemory(_LengthBuilder):
  """Remember 10 symbols over T blank steps: input `s_1..s_10, 0 x (T-1), 9, 0 x 10`, target
  `0 x (T+10), s_1..s_10`, both of length T+20.

  Blanks then a uniform guess scores cross-entropy 10 ln 8 / (T + 20) per step.
  """

  def _info(self):
    return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
        "symbols": tfds.features.Tensor(shape=(COPY_SYMBOLS,), dtype=np.int32),
    }))

  def _generate_examples(self, n, seed):
    symbols = np.random.default_rng(seed).integers(1, COPY_ALPHABET + 1, (n, COPY_SYMBOLS))
    for i in range(n):
      yield i, {"symbols": symbols[i].astype(np.int32)}


def adding_batch(records, info):
  """x_BT2: the values and a 0/1 channel marking the two to add."""
  del info
  values_BT = records["values"]
  marks_BT = np.zeros_like(values_BT)
  np.put_along_axis(marks_BT, records["markers"], 1.0, axis=1)
  return {"x": np.stack([values_BT, marks_BT], -1), "label": records["target"].astype(np.float32)}


def copy_batch(records, info):
  """The loss covers all T + 20 outputs (so the baseline is 10 ln 8 / (T + 20)); `recall` marks
  the 10 outputs that must reproduce the symbols, where recall_accuracy is measured."""
  symbols_BS = records["symbols"]
  b, s = symbols_BS.shape
  t = variant_length(info.config_name)  # the builder config: t100 -> T = 100
  x_BL = np.zeros((b, t + 2 * s), np.int32)
  x_BL[:, :s] = symbols_BS
  x_BL[:, s + t - 1] = COPY_ALPHABET + 1  # "go": reproduce the symbols from here on
  label_BL = np.zeros_like(x_BL)
  label_BL[:, -s:] = symbols_BS
  recall_BL = np.zeros(x_BL.shape, np.float32)
  recall_BL[:, -s:] = 1.0
  return {"x": x_BL, "label": label_BL, "weights": np.ones(x_BL.shape, np.float32),
          "recall": recall_BL}


register("adding_problem", DatasetSpec(
    "regress", adding_batch, lambda cfg: ((variant_length(cfg.name), 2), np.float32),
    ("values", "markers", "target"), num_outputs=1,
    chance={"loss": 1 / 6}))  # predicting the mean, 1: the variance of a sum of two U(0, 1)
register("copy_memory", DatasetSpec(
    "sequence", copy_batch,
    lambda cfg: ((variant_length(cfg.name) + 2 * COPY_SYMBOLS,), np.int32),
    ("symbols",), num_outputs=COPY_ALPHABET + 2, vocab_size=COPY_ALPHABET + 2,
    extra_metrics=("recall_accuracy",),
    # A guess among the symbols; a uniform guess among all the outputs.
    chance={"recall_accuracy": 1 / COPY_ALPHABET, "loss": float(np.log(COPY_ALPHABET + 2))}))
