//! `pairrm._pairrm`: the native core of the `pairrm` Python package.
//!
//! A thin layer over the `pairrm` crate: [`engine::PyEngine`] loads a checkpoint and runs the
//! judge functions (compare, rank, rank against a reference, best/worst-of-n, conversations)
//! with the GIL released, Ctrl-C honoured and progress reported ([`call`]). The Python package
//! (`python/pairrm/`) builds the `llm_blender`-compatible `Blender` and the TRL-style judge on
//! top of it.

mod call;
mod engine;
mod errors;
mod label;
mod requests;
mod source;

use pyo3::prelude::*;

/// The Hugging Face hub cache directory the environment points to (`HF_HUB_CACHE`, else
/// `HF_HOME/hub`, else `~/.cache/huggingface/hub`), or `None` when it cannot be told.
#[pyfunction]
fn hub_cache_dir() -> Option<String> {
    pairrm::checkpoint::hub::cache_dir_from_env().map(|p| p.display().to_string())
}

/// Native core of `pairrm`: exact PairRM inference in Rust. Use `pairrm.Blender` instead.
#[pymodule]
fn _pairrm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::PyEngine>()?;
    m.add_function(wrap_pyfunction!(hub_cache_dir, m)?)?;
    m.add_function(wrap_pyfunction!(label::label_batch, m)?)?;
    m.add("NotInCacheError", m.py().get_type::<errors::NotInCacheError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
