"""Where a DAG's schedule comes from: one naming scheme for every connector DAG.

The schedule of DAG ``<dag_id>`` is the Airflow Variable ``<dag_id>__schedule`` (so the payment
split's is ``stripe_payment_split__schedule``, or the environment variable
``AIRFLOW_VAR_STRIPE_PAYMENT_SPLIT__SCHEDULE``). Its value is a cron string (``1-59/5 * * * *``),
a preset (``@daily``) or ``none`` for manual runs only. Absent → the default given in the DAG file.

Caveats of reading a Variable at parse time (Airflow 3.3), which ops must know:

* the dag-processor sees Variables stored in the metadata DB, but ``pytest``/``DagBag``,
  ``airflow dags test``, ``airflow dags reserialize`` and ``dags list --local`` see only
  environment variables and external secrets backends. Running ``dags test`` or ``reserialize``
  therefore writes the *default* schedule back until the dag-processor's next parse;
* a change in the UI applies at the next parse of the file, not immediately;
* every parse costs a lookup (enable ``[secrets] use_cache`` if that matters).

For a schedule that must hold everywhere, set the ``AIRFLOW_VAR_...`` environment variable.
"""

from __future__ import annotations

import re

_NONE_VALUES = frozenset({"none", "null", "manual", ""})
_PRESETS = frozenset(
    {"@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"}
)
_CRON_FIELD = re.compile(r"^[\w*/,\-?LW#]+$")


def schedule_variable_name(dag_id: str) -> str:
    """The Variable holding ``dag_id``'s schedule."""
    return f"{dag_id}__schedule"


def normalize_schedule(value: str | None, *, name: str) -> str | None:
    """Check a schedule string; return it, or None for manual-only.

    :raises ValueError: naming the Variable when the value is neither a preset nor 5-field cron
        (the DAG then shows as an import error instead of silently running at the wrong time).
    """
    text = (value or "").strip()
    if text.lower() in _NONE_VALUES:
        return None
    if text.startswith("@"):
        if text.lower() not in _PRESETS:
            raise ValueError(f"Variable {name}: unknown schedule preset {text!r}")
        return text.lower()
    fields = text.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(
            f"Variable {name}: {text!r} is not a 5-field cron expression, a preset or 'none'"
        )
    return " ".join(fields)


def schedule_from_variable(dag_id: str, default: str | None) -> str | None:
    """Return the schedule for ``dag_id`` from its Variable, or ``default``.

    Called at DAG parse time; this is the only Variable lookup allowed there (see the module
    docstring for what each Airflow process sees).
    """
    from airflow.sdk import Variable

    name = schedule_variable_name(dag_id)
    value = Variable.get(name, default=default)
    return normalize_schedule(value, name=name)
