"""One operator for every workflow step: build the clients, run the step, return its summary.

The workflow itself (what to read, how to decide, what to write) lives in its provider's
package and is described by its :class:`~mirakl_connector.core.workflow_spec.WorkflowSpec`;
this operator only wires Airflow to it: connections become
clients (built on first use), the connector configuration Variable becomes settings, the trigger
form's params become the step's arguments, and the step's :class:`BatchSummary` becomes one XCom
value. Failed *items* do not fail the task (the batch completed); the report task does that.

Every step runs in the pool its spec declares (``stripe_api`` / ``mirakl_api``, see
:mod:`mirakl_connector.airflow.pools`) unless the task or the DAG's ``default_args`` name one.
``step_kwargs`` are fixed arguments of the step, on top of the run's params: the payment split
maps ``create_transfers`` over ``[{"shard": 0, "shards": 4}, ...]`` with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mirakl_connector.airflow.config import load_connector_config
from mirakl_connector.airflow.console_links import ConsoleRunLink
from mirakl_connector.airflow.hooks.ledger import LedgerHook
from mirakl_connector.airflow.hooks.mirakl import MiraklHook
from mirakl_connector.airflow.hooks.stripe import StripeHook
from mirakl_connector.airflow.operators._summary import (
    counts_of,
    failed_items,
    format_failures,
    format_table,
)
from mirakl_connector.airflow.params import parse_run_params
from mirakl_connector.airflow.pools import set_default_pool
from mirakl_connector.airflow.workflows import spec_named
from mirakl_connector.core.workflow_spec import WorkflowSpec

if TYPE_CHECKING:
    from airflow.sdk import Context


class MiraklWorkflowOperator(BaseOperator):
    """Run one step of a connector workflow and return its summary (one XCom value).

    :param workflow: the workflow's spec, e.g. ``stripe.specs.PAYMENT_SPLIT``; or its name (see
        :mod:`mirakl_connector.airflow.workflows`), as a mapped task's serialised arguments
        carry it.
    :param step: a step the spec declares, e.g. ``"plan"`` or ``"execute"``; an undeclared
        one fails the DAG's parse.
    :param mirakl_conn_id: Mirakl connection. (templated)
    :param stripe_conn_id: Stripe connection. (templated)
    :param ledger_conn_id: ledger database connection. (templated)
    :param smtp_conn_id: SMTP connection for workflows that e-mail (KYC, alerts). (templated)
    :param operator_webhook_conn_id: HTTP connection of the operator's notification endpoint
        (only the notification workflow uses it; missing = no endpoint). (templated)
    :param hyperwallet_conn_id: Hyperwallet connection (Hyperwallet workflows only). (templated)
    :param step_kwargs: extra arguments of the step, merged over the run's params (they win);
        the argument to ``expand`` over to split one step into mapped chunks.
    :param pool: default: the pool the step's spec declares. With ``.partial()`` pass it
        explicitly: a mapped task takes its pool from the partial arguments, not from here.
    """

    template_fields: Sequence[str] = (
        "mirakl_conn_id",
        "stripe_conn_id",
        "ledger_conn_id",
        "smtp_conn_id",
        "operator_webhook_conn_id",
        "hyperwallet_conn_id",
    )
    ui_color = "#e8f0fe"
    #: every step writes the ledger rows it decided: the console filtered on this run lists them
    operator_extra_links = (ConsoleRunLink(),)

    def __init__(
        self,
        *,
        workflow: WorkflowSpec[Any] | str,
        step: str,
        mirakl_conn_id: str = MiraklHook.default_conn_name,
        stripe_conn_id: str = StripeHook.default_conn_name,
        ledger_conn_id: str = LedgerHook.default_conn_name,
        smtp_conn_id: str = "smtp_default",
        operator_webhook_conn_id: str = "mirakl_operator_webhook",
        hyperwallet_conn_id: str = "hyperwallet_default",
        step_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        spec = spec_named(workflow) if isinstance(workflow, str) else workflow
        declared = spec.step(step)
        set_default_pool(kwargs, declared.pool)
        super().__init__(**kwargs)
        self.spec = spec
        self.step_kwargs = dict(step_kwargs or {})
        self.operator_webhook_conn_id = operator_webhook_conn_id
        self.hyperwallet_conn_id = hyperwallet_conn_id
        self.smtp_conn_id = smtp_conn_id
        self.workflow = spec.name
        self.step = declared.name
        self.mirakl_conn_id = mirakl_conn_id
        self.stripe_conn_id = stripe_conn_id
        self.ledger_conn_id = ledger_conn_id

    def build_resources(self, config: dict[str, Any]) -> Any:
        """The clients, built from the connections on first use (overridable in tests)."""
        from mirakl_connector.airflow.config import AlertSettings
        from mirakl_connector.airflow.hooks.hyperwallet import HyperwalletHook
        from mirakl_connector.airflow.hooks.operator_webhook import OperatorWebhookHook
        from mirakl_connector.airflow.mail import SmtpMailer
        from mirakl_connector.core.registry import Resources

        alerts = AlertSettings.from_mapping(config.get("alerts"))
        return Resources(
            mirakl=lambda: MiraklHook(self.mirakl_conn_id).get_client(),
            # Paced to the pool slots this task holds (a shard of a sharded step holds several).
            stripe=lambda: StripeHook(
                self.stripe_conn_id, pool_slots=self.pool_slots
            ).get_gateway(),
            ledger=lambda: LedgerHook(self.ledger_conn_id).get_ledger(),
            mailer=lambda: SmtpMailer(self.smtp_conn_id, alerts.email_from),
            http=lambda: OperatorWebhookHook(self.operator_webhook_conn_id).get_sender(),
            hyperwallet=lambda: HyperwalletHook(self.hyperwallet_conn_id).get_client(),
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from mirakl_connector.core.registry import run_step
        from mirakl_connector.operations.first_run import FirstRunRefused

        params = {**parse_run_params(context.get("params") or {}), **self.step_kwargs}
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(params.items())) or "defaults"
        self.log.info("%s.%s with %s", self.workflow, self.step, shown)
        config = load_connector_config()
        job = self.spec.build(self.build_resources(config), config, context.get("run_id"))
        try:
            result = run_step(job, self.spec.step(self.step), params).to_dict()
        except FirstRunRefused as exc:
            # A setting is missing: a retry cannot help, the message says what to set.
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc
        self._log_summary(result)
        return result

    def _log_summary(self, result: dict[str, Any]) -> None:
        counts = counts_of(result)
        if counts:
            table = format_table(sorted(counts.items()), headers=("outcome", "count"))
            self.log.info("%s.%s summary:\n%s", self.workflow, self.step, table)
        failures = failed_items(result)
        if failures:
            # Not raised here: the batch completed; the report task turns the run red.
            total = result.get("failed_total", len(failures))
            self.log.warning(
                "%d item(s) failed in %s.%s:\n%s",
                total,
                self.workflow,
                self.step,
                format_failures(failures, total=total),
            )
