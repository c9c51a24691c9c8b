"""Example: the generic Stripe tasks (create customer, find customer, create product, create charge)
and the "new charge" / "new refund" sensors, chained in one manual DAG."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.stripe import (
    StripeCreateChargeOperator,
    StripeCreateCustomerOperator,
    StripeCreateProductOperator,
    StripeFindCustomerOperator,
)
from mirakl_connector.airflow.sensors.stripe import StripeNewChargeSensor, StripeNewRefundSensor

DAG_ID = "example_stripe_generic"
STRIPE_CONN_ID = "stripe_default"

DOC_MD = """
### Example: generic Stripe tasks

Shows the library's generic Stripe operators and sensors (the MuleSoft Stripe connector's triggers
and actions) on connection `stripe_default`. **Test mode only**: the first task refuses a live
key, because this DAG creates a customer, a product, a charge and a refund.

**Tasks**
1. `check_test_mode`: the key's mode (test, live, restricted) from its prefix, never the key.
2. `create_customer` → `find_customer` (by id, `cus_...`); `create_product` (name required).
3. `charge_fields` builds the charge from the params (an integer amount in Stripe's unit of the
   currency: 12.50 EUR is `1250`, see README "Currencies"); `create_charge` (the MuleSoft
   "Create charge" action) validates it before calling Stripe (source or customer required,
   shipping all-or-none), then creates and confirms a **PaymentIntent** with Stripe's test card
   `pm_card_visa` (``charges.create`` is deprecated in the pinned API version; only a `tok_`
   token source still uses it) and returns the intent's charge. It is sent with an idempotency
   key from the run and task, so a retry returns the first charge instead of charging twice.
4. `refund_part` refunds `refund_amount` of that charge.
5. `wait_for_new_charges` / `wait_for_new_refunds`: deferrable sensors (poll every 15 s in the
   triggerer) returning the charges / refunds created since the last one they saw; the cursor
   is kept in a Variable (`stripe_cursor__example_stripe_generic__<task>`), the first run starts
   at the run's start.
6. `report`: what the sensors returned (ids and totals in minor units per currency).

**Reads/writes**: Stripe only (no Mirakl, no ledger). **Params**: customer e-mail, name and phone
(the customer's own phone, not a shipping phone), product name, amount, currency, refund amount.
"""

default_args = {
    "owner": "payments-data-eng",
    "retries": 1,
    "retry_delay": timedelta(seconds=30),
    "on_failure_callback": ConnectorFailureNotifier(),
}

with DAG(
    dag_id=DAG_ID,
    description="Example: generic Stripe operators and new-charge / new-refund sensors",
    doc_md=DOC_MD,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    params={
        "customer_email": Param("ada@example.com", type="string", format="idn-email"),
        "customer_name": Param("Ada Lovelace", type="string"),
        "customer_phone": Param("+33 1 23 45 67 89", type="string"),
        "product_name": Param("Analytical Engine mug", type="string", minLength=1),
        "amount": Param(1250, type="integer", minimum=1, description="Minor units: 1250 = 12.50"),
        "currency": Param("eur", type="string", minLength=3, maxLength=3),
        "refund_amount": Param(250, type="integer", minimum=1, description="Minor units"),
    },
    tags=["stripe", "example"],
) as dag:

    @task
    def check_test_mode() -> str:
        """Refuse to create real charges: this example is for test keys and the sandbox."""
        from airflow.sdk.exceptions import AirflowFailException

        from mirakl_connector.airflow.hooks.stripe import StripeHook

        mode = StripeHook(STRIPE_CONN_ID).mode
        if "test" not in mode:
            raise AirflowFailException(f"{STRIPE_CONN_ID} holds a {mode} key; use a test key")
        return mode

    customer = StripeCreateCustomerOperator(
        task_id="create_customer",
        fields={
            "email": "{{ params.customer_email }}",
            "name": "{{ params.customer_name }}",
            "phone": "{{ params.customer_phone }}",
        },
    )
    found = StripeFindCustomerOperator(
        task_id="find_customer",
        fields={"customer_id": "{{ ti.xcom_pull(task_ids='create_customer')['id'] }}"},
    )
    product = StripeCreateProductOperator(
        task_id="create_product", fields={"name": "{{ params.product_name }}"}
    )

    @task
    def charge_fields(
        customer: dict[str, Any], product: dict[str, Any], params: Any = None
    ) -> dict[str, Any]:
        """The charge, typed: a template would render the amount as text, which is refused."""
        return {
            "amount": params["amount"],
            "currency": params["currency"],
            "customer": customer["id"],
            "source": "pm_card_visa",  # Stripe's test card PaymentMethod
            "description": f"1 x {product['name']}",
            "metadata": {"product_id": product["id"]},
        }

    charge = StripeCreateChargeOperator(
        task_id="create_charge", fields=charge_fields(found.output, product.output)
    )

    @task
    def refund_part(charge: dict[str, Any], params: Any = None, run_id: Any = None) -> str:
        from mirakl_connector.airflow.hooks.stripe import StripeHook
        from mirakl_connector.stripe.currency import Operation, from_api
        from mirakl_connector.stripe.gateway import idempotency_key

        refund = (
            StripeHook(STRIPE_CONN_ID)
            .get_gateway()
            .create_refund(
                payment_id=charge["id"],
                # the params are in Stripe's unit; the gateway takes ISO minor units
                amount=from_api(params["refund_amount"], charge["currency"], Operation.REFUND),
                currency=charge["currency"],
                idempotency_key=idempotency_key("example", DAG_ID, run_id, "refund"),
                metadata={},
            )
        )
        return refund.id

    # First run: objects created since the run started; later runs: since the last one seen.
    since = "{{ dag_run.start_date.timestamp() | int }}"
    new_charges = StripeNewChargeSensor(
        task_id="wait_for_new_charges", since=since, timeout=timedelta(hours=1).total_seconds()
    )
    new_refunds = StripeNewRefundSensor(
        task_id="wait_for_new_refunds", since=since, timeout=timedelta(hours=1).total_seconds()
    )

    @task
    def report(charges: list[dict[str, Any]], refunds: list[dict[str, Any]]) -> dict[str, Any]:
        def totals(objects: list[dict[str, Any]]) -> dict[str, int]:
            out: dict[str, int] = {}
            for obj in objects:
                out[obj["currency"]] = out.get(obj["currency"], 0) + int(obj["amount"])
            return out

        return {
            "new_charges": [c["id"] for c in charges],
            "charged_minor_units": totals(charges),
            "new_refunds": [r["id"] for r in refunds],
            "refunded_minor_units": totals(refunds),
        }

    mode = check_test_mode()
    mode >> [customer, product]
    customer >> found
    refund = refund_part(charge.output)
    refund >> [new_charges, new_refunds]
    report(new_charges.output, new_refunds.output)
