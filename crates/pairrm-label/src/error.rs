//! The errors of a labelling job.

use std::path::{Path, PathBuf};

/// What can stop a labelling job. A bad *row* never does: it becomes an error record.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is not what its name or content says (bad Parquet, bad Arrow, bad JSON array...).
    #[error("{}: {message}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The settings are unusable (unknown format, bad shard, conflicting options).
    #[error("{0}")]
    Settings(String),
    /// A work folder from an earlier run holds a job with other settings.
    #[error(
        "{} holds an unfinished job with other settings ({differences}); run the same command \
         as before to finish it, or remove that folder to start over",
        work.display()
    )]
    ResumeMismatch {
        /// The work folder.
        work: PathBuf,
        /// The settings that differ, `name: was X, now Y`.
        differences: String,
    },
    /// The model failed as a whole (not one row).
    #[error("model: {0}")]
    Model(#[from] pairrm::Error),
}

impl LabelError {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        LabelError::Io { path: path.as_ref().to_path_buf(), source }
    }

    /// A file with invalid content.
    pub fn invalid_file(path: impl AsRef<Path>, message: impl std::fmt::Display) -> Self {
        LabelError::InvalidFile { path: path.as_ref().to_path_buf(), message: message.to_string() }
    }
}

/// Result of the labelling library.
pub type Result<T, E = LabelError> = std::result::Result<T, E>;
