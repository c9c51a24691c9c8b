"""``mirakl-sandbox``: run the Mirakl + Stripe simulator in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from mirakl_sandbox.scenario import ScenarioError, load_scenario
from mirakl_sandbox.server import SandboxServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mirakl-sandbox", description="Local simulator of the Mirakl operator and Stripe APIs."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (keep it on loopback)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0 = any free port)")
    parser.add_argument("--scenario", help="scenario JSON file to load at start")
    parser.add_argument("--seed", type=int, default=0, help="fault-injection seed")
    parser.add_argument(
        "--stripe-rate-limit", type=float, default=None, help="Stripe requests/second (default off)"
    )
    parser.add_argument(
        "--stripe-documented-limits",
        nargs="?",
        const=True,
        default=False,
        choices=("live", "test"),
        metavar="MODE",
        help="enforce Stripe's documented rate limits (account, endpoint, Files, Search, "
        "PaymentIntent updates); alone: each key's mode by its prefix, or live/test for all keys",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to each call")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the server, print the ready line, serve until interrupted."""
    args = build_parser().parse_args(argv)
    try:
        scenario = load_scenario(args.scenario) if args.scenario else None
    except ScenarioError as exc:
        print(f"mirakl-sandbox: {exc}", file=sys.stderr)
        return 2
    server = SandboxServer(
        scenario,
        port=args.port,
        host=args.host,
        seed=args.seed,
        stripe_rate_limit=args.stripe_rate_limit,
        latency_ms=args.latency_ms,
        stripe_documented_limits=args.stripe_documented_limits,
    )
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        print(f"mirakl-sandbox: cannot start: {exc}", file=sys.stderr)
        return 1
    print(f"sandbox listening on {server.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
