"""The results registry's types: an experiment file declares `EXPECTED` (what its runs must reach)
and `QUICK` (its reduced form); `python -m train.tools.reproduce` trains and checks them.

Every entry says where its number comes from (`source`, "kind: details"):
  paper: a published table ("paper: Greydanus & Kobak 2020, Table 1");
  analytic: a baseline that follows from the task ("analytic: predicting the mean, MSE 1/6");
  recorded: a result of our own runs, a regression guard; the source names the command, date,
    seeds and machine that set it, and the runs (other seeds, or a clean retrain) that confirmed
    it; its tolerance comes from the spread over seeds;
  estimate: a figure we could not measure here (a dataset this machine cannot download): the
    usual figure for a recipe, or a band set by reasoning, to be replaced by a recorded value.
paper and analytic entries are independent of our code; recorded ones only guard against a change.

A value at chance passes for a broken model too, so an experiment whose entry's band includes
chance also declares a `Beats` relation that a broken model cannot meet (tests/test_reproduce.py
checks this for every experiment). A setting shown to fail (exploding gradients without clipping)
declares `Diverges`: its runs must be stopped by the non-finite guard or end blown up.
"""
import dataclasses
import math

import numpy as np

KINDS = ("paper", "analytic", "recorded", "estimate")
INDEPENDENT = ("paper", "analytic")


def source_kind(source: str) -> str:
  kind = source.split(":", 1)[0].strip()
  if kind not in KINDS or ":" not in source:
    raise ValueError(f"source {source!r} must start with one of {', '.join(KINDS)} and a colon, "
                     "then say where the number comes from")
  return kind


@dataclasses.dataclass(frozen=True)
class Expected:
  """One expected result of an experiment (its registry entry; not part of the run's config).

  The runs of this entry are the experiment's config with `overrides`, once per seed; it matches
  when |mean over seeds of the final (test split) `metric` - value| <= tolerance. An experiment
  file declares `EXPECTED = [Expected(...), Beats(...), ...]` (several entries cover a grid, e.g.
  cells x lengths; `EXPECTED = []` or none: a benchmark, not a reproduction target) and `QUICK`,
  its reduced form.
  """
  metric: str  # a final test metric of results.json: accuracy, loss, bits, recall_accuracy
  value: float
  tolerance: float
  seeds: tuple[int, ...] = (0,)
  overrides: dict = dataclasses.field(default_factory=dict)  # config fields: {"model.cell": "gru"}
  source: str = ""  # "paper: ...", "analytic: ...", "recorded: ...", "estimate: ..."

  def __post_init__(self):
    source_kind(self.source)

  @property
  def kind(self) -> str:
    return source_kind(self.source)


@dataclasses.dataclass(frozen=True)
class Beats:
  """A relation between two grid points of one experiment, trained on the same task: the runs of
  `better` beat those of `worse` on `metric` (mean over seeds) by at least `margin`, higher being
  better (`mode="max"`) or lower (`mode="min"`, a loss). What an "at chance" entry cannot say: a
  broken model leaves both at chance, and then fails this."""
  metric: str
  better: dict
  worse: dict
  margin: float
  mode: str = "max"
  seeds: tuple[int, ...] = (0,)
  source: str = ""

  def __post_init__(self):
    source_kind(self.source)
    if self.mode not in ("max", "min") or self.margin <= 0:
      raise ValueError(f"Beats needs mode 'max' or 'min' and a margin > 0, not {self.mode!r}, "
                       f"{self.margin}")

  @property
  def kind(self) -> str:
    return source_kind(self.source)

  def gain(self, better: float, worse: float) -> float:
    """How much `better` beats `worse` by (positive: in the right direction)."""
    return better - worse if self.mode == "max" else worse - better


@dataclasses.dataclass(frozen=True)
class Diverges:
  """The runs of a grid point are expected to diverge: an unstable setting shown to fail, e.g.
  exploding gradients without clipping. A run diverged when the non-finite guard stopped it (a
  NaN/Inf loss or gradient norm; `train/faults.py` records it in diverged.json) or when its final
  test `metric` (a loss) ended above `above`, blown up far past a trivial baseline's. A run that
  ends at or below `above` is a mismatch."""
  overrides: dict
  above: float = math.inf
  metric: str = "loss"
  seeds: tuple[int, ...] = (0,)
  source: str = ""

  def __post_init__(self):
    source_kind(self.source)

  @property
  def kind(self) -> str:
    return source_kind(self.source)

  def diverged(self, value: float) -> bool:
    """Whether a run whose final metric is `value` (inf: stopped by the guard) diverged."""
    return value == math.inf or value > self.above


def confirmation(value: float, tolerance: float, other: float | None,
                 more: tuple[float, ...] = (), more_source: str = "") -> tuple[float, str]:
  """The tolerance and source text of a seed-0 value given seed 1's (None: not run) and `more`
  runs (`more_source` says which): the borrowed tolerance, widened to 3 std over all of them where
  they spread more (two runs: 3 |a - b| / sqrt 2), so a widened one holds seed 1 by construction
  (a weak confirmation where only two seeds ran)."""
  if other is None:
    return tolerance, "not yet confirmed by another run"
  runs = np.array([value, other, *more])
  spread = round(3 * float(np.std(runs, ddof=1)), 3)
  text = f"seed 1: {other:.3f}" + (f"; {more_source}: {', '.join(f'{v:.3f}' for v in more)}"
                                   if more else "")
  return max(tolerance, spread), f"{text} (tolerance >= 3 std over these {len(runs)} runs)"


def confirmed_by_seed1(metric: str, value: float, other: float, tolerance: float,
                       overrides: dict, more: tuple[float, ...] = (),
                       more_source: str = "") -> Expected:
  """The entry of a seed-0 value of 2026-11-26's 2-core CPU runs, confirmed by seed 1's `other`
  and `more` runs (`confirmation`)."""
  tolerance, confirmed = confirmation(value, tolerance, other, more, more_source)
  return Expected(metric, value, tolerance, overrides=overrides,
                  source=f"recorded: seed 0, 2-core CPU, 2026-11-26; {confirmed}")


@dataclasses.dataclass(frozen=True)
class Quick:
  """The reduced form of an experiment (`python -m train.tools.reproduce --quick`): `overrides` (fewer
  steps, ...) applied to every run of `expected`, a loose check that it still learns."""
  overrides: dict
  expected: list[Expected]


# Where the QUICK values come from (every experiment's reduced form is checked the same way):
# one earlier run of `python -m train.tools.reproduce --all --quick` (seed 0, one grid point each),
# confirmed by a clean retrain into an empty folder on 2026-11-26 (all 19 in 3 min 13 s on 2 idle
# CPU cores; docs/registry/quick_2026-11-26.md): every reduced form matched, the char LMs now on
# the test split (3.74 and 3.22 bits against 3.9 and 3.4 +- 0.5 set on validation).
QUICK_SOURCE = ("recorded: one quick run (seed 0), confirmed by a clean retrain on 2026-11-26; a "
                "loose check that it learns")
