//! Weight matrices as the encoder stores them: f32 (memory-mapped in place when the file allows)
//! or a 16-bit float (half the memory; widened back to f32 block by block when used, so that all
//! arithmetic stays f32).

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use rayon::prelude::*;

use std::cell::RefCell;

use super::gemm::{linear, linear_into, Threads};
use crate::checkpoint::{Tensor, WeightScope};
use crate::error::{Error, Result};

/// How weight matrices are stored in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightDtype {
    /// 32-bit floats, as in the checkpoints (memory-mapped where possible).
    #[default]
    F32,
    /// IEEE half precision (10-bit mantissa): half the memory, f32 arithmetic.
    F16,
    /// bfloat16 (7-bit mantissa, f32's range): half the memory, f32 arithmetic; less precise
    /// than `F16`.
    Bf16,
}

impl std::str::FromStr for WeightDtype {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(WeightDtype::F32),
            "f16" | "float16" | "half" => Ok(WeightDtype::F16),
            "bf16" | "bfloat16" => Ok(WeightDtype::Bf16),
            other => Err(format!("unknown weight dtype {other:?} (expected f32, f16 or bf16)")),
        }
    }
}

impl std::fmt::Display for WeightDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WeightDtype::F32 => "f32",
            WeightDtype::F16 => "f16",
            WeightDtype::Bf16 => "bf16",
        })
    }
}

/// Weight rows widened per block in the 16-bit product.
const BLOCK_ROWS: usize = 256;

thread_local! {
    /// A block of weight rows widened to f32.
    static WIDE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The destination of the 16-bit product, written by the blocks in disjoint columns.
struct SharedOut(*mut f32);

impl SharedOut {
    /// The address of column `c` of row 0.
    fn at(&self, c: usize) -> *mut f32 {
        // SAFETY: callers keep `c` within the first row.
        unsafe { self.0.add(c) }
    }
}

// SAFETY: the blocks sharing it write disjoint columns (see `Matrix::product`).
unsafe impl Sync for SharedOut {}

/// A weight matrix `[rows, cols]`, row-major (a torch `Linear` weight or an embedding table).
pub(crate) enum Matrix {
    F32(Tensor),
    /// Computed at load (the projected rel-embedding tables).
    Owned(Vec<f32>),
    Half(HalfData),
}

/// 16-bit storage.
pub(crate) enum HalfData {
    F16(Vec<f16>),
    Bf16(Vec<bf16>),
}

impl HalfData {
    /// Elements `range` widened to f32 into `out`.
    fn widen(&self, start: usize, out: &mut [f32]) {
        let end = start + out.len();
        match self {
            HalfData::F16(v) => v[start..end].convert_to_f32_slice(out),
            HalfData::Bf16(v) => v[start..end].convert_to_f32_slice(out),
        }
    }
}

impl Matrix {
    /// Reads tensor `name` of scope `w`, of shape `[rows, cols]`, and stores it as `dtype`.
    pub(crate) fn load(w: &WeightScope, name: &str, rows: usize, cols: usize, dtype: WeightDtype) -> Result<Self> {
        let t = w.get(name, &[rows, cols])?;
        let half = match dtype {
            WeightDtype::F32 => return Ok(Matrix::F32(t)),
            WeightDtype::F16 => {
                if let Some(v) = t.iter().find(|v| v.abs() > f16::MAX.to_f32()) {
                    return Err(Error::invalid_input(
                        "dtype",
                        format!("tensor `{}` holds {v}, beyond the f16 range: use bf16 or f32", w.name(name)),
                    ));
                }
                let mut v = vec![f16::ZERO; t.len()];
                v.convert_from_f32_slice(&t);
                HalfData::F16(v)
            }
            WeightDtype::Bf16 => {
                let mut v = vec![bf16::ZERO; t.len()];
                v.convert_from_f32_slice(&t);
                HalfData::Bf16(v)
            }
        };
        t.release_pages();
        Ok(Matrix::Half(half))
    }

    /// Values computed in f32, stored as `dtype`.
    pub(crate) fn from_f32(values: Vec<f32>, dtype: WeightDtype) -> Self {
        match dtype {
            WeightDtype::F32 => Matrix::Owned(values),
            WeightDtype::F16 => {
                let mut v = vec![f16::ZERO; values.len()];
                v.convert_from_f32_slice(&values);
                Matrix::Half(HalfData::F16(v))
            }
            WeightDtype::Bf16 => {
                let mut v = vec![bf16::ZERO; values.len()];
                v.convert_from_f32_slice(&values);
                Matrix::Half(HalfData::Bf16(v))
            }
        }
    }

    /// All values as f32: in place when stored as f32, else widened into `buf`.
    pub(crate) fn as_f32<'a>(&'a self, buf: &'a mut Vec<f32>) -> &'a [f32] {
        match self {
            Matrix::F32(t) => t,
            Matrix::Owned(v) => v,
            Matrix::Half(h) => {
                let n = match h {
                    HalfData::F16(v) => v.len(),
                    HalfData::Bf16(v) => v.len(),
                };
                buf.resize(n, 0.0);
                h.widen(0, buf);
                buf
            }
        }
    }

    /// The kernel of [`Matrix::product`], as reports show it.
    pub(crate) fn kernel(&self) -> &'static str {
        match self {
            Matrix::F32(_) | Matrix::Owned(_) => super::GEMM_KERNEL,
            Matrix::Half(HalfData::F16(_)) => "f32-gemm-f16-weights",
            Matrix::Half(HalfData::Bf16(_)) => "f32-gemm-bf16-weights",
        }
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> u64 {
        match self {
            Matrix::F32(t) => 4 * t.len() as u64,
            Matrix::Owned(v) => 4 * v.len() as u64,
            Matrix::Half(HalfData::F16(v)) => 2 * v.len() as u64,
            Matrix::Half(HalfData::Bf16(v)) => 2 * v.len() as u64,
        }
    }

    /// Row `r` (`out.len()` values) as f32.
    pub(crate) fn row_into(&self, r: usize, out: &mut [f32]) {
        let n = out.len();
        match self {
            Matrix::F32(t) => out.copy_from_slice(&t[r * n..(r + 1) * n]),
            Matrix::Owned(v) => out.copy_from_slice(&v[r * n..(r + 1) * n]),
            Matrix::Half(v) => v.widen(r * n, out),
        }
    }

    /// `out[m × n] = x[m × k] · selfᵀ` for a `[n, k]` matrix. Row `i` of the result depends only
    /// on row `i` of `x` (see [`linear`]).
    pub(crate) fn product(&self, m: usize, n: usize, k: usize, x: &[f32], out: &mut [f32]) {
        match self {
            Matrix::F32(t) => linear(m, n, k, x, t, out, Threads::Pool),
            Matrix::Owned(v) => linear(m, n, k, x, v, out, Threads::Pool),
            Matrix::Half(v) => {
                // Blocks of weight rows, widened to f32 (in per-thread scratch) and multiplied
                // straight into their columns of `out`; each block is computed the same way
                // whatever thread takes it.
                assert_eq!(out.len(), m * n, "product: output size");
                let out = SharedOut(out.as_mut_ptr());
                (0..n.div_ceil(BLOCK_ROWS)).into_par_iter().for_each(|b| {
                    let r0 = b * BLOCK_ROWS;
                    let rows = BLOCK_ROWS.min(n - r0);
                    WIDE.with(|cell| {
                        let mut wide = cell.borrow_mut();
                        wide.resize(rows * k, 0.0);
                        v.widen(r0 * k, &mut wide);
                        // SAFETY: block b writes columns r0..r0+rows of every row of `out` (row
                        // stride n), which no other block touches; `out` outlives the loop.
                        unsafe { linear_into(m, rows, k, x, &wide, out.at(r0), n, Threads::One) };
                    });
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_is_exact() {
        let vals = [0.0f32, -1.5, 3.140625, 1e-20, -65504.0];
        let b = HalfData::Bf16(vals.iter().map(|&v| bf16::from_f32(v)).collect());
        let h = HalfData::F16(vals.iter().map(|&v| f16::from_f32(v)).collect());
        let mut out = vec![0.0; vals.len() - 1];
        b.widen(1, &mut out);
        assert_eq!(out, vals[1..].iter().map(|&v| bf16::from_f32(v).to_f32()).collect::<Vec<_>>());
        h.widen(1, &mut out);
        assert_eq!(out, vals[1..].iter().map(|&v| f16::from_f32(v).to_f32()).collect::<Vec<_>>());
    }

    #[test]
    fn dtype_names() {
        assert_eq!("bf16".parse::<WeightDtype>().unwrap(), WeightDtype::Bf16);
        assert_eq!("f16".parse::<WeightDtype>().unwrap(), WeightDtype::F16);
        assert_eq!("F32".parse::<WeightDtype>().unwrap(), WeightDtype::F32);
        assert!("int8".parse::<WeightDtype>().is_err());
        assert_eq!(WeightDtype::Bf16.to_string(), "bf16");
    }
}
