"""Every sandbox page the demo's banner and the README point a user to exists."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from mirakl_sandbox import SandboxServer

REPO_ROOT = Path(__file__).resolve().parents[2]
_BANNER_PATH = re.compile(r"\$SANDBOX_URL(/_sandbox/[\w/]*)(?:\{([\w,]+)\})?")
_README_PATH = re.compile(r"`(?:http://[^`/]+)?(/_sandbox/[\w/]+?)/?`(?: \(([^)]*)\))?")


def _expand(prefix: str, names: str | None) -> list[str]:
    if not names:
        return [prefix]
    return [prefix.rstrip("/") + "/" + name for name in re.findall(r"\w+", names)]


def banner_paths() -> list[str]:
    text = (REPO_ROOT / "scripts/demo.sh").read_text()
    banner = text[text.index("cat <<INFO") : text.index("\nINFO\n")]
    return [p for m in _BANNER_PATH.finditer(banner) for p in _expand(m.group(1), m.group(2))]


def readme_paths() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    demo = text[text.index("## Two commands") : text.index("## The DAGs")]
    paths = []
    for match in _README_PATH.finditer(demo):
        listed = re.findall(r"`(\w+)`", match.group(2) or "")
        paths += _expand(match.group(1), ",".join(listed) or None)
    # The seller's onboarding page of one demo account is a walkthrough step, not a listing.
    return [p for p in paths if not p.startswith("/_sandbox/onboarding/")]


def test_banner_and_readme_name_the_same_sandbox_pages(sandbox: SandboxServer):
    banner, readme = banner_paths(), readme_paths()
    assert {"/_sandbox/stripe/transfers", "/_sandbox/mirakl/invoices"} <= set(banner)
    assert set(readme) <= set(banner), (
        f"README pages missing from the banner: {set(readme) - set(banner)}"
    )
    missing = [p for p in banner if requests.get(sandbox.url + p, timeout=10).status_code != 200]
    assert missing == []
