"""The :class:`Ledger`: every money movement we owe or made, with its status and why.

The one object workflows receive. It is small on purpose: a facade composed of one repository
per kind of record (:mod:`.repositories`), each written against the generic store
(:class:`~mirakl_connector.ledger.base.LedgerStore`: engine, transactions, the audited save with
its failure notifications, chunked and batched reads), which also states the rules that protect
against paying a seller twice.

Why mixins rather than ``ledger.transfers.save(...)`` attributes: every workflow calls the
ledger's methods by name (``ledger.save_transfers``, ``ledger.iter_inbox``...), and those
workflow modules are being reworked separately. Composing the repositories as base classes
keeps every caller's method name and signature unchanged (and ``mock.patch.object(Ledger, ...)``
working), so the split of this module changes no line outside the ledger package.
"""

from __future__ import annotations

from mirakl_connector.ledger.base import SQLITE_FILE_NAME, LedgerStore
from mirakl_connector.ledger.entities import LedgerConflictError
from mirakl_connector.ledger.repositories.hyperwallet_payments import (
    HyperwalletPaymentRepository,
)
from mirakl_connector.ledger.repositories.imports import ImportRepository
from mirakl_connector.ledger.repositories.inbox import InboxRepository
from mirakl_connector.ledger.repositories.mappings import (
    AccountMappingRepository,
    PaymentMappingRepository,
)
from mirakl_connector.ledger.repositories.outbox import OutboxRepository
from mirakl_connector.ledger.repositories.queues import (
    CheckpointRepository,
    PendingItemRepository,
)
from mirakl_connector.ledger.repositories.reports import ReportRepository

__all__ = ["SQLITE_FILE_NAME", "Ledger", "LedgerConflictError", "LedgerStore"]


class Ledger(
    ReportRepository,  # transfers, refunds, payouts, and the reads across them
    HyperwalletPaymentRepository,
    AccountMappingRepository,
    PaymentMappingRepository,
    PendingItemRepository,
    CheckpointRepository,
    InboxRepository,
    OutboxRepository,
    ImportRepository,
):
    """The connector's record of money movements, on SQLite (default) or PostgreSQL.

    Opening a ``Ledger`` creates or upgrades the schema (see :mod:`.migrations`), so every task
    can simply open one; call :meth:`dispose` (or use it as a context manager) when done.
    """

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()
