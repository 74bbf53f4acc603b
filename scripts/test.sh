#!/usr/bin/env bash
# The project's test command (see README): Rust tests of the whole workspace, then the Python
# package's tests.
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

# --- The engine embeds without a network stack (ARCHITECTURE.md) ------------------------------
# `pairrm` (the engine crate) must not depend on the HTTP client, the TLS stack or the download
# machinery: those belong to `pairrm-hub`. Checked on the engine's default features.
engine_deps=$(cargo tree --locked -p pairrm -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
if forbidden=$(grep -xE 'ureq|rustls|ring|sha2|fs4|webpki-roots|clap|utoipa' <<<"$engine_deps"); then
  echo "error: the pairrm crate depends on: $(echo $forbidden) (move that code to pairrm-hub or behind a feature)" >&2
  exit 1
fi
# --------------------------------------------------------------------------------------------------

cargo test --workspace --locked

# The CLI and the fake hub, as the Python-side checks below run them (target/debug).
cargo build --locked -p pairrm-cli -p fake-hub

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
  "$venv/bin/python" tools/check_hf_interop.py --target-dir target/debug
fi
# ---------------------------------------------------------------------------------------------

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
# ray[data], pandas, pyarrow and datasets: the Ray Data tests (a local two-worker cluster) and the checks that
# `pairrm label`'s Parquet output reads in pandas/pyarrow/datasets (about 3 minutes the first time).
# Ray below 2.64: pairrm.ray numbers rows with Dataset.zip, removed there.
"$PY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "maturin>=1.9.4,<2" "numpy>=1.21" "pytest>=7" tqdm "ray[data]>=2.9,<2.64" pandas pyarrow datasets
PATH="$PY_VENV/bin:$PATH" MATURIN_PEP517_ARGS="--profile dev --locked" \
  "$PY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --no-build-isolation --no-deps --force-reinstall .
# The llm_blender compatibility distribution over it (python/compat; tested by test_compat.py).
"$PY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall ./python/compat
PAIRRM_CLI="$PWD/target/debug/pairrm" "$PY_VENV/bin/python" -m pytest python/tests -q -rs
