"""Reading Mirakl's SPA02 answer (validate service refunds) refund by refund (pure).

Mirakl's published schema (``SPA02_Response_200`` in the MMS operator OpenAPI) is::

    {"errors": [{"refund_id": "…", "refund_errors": [{"code", "field", "message"}]}],
     "success": {"refunds": [{"id": "…"}]}}

with only ``errors`` (and each error's ``refund_errors``, each error's ``code`` and
``message``) required: ``refund_id`` "can be used to identify the refund in error" but may be
absent, and ``success`` may be absent. A refund counts as validated only when Mirakl lists it in
``success.refunds`` ("Confirmed refunds, either REFUSED or OK"); an error names it, or — without
``refund_id`` — every refund of the call that Mirakl did not confirm; a refund the answer names
nowhere is an unknown outcome (validated again on the next run), never "validated".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

VALIDATED = "validated"
REFUSED = "refused"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Spa02Result:
    """What SPA02 said of one refund: ``validated``, ``refused`` (with Mirakl's code and
    message) or ``unknown``."""

    outcome: str
    code: str = ""
    message: str = ""


def spa02_results(sent_ids: Iterable[str], answer: Any) -> dict[str, Spa02Result]:
    """One :class:`Spa02Result` per refund id sent."""
    ids = [str(i) for i in sent_ids]
    body = answer if isinstance(answer, Mapping) else {}
    given = body.get("success")
    success = given if isinstance(given, Mapping) else {}
    confirmed = {
        str(entry.get("id"))
        for entry in success.get("refunds") or []
        if isinstance(entry, Mapping) and entry.get("id") not in (None, "")
    }
    named: dict[str, Spa02Result] = {}
    unnamed: list[Spa02Result] = []
    for error in body.get("errors") or []:
        if not isinstance(error, Mapping):
            continue
        details = [d for d in error.get("refund_errors") or [] if isinstance(d, Mapping)]
        first = details[0] if details else {}
        result = Spa02Result(
            REFUSED,
            str(first.get("code") or ""),
            "; ".join(str(d.get("message") or d.get("code") or "") for d in details)
            or "refused by Mirakl",
        )
        refund_id = error.get("refund_id")
        if refund_id in (None, ""):
            unnamed.append(result)
        else:
            named[str(refund_id)] = result
    results: dict[str, Spa02Result] = {}
    for refund_id in ids:
        if refund_id in named:
            results[refund_id] = named[refund_id]
        elif refund_id in confirmed:
            results[refund_id] = Spa02Result(VALIDATED)
        elif unnamed:
            results[refund_id] = Spa02Result(
                REFUSED,
                unnamed[0].code,
                "Mirakl reported errors without a refund id: "
                + "; ".join(r.message for r in unnamed),
            )
        else:
            results[refund_id] = Spa02Result(
                UNKNOWN, message="Mirakl's SPA02 answer neither confirms nor refuses it"
            )
    return results
