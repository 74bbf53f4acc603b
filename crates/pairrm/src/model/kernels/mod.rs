//! Compute kernels written for this engine, each chosen at run time for the CPU it runs on.
//!
//! The CPU's features are detected once ([`cpu`]). A [`KernelLevel`] caps the instruction sets
//! the kernels may use — `PAIRRM_KERNELS=scalar|avx2|avx512`, or
//! [`crate::EngineOptions::kernel_level`] — so that every path can be run and tested on one
//! machine; each kernel family then takes its fastest kernel at or below the cap that the CPU
//! supports.
//!
//! # Packed weights: the contract of a kernel family
//!
//! A family (`bf16`, `int8`, and `exact`: the exact tier's f32 kernel where the CPU has AVX-512)
//! implements [`PackedWeight`] for its packed form of a torch `Linear`
//! weight `W` (`[n_out, n_in]`, row-major f32):
//!
//! - [`PackedWeight::pack`] converts and packs `W` once, at load, choosing the kernel from the
//!   level (the caller releases the f32 pages afterwards);
//! - [`PackedWeight::product`] computes `out[rows × n_out] = x[rows × n_in] · Wᵀ` (no bias) on
//!   the current rayon pool. Row `r` of `out` must depend only on row `r` of `x` — never on
//!   `rows`, the tiling or the number of threads — so that a pair gets the same bits in any batch;
//! - [`PackedWeight::bytes`] and [`PackedWeight::kernel`] feed the memory and kernel reports.
//!
//! The linear layers hold their weight as [`crate::model::Precision`] says
//! (`model::linear::Weight`); a new family adds its variant there and its `pack` call in
//! `Weight::load`.

pub(crate) mod bf16;
mod driver;
pub(crate) mod exact;
pub(crate) mod int8;

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The environment variable that caps the kernels' instruction sets (`scalar`, `avx2`, `avx512`).
pub const KERNELS_ENV: &str = "PAIRRM_KERNELS";

/// An instruction-set level the kernels may use, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelLevel {
    /// Portable Rust (what the compiler makes of it for the build target).
    Scalar,
    /// AVX2 and FMA (Haswell, Zen 1 and later).
    Avx2,
    /// AVX-512 F/BW/VL, with AVX512-BF16 and AVX512-VNNI where the CPU has them (Zen 4, Ice Lake,
    /// Sapphire Rapids).
    Avx512,
}

impl KernelLevel {
    /// The highest level this CPU supports.
    pub fn detected() -> KernelLevel {
        let c = cpu();
        if c.avx512 {
            KernelLevel::Avx512
        } else if c.avx2_fma {
            KernelLevel::Avx2
        } else {
            KernelLevel::Scalar
        }
    }

    /// The level in effect: `cap`, else [`KERNELS_ENV`] if set, else the highest; never above
    /// what the CPU supports. An unknown value of the variable is an error.
    pub fn resolve(cap: Option<KernelLevel>) -> Result<KernelLevel> {
        let cap = match cap {
            Some(c) => Some(c),
            None => match std::env::var(KERNELS_ENV) {
                Ok(v) if !v.trim().is_empty() => {
                    Some(v.trim().parse().map_err(|e: String| Error::invalid_input(KERNELS_ENV, e))?)
                }
                _ => None,
            },
        };
        let best = KernelLevel::detected();
        Ok(cap.map_or(best, |c| c.min(best)))
    }

    /// The level's name as the setting spells it.
    pub fn name(self) -> &'static str {
        match self {
            KernelLevel::Scalar => "scalar",
            KernelLevel::Avx2 => "avx2",
            KernelLevel::Avx512 => "avx512",
        }
    }
}

impl std::str::FromStr for KernelLevel {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "scalar" => Ok(KernelLevel::Scalar),
            "avx2" => Ok(KernelLevel::Avx2),
            "avx512" => Ok(KernelLevel::Avx512),
            other => Err(format!("unknown kernel level {other:?} (expected scalar, avx2 or avx512)")),
        }
    }
}

impl std::fmt::Display for KernelLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The CPU features the kernels use.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cpu {
    /// AVX2 and FMA.
    pub avx2_fma: bool,
    /// AVX-512 F, BW and VL (with AVX2 and FMA).
    pub avx512: bool,
    /// AVX512-BF16 (`vdpbf16ps`), with [`Cpu::avx512`].
    pub avx512_bf16: bool,
}

/// This CPU's features, detected once.
pub(crate) fn cpu() -> &'static Cpu {
    static CPU: OnceLock<Cpu> = OnceLock::new();
    CPU.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2_fma = has!("avx2") && has!("fma");
            let avx512 = avx2_fma && has!("avx512f") && has!("avx512bw") && has!("avx512vl");
            Cpu { avx2_fma, avx512, avx512_bf16: avx512 && has!("avx512bf16") }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Cpu::default()
    })
}

/// A linear layer's weight converted and packed once for a kernel family (see the module
/// documentation for the contract).
pub(crate) trait PackedWeight: Sized + Send + Sync {
    /// Converts and packs `w` (`[n_out, n_in]`, row-major f32) for the fastest kernel of the
    /// family at or below `level` that this CPU supports; `name` names the tensor in errors.
    fn pack(name: &str, w: &[f32], n_out: usize, n_in: usize, level: KernelLevel) -> Result<Self>;

    /// `out[rows × n_out] = x[rows × n_in] · Wᵀ` (no bias) on the current rayon pool. Row `r` of
    /// `out` depends only on row `r` of `x`.
    fn product(&self, rows: usize, x: &[f32], out: &mut [f32]);

    /// Bytes held (packed weights and their scales).
    fn bytes(&self) -> u64;

    /// The kernel's name as reports show it (e.g. `bf16-avx512-bf16`).
    fn kernel(&self) -> &'static str;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_order_and_cap() {
        for l in [KernelLevel::Scalar, KernelLevel::Avx2, KernelLevel::Avx512] {
            assert_eq!(l.to_string().parse::<KernelLevel>().unwrap(), l);
            assert!(KernelLevel::resolve(Some(l)).unwrap() <= l);
        }
        assert!(KernelLevel::Scalar < KernelLevel::Avx2 && KernelLevel::Avx2 < KernelLevel::Avx512);
        assert!("sse".parse::<KernelLevel>().unwrap_err().contains("scalar, avx2 or avx512"));
        assert_eq!(KernelLevel::resolve(Some(KernelLevel::Avx512)).unwrap(), KernelLevel::detected());
    }
}
