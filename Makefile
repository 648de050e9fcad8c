# Two commands set up everything on a fresh machine: `make run` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
CONFIG  ?= experiments/mnist1d_cnn.py
WORKDIR ?= runs/$(basename $(notdir $(CONFIG)))

PAPER_EXPERIMENTS := mnist1d_logreg mnist1d_mlp mnist1d_cnn_paper mnist1d_cnn

.PHONY: install run test paper clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-installs only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python -m train --config $(CONFIG) --workdir $(WORKDIR)
	$(BIN)/python -m train.report $(WORKDIR)

test: install
	$(BIN)/python -m pytest -n 2 tests

# The README's MNIST-1D table: every paper row (and our CNN) over seeds 0, 1, 2. Finished runs
# are resumed, i.e. skipped.
paper: install
	for exp in $(PAPER_EXPERIMENTS); do for seed in 0 1 2; do \
	  $(BIN)/python -m train --config experiments/$$exp.py --workdir runs/paper/$$exp/seed$$seed \
	    --config.seed=$$seed >/dev/null || exit 1; done; done
	$(BIN)/python -m train.report runs/paper --markdown

clean:
	rm -rf runs
