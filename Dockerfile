# Two images from one file:
#
#   production  Airflow with the connector installed: the library (its provider entry point gives
#               the UI the Mirakl and Stripe connection forms; the triggerer, which never loads
#               the DAG bundle, imports it from site-packages), the pinned runtime requirements
#               (Stripe SDK, Celery pins, asyncpg) and the scripts the init service runs. No
#               simulator (include/sandbox is never copied) and no test or lint tool
#               (requirements-dev.txt is never copied): tests/deploy/test_compose.py checks both.
#   sandbox     production + the simulator of Mirakl, Stripe and Hyperwallet (mirakl_sandbox),
#               for the demo only (docker-compose.yaml, profile "sandbox").
#
# dags/ and plugins/ are mounted by docker-compose.yaml.
# The install step is scripts/install.sh, the same one scripts/bootstrap.sh runs for the tests.
# The Python tag is pinned: the plain 3.3.2 tag ships Python 3.13, the project is built and tested
# on 3.11.
FROM apache/airflow:3.3.2-python3.11 AS production

ENV PIP_NO_CACHE_DIR=1 \
    PYTHON=python

COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
# The connector only: its package and its pyproject, not include/sandbox.
COPY --chown=airflow:0 include/pyproject.toml /opt/airflow/include/pyproject.toml
COPY --chown=airflow:0 include/mirakl_connector /opt/airflow/include/mirakl_connector
COPY --chown=airflow:0 scripts/install.sh scripts/create_pools.sh scripts/compose_init.sh /opt/airflow/scripts/

RUN /opt/airflow/scripts/install.sh

FROM production AS sandbox

# The simulator's own dependencies (FastAPI, uvicorn) are runtime pins already; --no-deps keeps
# pip from looking for mirakl-connector, installed above, on the package index.
COPY --chown=airflow:0 include/sandbox /opt/airflow/include/sandbox
RUN python -m pip install --no-deps /opt/airflow/include/sandbox
