"""Reconciliation: Mirakl documents ↔ provider objects ↔ ledger rows, per run and per day.

* :mod:`.compare`: the pure comparison (ledger entries, provider objects, Mirakl amounts →
  reconciliation items), no I/O;
* :mod:`.mirakl_amounts`: what Mirakl says each ledger row should have moved (pure, from the raw
  documents);
* :mod:`.readers`: the bulk reads (Stripe and Hyperwallet lists by creation window, Mirakl lists
  by ids or date window), never one call per item;
* :mod:`.flows`: which rows, objects and documents each money-moving workflow reconciles.

The workflow step is :mod:`mirakl_connector.reconciliation.workflow`; results are kept in the
ledger table ``reconciliation_items`` (:mod:`mirakl_connector.ledger.reconciliation`).
"""
