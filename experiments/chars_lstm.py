"""Character-level LSTM language model on the offline Python-reference corpus (465k characters,
`train/data/text.py`); windows of 256 characters, bits per character on the
test split. With a TFDS data dir that holds tiny_shakespeare, add
--config.dataset.name=tiny_shakespeare --config.model.vocab_size=65 --config.model.num_outputs=65.

Commands:
  python -m train --config experiments/chars_lstm.py --workdir runs/chars_lstm
  python -m train.tools.sample --workdir runs/chars_lstm --prompt "The " --length 300
Expected: test bits per character 1.745 (seed 0; seed 1: 1.738; validation: 1.984; a uniform
guess: log2(103) = 6.7).
"""
from experiments.registry import QUICK_SOURCE, Expected, Quick
from train.config import base_config, model_config

# Recorded: a regression guard of ours. Until the validation split came in, the registry read
# validation bits (1.98 +- 0.05, seed 0). Re-measured on the test split by a clean retrain on
# 2026-11-26 (`python -m train --config experiments/chars_lstm.py --workdir
# runs/reproduce/chars_lstm --sweep seed=0`; 2 CPU cores shared with other jobs, AMD EPYC, jax
# 0.10.2; 444 s): 1.745 (its validation bits, 1.984, are the earlier run's to the last digit).
# Confirmed by seed 1, which did not set it (`--sweep seed=1`, same day and machine): 1.738.
# Tolerance: 3 standard deviations over seeds 0-1 is 0.016; two seeds estimate a spread poorly, so
# the floor, 0.03, holds.
EXPECTED = [Expected("bits", 1.745, 0.03, source=(
    "recorded: seed 0, test split, 2026-11-26, 2-core CPU; confirmed by seed 1 (1.738)"))]
# The reduced form: a loose check that it learns.
QUICK = Quick({"num_steps": 100, "eval_every": 50, "checkpoint.every": 50, "batch_size": 16,
               "optimizer.warmup_steps": 10,
               "dataset.seq_len": 64}, [Expected("bits", 3.9, 0.5, source=QUICK_SOURCE)])


def get_config():
  config = base_config()
  config.dataset.name = "python_reference"
  config.dataset.seq_len = 256
  config.batch_size = 32
  config.eval_batch_size = 32
  config.num_steps = 1500
  config.log_every = 50
  config.eval_every = 250
  config.checkpoint.every = 250
  config.checkpoint.best_metric = "bits"
  config.checkpoint.best_mode = "min"
  config.model = model_config("rnn", num_outputs=103, vocab_size=103, embed_dim=64, cell="lstm",
                              features=256, head="per_step")
  config.optimizer.lr = 3e-3
  config.optimizer.grad_clip_norm = 1.0
  config.optimizer.schedule = "cosine"
  config.optimizer.warmup_steps = 100
  return config
