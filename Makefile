# returnwatch — the two commands a newcomer needs are `make demo` and `make test`.
# Everything else is set up from nothing but Python 3.11 and make: a private copy of uv in
# .tools/, then the locked environment in .venv/ (uv.lock is committed and used --frozen).

PYTHON ?= python3.11
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
RUN    := $(UV) run --frozen
STAMP  := .venv/.returnwatch-installed

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export UV_PYTHON_DOWNLOADS := never

.PHONY: help install system-deps demo test test-fast test-faults ui bench dbt docs sql summary lint typecheck clean bench-detect bench-cosmos ui-screenshots fuzz

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(UV):
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv>=0.9,<0.14"

# --compile-bytecode, and compileall for the project's own code: every process of the demo and
# the tests then loads Python's bytecode instead of compiling ~15,000 modules from source
# (Airflow, dbt, GX, pandas: ~5 s at each start) where the environment forbids writing it
# (PYTHONDONTWRITEBYTECODE) or the first run would write it. ~30 s of CPU, once per install.
$(STAMP): $(UV) uv.lock pyproject.toml replay/pyproject.toml
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	.venv/bin/python -m compileall -q include dags replay bench tests >/dev/null
	@touch $(STAMP)

# The dbt manifest the transform DAG is drawn from is built with the project, as the Docker
# image builds it: parsing dbt (~8 s of CPU) is then not part of each demo or test session's
# start; they still parse again if a file of dbt_project/ is newer than the manifest.
install: $(STAMP)  ## create .venv from uv.lock, and dbt's manifest (idempotent)
	@$(RUN) python -m returnwatch.transform parse --if-stale >/dev/null

system-deps:  ## Debian packages some tests start on loopback: PostgreSQL, Redis, Chromium (needs root)
	apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql redis-server chromium

demo: install  ## replay real history through Airflow and print a summary
	$(RUN) returnwatch demo

test: install  ## the whole test suite (unit, DAG integrity, dbt, end-to-end through Airflow)
	$(RUN) pytest

test-faults: install  ## workers killed or failing mid-step; the warehouse compared with a clean run's
	$(RUN) pytest -m faults

test-fast: install  ## everything but the end-to-end Airflow runs
	$(RUN) pytest -m "not e2e"

ui: install  ## Airflow UI on http://127.0.0.1:8080 with the demo's data (Ctrl-C to stop)
	$(RUN) returnwatch ui

ui-screenshots: install  ## README's docs/img/ui_*.png: make ui with the demo's data, in headless Chromium (after make demo)
	$(RUN) python -m tests.support.ui_screenshots

dbt: install  ## dbt build (models + tests) and publish the analysts' snapshot
	$(RUN) returnwatch dbt

docs: install  ## dbt docs site for the warehouse on http://127.0.0.1:8081 (after make demo or make dbt)
	cd dbt_project && ../.venv/bin/dbt docs generate --profiles-dir . --target snapshot --target-path target/docs
	cd dbt_project && ../.venv/bin/dbt docs serve --profiles-dir . --target snapshot --target-path target/docs --host 127.0.0.1 --port 8081 --no-browser

sql: install  ## SQL prompt on the analysts' read-only snapshot
	$(RUN) returnwatch sql

summary: install  ## what the warehouse holds now
	$(RUN) returnwatch summary

bench: install  ## install, demo and test times, DagBag parse time, peak RSS (prints a table)
	$(RUN) python bench/run.py

bench-cosmos: install  ## the transform under Airflow per Cosmos option vs a plain dbt build (after make demo)
	$(RUN) python bench/cosmos_options.py

bench-detect: install  ## anomaly detector vs z-score, ±10% and ruptures on real breaks + injected events -> bench/results/detection.json
	$(RUN) python bench/detect.py

LINTED := include dags tests bench replay

# No paths: mypy reads what to check (include/returnwatch, dags) and how from pyproject.toml,
# so `make lint`, `make typecheck` and the pre-commit hook check the same thing.
MYPY := $(RUN) mypy

lint: install  ## the gates CI runs before the tests: ruff format + check, mypy, sqlfluff on the dbt models
	$(RUN) ruff format --check $(LINTED)
	$(RUN) ruff check $(LINTED)
	$(MYPY)
	$(RUN) sqlfluff lint dbt_project/models

typecheck: install  ## mypy over include/returnwatch and dags (settings in pyproject.toml)
	$(MYPY)

FUZZ_CASES ?= 30000
FUZZ_SEED ?= 1
fuzz: install  ## mutation fuzz of every parser on its real fixtures (FUZZ_CASES, FUZZ_SEED); make test runs 2,000
	$(RUN) python -m tests.fuzz.fuzz --cases $(FUZZ_CASES) --seed $(FUZZ_SEED)

clean:  ## remove the data, the embedded Airflow and the environments
	rm -rf data .airflow .venv $(TOOLS) dbt_project/target dbt_project/logs
