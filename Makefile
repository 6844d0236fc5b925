# make demo: set up .venv, fetch data, train -> export ternary -> run on Lava with a parity report.
# make test: set up .venv and run the test suite.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.tna-installed
FMNIST_DIR := /usr/share/datasets/fashion-mnist
# Test-only: the NIR clients tna's graphs must load in (tests/nir/test_clients.py); --no-deps
# keeps lava-dl's torch 2.3.1.
CLIENTS := snntorch==1.0.0 norse==1.1.0 nirtorch==2.6.0

.PHONY: demo test test-all test-slurm bench data venv clean gpu-pack

venv: $(STAMP)

# Reinstalls only when pyproject.toml changes (the package itself is installed editable).
$(STAMP): pyproject.toml Makefile
	@py="$$(PYTHON='$(PYTHON)' scripts/find-python.sh)" || exit 1; \
	 echo "using $$py"; \
	 if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then \
	   rm -rf $(VENV) && "$$py" -m venv $(VENV) || exit 1; fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps $(CLIENTS)
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
	$(PY) -m ruff check tna tests benchmarks
	$(PY) -m pytest -q

# A real one-node SLURM on localhost (tests/slurm/cluster.py): installs the daemons with apt
# when missing, starts them in a temporary folder, runs tests/slurm, stops what it started.
test-slurm: $(STAMP) data
	scripts/slurm-packages.sh
	$(PY) -m pytest -q -m slurm tests/slurm -rs

test-all: $(STAMP) data
	$(PY) -m pytest -q -m ''

bench: $(STAMP) data
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/lava_speed.py
	$(PY) benchmarks/emulator_speed.py
	$(PY) benchmarks/estimate_speed.py

# What a GPU machine without Python 3.10 and lava-nc needs to train (FACTS.md): slayer's source
# (no pretrained weights) and Fashion-MNIST, 31 MB; carry build/gpu-pack with the working tree and
# run there with PYTHONPATH=build/gpu-pack:. and --data-dir build/gpu-pack/fashion-mnist.
gpu-pack: $(STAMP) data
	rm -rf build/gpu-pack && mkdir -p build/gpu-pack/lava/lib/dl build/gpu-pack/fashion-mnist
	cp -r "$$($(PY) -c 'import os, importlib.util as u; print(os.path.dirname(u.find_spec("lava.lib.dl.slayer").origin))')" \
	  build/gpu-pack/lava/lib/dl/
	find build/gpu-pack \( -name '__pycache__' -o -name '*.pt' \) -prune -exec rm -rf {} +
	cp $(FMNIST_DIR)/*-ubyte.gz build/gpu-pack/fashion-mnist/
	@du -sh build/gpu-pack

clean:
	rm -rf $(VENV) runs .pytest_cache
