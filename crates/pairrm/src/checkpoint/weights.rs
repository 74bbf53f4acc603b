//! Weight files: `model.safetensors` (memory-mapped) and `pytorch_model.bin` (torch zip pickle).
//!
//! SKELETON: the helper implementing this module replaces every `todo!()`.

use std::path::Path;

use crate::error::Result;

/// One tensor as f32 values, row-major. Memory-mapped from the file when the file stores
/// aligned little-endian f32; converted (f16, bf16, unaligned) otherwise.
pub struct Tensor {
    /// The tensor's shape.
    pub shape: Vec<usize>,
    _private: (),
}

impl std::ops::Deref for Tensor {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        todo!()
    }
}

/// The tensors of one weight file.
pub struct Weights {
    _private: (),
}

impl Weights {
    /// Opens `model.safetensors` or `pytorch_model.bin` (chosen by file name).
    pub fn open(path: &Path) -> Result<Self> {
        let _ = path;
        todo!()
    }

    /// The tensor `name` with the expected `shape`; an error names the file, the tensor and
    /// what is wrong (missing, other shape, unsupported dtype, truncated data).
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let _ = (name, shape);
        todo!()
    }

    /// The shape of tensor `name`, if present.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let _ = name;
        todo!()
    }
}
