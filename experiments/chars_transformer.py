"""Character-level Transformer language model (GPT-style, rotary positions) on the same corpus,
windows and budget as `chars_lstm.py`, with a comparable parameter count (~0.4M vs the LSTM's
~0.36M), so bits per character can be compared side by side.

Commands:
  python -m train --config experiments/chars_transformer.py --workdir runs/chars_transformer
  python -m train.tools.sample --workdir runs/chars_transformer --prompt "The " --length 300
Expected: validation bits per character 1.93 (seed 0; the LSTM's: 1.98).
"""
from experiments import chars_lstm
from experiments.registry import Expected, Quick
from train.config import model_config

EXPECTED = [Expected("bits", 1.93, 0.05)]  # seed 0
# The reduced form: a loose check that it learns (set from one quick run, seed 0).
QUICK = Quick({"num_steps": 100, "eval_every": 50, "checkpoint.every": 50, "batch_size": 16,
               "optimizer.warmup_steps": 10,
               "dataset.seq_len": 64}, [Expected("bits", 3.4, 0.5)])


def get_config():
  config = chars_lstm.get_config()  # same data, windows, batch, steps and schedule
  config.model = model_config("transformer_lm", vocab_size=103, num_outputs=103, num_layers=2,
                              num_heads=4, features=128, pos_encoding="rotary", max_len=256,
                              dropout=0.1)
  config.optimizer.name = "adamw"
  config.optimizer.lr = 1e-3
  config.optimizer.weight_decay = 0.05
  return config
