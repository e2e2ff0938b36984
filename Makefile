# Two commands do all the set-up on a fresh machine:
#   make demo   - create .venv, install ltr, run the main job on the bundled sample data
#   make test   - create .venv, install ltr with test dependencies, run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ltr-installed

.PHONY: demo test lint bench sample clean docs-config

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# torch is pinned first to the CPU build; the project's range (>=2.6,<2.14) then installs nothing more.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(PY) -m ruff check ltr tests scripts
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check ltr tests scripts

# docs/configuration.md: the reference of every configuration key, generated from the code
docs-config: $(STAMP)
	$(PY) -m ltr.cli config --out docs/configuration.md

sample: $(STAMP)
	$(PY) scripts/make_sample_data.py

# the speed and memory figures of the README (bench_text.py takes 10-20 minutes: run it alone)
bench: $(STAMP)
	$(PY) scripts/bench_simulate.py
	$(PY) scripts/bench_metrics.py
	$(PY) scripts/bench_labels.py
	$(PY) scripts/bench_train.py
	$(PY) scripts/bench_serving.py
	$(PY) scripts/bench_export.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache runs
