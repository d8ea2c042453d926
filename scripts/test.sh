#!/usr/bin/env bash
# Set up (scripts/setup.sh --test) and run the whole test suite: ruff, then pytest.
# Tests marked `root` (network namespaces) skip without root, but run under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check pktchar models tests benchmarks
.venv/bin/ruff format --check pktchar models tests benchmarks
exec .venv/bin/python -m pytest "$@"
