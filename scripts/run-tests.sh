#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian/Ubuntu machine,
# then run it. Extra arguments go to pytest.
#
#   bash scripts/run-tests.sh            # the whole suite
#   bash scripts/run-tests.sh -k room    # a part of it
set -euo pipefail
cd "$(dirname "$0")/.."

# From the distribution's packages: redis-server (the failover tests run a
# real one); chromium and a font (the browser tests drive Debian's chromium
# through Playwright, never a downloaded browser); node and npm (the JS
# decoder test, and vendoring @msgpack/msgpack); prometheus, which brings
# promtool (tests/ops/ runs a real Prometheus and promtool's rule tests).
# Root (CI, containers) installs directly; others through sudo.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# redis-cli: `redis-cli --cluster create` joins the Redis Cluster tests' six
# servers (Sentinel runs as `redis-server --sentinel`: no extra package).
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-dejavu-core)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The browser client's npm packages (package-lock.json), copied into
# server/control/static/vendor/; tests/web/test_web_app.py checks the copy.
bash scripts/vendor-js.sh
# The browser client's npm package: its dev tools (typescript, esbuild) from
# its own package-lock.json; tests/web/test_js_package.py type-checks it,
# runs its node tests, packs it and bundles it into a page.
(cd packages/tickroom-client && npm ci --no-audit --no-fund --loglevel=error)

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "tickroom needs Python >= 3.11 ($python is $("$python" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
# The example game, as its own package with its entry point (tickroom.games):
# the tests run it exactly as a user's installed game (docs/games.md).
.venv/bin/python -m pip install --quiet ./examples/tag
# No `playwright install`: the tests launch /usr/bin/chromium themselves.
# (hadolint and kubernetes-validate come with the test extra: the suite
# lints the Dockerfile and validates deploy/k8s/ offline.)
# Static analysis first (config in pyproject.toml): ruff's lint and its
# formatter's check on everything, mypy on the installed packages, bandit on
# them too. A finding fails the run, as a test would.
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/python -m mypy
.venv/bin/python -m bandit -q -c pyproject.toml -r server protocol simulation loadtest client
exec .venv/bin/python -m pytest "$@"
