# Airflow image with the connector installed: the library (its provider entry point gives the UI
# the Mirakl and Stripe connection forms; the triggerer, which never loads the DAG bundle, imports
# it from site-packages), the pinned runtime requirements (Stripe SDK, Celery pins, asyncpg; no
# test or lint tools: those are in requirements-dev.txt), and the scripts the init service runs.
# dags/ and plugins/ are mounted by docker-compose.yaml.
#
# The install step is scripts/install.sh, the same one scripts/bootstrap.sh runs for the tests.
# The Python tag is pinned: the plain 3.3.2 tag ships Python 3.13, the project is built and tested
# on 3.11.
FROM apache/airflow:3.3.2-python3.11

ENV PIP_NO_CACHE_DIR=1 \
    PYTHON=python

COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
COPY --chown=airflow:0 include /opt/airflow/include
COPY --chown=airflow:0 scripts/install.sh scripts/create_pools.sh scripts/compose_init.sh /opt/airflow/scripts/

RUN /opt/airflow/scripts/install.sh
