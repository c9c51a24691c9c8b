from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection

from mirakl_connector.airflow.hooks.ledger import LedgerHook, ledger_url_from_connection
from mirakl_connector.airflow.hooks.mirakl import MiraklHook
from mirakl_connector.airflow.hooks.stripe import StripeHook
from mirakl_connector.core.errors import ConfigurationError


def test_mirakl_client_built_from_env_connection_with_defaults(fake_library, connection) -> None:
    connection("mirakl_default", conn_type="mirakl", host="https://m.example.net/", password="k-1")
    MiraklHook().get_client()
    (client,) = fake_library.mirakl_clients
    assert client["base_url"] == "https://m.example.net"
    assert client["api_key"] == "k-1"
    assert client["timeout"] == (5.0, 30.0)
    assert client["retry"].max_attempts == 5
    assert client["page_size"] == 100


def test_mirakl_extras_override_defaults_and_accept_prefixed_names(
    fake_library, connection
) -> None:
    connection(
        "mirakl_eu",
        conn_type="mirakl",
        host="m.example.net",
        port=8443,
        password="Bearer tok",
        extra={"timeout_connect": "2", "timeout_read": 10, "max_retries": 0,
               "extra__mirakl__page_size": "50"},
    )  # fmt: skip
    MiraklHook("mirakl_eu").get_client()
    (client,) = fake_library.mirakl_clients
    assert client["base_url"] == "https://m.example.net:8443"
    assert client["api_key"] == "Bearer tok"
    assert client["timeout"] == (2.0, 10.0)
    assert client["retry"].max_attempts == 1
    assert client["page_size"] == 50


def test_mirakl_bad_extra_or_missing_key_is_a_clear_configuration_error(
    fake_library, connection
) -> None:
    connection("m1", conn_type="mirakl", host="h", password="k", extra={"page_size": "lots"})
    with pytest.raises(ConfigurationError, match="'m1'.*page_size.*int"):
        MiraklHook("m1").get_client()
    connection("m2", conn_type="mirakl", host="h")
    with pytest.raises(ConfigurationError, match="'m2'.*API key"):
        MiraklHook("m2").get_client()
    assert fake_library.mirakl_clients == []


def test_hook_init_reads_no_connection() -> None:
    # Not defined anywhere: constructing must still work (DAG parse time); using it must not.
    hook = MiraklHook("not_defined_anywhere")
    assert hook.mirakl_conn_id == "not_defined_anywhere"
    with pytest.raises(Exception, match="not_defined_anywhere"):
        hook.get_client()


def test_mirakl_test_connection_reports_success(fake_library, connection) -> None:
    connection("mirakl_default", conn_type="mirakl", host="http://127.0.0.1:1", password="k")
    assert MiraklHook().test_connection() == (True, "Mirakl answered, version 3.210")


def test_stripe_gateway_built_from_env_connection(fake_library, connection) -> None:
    connection("stripe_default", conn_type="stripe", password="sk_test_abc")
    StripeHook().get_gateway()
    connection(
        "stripe_sandbox",
        conn_type="stripe",
        host="http://127.0.0.1:8765",
        password="rk_test_xyz",
        extra={"max_retries": 0, "timeout": "5", "max_requests_per_second": "12.5"},
    )
    StripeHook("stripe_sandbox").get_gateway()
    default, sandbox = fake_library.gateways
    assert (default["api_key"], default["base_url"]) == ("sk_test_abc", None)
    assert default["retry"].max_attempts == 3 and default["timeout"] == 30.0
    assert (sandbox["api_key"], sandbox["base_url"]) == ("rk_test_xyz", "http://127.0.0.1:8765")
    assert sandbox["retry"].max_attempts == 1 and sandbox["timeout"] == 5.0
    # Against Stripe itself a task keeps to its share of the documented test-mode limits
    # (25/s overall x 0.8 over the pool's 4 slots; 25/s per endpoint x 0.8 over the 4 shards of
    # a step); against the sandbox only what the extras ask for.
    assert (default["max_requests_per_second"], default["max_requests_per_endpoint"]) == (5, 5)
    assert (sandbox["max_requests_per_second"], sandbox["max_requests_per_endpoint"]) == (
        12.5,
        None,
    )
    assert StripeHook("stripe_sandbox").test_connection() == (
        True,
        "Stripe accepted the key (platform account acct_platform)",
    )


def test_a_live_key_is_paced_to_its_share_of_the_endpoint_limit(fake_library, connection):
    connection("stripe_default", conn_type="stripe", password="sk_live_abc")
    connection("stripe_fast", conn_type="stripe", password="rk_live_abc",
               extra={"max_requests_per_endpoint": 3})  # fmt: skip
    StripeHook().get_gateway()
    StripeHook("stripe_fast").get_gateway()
    StripeHook(pool_slots=2).get_gateway()  # a shard of a sharded step holds 2 live slots
    live, explicit, shard = fake_library.gateways
    # 16 live slots: 100 x 0.8 / 16 = 5 overall per slot; on one endpoint 25 x 0.8 / 4, so that
    # the 4 shards of a step (POST /v1/transfers for all of them) stay at 20 of Stripe's 25/s.
    assert (live["max_requests_per_second"], live["max_requests_per_endpoint"]) == (5, 5)
    assert (explicit["max_requests_per_second"], explicit["max_requests_per_endpoint"]) == (5, 3)
    assert (shard["max_requests_per_second"], shard["max_requests_per_endpoint"]) == (10, 5)


@pytest.mark.parametrize("bad", ["0", -3, "fast"])
def test_stripe_pace_must_be_a_positive_number(fake_library, connection, bad) -> None:
    connection(
        "stripe_default", conn_type="stripe", password="sk_test_abc",
        extra={"max_requests_per_second": bad},
    )  # fmt: skip
    with pytest.raises(ConfigurationError, match="max_requests_per_second"):
        StripeHook().get_gateway()
    assert fake_library.gateways == []


def test_stripe_wrong_key_error_never_shows_the_key(fake_library, connection, capfd) -> None:
    connection("stripe_default", conn_type="stripe", password="pk_live_PUBLISHABLE123")
    with pytest.raises(ConfigurationError) as excinfo:
        StripeHook().get_gateway()
    assert "PUBLISHABLE123" not in str(excinfo.value)
    ok, message = StripeHook().test_connection()
    assert ok is False and "PUBLISHABLE123" not in message
    out, err = capfd.readouterr()
    assert "PUBLISHABLE123" not in out + err


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"conn_type": "postgres", "host": "db", "port": 5432, "login": "u",
             "password": "p@ss/word", "schema": "ledger"},
            "postgresql+psycopg2://u:p%40ss%2Fword@db:5432/ledger",
        ),
        (
            {"conn_type": "postgresql", "host": "db", "schema": "ledger"},
            "postgresql+psycopg2://db/ledger",
        ),
        (
            {"conn_type": "postgres", "host": "db",
             "extra": {"sqlalchemy_url": "postgresql+psycopg2://x@y/z"}},
            "postgresql+psycopg2://x@y/z",
        ),
        ({"conn_type": "sqlite", "host": "/data/ledger.db"}, "sqlite:////data/ledger.db"),
    ],
)  # fmt: skip
def test_ledger_url_derivation(fake_library, fields, expected) -> None:
    if "extra" in fields:
        fields = {**fields, "extra": json.dumps(fields["extra"])}
    conn = Connection(conn_id="mirakl_connector_db", **fields)
    assert ledger_url_from_connection(conn, airflow_home="/unused") == expected


def test_ledger_url_rejects_unsupported_type(fake_library) -> None:
    conn = Connection(conn_id="db", conn_type="mysql", host="h")
    with pytest.raises(ConfigurationError, match="'db'.*mysql"):
        ledger_url_from_connection(conn, airflow_home="/unused")


def test_ledger_hook_uses_the_env_connection(fake_library, connection) -> None:
    connection("mirakl_connector_db", conn_type="postgres", host="pg", login="u", schema="l")
    LedgerHook().get_ledger()
    assert fake_library.ledgers == ["postgresql+psycopg2://u@pg/l"]


def test_ledger_hook_defaults_to_sqlite_in_airflow_home(fake_library, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    LedgerHook().get_ledger()
    assert fake_library.ledgers == [f"sqlite:///{tmp_path}/mirakl_connector_ledger.db"]


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("https://x.mirakl.net/api", None, "https://x.mirakl.net"),  # the Hyperwallet form
        ("https://x.mirakl.net/api/", None, "https://x.mirakl.net"),
        ("x.mirakl.net/api", 8443, "https://x.mirakl.net:8443"),
        ("https://x.mirakl.net", None, "https://x.mirakl.net"),  # the Stripe connector's form
    ],
)
def test_mirakl_url_with_or_without_api(fake_library, connection, host, port, expected) -> None:
    connection("mirakl_default", conn_type="mirakl", host=host, port=port, password="k")
    MiraklHook().get_client()
    (client,) = fake_library.mirakl_clients
    assert client["base_url"] == expected


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("https://x.mirakl.net/api/v1", "path '/api/v1'"),
        ("https://x.mirakl.net/mirakl", "path '/mirakl'"),
        ("https://x.mirakl.net/api?key=secret-key", "query or fragment"),
        ("ftp://x.mirakl.net", "must start with https://"),
    ],
)
def test_mirakl_test_connection_refuses_other_urls_naming_the_forms(
    fake_library, connection, host, why
) -> None:
    connection("mirakl_default", conn_type="mirakl", host=host, password="k")
    ok, message = MiraklHook().test_connection()
    assert ok is False
    assert why in message
    assert "https://<instance>.mirakl.net or https://<instance>.mirakl.net/api" in message
    assert "secret-key" not in message
    assert fake_library.mirakl_clients == []


def test_hyperwallet_hook_builds_payload_encryption_from_the_extra_and_never_shows_keys(
    connection,
) -> None:
    """Issue 16 point 4: the keys come from the connection's extra; a bad key set fails as a
    configuration error naming the field, without the private key in the message."""
    from mirakl_connector.airflow.hooks.hyperwallet import HyperwalletHook
    from mirakl_connector.core.errors import ConfigurationError
    from mirakl_connector.hyperwallet.encryption import generate_key_set, public_key_set

    ours, theirs = generate_key_set("ours"), generate_key_set("hw")
    fields = {"conn_type": "hyperwallet", "host": "hw.test", "login": "u", "password": "pw-1234"}
    connection("hyperwallet_default", **fields)
    assert HyperwalletHook().get_client().encryption is None
    extra = {"encryption": True, "private_jwks": ours, "hyperwallet_jwks": public_key_set(theirs)}
    connection("hyperwallet_plain", **fields, extra=extra)
    client = HyperwalletHook("hyperwallet_plain").get_client()
    assert client.encryption is not None and client.encryption.sign_algorithm == "RS256"
    assert ours["keys"][0]["d"] not in repr(client) + repr(client.encryption)
    broken = {**extra, "private_jwks": {"keys": [{**ours["keys"][0], "alg": "PS512"}]}}
    connection("hyperwallet_broken", **fields, extra=broken)
    with pytest.raises(ConfigurationError, match="no private key with alg RS256") as error:
        HyperwalletHook("hyperwallet_broken").get_client()
    assert ours["keys"][0]["d"] not in str(error.value)
