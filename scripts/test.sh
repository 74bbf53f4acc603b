#!/usr/bin/env bash
# The project's test command (see README): Rust tests of the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked

# --- huggingface_hub cache interop (docs/models.md) -----------------------------------------
# pairrm and Python's huggingface_hub must read each other's Hugging Face cache. This runs
# tools/check_hf_interop.py against the fake hub, with huggingface_hub installed (pinned) in a
# virtual environment under target/ that is made once and reused. Set PAIRRM_SKIP_HF_INTEROP=1
# to skip it (e.g. without access to PyPI); any other failure fails the tests.
if [ "${PAIRRM_SKIP_HF_INTEROP:-0}" = "1" ]; then
  echo "huggingface_hub interop check skipped (PAIRRM_SKIP_HF_INTEROP=1)"
else
  venv=target/hf-interop-venv
  if ! "$venv/bin/python" -c 'import huggingface_hub' 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'huggingface_hub==0.36.2'
  fi
  cargo build --locked -p pairrm-cli -p fake-hub
  "$venv/bin/python" tools/check_hf_interop.py --target-dir target/debug
fi
# ---------------------------------------------------------------------------------------------
