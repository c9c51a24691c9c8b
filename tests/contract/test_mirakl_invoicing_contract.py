"""Mirakl IV01 / SBC11 / SBC07: recorded real-shaped payloads through our client and parsers,
and the simulator's answers held to the same shape, so that the two cannot drift apart.

The payloads under ``recorded/mirakl/`` were written for this project from Mirakl's published
operator OpenAPI (the schemas each file names) and the Hyperwallet connector's documented example;
no other project's fixture was copied. Shape = the keys and JSON types of every object, nested:
the simulator may leave optional keys out, but every key it answers must exist in the published
shape with the same type (a key Mirakl does not send, such as a top-level ``payment_status`` on
an IV01 document, fails here).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from mirakl_sandbox import SandboxAdmin, SandboxServer
from mirakl_sandbox.generate import generate_invoices
from mirakl_sandbox.scenario import load_scenario

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.hyperwallet.payment_decisions import (
    HwInvoice,
    parse_iv01_invoice,
    parse_sbc11_cycle,
)
from mirakl_connector.hyperwallet.payment_notices import (
    PaymentNotice,
    sbc07_cycle,
)
from mirakl_connector.mirakl.client import MiraklClient, dumps

PAYLOADS = Path(__file__).parent / "recorded" / "mirakl"
MIRAKL_KEY = "contract-mirakl-key"
SCENARIOS = Path(__file__).resolve().parents[2] / "include/sandbox/mirakl_sandbox/scenarios"


def recorded(name: str) -> dict[str, Any]:
    body = json.loads((PAYLOADS / name).read_text())
    body.pop("_source")
    return body


class _Recorded(requests.Session):
    """A session answering every request with one recorded body (and noting the requests)."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__()
        self.body = body
        self.sent: list[tuple[str, str, Any]] = []

    def request(self, method, url, params=None, data=None, **kwargs):  # type: ignore[override]
        self.sent.append((method, url, params))
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps(self.body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = url
        return response


# -- recorded payloads through the client and the parsers --------------------------------------


def test_recorded_iv01_page_through_the_client_and_the_parser():
    session = _Recorded(recorded("iv01-invoices-page.json"))
    client = MiraklClient("https://x.mirakl.net", MIRAKL_KEY, session=session)

    documents = list(
        client.iter_invoices(
            start_date="2026-11-01T00:00:00Z",
            payment_status="PENDING",
            states=("COMPLETE",),
            doc_type="AUTO_INVOICE",
        )
    )

    ((method, url, params),) = session.sent
    assert (method, url) == ("GET", "https://x.mirakl.net/api/invoices")
    assert {k: params[k] for k in ("payment_status", "states", "type")} == {
        "payment_status": "PENDING",
        "states": "COMPLETE",
        "type": "AUTO_INVOICE",
    }
    unpaid, paid = documents
    assert unpaid["summary"]["amount_transferred"] == Decimal("4545.2")  # never a float
    invoice = parse_iv01_invoice(unpaid)
    assert isinstance(invoice, HwInvoice)
    assert (invoice.invoice_id, invoice.shop_id, invoice.currency) == ("230201", 2001, "EUR")
    assert (invoice.seller_amount, invoice.operator_amount) == (454520, 95569)
    assert invoice.billing_cycle_id == "98665be1-ce69-4ab6-8d93-b8dfd3e67404"
    assert invoice.paid_in_mirakl is None
    assert parse_iv01_invoice(paid) == "already PAID in Mirakl (payment.state PAID)"
    held = parse_iv01_invoice(paid, include_paid=True)
    assert isinstance(held, HwInvoice) and held.paid_in_mirakl == "payment.state PAID"


def test_recorded_sbc11_page_through_the_client_and_the_parser():
    session = _Recorded(recorded("sbc11-billing-cycles-page.json"))
    client = MiraklClient("https://x.mirakl.net", MIRAKL_KEY, session=session)

    cycles = list(client.iter_billing_cycles(start_date="2026-11-01T00:00:00Z"))

    # the recorded page names a next page: the client asks for it with the token alone
    first, second = session.sent[:2]
    assert first[2]["pay_out_state"] == ["TO_PAY"] and "id" not in first[2]
    assert second[2] == {"page_token": "eyJwIjoyfQ"}
    to_pay, paid = cycles[:2]
    cycle = parse_sbc11_cycle(to_pay)
    assert isinstance(cycle, HwInvoice)
    assert (cycle.invoice_id, cycle.shop_id, cycle.seller_amount, cycle.operator_amount) == (
        "98665be1-ce69-4ab6-8d93-b8dfd3e67404",
        2001,
        454520,
        95569,
    )
    assert parse_sbc11_cycle(paid) == "already PAID in Mirakl (pay_out.state PAID)"
    yen = parse_sbc11_cycle(paid, include_paid=True)
    assert isinstance(yen, HwInvoice) and yen.seller_amount == 12050  # JPY: no minor unit


def test_our_sbc07_entry_matches_the_recorded_request():
    (expected,) = recorded("sbc07-request.json")["seller_billing_cycles"]
    notice = PaymentNotice(
        token="wbh-1",
        created_at=None,  # type: ignore[arg-type] - not used by the mapping
        payment_token="pmt-1",
        client_payment_id=expected["id"],
        status="COMPLETED",
        amount=Decimal("4545.20"),
        currency="EUR",
        payment_created_on="2026-12-02T10:15:00",
        destination_token="trm-1",
        program_token="prg-1",
    )
    entry = sbc07_cycle(notice)
    assert json.loads(dumps({"seller_billing_cycles": [entry]})) == {
        "seller_billing_cycles": [expected]
    }


# -- the simulator's answers have the recorded shape -------------------------------------------


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    return {dict: "object", list: "array", str: "string"}[type(value)]


def shape_problems(answer: Any, reference: Any, path: str = "$") -> Iterator[str]:
    """Where ``answer`` has a key ``reference`` lacks, or another JSON type (``null`` is
    accepted for an optional value)."""
    if answer is None:
        return
    if json_type(answer) != json_type(reference):
        yield f"{path}: {json_type(answer)}, the published shape has {json_type(reference)}"
        return
    if isinstance(answer, dict):
        for key, value in answer.items():
            if key not in reference:
                yield f"{path}.{key}: not in the published shape"
            else:
                yield from shape_problems(value, reference[key], f"{path}.{key}")
    elif isinstance(answer, list) and reference:
        for index, item in enumerate(answer):
            yield from shape_problems(item, reference[0], f"{path}[{index}]")


def merged(items: list[dict[str, Any]]) -> dict[str, Any]:
    """One reference object holding every key any recorded item has."""
    out: dict[str, Any] = {}
    for item in items:
        for key, value in item.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out.setdefault(key, value)
    return out


@pytest.fixture
def server(sandbox: SandboxServer) -> SandboxServer:
    """The contract suite's simulator (``conftest.sandbox``), emptied by ``admin``."""
    return sandbox


@pytest.fixture
def admin(server) -> Iterator[SandboxAdmin]:
    admin = SandboxAdmin(server.url)
    admin.reset({"mirakl": {"api_key": MIRAKL_KEY}})
    yield admin
    admin.close()


def _get(server: SandboxServer, path: str, **params: Any) -> dict[str, Any]:
    reply = requests.get(
        server.url + path, params=params, headers={"Authorization": MIRAKL_KEY}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def _scenario_invoices() -> list[dict[str, Any]]:
    invoices = []
    for name in ("demo.json", "demo_hyperwallet.json"):
        invoices += (load_scenario(SCENARIOS / name).get("mirakl") or {}).get("invoices", [])
    return invoices


def test_the_simulators_iv01_answers_have_the_published_shape(server, admin):
    reference = recorded("iv01-invoices-page.json")
    seeded = [*_scenario_invoices(), *generate_invoices(3, 2, first_id=990001)]
    # the shape our test helpers write (a top-level payment_status, as the incumbent's mocks)
    seeded.append({**seeded[-1], "invoice_id": 990100, "payment_status": "PAID"})
    seeded[-1].pop("payment", None)
    # manual documents rolled into an invoice (the simulator's own model for IV07's check)
    seeded.append({**seeded[0], "invoice_id": 990101, "linked_manual_documents": [{"amount": 1}]})
    admin.load({"mirakl": {"invoices": seeded}})
    by_id = {d["invoice_id"]: d for d in seeded}
    # IV07 changes a document: its payment as the schema has it
    MiraklClient(server.url, MIRAKL_KEY, retry=RetryPolicy.no_wait(1)).confirm_invoice_payments(
        [
            {
                "invoice_id": 990001,
                "amount": Decimal(str(by_id[990001]["summary"]["amount_transferred"])),
                "transaction_date": "2026-12-02T10:15:00Z",
                "reference": "HW pmt-1",
            }
        ]
    )

    answer = _get(server, "/api/invoices", type="ALL", max=100)

    assert answer["total_count"] == len(seeded)
    envelope = {**reference, "invoices": [merged(reference["invoices"])]}
    assert list(shape_problems(answer, envelope)) == []
    states = {d["invoice_id"]: d["payment"]["state"] for d in answer["invoices"]}
    assert (states[990001], states[990100], states[990002]) == ("PAID", "PAID", "PENDING")
    assert {
        d["invoice_id"] for d in _get(server, "/api/invoices", payment_status="PAID")["invoices"]
    } == {990001, 990100}


def test_the_simulators_sbc11_answers_have_the_published_shape(server, admin):
    reference = recorded("sbc11-billing-cycles-page.json")
    cycles = [dict(c) for c in reference["data"]]
    for cycle in cycles:
        cycle.pop("summary", None)  # what the simulator is given may be less than Mirakl sends
    cycles.append({**cycles[0], "id": "5f3c2d1e-0a9b-4c8d-9e7f-6a5b4c3d2e1f"})
    admin.load({"mirakl": {"billing_cycles": cycles}})
    client = MiraklClient(server.url, MIRAKL_KEY, retry=RetryPolicy.no_wait(1))
    (sbc07,) = recorded("sbc07-request.json")["seller_billing_cycles"]
    client.confirm_billing_cycles([{**sbc07, "amount_transferred_to_seller": Decimal("4545.2")}])

    first = _get(server, "/api/seller-billing-cycles", limit=2)
    second = _get(server, "/api/seller-billing-cycles", page_token=first["next_page_token"])

    envelope = {**reference, "data": [merged(reference["data"])], "previous_page_token": "t"}
    for page in (first, second):
        assert list(shape_problems(page, envelope)) == []
    states = {c["id"]: c["pay_out"]["state"] for c in first["data"] + second["data"]}
    assert states[sbc07["id"]] == "PAID"
