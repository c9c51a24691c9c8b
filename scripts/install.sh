#!/usr/bin/env bash
# The one install step of the project: the pinned requirements and the connector library.
#
#   scripts/install.sh              pip install -r requirements.txt ./include   (the Docker image:
#                                   runtime only, no test or lint tools)
#   scripts/install.sh --editable   pip install -r requirements-dev.txt -e ./include
#                                   -e ./include/sandbox (bootstrap.sh: tests, demo, the
#                                   distributed run, with the simulator; the dev file
#                                   includes requirements.txt, so both run the same runtime pins)
#
# Both the Dockerfile and scripts/bootstrap.sh call this script, so the image gets exactly the
# runtime the tests ran against (tests/deploy/test_compose.py checks that they do). The library
# must be *installed*, not only on PYTHONPATH: its provider entry point gives the UI the Mirakl
# and Stripe connection forms. Uses $PYTHON (default: python).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"

requirements="$REPO_ROOT/requirements.txt"
library=("$REPO_ROOT/include")
if [ "${1:-}" = "--editable" ]; then
    requirements="$REPO_ROOT/requirements-dev.txt"
    library=(-e "$REPO_ROOT/include" -e "$REPO_ROOT/include/sandbox")
elif [ -n "${1:-}" ]; then
    echo "usage: scripts/install.sh [--editable]" >&2
    exit 2
fi

"$PYTHON" -m pip install --quiet -r "$requirements" "${library[@]}"
