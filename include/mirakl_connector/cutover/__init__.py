"""Cutover from the incumbent connectors: fill the ledger with what they already moved.

* :mod:`.stripe_connector`: the Stripe Connector for Mirakl (PHP/Symfony, Doctrine database):
  account and payment mappings, transfers, refunds, payouts and checkpoints, read from its
  database and imported into the ledger with their old ids.
* :mod:`.hyperwallet_connector`: PayPal's Mirakl-Hyperwallet connector: its last job dates become
  our extraction windows, the payments it made (found at Hyperwallet by ``clientPaymentId``) are
  imported, the shops' tokens are checked, and invoices paid at Hyperwallet but still unpaid in
  Mirakl are listed.

Both are dry runs unless told otherwise, and idempotent: a second run over the same data changes
nothing. Nothing here imports Airflow; the DAGs ``connector_cutover_*`` wire them.
"""

from __future__ import annotations

#: ``imported_from`` of rows imported from the Stripe Connector for Mirakl.
STRIPE_CONNECTOR = "stripe-mirakl-connector"
#: ``imported_from`` of rows imported from the Mirakl-Hyperwallet connector.
HYPERWALLET_CONNECTOR = "hyperwallet-mirakl-connector"


def text_or_none(value: object) -> str | None:
    """``value`` as stripped text, or ``None`` when it is missing or blank."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None
