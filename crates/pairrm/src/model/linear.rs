//! The two parameterised building blocks of the encoder: a torch `Linear` and a `LayerNorm`; and
//! the forms a linear layer's weight takes in each precision tier.

use super::gemm::{linear, Threads};
use super::kernels::bf16::{Kernel, PackedBf16};
use super::kernels::exact::PackedF32;
use super::kernels::int8::PackedInt8;
use super::kernels::{KernelLevel, PackedWeight};
use super::matrix::{Matrix, WeightDtype};
use super::ops::{add_bias, layer_norm};
use super::precision::Precision;
use crate::checkpoint::{Tensor, WeightScope};
use crate::error::{Error, Result};

/// How a model's weights are held and multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelOptions {
    /// The arithmetic tier of the linear layers.
    pub precision: Precision,
    /// How the exact tier stores its weights (f32, or 16 bits widened for f32 arithmetic); the
    /// reduced tiers hold their own forms, so anything but `F32` is an error with them.
    pub dtype: WeightDtype,
    /// The highest instruction-set level the kernels may use (`None`: `PAIRRM_KERNELS`, else the
    /// CPU's best).
    pub kernel_level: Option<KernelLevel>,
}

/// [`ModelOptions`] checked, with the kernel level resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Numerics {
    pub(crate) precision: Precision,
    pub(crate) dtype: WeightDtype,
    pub(crate) level: KernelLevel,
}

impl Numerics {
    pub(crate) fn new(options: &ModelOptions) -> Result<Self> {
        if options.precision != Precision::F32 && options.dtype != WeightDtype::F32 {
            return Err(Error::invalid_input(
                "dtype",
                format!(
                    "weight storage {} applies to precision f32 only (precision {} holds its weights in its own form)",
                    options.dtype, options.precision
                ),
            ));
        }
        let level = KernelLevel::resolve(options.kernel_level)?;
        Ok(Numerics { precision: options.precision, dtype: options.dtype, level })
    }

    /// The bf16 kernel of the attention's products in the reduced tiers (`None`: f32 products,
    /// the exact tier).
    pub(crate) fn attention_kernel(&self) -> Option<Kernel> {
        match self.precision {
            Precision::F32 => None,
            Precision::Bf16 | Precision::Int8 => Some(Kernel::best(self.level)),
        }
    }
}

/// A linear layer's weight in the form its precision multiplies.
pub(crate) enum Weight {
    /// f32 packed for the exact tier's own AVX-512 kernel (weights stored f32, CPUs with AVX-512F).
    F32(PackedF32),
    /// f32 arithmetic on the `gemm` crate: the exact tier on other CPUs (the weight stored f32,
    /// memory-mapped in place), or with 16-bit weight storage (widened block by block).
    Exact(Matrix),
    /// bf16 packed for the bf16 kernels.
    Bf16(PackedBf16),
    /// int8 per output channel, packed for the int8 kernels.
    Int8(PackedInt8),
}

impl Weight {
    /// Reads tensor `name` of scope `w` (`[n_out, n_in]`) into the form `numerics` asks for.
    pub(crate) fn load(w: &WeightScope, name: &str, n_out: usize, n_in: usize, numerics: &Numerics) -> Result<Self> {
        let level = numerics.level;
        match numerics.precision {
            Precision::F32 if numerics.dtype == WeightDtype::F32 && PackedF32::available(level) => {
                Ok(Weight::F32(packed(w, name, n_out, n_in, level)?))
            }
            Precision::F32 => Ok(Weight::Exact(Matrix::load(w, name, n_out, n_in, numerics.dtype)?)),
            Precision::Bf16 => Ok(Weight::Bf16(packed(w, name, n_out, n_in, level)?)),
            Precision::Int8 => Ok(Weight::Int8(packed(w, name, n_out, n_in, level)?)),
        }
    }

    /// `w` (`[n_out, n_in]`, row-major) in the form of `precision` (f32 kept as is).
    fn from_values(w: Vec<f32>, n_out: usize, n_in: usize, precision: Precision, level: KernelLevel) -> Result<Self> {
        match precision {
            Precision::F32 if PackedF32::available(level) => {
                Ok(Weight::F32(PackedF32::pack("weight", &w, n_out, n_in, level)?))
            }
            Precision::F32 => Ok(Weight::Exact(Matrix::from_f32(w, WeightDtype::F32))),
            Precision::Bf16 => Ok(Weight::Bf16(PackedBf16::pack("weight", &w, n_out, n_in, level)?)),
            Precision::Int8 => Ok(Weight::Int8(PackedInt8::pack("weight", &w, n_out, n_in, level)?)),
        }
    }

    /// `out[rows × n_out] = x[rows × n_in] · Wᵀ`. Row `r` of `out` depends only on row `r` of `x`.
    fn product(&self, rows: usize, n_out: usize, n_in: usize, x: &[f32], out: &mut [f32]) {
        match self {
            Weight::F32(p) => p.product(rows, x, out),
            Weight::Exact(m) => m.product(rows, n_out, n_in, x, out),
            Weight::Bf16(p) => p.product(rows, x, out),
            Weight::Int8(p) => p.product(rows, x, out),
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            Weight::F32(p) => p.bytes(),
            Weight::Exact(m) => m.bytes(),
            Weight::Bf16(p) => p.bytes(),
            Weight::Int8(p) => p.bytes(),
        }
    }

    fn kernel(&self) -> &'static str {
        match self {
            Weight::F32(p) => p.kernel(),
            Weight::Exact(m) => m.kernel(),
            Weight::Bf16(p) => p.kernel(),
            Weight::Int8(p) => p.kernel(),
        }
    }
}

/// Tensor `name` of scope `w` (`[n_out, n_in]`) packed as `P`; the file's pages of it are
/// released (the packed copy replaces them).
fn packed<P: PackedWeight>(w: &WeightScope, name: &str, n_out: usize, n_in: usize, level: KernelLevel) -> Result<P> {
    let t = w.get(name, &[n_out, n_in])?;
    let p = P::pack(&w.name(name), &t, n_out, n_in, level)?;
    t.release_pages();
    Ok(p)
}

/// A torch `Linear`: `weight` `[n_out, n_in]`, `bias` `[n_out]`.
pub(crate) struct Linear {
    weight: Weight,
    pub(crate) bias: Tensor,
    n_out: usize,
    n_in: usize,
}

impl Linear {
    /// Reads `weight` and `bias` of scope `w`, the weight in the form `numerics` asks for.
    pub(crate) fn load(w: &WeightScope, n_out: usize, n_in: usize, numerics: &Numerics) -> Result<Self> {
        Ok(Linear {
            weight: Weight::load(w, "weight", n_out, n_in, numerics)?,
            bias: w.get("bias", &[n_out])?,
            n_out,
            n_in,
        })
    }

    /// `x · Wᵀ + b` for the `rows` rows of `x`, in f32 with the checkpoint's f32 weights whatever
    /// the precision: for input-independent tables computed once at load.
    pub(crate) fn exact_forward(w: &WeightScope, n_out: usize, n_in: usize, x: &[f32]) -> Result<Vec<f32>> {
        let (weight, bias) = (w.get("weight", &[n_out, n_in])?, w.get("bias", &[n_out])?);
        let rows = x.len() / n_in;
        let mut out = vec![0.0; rows * n_out];
        linear(rows, n_out, n_in, x, &weight, &mut out, Threads::Pool);
        add_bias(&mut out, &bias);
        Ok(out)
    }

    /// Output features.
    pub(crate) fn n_out(&self) -> usize {
        self.n_out
    }

    /// Bytes of the weight and bias.
    pub(crate) fn bytes(&self) -> u64 {
        self.weight.bytes() + 4 * self.bias.len() as u64
    }

    /// The kernel of the product.
    pub(crate) fn kernel(&self) -> &'static str {
        self.weight.kernel()
    }

    /// Whether the weight is packed for a reduced-precision kernel (then a product's cost does
    /// not grow when its rows are split over several calls).
    pub(crate) fn is_packed(&self) -> bool {
        !matches!(self.weight, Weight::Exact(_))
    }

    /// `out = x · Wᵀ` for `rows` rows, without the bias (which the caller fuses into its epilogue).
    pub(crate) fn product(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        self.weight.product(rows, self.n_out, self.n_in, &x[..rows * self.n_in], &mut out[..rows * self.n_out]);
    }

    /// `out = x · Wᵀ + b` for `rows` rows.
    pub(crate) fn forward(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        self.product(x, rows, out);
        add_bias(&mut out[..rows * self.n_out], &self.bias);
    }
}

/// One linear layer's product at a given precision, outside a model: for measuring this
/// machine's rates (`pairrm bench`) with the kernels the model would run.
pub struct LinearProduct {
    weight: Weight,
    n_out: usize,
    n_in: usize,
}

impl LinearProduct {
    /// The weight `w` (`[n_out, n_in]`, row-major) in the form of `precision`, for the kernels at
    /// or below `level` (`None`: as a model would choose).
    pub fn new(
        w: Vec<f32>,
        n_out: usize,
        n_in: usize,
        precision: Precision,
        level: Option<KernelLevel>,
    ) -> Result<Self> {
        assert_eq!(w.len(), n_out * n_in, "weight size");
        let level = KernelLevel::resolve(level)?;
        Ok(LinearProduct { weight: Weight::from_values(w, n_out, n_in, precision, level)?, n_out, n_in })
    }

    /// `out[rows × n_out] = x[rows × n_in] · Wᵀ` on the current rayon pool.
    pub fn product(&self, rows: usize, x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), rows * self.n_in, "input size");
        assert_eq!(out.len(), rows * self.n_out, "output size");
        self.weight.product(rows, self.n_out, self.n_in, x, out);
    }

    /// The kernel that runs.
    pub fn kernel(&self) -> &'static str {
        self.weight.kernel()
    }
}

/// A `LayerNorm` over rows of `gamma.len()` values.
pub(crate) struct LayerNorm {
    pub(crate) gamma: Tensor,
    pub(crate) beta: Tensor,
    pub(crate) eps: f64,
}

impl LayerNorm {
    /// Reads `weight` (γ) and `bias` (β) of scope `w`, both `[n]`.
    pub(crate) fn load(w: &WeightScope, n: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm { gamma: w.get("weight", &[n])?, beta: w.get("bias", &[n])?, eps })
    }

    /// Normalises every row of `x` in place.
    pub(crate) fn forward(&self, x: &mut [f32]) {
        layer_norm(x, &self.gamma, &self.beta, self.eps);
    }

    /// Bytes of γ and β.
    pub(crate) fn bytes(&self) -> u64 {
        4 * (self.gamma.len() + self.beta.len()) as u64
    }
}
