"""What every money-moving workflow does with the payout provider rule and the payment claims.

* :func:`shop_providers` builds the run's
:class:`~mirakl_connector.operations.payout_provider.ShopProviders`
  from the configuration (shops read from Mirakl only when the rule needs their fields);
* :func:`claim_pending` claims, in bulk, the documents of the rows a step is about to pay, and
  turns every row whose document another provider already holds into a refusal with the reason
  (see :mod:`mirakl_connector.ledger.claims`). A dry run only reads the claims.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.claims import ClaimKind, claim_documents, find_claims
from mirakl_connector.operations.payout_provider import PayoutProviderRule, ShopProviders

R = TypeVar("R")


def shop_providers(config: Mapping[str, Any] | None, mirakl: Any) -> ShopProviders:
    """The rule of ``config`` reading the shops it needs through ``mirakl`` (lazily)."""
    rule = PayoutProviderRule.from_config(config)
    return ShopProviders(rule, lambda ids: mirakl.iter_shops(shop_ids=ids))


def default_providers(mirakl: Any) -> ShopProviders:
    """The rule without configuration (every shop is a Stripe shop; no shop is read)."""
    return ShopProviders(PayoutProviderRule(), lambda ids: mirakl.iter_shops(shop_ids=ids))


def claim_pending(
    ledger: Ledger,
    provider: str,
    kind: ClaimKind,
    rows: Sequence[R],
    *,
    is_pending: Callable[[R], bool],
    document_of: Callable[[R], str],
    shop_of: Callable[[R], int | None],
    refuse: Callable[[R, str], R],
    workflow: str,
    run_id: str | None,
    dry_run: bool,
) -> list[R]:
    """``rows`` with every pending row whose document another provider holds refused."""
    pending = [r for r in rows if is_pending(r)]
    if not pending:
        return list(rows)
    documents = {document_of(r): shop_of(r) for r in pending}
    if dry_run:
        claims = find_claims(ledger, kind, documents)
    else:
        claims = claim_documents(
            ledger, provider, kind, documents, workflow=workflow, run_id=run_id
        )
    out = []
    for row in rows:
        if is_pending(row):
            claim = claims.get(document_of(row))
            reason = claim.refusal(provider) if claim is not None else None
            if reason:
                row = refuse(row, reason)
        out.append(row)
    return out


def refuse_claimed_before_sending(
    ledger: Ledger,
    provider: str,
    kind: ClaimKind,
    rows: Sequence[R],
    *,
    document_of: Callable[[R], str],
    shop_of: Callable[[R], int | None],
    untouched: Callable[[R], bool],
    refuse: Callable[[R, str], R],
    save: Callable[[list[R]], Any],
    workflow: str,
    run_id: str | None,
    dry_run: bool,
) -> tuple[list[R], list[R]]:
    """Just before a write step sends PENDING rows: ``(rows to send, rows refused)``.

    The claim is normally this provider's already (taken when the row was planned); this catches
    a row planned before claims existed or a claim another provider (or an import) took since.
    Only rows never attempted (``untouched``) are refused: one in doubt may exist at the
    provider and is settled by its lookup, never hidden. Refused rows are saved (not in a dry
    run) with the claim as their reason.
    """
    refused_or_kept = claim_pending(
        ledger,
        provider,
        kind,
        rows,
        is_pending=untouched,
        document_of=document_of,
        shop_of=shop_of,
        refuse=refuse,
        workflow=workflow,
        run_id=run_id,
        dry_run=dry_run,
    )
    keep = [new for old, new in zip(rows, refused_or_kept, strict=True) if new is old]
    refused = [new for old, new in zip(rows, refused_or_kept, strict=True) if new is not old]
    if refused and not dry_run:
        save(refused)
    return keep, refused
