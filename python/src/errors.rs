//! Library errors as Python exceptions.

use pairrm::Error;
use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

pyo3::create_exception!(
    _pairrm,
    NotInCacheError,
    PyFileNotFoundError,
    "Files of a hub model are not in the local Hugging Face cache (and could not be downloaded).\n\n\
     Attributes: `repo`, `revision`, `cache_dir` (str) and `missing` (list of str: the files \
     missing, \"a or b\" for alternatives; empty when the whole revision is absent)."
);

/// The Python exception for `e`, its message prefixed with `context` (e.g. `"inputs[3]: "`).
///
/// - invalid input, a bad model or file → `ValueError`;
/// - a file that cannot be read → `FileNotFoundError` / `OSError`;
/// - a hub model missing from the cache → [`NotInCacheError`] (a `FileNotFoundError`);
/// - cancelled → `KeyboardInterrupt`; anything else (tokenizer, hub) → `RuntimeError`.
pub fn to_py(py: Python<'_>, e: Error, context: &str) -> PyErr {
    let message = format!("{context}{e}");
    match e {
        Error::InvalidInput { .. } | Error::Model { .. } | Error::InvalidFile { .. } | Error::Unsupported { .. } => {
            PyValueError::new_err(message)
        }
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        Error::Io { .. } => PyOSError::new_err(message),
        Error::NotInCache { repo, revision, cache_dir, missing, .. } => {
            let err = NotInCacheError::new_err(message);
            let value = err.value(py);
            // Setting attributes on a fresh exception instance cannot fail in practice; if it
            // did, the exception would still carry the full message.
            let _ = value.setattr("repo", repo);
            let _ = value.setattr("revision", revision);
            let _ = value.setattr("cache_dir", cache_dir.display().to_string());
            let _ = value.setattr("missing", missing);
            err
        }
        Error::Cancelled => PyKeyboardInterrupt::new_err(message),
        _ => PyRuntimeError::new_err(message),
    }
}

/// The first error of `results` (its index named as `{what}[i]: `), else all the values.
pub fn collect<T>(py: Python<'_>, results: Vec<pairrm::Result<T>>, what: &str) -> PyResult<Vec<T>> {
    results.into_iter().enumerate().map(|(i, r)| r.map_err(|e| to_py(py, e, &format!("{what}[{i}]: ")))).collect()
}
