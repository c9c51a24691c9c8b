"""Hooks: turn an Airflow connection into a configured client (Mirakl, Stripe, ledger)."""
