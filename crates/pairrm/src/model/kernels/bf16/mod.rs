//! bf16 linear-layer products: weights converted to bfloat16 and packed once at load, activation
//! rows rounded to bfloat16 when the product runs, f32 accumulation.
//!
//! **The arithmetic, as every kernel computes it.** Values are rounded to bf16 to nearest, ties
//! to even; f32 subnormals round to a signed zero (as `vdpbf16ps` reads its inputs); NaN stays
//! NaN. With inputs padded with a zero to an even depth, output `(r, c)` is the chain, from
//! `s = +0`, over the input pairs `p` in order:
//!
//! `s = fma(x[r][2p+1], w[c][2p+1], s); s = fma(x[r][2p], w[c][2p], s)`
//!
//! — exactly what one lane of AVX512-BF16's `vdpbf16ps` does (the product of two bf16 values is
//! exact in f32, each addition rounds to nearest even, the odd element first; checked
//! bit for bit on Zen 4). The widening kernels (AVX-512F, AVX2, scalar) run the same chain with
//! FMAs, so every kernel gives the same bits, with one exception: `vdpbf16ps` flushes
//! subnormal products and partial sums (below 2⁻¹²⁶ in magnitude) to zero where an FMA keeps
//! them, which can only change a result whose partial sums all stay below about 2⁻¹⁰² (inputs are
//! never subnormal: see above). The chain does not depend on the number of rows, the tiling or the
//! threads, so a row gets the same bits in any batch.
//!
//! **Layout.** Weights are packed in panels of [`PANEL`] output columns: for each pair of inputs,
//! one 32-bit word per column holding its two bf16 weights (the even input in the low half) —
//! one `vdpbf16ps` operand per 16 columns, widened to f32 by a shift and a mask elsewhere.
//! Activations are packed per call, in blocks of the kernel's tile height (see [`pack`]).

mod pack;
mod scalar;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

use super::driver::{self, PanelPair, Tile};
pub(crate) use super::driver::{PanelsRef, RowsRef, PANEL};
use super::{cpu, KernelLevel, PackedWeight};
use crate::error::Result;
use pack::RowFormat;

thread_local! {
    /// The rounded activations of [`PackedBf16::product`], kept from call to call.
    static SPARE: std::cell::Cell<Vec<u32>> = const { std::cell::Cell::new(Vec::new()) };
}

#[cfg(test)]
use pack::round;

/// A bf16 kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Portable Rust (`f32::mul_add`).
    Scalar,
    /// AVX2 + FMA: weights widened to f32 by a shift and a mask.
    Avx2,
    /// AVX-512F: as AVX2, 16 lanes.
    Avx512,
    /// AVX512-BF16: `vdpbf16ps`, two multiply-adds per lane and instruction.
    Avx512Bf16,
}

impl Kernel {
    /// Every kernel, fastest first.
    #[cfg(test)]
    pub(crate) const ALL: [Kernel; 4] = [Kernel::Avx512Bf16, Kernel::Avx512, Kernel::Avx2, Kernel::Scalar];

    /// The kernel's name, as reports show it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "bf16-scalar",
            Kernel::Avx2 => "bf16-avx2",
            Kernel::Avx512 => "bf16-avx512",
            Kernel::Avx512Bf16 => "bf16-avx512-bf16",
        }
    }

    /// Whether this CPU can run the kernel.
    pub(crate) fn is_supported(self) -> bool {
        let c = cpu();
        match self {
            Kernel::Scalar => true,
            Kernel::Avx2 => c.avx2_fma,
            Kernel::Avx512 => c.avx512,
            Kernel::Avx512Bf16 => c.avx512_bf16,
        }
    }

    /// Rows per tile.
    fn tile_rows(self) -> usize {
        match self {
            Kernel::Scalar => <scalar::Scalar as Tile>::MR,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => <x86::Avx2 as Tile>::MR,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => <x86::Avx512 as Tile>::MR,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Bf16 => <x86::Avx512Bf16 as Tile>::MR,
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the scalar kernel exists off x86-64"),
        }
    }

    /// How the kernel reads its rows.
    fn format(self) -> RowFormat {
        match self {
            Kernel::Avx512Bf16 => RowFormat::Pairs,
            Kernel::Scalar | Kernel::Avx2 | Kernel::Avx512 => RowFormat::Wide,
        }
    }

    /// [`driver::run`] with this kernel's tile.
    ///
    /// # Safety
    /// As [`driver::run`]; the CPU must support the kernel.
    unsafe fn run(self, a: RowsRef, b: PanelsRef, out: *mut f32, ldc: usize, parallel: bool) {
        // SAFETY: the caller vouches for the CPU and the operands.
        unsafe {
            match self {
                Kernel::Scalar => driver::run::<scalar::Scalar>(a, b, out, ldc, parallel),
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2 => driver::run::<x86::Avx2>(a, b, out, ldc, parallel),
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx512 => driver::run::<x86::Avx512>(a, b, out, ldc, parallel),
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx512Bf16 => driver::run::<x86::Avx512Bf16>(a, b, out, ldc, parallel),
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!("only the scalar kernel exists off x86-64"),
            }
        }
    }

    /// The fastest kernel at or below `level` that this CPU supports.
    pub(crate) fn best(level: KernelLevel) -> Kernel {
        let candidates: &[Kernel] = match level {
            KernelLevel::Avx512 => &[Kernel::Avx512Bf16, Kernel::Avx512, Kernel::Avx2],
            KernelLevel::Avx2 => &[Kernel::Avx2],
            KernelLevel::Scalar => &[],
        };
        candidates.iter().copied().find(|k| k.is_supported()).unwrap_or(Kernel::Scalar)
    }
}

/// The weights of a torch `Linear` (`[n, k]`) in bf16, packed for the kernels.
pub(crate) struct PackedBf16 {
    n: usize,
    k: usize,
    /// Input pairs: `ceil(k / 2)`.
    pairs: usize,
    /// Panel `p`'s pair `q` at `data[p · pairs + q]`; inputs past `k` and columns past `n` are 0.
    data: Vec<PanelPair>,
    kernel: Kernel,
}

impl PackedBf16 {
    /// Packs `w` (`[n, k]`, row-major) for `kernel`, which this CPU must support.
    pub(crate) fn with_kernel(w: &[f32], n: usize, k: usize, kernel: Kernel) -> Self {
        assert_eq!(w.len(), n * k, "bf16 weight size");
        assert!(kernel.is_supported(), "bf16 kernel {} is not supported by this CPU", kernel.name());
        let pairs = k.div_ceil(2);
        let mut data = vec![];
        pack::pack_columns(w, n, k, k, &mut data, true);
        PackedBf16 { n, k, pairs, data, kernel }
    }
}

impl PackedWeight for PackedBf16 {
    fn pack(_name: &str, w: &[f32], n_out: usize, n_in: usize, level: KernelLevel) -> Result<Self> {
        // Any f32 has a bf16 rounding (large values round to infinity, as a cast would).
        Ok(PackedBf16::with_kernel(w, n_out, n_in, Kernel::best(level)))
    }

    fn product(&self, rows: usize, x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), rows * self.k, "bf16 product: input size");
        assert_eq!(out.len(), rows * self.n, "bf16 product: output size");
        if rows == 0 || self.n == 0 {
            return;
        }
        let kernel = self.kernel;
        // A spare buffer, taken and given back (not borrowed: the product may start another on
        // this thread while it waits for its tasks).
        let mut words = SPARE.with(|s| s.take());
        let (mr, format) = (kernel.tile_rows(), kernel.format());
        let stride = pack::round_rows(x, rows, self.k, self.k, format, mr, &mut words, true);
        let a = RowsRef { words: &words, stride, m: rows };
        let b = PanelsRef { data: &self.data, pairs: self.pairs, n: self.n };
        // SAFETY: `out` is the rows × n destination, uniquely borrowed; the kernel was checked to
        // be supported when the weights were packed; `a` is in its format, padded with a tile.
        unsafe { kernel.run(a, b, out.as_mut_ptr(), self.n, true) };
        SPARE.with(|s| s.set(words));
    }

    fn bytes(&self) -> u64 {
        (self.data.len() * std::mem::size_of::<PanelPair>()) as u64
    }

    fn kernel(&self) -> &'static str {
        self.kernel.name()
    }
}

impl Kernel {
    /// `out[m × n] = a · bᵀ` on the calling thread, `out` with row stride `ldc`.
    ///
    /// # Safety
    /// The CPU must support the kernel; `a` must have been rounded for it; the `m` rows of `n`
    /// values at `out` must be valid and accessed by nothing else during the call.
    pub(crate) unsafe fn product(self, a: RowsRef, b: PanelsRef, out: *mut f32, ldc: usize) {
        // SAFETY: the caller vouches for the CPU, the format and the destination.
        unsafe { self.run(a, b, out, ldc, false) }
    }
}

/// Activations rounded for a kernel, in a buffer kept from call to call: the left operands of the
/// attention's products.
#[derive(Default)]
pub(crate) struct RowBuf {
    words: Vec<u32>,
    /// Words per row.
    stride: usize,
    /// Words per input pair.
    pair_words: usize,
    rows: usize,
}

impl RowBuf {
    /// `m` rows of `x` (`k` values each, row stride `ldx`) rounded for `kernel`, followed by a
    /// tile of zero rows; on the current rayon pool when `parallel`.
    pub(crate) fn fill(&mut self, kernel: Kernel, x: &[f32], m: usize, k: usize, ldx: usize, parallel: bool) {
        let (mr, format) = (kernel.tile_rows(), kernel.format());
        self.stride = pack::round_rows(x, m, k, ldx, format, mr, &mut self.words, parallel);
        self.pair_words = format.words();
        self.rows = m;
    }

    /// Rows `first..first + m` from input `col` (even) on: the rows of one sequence and head.
    pub(crate) fn view(&self, first: usize, m: usize, col: usize) -> RowsRef<'_> {
        assert!(first + m <= self.rows && col.is_multiple_of(2), "rows out of range");
        RowsRef { words: &self.words[first * self.stride + col / 2 * self.pair_words..], stride: self.stride, m }
    }
}

/// Columns packed in panels, in a buffer kept from call to call: the right operands of the
/// attention's products.
#[derive(Default)]
pub(crate) struct PanelBuf {
    data: Vec<PanelPair>,
    pairs: usize,
    n: usize,
}

impl PanelBuf {
    /// The `n` rows of `src` (row stride `lds`, `k` values each) as columns: keys, or the rows of
    /// a projected rel table.
    pub(crate) fn columns(&mut self, src: &[f32], n: usize, k: usize, lds: usize) {
        pack::pack_columns(src, n, k, lds, &mut self.data, false);
        (self.pairs, self.n) = (k.div_ceil(2), n);
    }

    /// The `depth` rows of `src` (row stride `lds`, `n` values each) as the depth: values.
    pub(crate) fn depth(&mut self, src: &[f32], depth: usize, n: usize, lds: usize) {
        pack::pack_depth(src, depth, n, lds, &mut self.data);
        (self.pairs, self.n) = (depth.div_ceil(2), n);
    }

    /// Columns `first..first + n`; `first` must start a panel.
    pub(crate) fn view(&self, first: usize, n: usize) -> PanelsRef<'_> {
        assert!(first.is_multiple_of(PANEL) && first + n <= self.n, "columns out of range");
        PanelsRef { data: &self.data[first / PANEL * self.pairs..], pairs: self.pairs, n }
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> u64 {
        (self.data.len() * std::mem::size_of::<PanelPair>()) as u64
    }
}
