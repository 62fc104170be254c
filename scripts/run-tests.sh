#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian/Ubuntu machine,
# then run it. Extra arguments go to pytest.
#
#   bash scripts/run-tests.sh            # the whole suite
#   bash scripts/run-tests.sh -k room    # a part of it
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-server, from the distribution's packages: the failover tests run a
# real one. Root (CI, containers) installs directly; others through sudo.
if ! command -v redis-server >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends redis-server
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "tickroom needs Python >= 3.11 ($python is $("$python" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
# Static analysis first (config in pyproject.toml): ruff on everything,
# bandit on the packages. A finding fails the run, as a test would.
.venv/bin/python -m ruff check .
.venv/bin/python -m bandit -q -c pyproject.toml -r server protocol simulation loadtest client
exec .venv/bin/python -m pytest "$@"
