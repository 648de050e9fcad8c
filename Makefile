# Two commands set up everything on a fresh machine: `make run` and `make test`.
PY      ?= python3
VENV    ?= .venv
# The second suite: Python 3.12 with the newest jax and flax (pyenv: PYENV_VERSION=3.12.1).
PY312   ?= python3.12
VENV312 ?= .venv312
BIN     := $(VENV)/bin
CONFIG  ?= experiments/mnist1d_cnn.py
WORKDIR ?= runs/$(basename $(notdir $(CONFIG)))

PAPER_EXPERIMENTS := mnist1d_logreg mnist1d_mlp mnist1d_cnn_paper mnist1d_cnn

RNN_CELLS := simple lstm gru
RNN_LENGTHS := 100 200 400

.PHONY: install run test test-slow test-py312 test-torch gpu gpu-wheels gpu-rehearsal results quick paper rnn transformer bench clean

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
	$(BIN)/python -m train.tools.report $(WORKDIR)

test: install
	$(BIN)/python -m pytest -n 2 -m "not slow" tests

# The tests marked slow (several multi-process runs each); .ci/run runs them after `make test`.
test-slow: install
	$(BIN)/python -m pytest -n 2 -m slow tests

# Upgrades to the newest releases whenever pyproject.toml changes (a fresh venv gets them anyway).
$(VENV312)/.installed: pyproject.toml
	test -x $(VENV312)/bin/python || $(PY312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install -q --upgrade pip
	$(VENV312)/bin/python -m pip install -q --upgrade --upgrade-strategy eager -e '.[test]'
	touch $@

test-py312: $(VENV312)/.installed
	$(VENV312)/bin/python -c "import jax, flax; print('jax', jax.__version__, 'flax', flax.__version__)"
	$(VENV312)/bin/python -m pytest -n 2 -m "not slow" tests
	$(VENV312)/bin/python -m pytest -n 2 -m slow tests/test_nets.py  # what newer jax prints differently

# The PyTorch peers (experiments/peers/) and the torch items of `make gpu`'s dry run, in a venv of
# their own (torch is not a dependency). torch==2.13.0 is the CPU build pip takes from this
# machine's disk; elsewhere, TORCH='torch --index-url https://download.pytorch.org/whl/cpu'.
TORCH     ?= torch==2.13.0
VENVTORCH ?= .venv-torch
$(VENVTORCH)/.installed: pyproject.toml
	test -x $(VENVTORCH)/bin/python || $(PY) -m venv $(VENVTORCH)
	$(VENVTORCH)/bin/python -m pip install -q -e '.[test]' $(TORCH)
	touch $@

test-torch: $(VENVTORCH)/.installed
	$(VENVTORCH)/bin/python -m pytest -n 2 tests/test_peers.py tests/test_gpu_tool.py

# The README's results section: every experiment's full reproduction (finished runs are skipped;
# exit status 1 on a mismatch), the seeds 3-5 that some tables add to the registry's, the
# CNN-claims plots and feature maps, then the generated tables.
results: install
	$(BIN)/python -m train.tools.reproduce --all
	for exp in mnist1d_cnn digits_cnn; do \
	  $(BIN)/python -m train --config experiments/$$exp.py --workdir runs/reproduce/$$exp \
	    --sweep seed=3,4,5 >/dev/null || exit 1; done
	for exp in mnist1d_cnn_pool shapes_cnn_pool; do \
	  $(BIN)/python -m train --config experiments/$$exp.py --workdir runs/reproduce/$$exp \
	    --sweep model.pool=max,avg,none --sweep seed=3,4,5 >/dev/null || exit 1; done
	$(BIN)/python -m train --config experiments/shapes_translation.py \
	  --workdir runs/reproduce/shapes_translation --sweep model.global_pool=none,max \
	  --sweep seed=3,4,5 >/dev/null
	$(BIN)/python -m train --config experiments/shapes_translation.py \
	  --workdir runs/reproduce/shapes_translation --sweep "model.features=()" \
	  --sweep "model.hidden=(256,256)" --sweep optimizer.lr=1e-3 --sweep seed=3,4,5 >/dev/null
	for grid in "model.pool=max --sweep model.global_pool=max,avg,none" \
	    "model.pool=none --sweep model.global_pool=none" \
	    "model.padding=CIRCULAR --sweep model.global_pool=max,avg"; do \
	  $(BIN)/python -m train --config experiments/shapes_position.py \
	    --workdir runs/reproduce/shapes_position --sweep $$grid --sweep seed=3,4,5 >/dev/null \
	    || exit 1; done
	for grid in "dataset.permute_positions=-1,0" "model.features=() --sweep model.kernel_size=() \
	    --sweep model.hidden=(100,100) --sweep dataset.permute_positions=-1,0"; do \
	  $(BIN)/python -m train --config experiments/mnist1d_permuted.py \
	    --workdir runs/reproduce/mnist1d_permuted --sweep $$grid --sweep seed=3,4,5 >/dev/null \
	    || exit 1; done
	$(BIN)/python -m experiments.analysis.cnn_claims translation --out docs \
	  runs/reproduce/shapes_translation
	$(BIN)/python -m experiments.analysis.feature_maps 'runs/reproduce/shapes_cnn_pool/pool=max,seed=0' \
	  --out docs/feature_maps --name shapes --example 2
	$(BIN)/python -m experiments.analysis.feature_maps runs/reproduce/digits_cnn/seed=0 \
	  --out docs/feature_maps --name digits
	$(BIN)/python -m experiments.analysis.cnn_claims params --out docs
	$(BIN)/python -m experiments.analysis.cnn_claims sizes --out docs
	$(BIN)/python -m experiments.analysis.attention_maps runs/reproduce/mnist1d_transformer/seed=0 \
	  --out docs --name mnist1d
	$(BIN)/python -m experiments.analysis.attention_maps runs/reproduce/chars_transformer/seed=0 \
	  --out docs --name chars
	$(BIN)/python -m experiments.analysis.cnn_claims shift --out docs runs/reproduce/mnist1d_mlp \
	  runs/reproduce/mnist1d_cnn_paper runs/reproduce/mnist1d_cnn \
	  'runs/reproduce/mnist1d_cnn_pool/pool=max,seed=*' 'runs/reproduce/mnist1d_cnn_pool/pool=none,seed=*'
	$(BIN)/python -m train.tools.report runs/reproduce/mnist1d_cnn_pool --out docs/pooling >/dev/null
	$(BIN)/python -m experiments.analysis.gradient_flow $(foreach c,simple lstm gru,\
	  'runs/reproduce/adding_problem/name=adding_problem-t100,cell=$(c),seed=0') \
	  $(foreach c,0.0 1.0,'runs/reproduce/exploding_gradients/grad_clip_norm=$(c),seed=0') --out docs
	$(BIN)/python -m experiments.analysis.gates $(foreach c,lstm gru,\
	  'runs/reproduce/adding_problem/name=adding_problem-t100,cell=$(c),seed=0') --out docs --example 16
	$(BIN)/python -m train --config experiments/adding_problem.py --workdir runs/reproduce/adding_problem \
	  --sweep dataset.name=adding_problem/t100 --sweep model.cell=lstm,gru --sweep seed=1,2 >/dev/null
	$(BIN)/python -m experiments.analysis.gru_vs_lstm --out docs
	for task in reversal dates; do \
	  $(BIN)/python -m experiments.analysis.seq2seq accuracy --task $$task --out docs && \
	  $(BIN)/python -m experiments.analysis.seq2seq alignments --task $$task --length 50 --out docs \
	  || exit 1; done
	$(BIN)/python -m train.tools.reproduce --readme

# Every experiment's reduced form: a few minutes on 2 CPU cores.
quick: install
	$(BIN)/python -m train.tools.reproduce --all --quick

# The README's MNIST-1D table: every paper row (and our CNN) over seeds 0, 1, 2. Finished runs
# are resumed, i.e. skipped.
paper: install
	for exp in $(PAPER_EXPERIMENTS); do for seed in 0 1 2; do \
	  $(BIN)/python -m train --config experiments/$$exp.py --workdir runs/paper/$$exp/seed$$seed \
	    --config.seed=$$seed >/dev/null || exit 1; done; done
	$(BIN)/python -m train.tools.report runs/paper --markdown

# The README's recurrent results: MNIST-1D, the adding and copy tasks at each length, for each cell;
# the char-level LSTM LM; the gradient-flow plot. About an hour on 2 CPU cores.
rnn: install
	for cell in $(RNN_CELLS); do \
	  $(BIN)/python -m train --config experiments/mnist1d_rnn.py --workdir runs/rnn/mnist1d/$$cell \
	    --config.model.cell=$$cell >/dev/null || exit 1; \
	  for task in adding_problem copy_memory; do for t in $(RNN_LENGTHS); do \
	    $(BIN)/python -m train --config experiments/$$task.py --workdir runs/rnn/$$task/t$$t/$$cell \
	      --config.model.cell=$$cell --config.dataset.name=$$task/t$$t >/dev/null || exit 1; \
	  done; done; done
	$(BIN)/python -m train --config experiments/chars_lstm.py --workdir runs/rnn/chars_lstm >/dev/null
	$(BIN)/python -m experiments.analysis.gradient_flow $(foreach c,$(RNN_CELLS),runs/rnn/adding_problem/t100/$(c)) \
	  --out runs/rnn/gradient_flow
	$(BIN)/python -m train.tools.report runs/rnn --markdown

# The README's Transformer results: MNIST-1D over seeds 0-2, the char LM beside the LSTM's, attention
# maps of both, throughput against sequence length.
transformer: install
	for seed in 0 1 2; do \
	  $(BIN)/python -m train --config experiments/mnist1d_transformer.py \
	    --workdir runs/transformer/mnist1d/seed$$seed --config.seed=$$seed >/dev/null || exit 1; done
	$(BIN)/python -m train --config experiments/chars_transformer.py \
	  --workdir runs/transformer/chars_transformer >/dev/null || exit 1
	$(BIN)/python -m experiments.analysis.attention_maps runs/transformer/mnist1d/seed0
	$(BIN)/python -m experiments.analysis.attention_maps runs/transformer/chars_transformer
	$(BIN)/python -m experiments.analysis.bench_seq_len --tokens 4096 --out runs/transformer/bench_seq_len
	$(BIN)/python -m train.tools.report runs/transformer --markdown

# The README's speed table: `python -m train.tools.bench` on every experiment (CPU-sized where a full step
# would take minutes there; TFDS mock data for the datasets that need a download), GPT-2 small's
# PyTorch peer where torch is installed (not a dependency), then the same CNN on 8 simulated CPU
# devices, data-parallel and FSDP (a check that it runs, not a speed-up).
BENCH_EXPERIMENTS := mnist1d_logreg mnist1d_mlp mnist1d_cnn_paper mnist1d_cnn mnist1d_rnn \
  adding_problem copy_memory chars_lstm mnist1d_transformer chars_transformer
EIGHT_CPUS := XLA_FLAGS=--xla_force_host_platform_device_count=8
bench: install
	for exp in $(BENCH_EXPERIMENTS); do \
	  $(BIN)/python -m train.tools.bench --config experiments/$$exp.py --out runs/bench >/dev/null || exit 1; done
	for exp in mnist_cnn cifar10_resnet18; do \
	  $(BIN)/python -m train.tools.bench --config experiments/$$exp.py --mock_data --steps 3 \
	    --config.dataset.data_dir=runs/bench/mock --out runs/bench >/dev/null || exit 1; done
	$(BIN)/python -m train.tools.bench --config experiments/gpt2_small.py --steps 3 \
	  --config.batch_size=1 --config.dataset.seq_len=128 --out runs/bench >/dev/null
	if $(BIN)/python -c "import torch" 2>/dev/null; then \
	  $(BIN)/python -m experiments.peers.torch_gpt2 --batch 1 --seq_len 128 --steps 3 --no-compile \
	    --out runs/bench >/dev/null || exit 1; fi
	$(BIN)/python -m train.tools.bench --config experiments/mnist1d_cnn.py --out runs/bench \
	  --config.batch_size=128 >/dev/null
	$(EIGHT_CPUS) $(BIN)/python -m train.tools.bench --config experiments/mnist1d_cnn.py --out runs/bench \
	  --config.batch_size=128 >/dev/null
	$(EIGHT_CPUS) $(BIN)/python -m train.tools.bench --config experiments/mnist1d_cnn.py --out runs/bench \
	  --config.batch_size=128 --config.mesh.fsdp=4 >/dev/null
	cat runs/bench/bench.md

# The GPU machine's image (Python 3.12, jax with CUDA, flax, optax, orbax, torch; no network) lacks
# some of our dependencies: `make gpu-wheels` downloads them here into .whl/ (about 10 MB), to be
# carried along; never jax, jaxlib or torch, whose CUDA builds the image has.
# scikit-learn (and scipy) stay out: only the digits builder imports it, and make gpu does not.
GPU_WHEELS := tensorflow-datasets array-record dm-tree immutabledict promise simple-parsing \
  docstring-parser tensorflow-metadata googleapis-common-protos termcolor toml ml-collections \
  mnist1d grain portpicker tensorboardX importlib-resources
PLATFORMS := $(foreach p,manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 \
  manylinux2014_x86_64 manylinux1_x86_64 any,--platform $(p))
gpu-wheels:
	mkdir -p .whl
	for p in $(GPU_WHEELS); do \
	  $(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
	    --implementation cp --abi cp312 --abi abi3 --abi none $(PLATFORMS) -d .whl $$p 2>/dev/null \
	  || $(PY) -m pip wheel -q --no-deps -w .whl $$p || exit 1; done
	du -sh .whl

# On the GPU machine, from the repository root with .whl/ carried along: installs the wheels beside
# the image's packages (jax, jaxlib and torch untouched), then the GPU tests and every benchmark,
# about 8 minutes on one H100 (train/tools/gpu.py). The report lands in GPU_OUT ($$OUT if set).
# GPU_ARGS="--budget_s 150 --items 'resnet18 f32,torch resnet18 f32'" runs only those items (what
# a first call ran out of time for), within 150 s.
GPU_PY   ?= python3
GPU_SITE ?= /tmp/site
GPU_OUT  ?= $(if $(OUT),$(OUT),runs/gpu)
gpu:
	@if ls .whl | grep -qiE '^(jax|jaxlib|torch)-'; then \
	  echo "error: .whl/ holds jax, jaxlib or torch; the image's own CUDA builds must stay" >&2; exit 2; fi
	$(GPU_PY) -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
	  --target $(GPU_SITE) .whl/*.whl
	PYTHONPATH=$(GPU_SITE)$${PYTHONPATH:+:$$PYTHONPATH} $(GPU_PY) -m train.tools.gpu --out $(GPU_OUT) \
	  $(GPU_ARGS)

# `make gpu`'s dry run in a stand-in for the GPU image, before a GPU is lent: a Python 3.12 venv
# holding only the packages of the image that our code and the carried wheels need (the device
# tool's KINDS.md lists the image's; its CPU jax), the wheels installed as on the GPU machine.
# Pinned where the H200's report of 2026-11-27 gave the image's version (its gpu.json).
GPU_IMAGE_PACKAGES := jax==0.11.2 jaxlib==0.11.2 flax==0.12.10 optax==0.2.8 \
  orbax-checkpoint==0.12.4 numpy==2.5.2 \
  absl-py etils protobuf psutil pyarrow requests tqdm wrapt six matplotlib pytest pytest-xdist \
  hypothesis scipy scikit-learn cloudpickle fsspec zipp typing_extensions packaging
gpu-rehearsal: gpu-wheels
	test -x .venv-gpu/bin/python || $(PY312) -m venv .venv-gpu
	.venv-gpu/bin/python -m pip install -q $(GPU_IMAGE_PACKAGES)
	$(MAKE) gpu GPU_PY=.venv-gpu/bin/python GPU_SITE=/tmp/gpu-rehearsal-site GPU_OUT=runs/gpu-rehearsal \
	  GPU_ARGS=--dry-run

clean:
	rm -rf runs
