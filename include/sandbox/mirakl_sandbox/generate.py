"""Generate large, consistent marketplaces for benchmarks and load tests.

Every generated product order is already debited (state ``SHIPPING``, ``customer_debited_date``
set) and paid by its own succeeded, captured charge big enough for the seller share, and every
shop has a fully enabled Stripe account whose ``metadata.miraklShopId`` names it. Account
mappings are *not* generated: they belong to the connector's ledger.

Orders come out sorted by ``created_date``, which lets the state adopt them without re-sorting
work that matters; 100,000 orders take about a second.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any

from mirakl_connector.core.money import currency_exponent, normalize_currency, to_minor
from mirakl_sandbox.dates import to_timestamp
from mirakl_sandbox.scenario import DEFAULT_MIRAKL_API_KEY, DEFAULT_STRIPE_API_KEY

DEFAULT_END = "2026-11-22T00:00:00Z"


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _tax_and_commission(price: int) -> tuple[int, int]:
    """A generated order's tax (20 %) and commission (10 %) of its price, in minor units."""
    return price * 20 // 100, price * 10 // 100


def generate_scenario(
    orders: int = 10_000,
    shops: int = 20,
    currency: str = "EUR",
    seed: int = 1,
    service_orders: int = 0,
    end: str = DEFAULT_END,
    days: int = 30,
) -> dict[str, Any]:
    """Build a scenario dict with ``orders`` debited product orders spread over ``days``.

    :param orders: number of product orders (one line each, taxes and commission included).
    :param shops: number of shops; each gets a Stripe account ``acct_gen_<n>``.
    :param currency: ISO code; amounts honour its exponent (JPY 0, EUR 2, KWD 3).
    :param seed: makes amounts and shop assignment reproducible.
    :param service_orders: number of accepted service orders with an ``OK`` SPA11 debit.
    :param end: creation date of the last order; the first is ``days`` earlier.
    """
    if orders < 0 or shops < 1 or service_orders < 0:
        raise ValueError("orders and service_orders must be >= 0 and shops >= 1")
    code = normalize_currency(currency)
    exponent = currency_exponent(code)
    scale = 10**exponent
    lower = code.lower()
    rng = random.Random(seed)
    end_ts = to_timestamp(end)
    start_ts = end_ts - days * 86400

    def major(minor: int) -> float | int:
        return minor if exponent == 0 else minor / scale

    shop_list, accounts = [], []
    for n in range(1, shops + 1):
        shop_list.append(
            {
                "shop_id": n,
                "shop_name": f"Generated shop {n}",
                "shop_state": "OPEN",
                "currency_iso_code": code,
                "date_created": _iso(start_ts - 86400),
                "last_updated_date": _iso(start_ts - 86400),
                "is_professional": True,
                "shop_additional_fields": [],
                "contact_informations": {"email": f"shop{n}@example.test", "country": "FRA"},
            }
        )
        accounts.append(
            {
                "id": f"acct_gen_{n:04d}",
                "charges_enabled": True,
                "payouts_enabled": True,
                "details_submitted": True,
                "metadata": {"miraklShopId": str(n)},
            }
        )

    order_list, charges = [], []
    step = (end_ts - start_ts) / max(orders, 1)
    for i in range(orders):
        created = _iso(start_ts + (i + 1) * step)
        price = (
            rng.randint(1_000, 50_000) if exponent == 0 else rng.randint(10 * scale, 500 * scale)
        )
        tax, commission = _tax_and_commission(price)
        shop_id = rng.randint(1, shops)
        order_id = f"GEN-{i + 1:07d}-A"
        charge_id = f"ch_gen_{i + 1:07d}"
        order_list.append(
            {
                "order_id": order_id,
                "commercial_id": f"GEN-{i + 1:07d}",
                "created_date": created,
                "last_updated_date": created,
                "customer_debited_date": created,
                "currency_iso_code": code,
                "order_state": "SHIPPING",
                "order_tax_mode": "TAX_EXCLUDED",
                "payment_workflow": "PAY_ON_ACCEPTANCE",
                "shop_id": shop_id,
                "shop_name": f"Generated shop {shop_id}",
                "total_price": major(price),
                "total_commission": major(commission),
                "transaction_number": charge_id,
                "customer": {"customer_id": f"cust_{rng.randint(1, 5000):05d}"},
                "order_lines": [
                    {
                        "order_line_id": f"{order_id}-1",
                        "order_line_state": "SHIPPING",
                        "total_price": major(price),
                        "taxes": [{"amount": major(tax), "code": "VAT"}],
                        "shipping_taxes": [],
                    }
                ],
            }
        )
        charges.append(
            {
                "id": charge_id,
                "amount": price + tax,
                "currency": lower,
                "created": int(start_ts + (i + 1) * step),  # paid when the order was placed
                "status": "succeeded",
                "captured": True,
                "metadata": {"mirakl_commercial_order_id": f"GEN-{i + 1:07d}"},
            }
        )

    services, debits = [], []
    s_step = (end_ts - start_ts) / max(service_orders, 1)
    for i in range(service_orders):
        created = _iso(start_ts + (i + 1) * s_step)
        price = rng.randint(10, 300) * scale
        tax, commission = _tax_and_commission(price)
        shop_id = rng.randint(1, shops)
        order_id = f"SRV-GEN-{i + 1:06d}-A"
        charge_id = f"ch_srv_{i + 1:06d}"
        services.append(
            {
                "id": order_id,
                "commercial_order_id": f"SRV-GEN-{i + 1:06d}",
                "date_created": created,
                "last_updated": created,
                "currency_code": code,
                "state": "ORDER_ACCEPTED",
                "order_tax_mode": "TAX_EXCLUDED",
                "workflow": {"type": "PAY_ON_ACCEPTANCE"},
                "shop": {"id": shop_id},
                "customer": {"id": f"cust_{rng.randint(1, 5000):05d}"},
                "commission": {"amount_including_taxes": major(commission)},
                "price": {
                    "amount": major(price),
                    "options": [],
                    "taxes": [{"amount": major(tax), "code": "VAT"}],
                },
            }
        )
        debits.append(
            {
                "id": f"debit-{i + 1:06d}",
                "order_id": order_id,
                "customer_id": services[-1]["customer"]["id"],
                "amount": major(price + tax),
                "currency_code": code,
                "state": "OK",
                "date_created": created,
                "date_updated": created,
                "transaction_number": charge_id,
            }
        )
        charges.append({"id": charge_id, "amount": price + tax, "currency": lower})

    return {
        "mirakl": {
            "api_key": DEFAULT_MIRAKL_API_KEY,
            "shops": shop_list,
            "orders": order_list,
            "service_orders": services,
            "service_debits": debits,
            "invoices": [],
        },
        "stripe": {
            "api_key": DEFAULT_STRIPE_API_KEY,
            "accounts": accounts,
            "charges": charges,
            "payment_intents": [],
            "platform_balance": {lower: 1_000_000 * scale},
            # the sellers' available funds: their fee transfers and payouts take from them
            "balances": {a["id"]: {lower: 1_000_000 * scale} for a in accounts},
        },
    }


def add_line_refunds(
    orders: list[dict[str, Any]], count: int, seed: int = 1
) -> list[dict[str, Any]]:
    """Give the first ``count`` of ``orders`` one pending line refund each; return those orders.

    For the refund workflow's benchmarks and fault tests: ``orders`` are orders the split has
    already paid (as ``SandboxAdmin.orders()`` returns them), so each refund has a charge and an
    order transfer behind it, like a customer refund asked after delivery. The refund is 10–30 %
    of the line's price with a tenth of it as refunded commission, and waits for payment (PA12
    lists it). Put the result back with ``SandboxAdmin.put_orders``. Refund ids are
    ``RF-<order id>``.
    """
    rng = random.Random(seed)
    changed = []
    for order in orders[:count]:
        code = normalize_currency(order["currency_iso_code"])
        exponent = currency_exponent(code)
        line = order["order_lines"][0]
        price = to_minor(Decimal(str(line["total_price"])), code)
        amount = price * rng.randint(10, 30) // 100
        commission = amount // 10
        line["refunds"] = [
            *(line.get("refunds") or []),
            {
                "id": f"RF-{order['order_id']}",
                "amount": _major(amount, exponent),
                "commission_total_amount": _major(commission, exponent),
                "shipping_taxes": [],
                "taxes": [],
            },
        ]
        changed.append(order)
    return changed


def generate_invoices(
    count: int,
    shops: int,
    currency: str = "EUR",
    seed: int = 1,
    end: str = DEFAULT_END,
    first_id: int = 1,
) -> list[dict[str, Any]]:
    """IV01 accounting documents for shops ``1..shops`` (those of :func:`generate_scenario`).

    Each one moves money both ways, so one invoice is four Stripe writes: a subscription and
    extra invoices (seller → platform, negative as Mirakl reports them), extra credits (platform
    → seller) and a payout of ``amount_transferred``. Paid through Hyperwallet instead (see
    :func:`hyperwallet_sellers`), it is two payments: ``amount_transferred`` to the seller and
    ``amount_transferred_to_operator`` to the operator. Load them with
    ``SandboxAdmin.load({"mirakl": {"invoices": ...}})``.
    """
    code = normalize_currency(currency)
    exponent = currency_exponent(code)
    scale = 10**exponent
    rng = random.Random(seed)
    end_ts = to_timestamp(end)

    def amount(low: int, high: int) -> float | int:
        return _major(rng.randint(low * scale, high * scale), exponent)

    invoices = []
    for i in range(count):
        invoice_id = first_id + i
        invoices.append(
            {
                "id": 100_000 + invoice_id,
                "invoice_id": invoice_id,
                "shop_id": 1 + i % shops,
                "currency_iso_code": code,
                "date_created": _iso(end_ts - (count - i) * 60),
                "type": "AUTO_INVOICE",
                "state": "COMPLETE",
                "payment": {"state": "PENDING"},
                "summary": {
                    "amount_transferred": amount(10, 900),
                    "amount_transferred_to_operator": amount(1, 90),
                    "total_subscription_incl_tax": -amount(5, 30),
                    "total_other_invoices_incl_tax": -amount(1, 50),
                    "total_other_credits_incl_tax": amount(1, 50),
                },
            }
        )
    return invoices


def hyperwallet_sellers(
    shops: int, program: str = "EUROPE"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Shops ``1..shops`` paid through Hyperwallet: ``(scenario, connector configuration)``.

    The scenario has the Mirakl shops (with their ``hw-user-token``, ``hw-program`` and
    ``hw-bankaccount-token`` fields) and, on the Hyperwallet side, the programs, a user and a
    bank account per shop and the operator's. The configuration names the program, with retries
    due at once (``item_retry_delay_minutes: 0``) so that reruns retry without waiting.
    """
    users = [{"token": "usr-operator", "clientUserId": "operator", "programToken": "prg-users"}]
    accounts = [{"token": "trm-operator", "userToken": "usr-operator", "bankAccountId": "OP01"}]
    shop_list = []
    for n in range(1, shops + 1):
        users.append(
            {"token": f"usr-shop-{n}", "clientUserId": str(n), "programToken": "prg-users",
             "profileType": "INDIVIDUAL"}
        )  # fmt: skip
        accounts.append(
            {"token": f"trm-shop-{n}", "userToken": f"usr-shop-{n}", "bankAccountId": f"B{n:04d}"}
        )
        fields = {"hw-user-token": f"usr-shop-{n}", "hw-program": program,
                  "hw-bankaccount-token": f"trm-shop-{n}"}  # fmt: skip
        shop_list.append(
            {
                "shop_id": n,
                "shop_name": f"Hyperwallet shop {n}",
                "shop_state": "OPEN",
                "currency_iso_code": "EUR",
                "last_updated_date": DEFAULT_END,
                "shop_additional_fields": [{"code": k, "value": v} for k, v in fields.items()],
            }
        )
    scenario = {
        "mirakl": {"api_key": DEFAULT_MIRAKL_API_KEY, "shops": shop_list},
        "hyperwallet": {
            "programs": [{"token": "prg-users"}, {"token": "prg-pay"}],
            "users": users,
            "bank_accounts": accounts,
        },
    }
    config = {
        "hyperwallet": {
            "programs": [
                {"name": program, "user_token": "prg-users", "payment_token": "prg-pay",
                 "bank_account_token": "trm-operator"}
            ],
            "item_retry_delay_minutes": 0,
        }
    }  # fmt: skip
    return scenario, config


def _major(minor: int, exponent: int) -> float | int:
    return minor if exponent == 0 else minor / 10**exponent
