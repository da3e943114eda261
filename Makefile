# qabot: `make run` and `make test` do all the set-up on a fresh machine (idempotent).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install model sample run test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: 2.13.0 is the local CPU build; an unpinned torch would pull GBs of CUDA.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

# Builds the default model folder (multilingual-e5-small) offline, once, outside git.
model: install
	@$(BIN)/qabot model install

# Indexes the bundled sample archive into the configured index folder, unless one exists.
sample: model
	@$(BIN)/qabot index --sample --if-missing

run: sample
	@$(BIN)/qabot run

test: model
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) index/default
