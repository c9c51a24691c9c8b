"""The payment split steps as one operator: ``plan`` then ``execute``.

``plan`` reads new (or selected) Mirakl orders, decides each transfer with the rules of the
workflow and records the decision in the ledger; ``execute`` creates the Stripe transfers of the
rows left PENDING. Splitting them gives the run two restart points: a failed ``execute`` retried
by Airflow does not re-read Mirakl, and its transfers carry idempotency keys from the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseOperator

from mirakl_connector.airflow.config import load_connector_config
from mirakl_connector.airflow.hooks.ledger import LedgerHook
from mirakl_connector.airflow.hooks.mirakl import MiraklHook
from mirakl_connector.airflow.hooks.stripe import StripeHook
from mirakl_connector.airflow.operators._summary import (
    counts_of,
    failed_items,
    format_failures,
    format_table,
)
from mirakl_connector.airflow.params import RunParams

if TYPE_CHECKING:
    from airflow.sdk import Context

Step = Literal["plan", "execute"]
STEPS: tuple[str, ...] = ("plan", "execute")


class PaymentSplitOperator(BaseOperator):
    """Run one step of the payment split and return its summary (one XCom value).

    :param step: ``"plan"`` (decide and record) or ``"execute"`` (create the transfers).
    :param mirakl_conn_id: Mirakl connection. (templated)
    :param stripe_conn_id: Stripe connection. (templated)
    :param ledger_conn_id: ledger database connection. (templated)
    """

    template_fields: Sequence[str] = ("mirakl_conn_id", "stripe_conn_id", "ledger_conn_id")
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        step: Step,
        mirakl_conn_id: str = MiraklHook.default_conn_name,
        stripe_conn_id: str = StripeHook.default_conn_name,
        ledger_conn_id: str = LedgerHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if step not in STEPS:
            raise ValueError(f"{self.task_id}: step must be one of {STEPS}, got {step!r}")
        self.step = step
        self.mirakl_conn_id = mirakl_conn_id
        self.stripe_conn_id = stripe_conn_id
        self.ledger_conn_id = ledger_conn_id

    def build_workflow(self, run_id: str | None) -> Any:
        """Wire the workflow to clients built from the connections (overridable in tests)."""
        from mirakl_connector.workflows.payment_split import PaymentSplit, PaymentSplitSettings

        config = load_connector_config()
        return PaymentSplit(
            mirakl=MiraklHook(self.mirakl_conn_id).get_client(),
            stripe=StripeHook(self.stripe_conn_id).get_gateway(),
            ledger=LedgerHook(self.ledger_conn_id).get_ledger(),
            settings=PaymentSplitSettings.from_mapping(config.get("payment_split")),
            run_id=run_id,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        params = RunParams.from_context(context)
        self.log.info(
            "Payment split %s: since=%s, order_ids=%s, dry_run=%s",
            self.step,
            params.since.isoformat() if params.since else "checkpoint",
            params.order_ids or "all",
            params.dry_run,
        )
        workflow = self.build_workflow(context.get("run_id"))
        if self.step == "plan":
            summary = workflow.plan(
                since=params.since, order_ids=params.order_ids or None, dry_run=params.dry_run
            )
        else:
            summary = workflow.execute(dry_run=params.dry_run, order_ids=params.order_ids or None)
        result = summary.to_dict()
        self._log_summary(result)
        return result

    def _log_summary(self, result: dict[str, Any]) -> None:
        counts = counts_of(result)
        if counts:
            table = format_table(sorted(counts.items()), headers=("outcome", "count"))
            self.log.info("Payment split %s summary:\n%s", self.step, table)
        failures = failed_items(result)
        if failures:
            # Not raised here: the batch completed; the report task turns the run red.
            total = result.get("failed_total", len(failures))
            self.log.warning(
                "%d item(s) failed in %s:\n%s",
                total,
                self.step,
                format_failures(failures, total=total),
            )
