#!/usr/bin/env bash
# The project's test command (see README): Rust tests of the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Headless Chromium for the playground test (crates/pairrm-server/tests/playground.rs) -------
# The test runs Debian's `chromium` (or the binary named by PAIRRM_CHROMIUM). Install it when it is
# missing; idempotent, and loud when it cannot be installed (the test would then fail anyway).
if [ -z "${PAIRRM_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  echo "chromium not found: installing Debian's chromium package for the playground test" >&2
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    echo "error: could not install chromium; install it (apt-get install chromium) or set PAIRRM_CHROMIUM" >&2
    exit 1
  fi
fi
# --------------------------------------------------------------------------------------------------

cargo test --workspace --locked
