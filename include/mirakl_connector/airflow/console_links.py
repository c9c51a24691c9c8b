"""Links from a DAG run to the payments console filtered on it (run summaries, extra links).

The console is served by the API server under :data:`CONSOLE_URL_PREFIX` (see
``plugins/mirakl_connector_console.py``); ``?run=<run id>`` lists every ledger row whose status
that run changed, whatever its state now. The UI's session cookie is enough to open it.

Extra links in Airflow 3.3 (Task SDK): the *worker* calls ``get_link(operator, ti_key=ti)`` when
the task finishes, success or failure (``airflow.sdk.execution_time.task_runner.finalize``), and
stores the URL as the XCom ``_link_ConsoleRunLink``; the API server only reads that XCom back
(``XComOperatorLink`` of the serialized DAG). So the link exists for every finished try and
needs nothing from the API server's process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

#: Where the plugin mounts the console app on the API server.
CONSOLE_URL_PREFIX = "/mirakl-connector-console"


def console_run_url(run_id: str, base_url: str | None = None) -> str:
    """The console page listing what run ``run_id`` touched.

    :param base_url: the API server's public URL (``[api] base_url``); read from Airflow's
        configuration when not given. Empty: a path on the same host as the UI.
    """
    if base_url is None:
        base_url = _api_base_url()
    return f"{base_url.rstrip('/')}{CONSOLE_URL_PREFIX}/?{urlencode({'run': run_id})}"


def _api_base_url() -> str:
    try:
        from airflow.configuration import conf

        return conf.get("api", "base_url", fallback="") or ""
    except Exception:  # noqa: BLE001 - no configuration (a unit test): a relative link
        return ""


class ConsoleRunLink(BaseOperatorLink):
    """ "Payments console (this run)": the console filtered on the task's DAG run."""

    name = "Payments console (this run)"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return console_run_url(ti_key.run_id)
