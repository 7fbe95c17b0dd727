# Two entry points for a fresh machine (see README.md):
#   make demo   install into .venv and run the embedded demo end to end (ends
#               with results/demo/report.html)
#   make test   install into .venv and run the tests
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean-results

install: $(STAMP)

$(STAMP): pyproject.toml requirements.txt requirements-nodeps.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: install
	$(VENV)/bin/snakemake --cores $(CORES)
	$(PY) scripts/make_report.py

test: install
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check .

clean-results:
	rm -rf results/demo .snakemake
