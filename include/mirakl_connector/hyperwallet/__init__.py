"""Hyperwallet (PayPal) payouts for Mirakl sellers: REST v4 client and the rules around it.

The PyPI ``hyperwallet-sdk`` is hard-wired to REST v3 (no business stakeholders, no cursor
paging), so :mod:`.client` talks to v4 over ``requests`` with the connector's one retry policy.
The modules next to it are pure: which shops go to Hyperwallet (:mod:`.sellers`), how a Mirakl
bank account becomes a Hyperwallet transfer method (:mod:`.bank_accounts`), which program a shop
belongs to (:mod:`.programs`); when a failed item is retried is
:mod:`mirakl_connector.operations.retry_queue`.
"""
