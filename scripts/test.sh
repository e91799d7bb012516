#!/usr/bin/env bash
# The whole test suite: installs the third-party peers, checks the golden vectors against their
# generators, then builds once and runs every test of the workspace in one cargo invocation.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh
scripts/check-golden.sh
# With CI set (as CI sets it), a missing peer fails its test instead of skipping it.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-targets --locked 2>&1 | tee "$log"
# Doctests (including the examples in docs/), reusing the build above.
cargo test --workspace --doc --locked 2>&1 | tee -a "$log"
# One closing line for the whole run: cargo prints one summary per test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
