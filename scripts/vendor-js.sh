#!/usr/bin/env bash
# Vendor the browser client's npm dependencies into server/control/static/vendor/.
#
# The page loads plain ES modules with no bundler, so the ESM build of
# @msgpack/msgpack (dist.esm/*.mjs, which import each other by relative
# path) is copied as is. The versions come from package-lock.json (npm ci).
# The copy is committed so that `pip install . && tickroom serve` works
# without node; tests/web/test_vendor.py fails when it drifts from the lock.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
  echo "vendor-js: npm is required (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error

src=node_modules/@msgpack/msgpack/dist.esm
dst=server/control/static/vendor/msgpack
rm -rf "$dst"
mkdir -p "$dst"
# Only the runnable modules: no source maps, type declarations or build info.
(cd "$src" && find . -name '*.mjs' -print0) | while IFS= read -r -d '' f; do
  mkdir -p "$dst/$(dirname "$f")"
  cp "$src/$f" "$dst/$f"
done
cp node_modules/@msgpack/msgpack/LICENSE "$dst/LICENSE"
echo "vendor-js: @msgpack/msgpack $(node -p 'require("./node_modules/@msgpack/msgpack/package.json").version') -> $dst"
