"""Sequence reversal, a transduction task for encoder-decoders (nets/seq2seq.py) whose alignment
is non-monotonic: output token i is input token n-1-i. The source's maximum length L is the builder
config (`reversal/l100`); each source's length is drawn uniformly from L/2..L, so lengths vary
within a batch.

Tokens: 0 padding, 1 start (the decoder's first input), 2 end (the target's last token), then
SYMBOLS symbols. Only the source and its length are stored; `reversal_batch` builds the rest.
"""
import numpy as np
import tensorflow_datasets as tfds

from train.data.spec import DatasetSpec, OfflineBuilder, register

LENGTHS = (10, 25, 50, 100, 200)
NUM_TRAIN, NUM_VALIDATION, NUM_TEST = 20_000, 1_000, 1_000
PAD, BOS, EOS = 0, 1, 2
SYMBOLS = 10
VOCAB = 3 + SYMBOLS


class Reversal(OfflineBuilder):
  """Sources of L/2..L symbols (padded to L); the target is the source reversed, then the end
  token."""
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=f"l{n}", description=f"sources of {n // 2}-{n} "
                                             "symbols") for n in LENGTHS]

  @property
  def max_length(self) -> int:
    return int(self.builder_config.name[1:])

  def _info(self):
    return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
        "source": tfds.features.Tensor(shape=(self.max_length,), dtype=np.int32),
        "length": tfds.features.Scalar(dtype=np.int32),
    }))

  def _split_generators(self, dl_manager):
    del dl_manager  # generated, nothing to download
    n = self.max_length
    return {"train": self._generate_examples(NUM_TRAIN, seed=[n, 0]),
            "validation": self._generate_examples(NUM_VALIDATION, seed=[n, 2]),
            "test": self._generate_examples(NUM_TEST, seed=[n, 1])}

  def _generate_examples(self, count, seed):
    rng = np.random.default_rng(seed)
    n = self.max_length
    lengths = rng.integers(n // 2, n + 1, count)
    symbols = rng.integers(3, VOCAB, (count, n))
    for i in range(count):
      yield i, {"source": np.where(np.arange(n) < lengths[i], symbols[i], PAD).astype(np.int32),
                "length": np.int32(lengths[i])}


def reversal_batch(records, info):
  """x (B, 2, L+1): the source, and the decoder's input [start, target]; label: [target, end];
  weights: 1 on the target and its end token, 0 on padding."""
  del info
  source_BL, lengths_B = records["source"], records["length"]
  B, L = source_BL.shape
  steps_L = np.arange(L)
  # Position i < n of the target holds source position n-1-i.
  index_BL = np.clip(lengths_B[:, None] - 1 - steps_L, 0, L - 1)
  target_BL = np.where(steps_L < lengths_B[:, None],
                       np.take_along_axis(source_BL, index_BL, axis=1), PAD)
  label_BT = np.concatenate([target_BL, np.zeros((B, 1), np.int32)], 1)
  label_BT[np.arange(B), lengths_B] = EOS
  decoder_in_BT = np.concatenate([np.full((B, 1), BOS, np.int32), target_BL], 1)
  source_BT = np.concatenate([source_BL, np.zeros((B, 1), np.int32)], 1)
  weights_BT = (np.arange(L + 1) <= lengths_B[:, None]).astype(np.float32)
  return {"x": np.stack([source_BT, decoder_in_BT], 1).astype(np.int32),
          "label": label_BT.astype(np.int32), "weights": weights_BT}


register("reversal", DatasetSpec(
    "seq2seq", reversal_batch,
    lambda cfg: ((2, int(cfg.name.split("/")[1].split(":")[0][1:]) + 1), np.int32),
    ("source", "length"), num_outputs=VOCAB, vocab_size=VOCAB))
