#!/usr/bin/env bash
# The benchmarks: ./scripts/bench.sh [name ...] (default: all of them, in this order).
#
#   payment_split       2,500 orders under Stripe's live limits (25 req/s per endpoint) (~2 min)
#   backlog             20,000 waiting orders: full sweep vs by change, idle and 1 % changed (~2 min)
#   refunds_settlement  1,000 refunds and 1,000 invoices, the same limits           (~5 min)
#   rerun               a finished batch of 2,000 orders run again: 0 writes        (~1 min)
#   parse_time          the DAG files as the DAG processor parses them              (~1 min)
#   faults              10% injected faults and a killed task per workflow          (~5 min)
#   memory              100,000 orders through the split: peak RSS                  (~12 min)
#   console             payments console on 1,000,000 movements, SQLite + PostgreSQL (~15 min)
#
# Each prints a table with its targets. Not part of the tests: figures depend on the machine.
# The environment is the tests' (scripts/bootstrap.sh); extra sizes: run bench/<name>.py --help.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
source "$REPO_ROOT/scripts/bootstrap.sh"
export PYTHONPATH="$REPO_ROOT/include${PYTHONPATH:+:$PYTHONPATH}"

names=("$@")
if [ "${#names[@]}" -eq 0 ]; then
    names=(payment_split backlog refunds_settlement rerun parse_time faults memory console)
fi
for name in "${names[@]}"; do
    script="$REPO_ROOT/bench/$name.py"
    if [ ! -f "$script" ]; then
        echo "bench.sh: no benchmark named $name (see bench/)" >&2
        exit 2
    fi
    echo "== bench/$name.py"
    python "$script"
done
