//! Int8 linear-layer products: per-output-channel symmetric int8 weights, activations quantized
//! per row (token) on the fly, exact i32 accumulation, f32 results.
//!
//! **Scheme.** Weight row `c` (one output channel) is stored as `qw = round(w · 127 / max|w_c|)`
//! in `[-127, 127]` with scale `sw[c] = max|w_c| / 127`. Each activation row `r` is quantized
//! when the product runs, symmetrically about the middle of its range: center
//! `cx = (min + max) / 2`, scale `sx = (max − min) / 254`, `qx = round((x − cx) / sx)` in
//! `[-127, 127]`. Then
//!
//! `out[r][c] = ((Σ_k qx[r][k] · qw[c][k]) as f32 · sw[c]) · sx[r] + cx[r] · Σ_k qw[c][k] · sw[c]`
//!
//! (the last factor precomputed per column). The sum is an exact integer (|Σ| ≤ 127² · k fits
//! i32 for any k below 133 000) and the rest is the same f32 operations in the same order in
//! every kernel, so every kernel returns the same bits, and row `r` depends only on row `r` of
//! the input: never on the number of rows, the tiling or the number of threads.
//!
//! **Why this activation scheme.** Centering gives the resolution of an asymmetric u8 scheme
//! (255 levels over the row's range, which matters for one-sided rows such as GELU outputs:
//! about 30% less error than symmetric about 0) while the integer operands stay symmetric int8.
//! That lets the AVX2 kernel use `vpmaddubsw` with no chance of 16-bit saturation: it multiplies
//! `|qx|` (≤ 127) by `qw` carrying the sign of `qx` (≤ 127 in magnitude), so a pair sums to at
//! most 2·127² = 32 258 < 2¹⁵. Unsigned u8 activations with a zero point would saturate there
//! unless the weights lost a bit, and would then differ from the VNNI kernels. The VNNI kernels
//! (`vpdpbusd` takes unsigned × signed bytes with no intermediate saturation) store `qx + 128`
//! and subtract `128 · Σ_k qw[c][k]`, precomputed per column.
//!
//! **Layout.** Weights are packed once, in panels of 16 output columns: for each group of four
//! consecutive inputs, 64 bytes holding the four weights of each of the 16 columns. That is one
//! 512-bit vector or two 256-bit ones, the operand of `vpdpbusd` (and of the AVX2 sequence), so
//! every kernel reads the same packed weights. Activations are packed per product in tiles of the
//! kernel's row count, one 32-bit word (four inputs) per row and group, ready to broadcast.

#[cfg(test)]
mod bench;
mod pack;
mod scalar;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

pub(crate) use pack::PackedInt8;

use super::KernelLevel;

/// Output columns per weight panel.
const PANEL: usize = 16;
/// Inputs per group (the depth of one `vpdpbusd` lane).
const GROUP: usize = 4;

/// An instruction-set level of the int8 kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Portable Rust, for any CPU.
    Scalar,
    /// AVX2: `vpmaddubsw` + `vpmaddwd` (Haswell, Zen 1 and later).
    Avx2,
    /// AVX-VNNI: 256-bit VEX `vpdpbusd` (Alder Lake, Zen 5 and later).
    AvxVnni,
    /// AVX-512 VNNI: 512-bit `vpdpbusd` (Ice Lake, Zen 4 and later).
    Avx512Vnni,
    /// The AVX-VNNI kernel's code with the EVEX form of the 256-bit `vpdpbusd`: lets the AVX-VNNI
    /// kernel be tested on AVX-512 machines, which lack AVX-VNNI.
    #[cfg(test)]
    Avx512Vnni256,
}

impl Level {
    /// Every level, fastest first.
    #[cfg(test)]
    pub(crate) const ALL: [Level; 5] =
        [Level::Avx512Vnni, Level::AvxVnni, Level::Avx512Vnni256, Level::Avx2, Level::Scalar];

    /// The kernel's name, as reports show it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Level::Scalar => "int8-scalar",
            Level::Avx2 => "int8-avx2",
            Level::AvxVnni => "int8-avx-vnni",
            Level::Avx512Vnni => "int8-avx512-vnni",
            #[cfg(test)]
            Level::Avx512Vnni256 => "int8-avx512-vnni-256",
        }
    }

    /// Whether this CPU can run the level.
    pub(crate) fn is_supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Level::Scalar => true,
                Level::Avx2 => has!("avx2"),
                Level::AvxVnni => has!("avx2") && has!("avxvnni"),
                Level::Avx512Vnni => has!("avx512f") && has!("avx512bw") && has!("avx512vnni"),
                #[cfg(test)]
                Level::Avx512Vnni256 => has!("avx2") && has!("avx512f") && has!("avx512vl") && has!("avx512vnni"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Level::Scalar
        }
    }

    /// The fastest level at or below the cap `cap` that this CPU supports: AVX-512 VNNI under
    /// `avx512`; AVX-VNNI (a 256-bit extension of AVX2 CPUs) or else AVX2 under `avx2` and above;
    /// the portable kernel under `scalar`.
    pub(crate) fn for_cap(cap: KernelLevel) -> Level {
        let allowed: &[Level] = match cap {
            KernelLevel::Avx512 => &[Level::Avx512Vnni, Level::AvxVnni, Level::Avx2],
            KernelLevel::Avx2 => &[Level::AvxVnni, Level::Avx2],
            KernelLevel::Scalar => &[],
        };
        allowed.iter().copied().find(|l| l.is_supported()).unwrap_or(Level::Scalar)
    }
}
