//! `pairrm._pairrm.label_batch`: labels a batch of rows for `pairrm.ray` with the same code as
//! `pairrm label` (the `pairrm-label` crate), so both give identical records.

use pairrm::CallOptions;
use pairrm_label::{label_chunk, LabelOptions};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::engine::PyEngine;

/// Labels the rows of `batch` (Arrow IPC stream bytes) numbered `rows` with `engine`, under
/// `options` (JSON: `strategy`, `min_margin`, `style`, `columns`, `id_kind`). Returns the
/// preference records as Arrow IPC stream bytes (the schema `pairrm label` writes to Parquet),
/// the error records as JSON lines, and the counts as JSON. Runs with the GIL released.
#[pyfunction]
pub fn label_batch<'py>(
    py: Python<'py>,
    engine: &PyEngine,
    batch: &[u8],
    rows: Vec<u64>,
    options: &str,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, String)> {
    let options: LabelOptions =
        serde_json::from_str(options).map_err(|e| PyValueError::new_err(format!("options: {e}")))?;
    let batches = pairrm_label::input::read_ipc_batches(batch).map_err(PyValueError::new_err)?;
    let mut raw = Vec::with_capacity(rows.len());
    for b in &batches {
        for i in 0..b.num_rows() {
            raw.push(pairrm_label::input::arrow_row(b, i));
        }
    }
    if raw.len() != rows.len() {
        return Err(PyValueError::new_err(format!("{} row numbers for {} rows", rows.len(), raw.len())));
    }
    let numbered: Vec<_> = rows.into_iter().zip(raw).collect();
    let (records, errors, stats) = py.detach(|| {
        let out = label_chunk(&engine.engine().scorer(CallOptions::default()), numbered, &options);
        let records = pairrm_label::record::to_ipc_stream(&out.records, options.style, options.id_kind);
        let errors: String = out.errors.iter().map(|e| serde_json::to_string(e).expect("serializes") + "\n").collect();
        (records, errors, serde_json::to_string(&out.stats).expect("serializes"))
    });
    let records = records.map_err(PyValueError::new_err)?;
    Ok((PyBytes::new(py, &records), PyBytes::new(py, errors.as_bytes()), stats))
}
