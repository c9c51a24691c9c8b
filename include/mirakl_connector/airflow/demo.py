"""Helpers for ``scripts/demo.sh``: seed the ledger from a sandbox scenario, write the demo's
connections, Variables and pools into Airflow (:mod:`.demo_settings`), list the DAGs the UI shows.

The sandbox simulates Mirakl and Stripe, but which Stripe account belongs to which Mirakl shop
(and which charge paid which commercial order) is the connector's own data, kept in its ledger.
A scenario's top-level ``ledger`` section holds those rows::

    "ledger": {
      "account_mappings": [{"mirakl_shop_id": 2001, "stripe_account_id": "acct_..."}],
      "payment_mappings": [{"mirakl_commercial_order_id": "CO-1", "stripe_charge_id": "ch_..."}]
    }

Usage: ``python -m mirakl_connector.airflow.demo seed-ledger SCENARIO.json [--url URL]``
(``configure-airflow`` and ``list-dags``: see ``--help``). The URL
defaults to what the DAG's ledger hook would use (the connection, else SQLite in AIRFLOW_HOME).
Seeding is an upsert, so running the demo twice is harmless.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.settings import refuse_unknown
from mirakl_connector.ledger.records import AccountMapping, PaymentMapping, PaymentMappingStatus


def _build(cls: type, row: Any, *, section: str, index: int) -> Any:
    if not isinstance(row, Mapping):
        raise ConfigurationError(f"ledger.{section}[{index}] must be an object")
    refuse_unknown(row, (f.name for f in fields(cls)), f"ledger.{section}[{index}]")
    try:
        return cls(**row)
    except TypeError as exc:
        raise ConfigurationError(f"ledger.{section}[{index}]: {exc}") from None


def mappings_from_scenario(
    scenario: Mapping[str, Any],
) -> tuple[list[AccountMapping], list[PaymentMapping]]:
    """Parse the scenario's ``ledger`` section into records (pure)."""
    section = scenario.get("ledger") or {}
    if not isinstance(section, Mapping):
        raise ConfigurationError("scenario: 'ledger' must be an object")
    accounts = [
        _build(AccountMapping, row, section="account_mappings", index=i)
        for i, row in enumerate(section.get("account_mappings") or [])
    ]
    payments = []
    for i, row in enumerate(section.get("payment_mappings") or []):
        mapping = _build(PaymentMapping, row, section="payment_mappings", index=i)
        mapping.status = _payment_status(mapping.status, index=i)
        payments.append(mapping)
    return accounts, payments


def _payment_status(value: Any, *, index: int) -> PaymentMappingStatus:
    """Accept the enum's value in any case (``to_capture`` or ``TO_CAPTURE``)."""
    try:
        return PaymentMappingStatus(str(value).lower())
    except ValueError:
        allowed = ", ".join(s.value for s in PaymentMappingStatus)
        raise ConfigurationError(
            f"ledger.payment_mappings[{index}]: status {value!r} is not one of {allowed}"
        ) from None


def seed_ledger(scenario_path: str | Path, *, url: str | None = None) -> tuple[int, int]:
    """Upsert the scenario's mappings into the ledger; return (accounts, payments) counts."""
    from mirakl_connector.ledger import Ledger

    scenario = json.loads(Path(scenario_path).read_text(encoding="utf-8"))
    accounts, payments = mappings_from_scenario(scenario)
    if url is None:
        from mirakl_connector.airflow.hooks.ledger import LedgerHook

        url = LedgerHook().url
    ledger = Ledger(url)
    for account in accounts:
        ledger.upsert_account_mapping(account)
    for payment in payments:
        ledger.upsert_payment_mapping(payment)
    return len(accounts), len(payments)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mirakl_connector.airflow.demo")
    sub = parser.add_subparsers(dest="command", required=True)
    seed = sub.add_parser("seed-ledger", help="upsert a scenario's ledger mappings")
    seed.add_argument("scenario", type=Path)
    seed.add_argument("--url", help="SQLAlchemy URL (default: the ledger connection)")
    configure = sub.add_parser(
        "configure-airflow", help="write the demo's connections, Variables and pools to Airflow"
    )
    configure.add_argument("--sandbox-url", required=True)
    configure.add_argument("--api-url", required=True)
    configure.add_argument("--smtp-port", type=int, required=True)
    configure.add_argument("--scenario", type=Path, required=True)
    configure.add_argument("--hyperwallet-scenario", type=Path, required=True)
    configure.add_argument("--config-file", type=Path, required=True)
    configure.add_argument("--production-schedules", action="store_true")
    dags = sub.add_parser("list-dags", help="the DAGs the UI shows, with their schedules")
    dags.add_argument("--api-url", required=True)
    dags.add_argument("--user", required=True)
    dags.add_argument("--password", required=True)
    args = parser.parse_args(argv)
    if args.command == "configure-airflow":
        return _configure_airflow(args)
    if args.command == "list-dags":
        return _list_dags(args)
    try:
        accounts, payments = seed_ledger(args.scenario, url=args.url)
    except (ConfigurationError, OSError, json.JSONDecodeError) as exc:
        print(f"seed-ledger: {exc}", file=sys.stderr)
        return 2
    print(f"ledger seeded: {accounts} account mapping(s), {payments} payment mapping(s)")
    return 0


def _configure_airflow(args: argparse.Namespace) -> int:
    from mirakl_connector.airflow.demo_settings import (
        DemoEndpoints,
        demo_settings,
        write_airflow_settings,
    )

    endpoints = DemoEndpoints(
        sandbox_url=args.sandbox_url,
        api_url=args.api_url,
        smtp_port=args.smtp_port,
        scenario=args.scenario,
        hyperwallet_scenario=args.hyperwallet_scenario,
        config_file=args.config_file,
    )
    settings = demo_settings(endpoints, fast_schedules=not args.production_schedules)
    write_airflow_settings(settings)
    print(
        f"airflow configured: {len(settings.connections)} connection(s), "
        f"{len(settings.variables)} Variable(s), pools"
    )
    return 0


def _list_dags(args: argparse.Namespace) -> int:
    from mirakl_connector.airflow.demo_settings import dag_table, list_dags

    dags = list_dags(args.api_url, args.user, args.password)
    print(f"  DAGs ({len(dags)}, as the UI lists them; schedule in effect):")
    print(dag_table(dags))
    return 0


if __name__ == "__main__":
    sys.exit(main())
