# Two commands do all the set-up: `make demo` and `make test`.
# Each creates .venv on first use (Python 3.11 and make are all a machine needs) and reuses it after.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
# tox finds the other Pythons on PATH: every $(pyenv root)/versions/3.1x/bin when pyenv is there.
PYENV_BINS := $(shell ls -d "$$(pyenv root 2>/dev/null)"/versions/3.1[0-9]*/bin 2>/dev/null | tr '\n' ':')
TOX    := PATH="$(PYENV_BINS)$$PATH" $(BIN)/tox
SMOKE_PYTHONS ?= py310-smoke,py312-smoke,py313-smoke

.PHONY: demo test test-slow test-versions test-matrix test-pythons lint docs docs-figures docs-browser bench bench-speed bench-scaling bench-cifar10 bench-data-scale bench-train-from-files install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,demo,dev,jax]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/cnnkit demo --output demo-output

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# The oldest (TensorFlow 2.16 + Keras 3.10) and the newest TensorFlow in their own tox
# environments (unit tests in each), then a .keras file carried between the two in both directions.
test-versions: $(STAMP)
	$(TOX) -e tf216,tf221
	$(BIN)/python -m pytest -m compat tests/compat $(PYTEST_ARGS)

# The whole tox matrix: every TensorFlow from 2.16 on each installed Python 3.10-3.13
# (3.13 from TensorFlow 2.20), the smoke tests on each Python, plus lint, docs and JAX.
test-matrix: $(STAMP)
	$(TOX)

# tests/smoke on Python 3.10, 3.12 and 3.13 (the newest TensorFlow for each); a missing
# interpreter fails instead of being skipped. About 90 s with a warm uv cache.
test-pythons: $(STAMP)
	$(TOX) --skip-missing-interpreters false -e $(SMOKE_PYTHONS)

lint: $(STAMP)
	$(BIN)/ruff check keras_cnnkit tests benchmarks examples
	$(BIN)/ruff format --check keras_cnnkit tests benchmarks examples

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html
	$(BIN)/sphinx-build -W --keep-going -b doctest docs docs/_build/doctest

# The built HTML in headless Chromium (apt-get installs chromium and chromium-driver when absent);
# screenshots land in docs/_build/screenshots.
# The docs' figures (docs/_static): the diagrams, drawn from the code (seconds), and the
# translation-invariance demo's pictures (about two minutes). The output is committed.
docs-figures: $(STAMP)
	$(BIN)/python docs/_scripts/make_figures.py

docs-browser: $(STAMP)
	$(BIN)/python -m pytest -m browser tests/docs -q

# Each benchmark prints its command first and the seconds it took last.
TIMED = @timed() { echo "+ $$*"; start=$$(date +%s); "$$@"; rc=$$?; \
	echo "[$$*: $$(( $$(date +%s) - start )) s, exit $$rc]"; return $$rc; }; timed

bench-speed: $(STAMP)
	$(TIMED) $(BIN)/python benchmarks/speed.py

bench-scaling: $(STAMP)
	$(TIMED) $(BIN)/python benchmarks/scaling.py

bench-cifar10: $(STAMP)
	$(TIMED) $(BIN)/python benchmarks/cifar10.py

bench-data-scale: $(STAMP)
	$(TIMED) $(BIN)/python benchmarks/data_scale.py

bench-train-from-files: $(STAMP)
	$(TIMED) $(BIN)/python benchmarks/train_from_files.py

bench: bench-speed bench-cifar10 bench-train-from-files

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache docs/_build demo-output
