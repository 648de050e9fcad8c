"""Character-level LSTM language model on the offline Python-reference corpus (465k characters,
`train/data/text.py`); windows of 256 characters, bits per character on the
validation split. With a TFDS data dir that holds tiny_shakespeare, add
--config.dataset.name=tiny_shakespeare --config.model.vocab_size=65 --config.model.num_outputs=65.

Commands:
  python -m train --config experiments/chars_lstm.py --workdir runs/chars_lstm
  python -m train.tools.sample --workdir runs/chars_lstm --prompt "The " --length 300
Expected: validation bits per character 1.98 (seed 0; a uniform guess: log2(103) = 6.7).
"""
from experiments.registry import Expected, Quick
from train.config import base_config, model_config

EXPECTED = [Expected("bits", 1.98, 0.05)]  # seed 0
# The reduced form: a loose check that it learns (set from one quick run, seed 0).
QUICK = Quick({"num_steps": 100, "eval_every": 50, "checkpoint.every": 50, "batch_size": 16,
               "optimizer.warmup_steps": 10,
               "dataset.seq_len": 64}, [Expected("bits", 3.9, 0.5)])


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
