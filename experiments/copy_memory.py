"""The copy-memory task (Arjovsky et al. 2016): read 10 symbols, wait T blank steps, then write the
10 symbols back. The loss is the cross-entropy over all T + 20 output steps.

Commands (cell: simple | lstm | gru; T: 100 | 200 | 400):
  python -m train --config experiments/copy_memory.py --workdir runs/copy/lstm_t100
  python -m train --config experiments/copy_memory.py --workdir runs/copy/gru_t200 \
      --config.model.cell=gru --config.dataset.name=copy_memory/t200
  make rnn   # all nine, then the table
  python -m train.tools.reproduce experiments/copy_memory.py   # all nine, checked against EXPECTED
Expected: the memoryless baseline (blanks, then a uniform guess over the 8 symbols) scores
10 ln 8 / (T + 20): 0.173 at T=100, 0.095 at T=200, 0.049 at T=400, and recall_accuracy 0.125.
Seed 0, 3000 steps: the GRU beats it at every T (recall_accuracy 0.35-0.44), the LSTM only at
T=100 (0.21), the simple RNN never. Seeds 1 and 2: at T=100 GRU 0.489, 0.474, LSTM 0.176, 0.200,
simple RNN 0.126, 0.127; GRU at T=200 0.390, 0.347, at T=400 0.354, 0.324.
"""
from experiments import adding_problem
from experiments.registry import QUICK_SOURCE, Beats, Expected, Quick
from train.config import model_config

CELLS = ("simple", "lstm", "gru")
CHANCE = 1 / 8  # recall accuracy of a uniform guess among the 8 symbols


def point(t: int, cell: str) -> dict:
  return {"dataset.name": f"copy_memory/t{t}", "model.cell": cell}


# recall_accuracy, seed 0: the GRU above chance at every T, the LSTM at T=100 only, the simple
# RNN never. The rows at chance pass for a broken model too, so at every T the GRU must also beat
# the simple RNN (and, where the LSTM is at chance, the LSTM) by 0.1.
#
# Recorded (regression guards of ours): GRU 0.44, 0.43, 0.35 at T = 100, 200, 400 and LSTM 0.21 at
# T = 100, from `make rnn` (seed 0) in an earlier session. T = 100 was measured again, the same to
# the third digit, by a clean retrain into an empty runs/ on 2026-11-26 (`python -m train --config
# experiments/copy_memory.py --workdir runs/reproduce/copy_memory --sweep
# dataset.name=copy_memory/t100 --sweep model.cell=simple,lstm,gru --sweep seed=0`; 2 CPU cores
# shared with other jobs, AMD EPYC, jax 0.10.2), and confirmed by seeds 1 and 2, which did not
# set it (`--sweep seed=1,2`, same day and machine):
#   GRU    0.438 | 0.489, 0.474   std over seeds 0-2 0.026 -> tolerance 3 std = 0.08
#   LSTM   0.210 | 0.176, 0.200   std 0.018 -> 0.053
#   simple 0.128 | 0.126, 0.127   at chance at every seed
# T = 200 and 400: GRU 0.43 and 0.35 (seed 0, the earlier session), confirmed by the clean retrain
# of 2026-11-26 (seed 0: 0.420, 0.339) and by seeds 1 and 2, which did not set them (`--sweep
# dataset.name=copy_memory/t200 --sweep model.cell=gru --sweep seed=0,1,2`, and the same at t400;
# 2026-11-26, one of 2 shared CPU cores; docs/registry/retrain_2026-11-26.md):
#   T = 200   0.420 | 0.390, 0.347   std over seeds 0-2 0.037 -> tolerance 3 std = 0.11
#   T = 400   0.339 | 0.354, 0.324   std 0.015 -> 0.046
# The LSTM's and the simple RNN's rows there are at chance, guarded by the relations (seed 0: the
# LSTM 0.128 at T = 200 (2026-11-26) and 0.125 at T = 400 (2026-11-27, its first run into
# runs/reproduce); the simple RNN 0.130, 0.123 (2026-11-26)).
RECORDED = {("gru", 100): (0.44, 0.08, "confirmed by seeds 1, 2 (0.489, 0.474)"),
            ("gru", 200): (0.43, 0.11, "confirmed by a clean retrain (0.420) and seeds 1, 2 "
                                       "(0.390, 0.347)"),
            ("gru", 400): (0.35, 0.046, "confirmed by a clean retrain (0.339) and seeds 1, 2 "
                                        "(0.354, 0.324)"),
            ("lstm", 100): (0.21, 0.053, "confirmed by seeds 1, 2 (0.176, 0.200)")}


def entry(t: int, cell: str) -> Expected:
  if (cell, t) in RECORDED:
    value, tolerance, confirmed = RECORDED[cell, t]
    return Expected("recall_accuracy", value, tolerance, overrides=point(t, cell),
                    source=f"recorded: seed 0, 2-core CPU; {confirmed}")
  return Expected("recall_accuracy", CHANCE, 0.05, overrides=point(t, cell),
                  source="analytic: a uniform guess among 8 symbols recalls 1/8")


EXPECTED = [e for t in (100, 200, 400) for e in (
    *(entry(t, cell) for cell in CELLS),
    Beats("recall_accuracy", point(t, "gru"), point(t, "simple"), 0.1, source=(
        "analytic: the GRU recalls at least 0.1 more than the simple RNN (chance: 1/8)")),
    *([Beats("recall_accuracy", point(t, "gru"), point(t, "lstm"), 0.1, source=(
        "analytic: the GRU recalls at least 0.1 more than the LSTM at chance (1/8)"))]
      if ("lstm", t) not in RECORDED else []))]
# The reduced form: 300 steps reach the memoryless baseline's loss (0.173), not beyond.
QUICK = Quick({"num_steps": 300, "eval_every": 100, "checkpoint.every": 100},
              [Expected("loss", 0.17, 0.02, overrides=point(100, "gru"), source=QUICK_SOURCE)])


def get_config():
  config = adding_problem.get_config()  # the same budget and optimizer; other data and outputs
  config.dataset.name = "copy_memory/t100"
  config.model = model_config("rnn", num_outputs=10, vocab_size=10, embed_dim=16, cell="lstm",
                              features=64, head="per_step")
  return config
