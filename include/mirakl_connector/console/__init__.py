"""The payments console: read-only views of the ledger (queries, HTML page, JSON API, CSV).

Nothing here imports Airflow: the plugin (``plugins/mirakl_connector_console.py``) mounts the app
and supplies Airflow's authentication as a dependency.
"""
