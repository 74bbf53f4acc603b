//! The library's error type.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything that can go wrong in the library, each naming what it concerns.
///
/// Errors are `Clone`: one failing forward pass can be shared by several requests (identical
/// pairs are scored once), and each of them gets the same error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A file could not be read (missing, unreadable).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying I/O error (shared, so that the error can be cloned).
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A file was read but its contents are wrong (bad JSON, truncated, wrong shape...).
    #[error("{}: {message}", path.display())]
    InvalidFile {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A model could not be found or has an unknown layout.
    #[error("model {model}: {message}")]
    Model {
        /// The model as the user named it.
        model: String,
        /// What is wrong.
        message: String,
    },
    /// The configuration asks for something this engine does not implement.
    #[error("{}: unsupported configuration: {message}", path.display())]
    Unsupported {
        /// The configuration file.
        path: PathBuf,
        /// What is unsupported.
        message: String,
    },
    /// A request is invalid (names the offending field).
    #[error("invalid input: {field}: {message}")]
    InvalidInput {
        /// The offending field, e.g. `candidates[2]` or `conversation_a[3].role`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A download or hub request failed.
    #[error("hub: {0}")]
    Hub(String),
    /// Files of a hub repo are not in the local Hugging Face cache. Nothing is downloaded
    /// implicitly; a downloader can catch this error, fetch `missing` and retry.
    #[error("{}", not_in_cache_message(.repo, .revision, .cache_dir, .missing, .reason))]
    NotInCache {
        /// The repo id (`org/name`).
        repo: String,
        /// The revision asked for (branch, tag or commit).
        revision: String,
        /// The cache directory searched.
        cache_dir: PathBuf,
        /// The files missing (`a or b` for alternatives); empty when the whole revision is absent.
        missing: Vec<String>,
        /// More detail (what exactly was looked for), starting with a space, or empty.
        reason: String,
    },
    /// The work was cancelled before it finished.
    #[error("cancelled")]
    Cancelled,
    /// The model computed a value that is a non-finite number (NaN or infinity): its weights or
    /// configuration are broken (NaN or infinite weights, a bad `layer_norm_eps`...), so the
    /// result would mean nothing. Never a fault of the request.
    #[error("{what} is {value}, a non-finite number: the model's weights or configuration are broken")]
    NonFinite {
        /// What was computed, e.g. `logit` or `score of candidate 2`.
        what: String,
        /// The value (NaN, inf or -inf).
        value: f32,
    },
}

fn not_in_cache_message(repo: &str, revision: &str, cache_dir: &Path, missing: &[String], reason: &str) -> String {
    let what = match missing {
        [] => format!("{repo}@{revision} is"),
        [one] => format!("{one} of {repo}@{revision} is"),
        many => format!("{} of {repo}@{revision} are", many.join(", ")),
    };
    let rev = if revision == "main" { String::new() } else { format!(" --revision {revision}") };
    format!(
        "{what} not in the Hugging Face cache at {}{reason}; run `pairrm download {repo}{rev}` or check HF_HUB_OFFLINE",
        cache_dir.display()
    )
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error about `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), source: Arc::new(source) }
    }

    /// A file whose contents are wrong.
    pub fn invalid_file(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::InvalidFile { path: path.as_ref().to_path_buf(), message: message.into() }
    }

    /// An invalid request field.
    pub fn invalid_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput { field: field.into(), message: message.into() }
    }

    /// A configuration this engine does not implement.
    pub fn unsupported(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Unsupported { path: path.as_ref().to_path_buf(), message: message.into() }
    }

    /// A model that cannot be found or understood.
    pub fn model(model: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Model { model: model.into(), message: message.into() }
    }
}

/// `value` if it is finite, else [`Error::NonFinite`] naming `what`.
pub fn finite(value: f32, what: impl FnOnce() -> String) -> Result<f32> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::NonFinite { what: what(), value })
    }
}
