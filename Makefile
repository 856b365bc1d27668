# Two entry points for a fresh machine: `make compare` (main job) and `make test`.
# Both create .venv and install everything first. torch==2.13.0 is the CPU build that sits on this
# machine's disk; installing it before the package keeps pip from pulling a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
SHARED_DATA ?= ../shared/data

.PHONY: install test compare clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

test: install
	HF_HUB_OFFLINE=1 HINDI_MODELS_SHARED_DATA=$(SHARED_DATA) $(PY) -m pytest -q $(PYTEST_ARGS)

compare: install
	HF_HUB_OFFLINE=1 HINDI_MODELS_SHARED_DATA=$(SHARED_DATA) $(VENV)/bin/hindi-lm compare $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
