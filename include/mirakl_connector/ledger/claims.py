"""Payment claims: a Mirakl order, refund or invoice is paid by one provider only, once.

Before a workflow moves money for a Mirakl document (a Stripe transfer for an order, a Stripe
refund, a Stripe invoice transfer or payout, a Hyperwallet invoice payment), it *claims* the
document for its provider. The table ``payment_claims`` holds one row per ``(kind, document
id)`` (a unique constraint): the first claim wins, for good. A workflow of the other provider
that later wants the same document finds the claim and refuses, with the claim in its reason.
So even a wrong rule (:mod:`mirakl_connector.operations.payout_provider`), two connectors run side
by side,
or a shop moved on the wrong date cannot pay one invoice through both providers.

The API (all of it; other modules never touch the table):

* :func:`claim_documents` — claim documents for a provider; returns the claim that holds each
  (this provider's, new or earlier, or the other provider's: compare ``claim.provider``);
* :func:`find_claims` — read the claims of some documents without claiming (dry runs);
* :func:`record_imported_claims` — for an import of another connector's history: claims with
  ``origin="import"`` (and the old connector's id in ``note``), which our workflows then respect
  exactly like their own.

Kinds: ``ORDER`` (the Mirakl logistic or service order id, as the split's ``mirakl_id`` without
the ``_TAX`` suffix), ``REFUND`` (the Mirakl refund id), ``INVOICE`` (the IV01 invoice id or the
SBC11 billing cycle id). Providers: ``stripe``, ``hyperwallet``.

A claim is taken when a row is about to be paid (decided PENDING), never for a row on hold, so a
document waiting for KYC or a bank account is not bound to a provider yet; once taken it is never
released (a payment may exist at the provider even when our row says otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, select

from mirakl_connector.ledger import schema
from mirakl_connector.ledger.entities import from_row
from mirakl_connector.ledger.schema import truncate_reason
from mirakl_connector.ledger.sql import dialect_insert
from mirakl_connector.ledger.store import Ledger

_CHUNK = 500


class ClaimKind(StrEnum):
    ORDER = "ORDER"
    REFUND = "REFUND"
    INVOICE = "INVOICE"


ORIGIN_WORKFLOW = "workflow"
ORIGIN_IMPORT = "import"


@dataclass(frozen=True)
class Claim:
    """Who holds a document: its provider, the workflow (or import) and run that claimed it."""

    kind: ClaimKind
    document_id: str
    provider: str
    shop_id: int | None
    workflow: str
    origin: str = ORIGIN_WORKFLOW
    run_id: str | None = None
    note: str | None = None
    created_at: datetime | None = None

    def refusal(self, provider: str) -> str | None:
        """Why ``provider`` must not pay this document, or ``None`` when the claim is its own."""
        if self.provider == provider:
            return None
        by = (
            "imported from the previous connector"
            if self.origin == ORIGIN_IMPORT
            else (f"by {self.workflow}")
        )
        kind = self.kind.value.lower()
        return (
            f"{kind.capitalize()} {self.document_id} is already claimed for payment by "
            f"{self.provider} ({by}{', run ' + self.run_id if self.run_id else ''}): "
            f"not paid by {provider}"
        )


def claim_documents(
    ledger: Ledger,
    provider: str,
    kind: ClaimKind,
    documents: Mapping[str, int | None],
    *,
    workflow: str,
    run_id: str | None = None,
) -> dict[str, Claim]:
    """Claim ``documents`` (document id → shop id) for ``provider``; return each one's claim.

    One INSERT ... ON CONFLICT DO NOTHING and one SELECT per 500 documents: concurrent runs of
    both providers cannot both win a document.
    """
    return _insert(ledger, provider, kind, documents, workflow, run_id, ORIGIN_WORKFLOW, {})


def record_imported_claims(
    ledger: Ledger,
    provider: str,
    kind: ClaimKind,
    documents: Mapping[str, int | None],
    *,
    source: str,
    notes: Mapping[str, str] | None = None,
) -> dict[str, Claim]:
    """Claims for what another connector already paid (``origin="import"``, ``workflow=source``).

    Safe to run twice: an existing claim is kept as it is and returned.
    """
    return _insert(ledger, provider, kind, documents, source, None, ORIGIN_IMPORT, notes or {})


def find_claims(ledger: Ledger, kind: ClaimKind, document_ids: Iterable[str]) -> dict[str, Claim]:
    """The claims of ``document_ids`` that exist (nothing is written)."""
    ids = [str(i) for i in dict.fromkeys(document_ids) if i]
    table = schema.payment_claims
    found: dict[str, Claim] = {}
    with ledger._engine.connect() as conn:  # noqa: SLF001 - the ledger package's own module
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            stmt = select(table).where(
                and_(table.c.kind == kind.value, table.c.document_id.in_(chunk))
            )
            for row in conn.execute(stmt).mappings():
                found[row["document_id"]] = _claim(row)
    return found


def _insert(
    ledger: Ledger,
    provider: str,
    kind: ClaimKind,
    documents: Mapping[str, int | None],
    workflow: str,
    run_id: str | None,
    origin: str,
    notes: Mapping[str, str],
) -> dict[str, Claim]:
    if not documents:
        return {}
    table = schema.payment_claims
    now = datetime.now(UTC)
    ids = [str(i) for i in documents if i]
    found: dict[str, Claim] = {}
    with ledger._writer.begin() as conn:  # noqa: SLF001 - the ledger package's own module
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            values = [
                {
                    "kind": kind.value,
                    "document_id": document_id,
                    "provider": provider,
                    "shop_id": documents[document_id],
                    "workflow": workflow,
                    "origin": origin,
                    "run_id": run_id,
                    "note": truncate_reason(notes.get(document_id)),
                    "created_at": now,
                }
                for document_id in chunk
            ]
            stmt = dialect_insert(conn, table).values(values)
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["kind", "document_id"]))
            rows = conn.execute(
                select(table).where(
                    and_(table.c.kind == kind.value, table.c.document_id.in_(chunk))
                )
            ).mappings()
            for row in rows:
                found[row["document_id"]] = _claim(row)
    return found


def _claim(row: Mapping[Any, Any]) -> Claim:
    return from_row(Claim, row, kind=ClaimKind(row["kind"]))
