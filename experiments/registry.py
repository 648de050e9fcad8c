"""The results registry's types: an experiment file declares `EXPECTED` (what its runs must reach)
and `QUICK` (its reduced form); `python -m train.tools.reproduce` trains and checks them."""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Expected:
  """One expected result of an experiment (its registry entry; not part of the run's config).

  The runs of this entry are the experiment's config with `overrides`, once per seed; it matches
  when |mean over seeds of the final eval `metric` - value| <= tolerance. An experiment file
  declares `EXPECTED = [Expected(...), ...]` (several entries cover a grid, e.g. cells x lengths;
  `EXPECTED = []` or none: a benchmark, not a reproduction target) and `QUICK`, its reduced form.
  """
  metric: str  # a final test metric of results.json: accuracy, loss, bits, recall_accuracy
  value: float
  tolerance: float
  seeds: tuple[int, ...] = (0,)
  overrides: dict = dataclasses.field(default_factory=dict)  # config fields: {"model.cell": "gru"}


@dataclasses.dataclass(frozen=True)
class Quick:
  """The reduced form of an experiment (`python -m train.tools.reproduce --quick`): `overrides` (fewer
  steps, ...) applied to every run of `expected`, a loose check that it still learns."""
  overrides: dict
  expected: list[Expected]
