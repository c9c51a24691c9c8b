"""``python -m mirakl_connector.sandbox`` runs the sandbox CLI."""

from __future__ import annotations

from mirakl_connector.sandbox.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
