#!/bin/sh
# Runs the unit, simulation and e2e suites (compiled: `npm run build` first) under other Node versions, fetched as
# the npm registry's node-linux-<arch> packages and cached in ~/.cache/tally-node.
# `npm run test:node-versions [-- VERSION ...]`; by default the oldest supported release and the next major.
set -eu
cd "$(dirname "$0")/.."
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "test-node-versions: no Node package for $(uname -m)" >&2; exit 1 ;;
esac
[ "$#" -gt 0 ] || set -- 20.19.0 22.12.0
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tally-node"
for v in "$@"; do
  dir="$cache/$v"
  if [ ! -x "$dir/package/bin/node" ]; then
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "node-linux-$arch@$v" >/dev/null && tar xzf "node-linux-$arch-$v.tgz" && rm "node-linux-$arch-$v.tgz")
  fi
  # on PATH too, so that the `#!/usr/bin/env node` binaries the tests run use it
  PATH="$dir/package/bin:$PATH"
  echo "# Node $(node --version)"
  node scripts/run-tests.mjs unit sim e2e
done
