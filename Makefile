# sq — every target creates its own environment from pyproject.toml; nothing installed by hand is needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SQ     := $(VENV)/bin/sq
STAMP  := $(VENV)/.sq-installed

.PHONY: demo test test-slow bench completions readme docs clean env

env: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## demo: the main job, offline, on the simulated exchange
demo: $(STAMP)
	$(SQ) paper --strategy mm SIM:DEMO --for 20s --seed 7 --journal demo-data/runs/demo-$$(date -u +%Y%m%dT%H%M%SZ)

## test: the whole suite (slow fault-injection runs excluded; see test-slow)
test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

## bench: performance figures as ratios against baselines measured in the same run
bench: $(STAMP)
	$(PY) -m bench

## completions: regenerate shell completion scripts into completions/
completions: $(STAMP)
	$(PY) -m sq.devtools completions completions

## readme: regenerate the CLI reference section of README.md from --help
readme: $(STAMP)
	$(PY) -m sq.devtools readme README.md

## docs: regenerate the generated parts of docs/ (config reference, exit codes) from the code
docs: $(STAMP)
	$(PY) -m sq.devtools docs .

clean:
	rm -rf $(VENV) demo-data .pytest_cache
