"""GPT-2 small (124M: 12 layers, 12 heads, d 768, context 1024, tied embeddings) in bfloat16 with
AdamW: the Transformer speed benchmark (tokens/s and MFU; see README "Speed").

Commands:
  python -m train.tools.bench --config experiments/gpt2_small.py            # a GPU: batch 16 x 1024
  python -m train.tools.bench --config experiments/gpt2_small.py --steps 3 \
      --config.batch_size=1 --config.dataset.seq_len=128              # what a 2-core CPU can do
  python -m train --config experiments/gpt2_small.py --workdir runs/gpt2_small
Expected: no accuracy target (a benchmark config). It trains on the characters of the offline
corpus, since the codebase has no BPE tokenizer: the vocabulary is GPT-2's 50257 padded to 50304
(a multiple of 64, for the matmul tiles), of which the corpus uses 103 ids. The model and its
FLOPs are GPT-2 small's all the same.
"""
from experiments import chars_lstm
from train.config import model_config

EXPECTED = []  # a benchmark, not a reproduction target


def get_config():
  config = chars_lstm.get_config()  # the offline corpus, bits per character
  config.dataset.seq_len = 1024
  config.batch_size = 16
  config.eval_batch_size = 16
  config.num_steps = 5000
  config.eval_every = config.checkpoint.every = 500
  config.model = model_config(
      "transformer_lm", vocab_size=50304, num_outputs=50304, num_layers=12, num_heads=12,
      features=768, max_len=1024, pos_encoding="learned", tie_embeddings=True, dtype="bfloat16",
      attention_kernel="dot_product", scan_layers=True)
  config.optimizer.name = "adamw"
  config.optimizer.lr = 6e-4
  config.optimizer.b2 = 0.95
  config.optimizer.weight_decay = 0.1
  config.optimizer.warmup_steps = 200
  config.optimizer.min_lr_ratio = 0.1
  return config
