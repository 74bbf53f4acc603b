//! Shared helpers of the integration tests: fixture paths.

use std::path::{Path, PathBuf};

/// `tests/fixtures/models` of the workspace.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}
