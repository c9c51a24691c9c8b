"""``python -m mirakl_sandbox`` runs the sandbox CLI."""

from __future__ import annotations

from mirakl_sandbox.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
