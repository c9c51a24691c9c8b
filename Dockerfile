# Airflow image with the connector installed: the library (its provider entry point gives the UI
# the Mirakl and Stripe connection forms; the triggerer, which never loads the DAG bundle, imports
# it from site-packages), the pinned requirements (Stripe SDK, Celery pins, asyncpg), and the
# scripts the init service runs (pools). dags/ and plugins/ are mounted by docker-compose.yaml.
#
# The install step is scripts/install.sh, the same one scripts/bootstrap.sh runs for the tests.
# Not built on the development machine (no Docker engine there); tests/deploy checks this file.
FROM apache/airflow:3.3.2

ENV PIP_NO_CACHE_DIR=1 \
    PYTHON=python

COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
COPY --chown=airflow:0 include /opt/airflow/include
COPY --chown=airflow:0 scripts/install.sh scripts/create_pools.sh /opt/airflow/scripts/

RUN /opt/airflow/scripts/install.sh
