# Airflow image with the connector installed (the provider entry point gives the UI its Mirakl and
# Stripe connection forms; the triggerer, which never loads the DAG bundle, can import the library).
# Not built on the development machine (no Docker engine there): treat as a first version.
FROM apache/airflow:3.3.2

COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
COPY --chown=airflow:0 include /opt/airflow/include

RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /opt/airflow/requirements.txt \
    && pip install --no-cache-dir /opt/airflow/include
