# qabot: `make run` and `make test` do all the set-up on a fresh machine (idempotent).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# torch is installed first, pinned to its CPU build from PyTorch's CPU index: an unpinned torch
# from PyPI would pull GBs of CUDA. With a GPU, override both, e.g.
#   make install TORCH=torch==2.13.0 TORCH_INDEX=https://download.pytorch.org/whl/cu128
# Where the index cannot be reached (scripts/reachable.py asks first), pip finds the wheel through its
# own configuration, without retrying the index for torch and each of its dependencies (~75 s).
TORCH       ?= torch==2.13.0+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: install model sample run lint test docs browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalls when pyproject.toml or the Makefile (the torch pin) changes.
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if $(BIN)/python scripts/reachable.py "$(TORCH_INDEX)"; then \
		echo '$(BIN)/python -m pip install --quiet "$(TORCH)" --extra-index-url "$(TORCH_INDEX)"'; \
		$(BIN)/python -m pip install --quiet "$(TORCH)" --extra-index-url "$(TORCH_INDEX)"; \
	else \
		echo "install: $(TORCH) from pip's own indexes"; \
		$(BIN)/python -m pip install --quiet "$(TORCH)"; \
	fi
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

lint: install
	$(BIN)/ruff check qabot tests scripts

# One pytest-xdist worker per core (each with one math thread: tests/conftest.py); a module's tests share a
# worker. TEST_WORKERS=0 runs them in this one process, as plain `pytest` does.
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

test: lint model browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Regenerates the pages made from the code with cog (cogapp): .env.example and every page holding a
# [[[cog block (docs/settings.md from the settings table, qabot/config/table.py). The tests fail when
# one is out of date.
docs: install
	$(BIN)/cog -r -I . .env.example $$(grep -ls '\[\[\[cog' README.md CONTRIBUTING.md docs/*.md)

# Debian's chromium and chromium-driver for the web page's browser test (tests/test_api_browser.py).
# Installed only when missing, and only as root with apt-get; otherwise the reason is printed
# and the browser test skips with it.
browser:
	@if command -v chromium >/dev/null 2>&1 && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" != 0 ]; then echo "browser: skipped installing chromium (not root); the browser test will skip"; \
	elif ! command -v apt-get >/dev/null 2>&1; then echo "browser: skipped installing chromium (no apt-get); the browser test will skip"; \
	else apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
	  || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; } \
	  || echo "browser: apt-get install chromium chromium-driver failed; the browser test will skip"; fi

# Removes only what the Makefile and the tools it runs made. Never an index (index/ holds
# your indexes) and never the model cache (~/.cache/qabot): delete those by hand.
clean:
	rm -rf $(VENV) build dist qabot.egg-info .pytest_cache .ruff_cache
	find qabot tests scripts -name __pycache__ -type d -prune -exec rm -rf {} +
