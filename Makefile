# sq — every target creates its own environment from pyproject.toml; nothing installed by hand is needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SQ     := $(VENV)/bin/sq
RUNTIME := $(VENV)/.sq-runtime
DEV     := $(VENV)/.sq-dev

.PHONY: demo test test-slow bench completions readme docs clean env

env: $(RUNTIME)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# the runtime: what `sq` needs to run (the demo installs only this)
$(RUNTIME): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $(RUNTIME)

# the runtime plus the dev tools (pytest, hypothesis, import-linter, …) for the targets below
$(DEV): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(DEV) $(RUNTIME)

## demo: the main job, offline, on the simulated exchange (compiles the engine's kernels once first)
demo: $(RUNTIME)
	$(PY) -m sq.devtools warm
	$(SQ) paper --strategy mm SIM:DEMO --for 20s --seed 7 --journal demo-data/runs/demo-$$(date -u +%Y%m%dT%H%M%SZ)
	@echo
	@echo "Next: put sq on your PATH with  source $(VENV)/bin/activate  then try  sq --help"
	@echo "      (or run it by its full path: $(SQ) --help); README.md has a five-minute tour."

## test: the whole suite (slow fault-injection runs excluded; see test-slow); installs Chromium for the
## browser test of the HTML reports when it is missing (tests/e2e/test_report_browser.py)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
test: $(DEV)
	command -v chromium >/dev/null || ($(SUDO) apt-get install -y chromium || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium))
	$(PY) -m pytest -q

test-slow: $(DEV)
	$(PY) -m pytest -q -m slow

## bench: performance figures as ratios against baselines measured in the same run
bench: $(DEV)
	$(PY) -m bench

## completions: regenerate shell completion scripts into completions/
completions: $(DEV)
	$(PY) -m sq.devtools completions completions

## readme: regenerate the CLI reference section of README.md from --help
readme: $(DEV)
	$(PY) -m sq.devtools readme README.md

## docs: regenerate the generated parts of docs/ (config reference, exit codes) from the code
docs: $(STAMP)
	$(PY) -m sq.devtools docs .

clean:
	rm -rf $(VENV) demo-data .pytest_cache
