"""Airflow adapter: hooks, operators, sensors, notifier, params and schedules.

Everything Airflow-specific lives under this package so the rest of :mod:`mirakl_connector` can be
used (and tested) without Airflow installed. The DAG files in ``dags/`` import only from here.
"""
