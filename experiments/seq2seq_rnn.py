"""RNN encoder-decoders on sequence reversal (train/data/transduction.py): without attention
(the decoder sees the source only through the encoder's final state), with additive and with
multiplicative attention. Bidirectional GRU encoder, GRU decoder, 64 units.

Commands (attention: none | additive | multiplicative; source length L: 10 | 25 | 50 | 100):
  python -m train --config experiments/seq2seq_rnn.py --workdir runs/seq2seq/rnn_additive_l25 \\
      --config.model.attention=additive --config.dataset.name=reversal/l25
  python -m train.tools.reproduce experiments/seq2seq_rnn.py   # the whole grid, checked
Expected: see EXPECTED below (filled from the runs named there).
"""
from train.config import base_config, model_config


def get_config():
  config = base_config()
  config.dataset.name = "reversal/l25"
  config.batch_size = 32
  config.eval_batch_size = 500
  config.num_steps = 1500
  config.log_every = 100
  config.eval_every = 500
  config.checkpoint.every = 500
  config.checkpoint.best_metric = "accuracy"
  config.optimizer.lr = 3e-3
  config.optimizer.grad_clip_norm = 1.0
  config.model = model_config("rnn_seq2seq", vocab_size=13, num_outputs=13, cell="gru",
                              features=64, embed_dim=32, bidirectional=True, attention="additive")
  return config
