"""Provider events (Stripe, Hyperwallet): verify, store once, decide, apply.

The web endpoint (:mod:`.app`) only verifies and stores; :mod:`mirakl_connector.workflows.
stripe_events` applies the stored events later. Nothing here imports Airflow.
"""
