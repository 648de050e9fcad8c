"""python -m experiments.analysis.seq2seq accuracy|alignments|speed [--task T] [--runs DIR] [--out D]

The lecture's story of attention (14.3.1-14.3.2), measured on the transduction tasks of
train/data/transduction.py (--task reversal: experiments/seq2seq_*.py; --task dates:
experiments/dates_*.py):
  accuracy    test token accuracy and exact match against source length, for the RNN
              encoder-decoder without attention, with additive and with multiplicative attention,
              and the Transformer (their runs under --runs):
              OUT/seq2seq[_dates]_accuracy.{json,png}.
  alignments  the trained models' attention over the source for test examples: the RNN's
              additive and multiplicative weights and every Transformer head's cross-attention
              (runs at --length): OUT/seq2seq[_dates]_alignments.png.
  speed       training tokens/s against length, the RNN encoder-decoder (its T steps one after
              another) against the Transformer (all positions at once), at a fixed number of
              tokens per batch: OUT/seq2seq_speed.json (also an item of `make gpu`).
"""
import argparse
import datetime
import json
import os
import sys

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import nets  # noqa: E402
from experiments.analysis import json_blocks  # noqa: E402
from experiments import dates_rnn, seq2seq_rnn, seq2seq_transformer  # noqa: E402
from nets.seq2seq import cross_attention_weights  # noqa: E402
from train import checkpoint, data  # noqa: E402
from train.config import ConfigError, fail, one_line  # noqa: E402
from train.data.transduction import decode_chars  # noqa: E402
from train.tools import length_table, positive_int, positive_ints  # noqa: E402
from train.tools.bench import length_sweep  # noqa: E402

# task -> its source lengths, and model -> (experiment, its runs' folder name between the dataset
# and ",seed=S"), and the files' stem.
TASKS = {
    "reversal": (seq2seq_rnn.LENGTHS, {
        "RNN, no attention": ("seq2seq_rnn", "attention=none"),
        "RNN, additive": ("seq2seq_rnn", "attention=additive"),
        "RNN, multiplicative": ("seq2seq_rnn", "attention=multiplicative"),
        "Transformer": ("seq2seq_transformer", ""),
        # The control: no attention, but more parameters than any model above
        # (experiments/seq2seq_rnn.py).
        "RNN, no attention, 96 units": ("seq2seq_rnn", "attention=none,features=96")}),
    "dates": (dates_rnn.LENGTHS, {
        **{f"RNN, {'no attention' if a == 'none' else a}":
           ("dates_rnn", f"attention={a},features={dates_rnn.FEATURES[a]}")
           for a in dates_rnn.ATTENTIONS},
        "Transformer": ("dates_transformer", "")}),
}
TITLES = {"reversal": "Reversal", "dates": "Dates into ISO 8601"}
LENGTH_LABELS = {"reversal": "sources of L/2..L symbols",
                 "dates": "sources within a budget of L/2..L characters"}


def stem(task: str) -> str:
  """The output files' name: seq2seq_* for reversal (the first task), seq2seq_<task>_* else."""
  return "seq2seq" if task == "reversal" else f"seq2seq_{task}"


def run_dir(runs: str, task: str, model: str, length: int, seed: int = 0) -> str:
  experiment, point = TASKS[task][1][model]
  return os.path.join(runs, experiment, ",".join(filter(None, [
      f"name={task}-l{length}", point, f"seed={seed}"])))


def accuracy(runs: str, out: str, task: str = "reversal") -> dict:
  lengths, models = TASKS[task]
  rows = []
  for model in models:
    for length in lengths:
      path = os.path.join(run_dir(runs, task, model, length), "results.json")
      if os.path.exists(path):
        with open(path) as f:
          results = json.load(f)
        rows.append({"model": model, "length": length, "params": results["num_params"],
                     **{k: round(results["final"][k], 4) for k in ("accuracy", "exact_match")}})
  if not rows:
    raise ConfigError(f"no finished {task} runs under {runs}: the analysis reads the registry's "
                      f"names, e.g. {run_dir(runs, task, 'RNN, additive', lengths[1])}")
  record = {"date": datetime.date.today().isoformat(), "runs": runs, "task": task, "rows": rows,
            "command": f"python -m experiments.analysis.seq2seq accuracy --task {task} "
                       f"--runs {runs}"}
  params = {r["model"]: r["params"] for r in rows}
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  for ax, metric in zip(axes, ("accuracy", "exact_match")):
    for model in params:
      points = [(r["length"], r[metric]) for r in rows if r["model"] == model]
      ax.plot(*zip(*points), marker="o", label=f"{model} ({params[model] / 1e3:.0f}k params)")
    ax.set(xscale="log", xlabel=f"maximum source length L ({LENGTH_LABELS[task]})",
           ylabel=f"test {metric.replace('_', ' ')}", ylim=(0, 1.02))
    ax.set_xticks(lengths, map(str, lengths))
    ax.minorticks_off()
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=7)
  fig.suptitle(f"{TITLES[task]}, seed 0: the fixed-size state of the RNN without attention is a "
               "bottleneck")
  fig.tight_layout()
  fig.savefig(os.path.join(out, f"{stem(task)}_accuracy.png"), dpi=110)
  plt.close(fig)
  with open(os.path.join(out, f"{stem(task)}_accuracy.json"), "w") as f:
    json.dump(record, f, indent=2)
  return record


def alignments(runs: str, out: str, length: int, task: str = "reversal") -> None:
  """One row per test example: the RNNs' weights, then each Transformer layer's heads (dates:
  the characters on the axes)."""
  examples = 2
  panels = []  # per example: [(title, weights (T, S))]
  for model in ("RNN, additive", "RNN, multiplicative", "Transformer"):
    config, net, variables, _ = checkpoint.load_for_inference(run_dir(runs, task, model, length))
    batch = data.reader(config.dataset, "test")(np.arange(examples))
    x = jnp.asarray(batch["x"])
    if model == "Transformer":
      weights = cross_attention_weights(net, variables["params"], x)  # (layers, B, N, T, S)
      per_example = [[(f"Transformer layer {i + 1} head {n + 1}", weights[i, b, n])
                      for i in range(weights.shape[0]) for n in range(weights.shape[2])]
                     for b in range(examples)]
    else:
      weights = net.apply(variables, x, method="alignments")
      per_example = [[(model, weights[b])] for b in range(examples)]
    lengths = batch["weights"].sum(1).astype(int)  # target tokens and the end token
    sources = (batch["x"][:, 0] != 0).sum(1)
    for b, items in enumerate(per_example):
      if len(panels) <= b:
        panels.append([])
      panels[b] += [(t, np.asarray(w)[:lengths[b], :sources[b]]) for t, w in items]
  # Reversal: one row of small panels per example; dates: large ones (their characters on the
  # axes), 5 a row.
  size, cols = (2.2, len(panels[0])) if task == "reversal" else (4.4, 5)
  rows = -(-len(panels[0]) // cols)  # per example
  fig, axes = plt.subplots(examples * rows, cols, squeeze=False,
                           figsize=(size * cols, size * 1.1 * examples * rows))
  for b, row in enumerate(panels):
    flat = axes[b * rows:(b + 1) * rows].ravel()
    for ax in flat[len(row):]:
      ax.axis("off")
    for ax, (title, w) in zip(flat, row):
      ax.imshow(w, cmap="viridis", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
      ax.set_title(title, fontsize=7)
      ax.set_xticks([])
      ax.set_yticks([])
      if task == "dates":  # the characters: source along x, output (then the end token) along y
        source, target = batch["x"][b, 0, :w.shape[1]], batch["label"][b, :w.shape[0] - 1]
        ax.set_xticks(range(w.shape[1]), list(decode_chars(source).replace(" ", "_")), fontsize=4)
        ax.set_yticks(range(w.shape[0]), [*decode_chars(target).replace(" ", "_"), "end"],
                      fontsize=4)
    flat[0].set(ylabel=f"example {b}: output step", xlabel="source position")
  what = {"reversal": "the anti-diagonal is reversal's alignment",
          "dates": "each date's digits are read out of order, month names become digits"}[task]
  if task == "dates":
    what += "".join(f"\nexample {b}: {decode_chars(batch['x'][b, 0])!r} -> "
                    f"{decode_chars(batch['label'][b])!r}" for b in range(examples))
  fig.suptitle(f"Attention over the source ({task}, L={length}; 2 test examples; rows: output "
               f"steps, the last one the end token): {what}", fontsize=9)
  fig.tight_layout()
  path = os.path.join(out, f"{stem(task)}_alignments.png")
  fig.savefig(path, dpi=100 if task == "reversal" else 150)
  print(f"wrote {path}")
  plt.close(fig)


def speed(out: str, lengths: list[int], tokens: int, steps: int, command: str) -> dict:
  configs = {"RNN, additive": seq2seq_rnn.get_config().model,
             "Transformer": seq2seq_transformer.get_config().model}

  def make(cfg):
    def model_and_pairs(length: int, batch: int):
      if "max_len" in cfg:
        cfg.max_len = max(cfg.max_len, length)
      return (nets.create_model(**cfg),
              jax.random.randint(jax.random.PRNGKey(0), (batch, 2, length), 3, 13))
    return model_and_pairs

  return length_sweep({name: make(cfg) for name, cfg in configs.items()}, lengths, tokens, steps,
                      os.path.join(out, "seq2seq_speed.json"), command)


def accuracy_markdown(record: dict) -> str:
  lengths, models = TASKS[record.get("task", "reversal")]
  models = [m for m in models if any(r["model"] == m for r in record["rows"])]
  lines = [f"`{record['command']}` ({record['date']}); token accuracy / exact match on the test "
           "split, seed 0:", "",
           "| L | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
  for length in lengths:
    by = {r["model"]: r for r in record["rows"] if r["length"] == length}
    if by:
      lines.append(f"| {length} | " + " | ".join(
          f"{by[m]['accuracy']:.3f} / {by[m]['exact_match']:.3f}" if m in by else ""
          for m in models) + " |")
  return "\n".join(lines)


def speed_markdown(record: dict) -> str:
  return "\n".join([f"`{record['command']}` ({record['date']}, {record['device']}); training "
                    "tokens/s:", "", *length_table(record["rows"], "L")])


def readme_blocks(docs: str = "docs") -> dict[str, str]:
  """The README blocks made from the JSON files these commands wrote (absent: not run yet)."""
  return json_blocks(docs, {"seq2seq_accuracy": accuracy_markdown,
                            "seq2seq_dates_accuracy": accuracy_markdown,
                            "seq2seq_speed": speed_markdown})


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("what", choices=["accuracy", "alignments", "speed"])
  parser.add_argument("--task", choices=sorted(TASKS), default="reversal",
                      help="accuracy, alignments")
  parser.add_argument("--runs", default="runs/reproduce", help="accuracy, alignments")
  parser.add_argument("--out", default="docs")
  parser.add_argument("--length", type=positive_int, default=50, help="alignments: the runs' L")
  parser.add_argument("--lengths", type=positive_ints, default="10,25,50,100,200", help="speed")
  parser.add_argument("--tokens", type=positive_int, default=3200, help="speed: tokens per batch")
  parser.add_argument("--steps", type=positive_int, default=3, help="speed: timed steps (median)")
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  try:
    if args.what == "accuracy":
      print(accuracy_markdown(accuracy(args.runs, args.out, args.task)))
    elif args.what == "alignments":
      alignments(args.runs, args.out, args.length, args.task)
  except ConfigError as e:  # no runs where --runs says, or not the ones alignments needs
    fail(one_line(e))
  if args.what == "speed":
    command = "python -m experiments.analysis.seq2seq " + " ".join(
        sys.argv[1:] if argv is None else argv)
    print(speed_markdown(speed(args.out, args.lengths, args.tokens, args.steps, command)))


if __name__ == "__main__":
  main()
