"""The Mirakl side: the operator API client and the order read models with their amount rules."""

from __future__ import annotations

from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.mirakl.orders import (
    MiraklOrder,
    RefundPart,
    parse_mirakl_datetime,
    parse_product_order,
    parse_service_order,
)

__all__ = [
    "MiraklClient",
    "MiraklOrder",
    "RefundPart",
    "parse_mirakl_datetime",
    "parse_product_order",
    "parse_service_order",
]
