# The two front-door commands (see README.md). Both create the local virtual environment first if needed.
#   make reproduce   -> quick reproduction of the paper on the default config (results/), then its verdicts
#                       compared with the shipped reference (python -m rnngeom.compare)
#   make test        -> the test suite
#   make report      -> results/report.html from the results already computed (make reproduce ends with it)
#   make scan        -> the regime scan on exploration seeds (results/scan/, docs/scan.md)
#   make lint        -> ruff check, ruff format --check, snakefmt --check (CI runs it before the tests)
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
BIN := $(VENV)/bin

.PHONY: reproduce test lint format venv report scan clean-results

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

reproduce: venv
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html
	@# did this machine reproduce the shipped verdicts? (non-zero when one differs; the run itself is kept)
	-$(BIN)/python -m rnngeom.compare results

report: venv
	$(BIN)/snakemake --report results/report.html

scan: venv
	$(BIN)/snakemake --cores $(CORES) scan

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/

format: venv
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile workflow/

clean-results:
	rm -rf results/data results/runs results/tables results/figures results/logs results/benchmarks results/claims.tsv results/claims.md results/report.html
