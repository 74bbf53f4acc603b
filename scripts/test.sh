#!/usr/bin/env bash
# The project's test command (see README): Rust tests of the whole workspace, then the Python
# package's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked

# --- Python package (pyproject.toml, python/) ------------------------------------------------
# Builds the `pairrm` package with `pip install .` into the virtual environment .venv-test
# (created if missing, reused otherwise) and runs python/tests with pytest. The extension is built
# with the dev profile so that it reuses the optimised dependencies already in target/debug (a
# release build of everything again would cost many minutes here); the parity tests compare it
# with the CLI built the same way. Needs python3 (>= 3.9) with venv and PyPI.
PY_VENV="$PWD/.venv-test"
if [ ! -x "$PY_VENV/bin/python" ]; then
  python3 -m venv "$PY_VENV"
fi
"$PY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "maturin>=1.9.4,<2" "numpy>=1.21" "pytest>=7" tqdm
cargo build --locked -p pairrm-cli
PATH="$PY_VENV/bin:$PATH" MATURIN_PEP517_ARGS="--profile dev --locked" \
  "$PY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --no-build-isolation --no-deps --force-reinstall .
PAIRRM_CLI="$PWD/target/debug/pairrm" "$PY_VENV/bin/python" -m pytest python/tests -q -rs
