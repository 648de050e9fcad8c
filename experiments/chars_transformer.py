"""Character-level Transformer language model (GPT-style, rotary positions) on the same corpus,
windows and budget as `chars_lstm.py`, with a comparable parameter count (~0.4M vs the LSTM's
~0.36M), so bits per character can be compared side by side.

Commands:
  python -m train --config experiments/chars_transformer.py --workdir runs/chars_transformer
  python -m train.tools.sample --workdir runs/chars_transformer --prompt "The " --length 300
Expected: test bits per character 1.698 (seed 0; validation: 1.929; seed 1: 1.729; the LSTM's:
1.745 test, 1.984 validation at seed 0, 1.738 test at seed 1).
"""
from experiments import chars_lstm
from experiments.registry import QUICK_SOURCE, Expected, Quick
from train.config import model_config

# Recorded: a regression guard of ours. Until the validation split came in, the registry read
# validation bits (1.93 +- 0.05, seed 0). Re-measured on the test split by a clean retrain on
# 2026-11-26 (`python -m train --config experiments/chars_transformer.py --workdir
# runs/reproduce/chars_transformer --sweep seed=0`; 2 CPU cores shared with other jobs, AMD EPYC,
# jax 0.10.2; 1240 s): 1.698 (its validation bits, 1.929, are the earlier run's to 4 digits).
# Confirmed by seed 1, which did not set it (`--workdir runs/reproduce/chars_transformer/seed=1
# --config.seed=1`, same day, one of the 2 cores, 2000 s; docs/registry/retrain2_2026-11-26.md):
# 1.729. Seed 1 fell just outside the tolerance borrowed until then from the LSTM LM (0.03); the
# tolerance is now this model's own: 3 standard deviations over seeds 0-1 (std 0.022 -> 0.067),
# a rough figure from two seeds.
EXPECTED = [Expected("bits", 1.698, 0.067, source=(
    "recorded: seed 0, test split, 2026-11-26, 2-core CPU; confirmed by seed 1 (1.729)"))]
# The reduced form: a loose check that it learns.
QUICK = Quick({"num_steps": 100, "eval_every": 50, "checkpoint.every": 50, "batch_size": 16,
               "optimizer.warmup_steps": 10,
               "dataset.seq_len": 64}, [Expected("bits", 3.4, 0.5, source=QUICK_SOURCE)])


def get_config():
  config = chars_lstm.get_config()  # same data, windows, batch, steps and schedule
  config.model = model_config("transformer_lm", vocab_size=103, num_outputs=103, num_layers=2,
                              num_heads=4, features=128, pos_encoding="rotary", max_len=256,
                              dropout=0.1)
  config.optimizer.name = "adamw"
  config.optimizer.lr = 1e-3
  config.optimizer.weight_decay = 0.05
  return config
