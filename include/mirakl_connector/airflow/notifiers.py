"""Failure e-mails for the connector's tasks.

Used as every task's ``on_failure_callback`` (through ``default_args``). It runs after the last
retry, in the worker, and must never raise: a broken alert path is logged as an ERROR (which the
log shipping can alert on) rather than masking the task's own failure.

Recipients come from ``alerts.email_to`` of the ``mirakl_connector_config`` Variable, read when the
failure happens so a change applies without touching the DAG. The mail is sent by the SMTP
provider's :class:`SmtpNotifier` through connection ``smtp_default``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from mirakl_connector.airflow.config import alert_settings, load_connector_config
from mirakl_connector.airflow.operators._summary import MAX_LISTED_FAILURES, failed_items

if TYPE_CHECKING:
    from airflow.sdk import Context

SUBJECT_PREFIX = "[Mirakl connector]"


def build_subject(dag_id: str, task_id: str, run_id: str) -> str:
    return f"{SUBJECT_PREFIX} {dag_id}.{task_id} failed (run {run_id})"


def build_html_body(
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    exception: BaseException | str | None,
    failed: Sequence[Mapping[str, str]],
    log_url: str | None = None,
) -> str:
    """The e-mail body: what failed, why, and which items (escaped: ids come from Mirakl)."""
    esc = html.escape
    parts = [
        f"<p>Task <b>{esc(dag_id)}.{esc(task_id)}</b> failed in run <code>{esc(run_id)}</code>."
        "</p>",
        f"<p>Error:</p><pre>{esc(str(exception) if exception else 'unknown error')}</pre>",
    ]
    if failed:
        rows = "".join(
            f"<tr><td>{esc(item.get('step', ''))}</td><td>{esc(item['id'])}</td>"
            f"<td>{esc(item['reason'])}</td></tr>"
            for item in failed[:MAX_LISTED_FAILURES]
        )
        more = len(failed) - MAX_LISTED_FAILURES
        parts.append(
            f"<p>{len(failed)} failed item(s):</p>"
            "<table border='1' cellpadding='4'><tr><th>step</th><th>id</th><th>reason</th></tr>"
            f"{rows}</table>" + (f"<p>... and {more} more.</p>" if more > 0 else "")
        )
    if log_url:
        parts.append(f"<p><a href='{esc(log_url, quote=True)}'>Task log</a></p>")
    return "\n".join(parts)


def _failed_from_context(context: Mapping[str, Any]) -> list[dict[str, str]]:
    """Failed items carried by the exception, else by the task's own XCom summary."""
    exception = context.get("exception")
    items = getattr(exception, "failed", None)
    if items:
        return [dict(item) for item in items]
    ti = context.get("ti")
    if ti is None:
        return []
    from mirakl_connector.airflow.operators.report import REPORT_XCOM_KEY

    for key in (REPORT_XCOM_KEY, "return_value"):
        try:
            value = ti.xcom_pull(task_ids=ti.task_id, key=key)
        except Exception:  # best effort: the e-mail matters more than the item list
            value = None
        if isinstance(value, Mapping) and value.get("failed"):
            return failed_items(value)
    return []


class ConnectorFailureNotifier(BaseNotifier):
    """E-mail the configured recipients when a task fails.

    :param smtp_conn_id: the SMTP connection used to send.
    """

    template_fields: Sequence[str] = ()

    def __init__(self, *, smtp_conn_id: str = "smtp_default") -> None:
        super().__init__()
        self.smtp_conn_id = smtp_conn_id

    def notify(self, context: Context) -> None:
        dag_id, task_id, run_id = _ids(context)
        try:
            alerts = alert_settings(load_connector_config())
        except Exception as exc:
            self.log.error(
                "Cannot send the failure e-mail for %s.%s: connector config unreadable: %s",
                dag_id,
                task_id,
                exc,
            )
            return
        if not alerts.email_to:
            self.log.error(
                "No failure e-mail sent for %s.%s (run %s): no recipients in "
                "mirakl_connector_config.alerts.email_to",
                dag_id,
                task_id,
                run_id,
            )
            return
        ti = context.get("ti")
        body = build_html_body(
            dag_id=dag_id,
            task_id=task_id,
            run_id=run_id,
            exception=context.get("exception"),
            failed=_failed_from_context(context),
            log_url=getattr(ti, "log_url", None),
        )
        try:
            self._send(
                to=list(alerts.email_to),
                from_email=alerts.email_from,
                subject=build_subject(dag_id, task_id, run_id),
                html_content=body,
                context=context,
            )
        except Exception as exc:  # never raise from a callback
            self.log.error(
                "Failure e-mail for %s.%s could not be sent via connection %s: %s: %s",
                dag_id,
                task_id,
                self.smtp_conn_id,
                type(exc).__name__,
                exc,
            )
            return
        self.log.info("Failure e-mail sent to %d recipient(s)", len(alerts.email_to))

    def _send(
        self,
        *,
        to: list[str],
        from_email: str | None,
        subject: str,
        html_content: str,
        context: Context,
    ) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        # notify() directly, not __call__: our subject/body are final text, and rendering them
        # as Jinja would break on an exception message that contains "{{".
        SmtpNotifier(
            to=to,
            from_email=from_email,
            subject=subject,
            html_content=html_content,
            smtp_conn_id=self.smtp_conn_id,
        ).notify(context)


def _ids(context: Mapping[str, Any]) -> tuple[str, str, str]:
    ti = context.get("ti")
    dag = context.get("dag")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None) or "unknown_dag"
    task_id = getattr(ti, "task_id", None) or "unknown_task"
    run_id = context.get("run_id") or getattr(ti, "run_id", None) or "unknown"
    return str(dag_id), str(task_id), str(run_id)
