#!/usr/bin/env bash
# Install everything the tests need, then lint, run the whole suite, and check
# that the wheel and the sdist install and run the README's first command.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
scripts/check-package.sh
