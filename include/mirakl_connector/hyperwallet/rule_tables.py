"""The Hyperwallet decision ladders' rule tables (as :mod:`mirakl_connector.stripe.rule_tables`)."""

from __future__ import annotations

from mirakl_connector.core.rule_tables import RuleTable

#: Every Hyperwallet table, in the README's order.
TABLES: tuple[RuleTable, ...] = ()
