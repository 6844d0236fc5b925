# make demo: set up .venv, fetch data, train -> export ternary -> run on Lava with a parity report.
# make test: set up .venv and run the test suite.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.tna-installed
FMNIST_DIR := /usr/share/datasets/fashion-mnist

.PHONY: demo test test-all bench data venv clean

venv: $(STAMP)

# Reinstalls only when pyproject.toml changes (the package itself is installed editable).
$(STAMP): pyproject.toml
	@py="$$(PYTHON='$(PYTHON)' scripts/find-python.sh)" || exit 1; \
	 echo "using $$py"; \
	 if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then \
	   rm -rf $(VENV) && "$$py" -m venv $(VENV) || exit 1; fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# Fashion-MNIST comes from Debian's dataset-fashion-mnist; without apt the demo uses digits.
data:
	@if [ -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz ]; then echo "Fashion-MNIST: $(FMNIST_DIR)"; \
	 elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	   (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	    (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) \
	   && echo "Fashion-MNIST installed to $(FMNIST_DIR)" \
	   || echo "note: could not install dataset-fashion-mnist; the demo falls back to scikit-learn digits"; \
	 else echo "note: Fashion-MNIST needs 'apt-get install dataset-fashion-mnist' (as root); the demo falls back to scikit-learn digits"; fi

demo: $(STAMP) data
	$(VENV)/bin/tna demo --out runs/demo

test: $(STAMP) data
	$(PY) -m pytest -q

test-all: $(STAMP) data
	$(PY) -m pytest -q -m ''

bench: $(STAMP) data
	$(PY) bench/train_speed.py
	$(PY) bench/lava_speed.py
	$(PY) bench/emulator_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache
