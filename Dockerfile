# syntax=docker/dockerfile:1
#
# returnwatch's production image: the official Apache Airflow image for the Airflow version
# uv.lock pins, plus exactly the locked dependencies and the project (package, DAGs, dbt
# project, config, expectations, docs). docker-compose.yaml builds it; docs/operations.md says how
# to run, upgrade and scale it.
#
# Upgrading Airflow: change apache-airflow in uv.lock (uv lock --upgrade-package apache-airflow)
# AND both FROM lines below, together. tests/deploy/test_compose.py fails while the FROM tag and
# uv.lock disagree, and the build stops if they do.

# ---------------------------------------------------------------------------------------------
# Stage 1: uv.lock -> requirements.txt with hashes. uv is needed only here, so it stays out of
# the image that runs.
FROM apache/airflow:3.3.2-python3.11 AS locked-requirements

# The same uv range as the Makefile, so the lock is read by the uv generation that wrote it.
RUN pip install --no-cache-dir "uv>=0.9,<0.14"

WORKDIR /tmp/lock
COPY pyproject.toml uv.lock ./

# --frozen: the lock as committed, never re-resolved. --no-dev: no pytest, ruff, playwright.
# --no-emit-project: the project itself is installed (editable) in stage 2. Hashes are kept:
# pip checks every downloaded file against the hash the lock recorded.
# The lock's [tool.uv] override-dependencies (dbt-core-experimental-parser removed) is already
# applied in the exported closure.
RUN python -m uv export --frozen --no-dev --no-emit-project --output-file /tmp/requirements.txt \
 && base=$(python -c 'import importlib.metadata as m; print(m.version("apache-airflow"))') \
 && if ! grep -q "^apache-airflow==${base} " /tmp/requirements.txt; then \
      echo "uv.lock does not pin apache-airflow==${base}, the version of this base image:" >&2; \
      grep "^apache-airflow==" /tmp/requirements.txt >&2; \
      echo "change the FROM lines of the Dockerfile and uv.lock together" >&2; \
      exit 1; \
    fi

# ---------------------------------------------------------------------------------------------
# Stage 2: the image every Airflow service runs.
FROM apache/airflow:3.3.2-python3.11

# Where the project lives in the image, and where its data volumes are mounted
# (docker-compose.yaml mounts the named volumes `warehouse` and `archive` here).
ENV RETURNWATCH_DATA_DIR=/opt/returnwatch/data

# The folders the named volumes are mounted on are created here, owned by the airflow user:
# Docker gives a new, empty named volume the owner and mode of the folder it is mounted on,
# so the volumes come up writable by the airflow user (uid 50000, group 0) without a
# root-run chown at every start. /opt/airflow/auth holds the UI's passwords file.
USER root
RUN install -d -o airflow -g 0 -m 0775 \
      /opt/returnwatch /opt/returnwatch/data /opt/returnwatch/data/archive /opt/airflow/auth
USER airflow

# Dependencies first: this layer is rebuilt only when uv.lock changes, not for every code edit.
# Why the lock and not the image's own constraints: the image then runs the very versions the
# test suite ran against. A package the base image has at the locked version (apache-airflow
# itself, above all) is kept as it is; one it has at another version is replaced by the locked
# one; the base image's other providers, which returnwatch does not use, are left untouched.
# --no-deps installs exactly the locked closure, nothing resolved again: pip would otherwise
# follow dbt-core's metadata to dbt-core-experimental-parser, which the lock overrides away.
# --require-hashes: a file whose hash differs from the lock's stops the build.
COPY --from=locked-requirements /tmp/requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --no-deps --require-hashes -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

WORKDIR /opt/returnwatch
COPY --chown=airflow:0 pyproject.toml uv.lock README.md LICENSE ./
COPY --chown=airflow:0 include/ include/
COPY --chown=airflow:0 dags/ dags/
COPY --chown=airflow:0 dbt_project/ dbt_project/
COPY --chown=airflow:0 config/ config/
COPY --chown=airflow:0 expectations/ expectations/
# The runbook and guides: the returnwatch page in the UI serves them (DAG docs link there).
COPY --chown=airflow:0 docs/ docs/

# The project is installed, not only put on PYTHONPATH: its `airflow.plugins` entry point (the
# returnwatch page in the UI) is found through the installed distribution's metadata. Editable
# because returnwatch.settings finds dbt_project/, config/ and expectations/ next to the package
# (include/returnwatch -> /opt/returnwatch); a regular install would copy the package into
# site-packages, away from them.
RUN pip install --no-cache-dir --no-deps --editable .

# The transform DAG draws its dbt tasks from dbt_project/target/manifest.json (Cosmos reads the
# manifest, so parsing the DAG never runs dbt). It is generated here, from the project as built,
# so the image never runs with a stale or missing manifest. dbt parse opens no warehouse.
RUN python -m returnwatch.transform parse

# Fail the build, not the first start, if Airflow would not find the plugin. (Nothing here
# imports returnwatch.cli: its embedded-Airflow defaults would write local secrets into the image.)
RUN python -c "from importlib.metadata import entry_points; \
import returnwatch.ops_view.plugin; \
assert 'returnwatch' in {ep.name for ep in entry_points(group='airflow.plugins')}, \
'the returnwatch distribution registers no airflow.plugins entry point'"
