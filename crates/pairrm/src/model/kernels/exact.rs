//! Exact f32 linear-layer products on weights packed once at load: the exact tier's own kernel,
//! for CPUs with AVX-512F (elsewhere the exact tier multiplies with the `gemm` crate, which
//! measured faster there: see docs/precision.md).
//!
//! **The arithmetic.** Output `(r, c)` is the chain, from `s = +0`, over the inputs `q` in order:
//! `s = fma(x[r][q], w[c][q], s)` — f32 throughout, one rounding per step. The chain does not
//! depend on the number of rows, the tiling or the threads, so a row gets the same bits in any
//! batch. It is not torch's summation order (no two f32 libraries share one): results agree with
//! the reference within the f32 parity bounds, as the `gemm` crate's do.
//!
//! **Layout.** Weights are packed in panels of [`PANEL`] output columns, one f32 word per column
//! per input (the panels of [`super::driver`]). A product copies its activation rows to a padded
//! stride — one pass over the input, where the `gemm` crate packed both operands on every call —
//! because rows 4 KiB apart (1024 or 4096 f32 inputs) would share their cache sets.

use rayon::prelude::*;

use super::driver::{self, PanelPair, PanelsRef, RowsRef, Tile, PANEL};
use super::{cpu, KernelLevel, PackedWeight};
use crate::error::Result;

thread_local! {
    /// The activation rows of [`PackedF32::product`] at a padded stride, kept from call to call.
    static SPARE: std::cell::Cell<Vec<u32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Rows per parallel copying task.
const COPY_ROWS: usize = 16;
/// Products with fewer input values than this copy their rows on the calling thread.
const PARALLEL_VALUES: usize = 1 << 16;
/// The kernel's name as reports show it.
const NAME: &str = "f32-avx512";

/// A `[n, k]` f32 weight packed in panels for the exact AVX-512 kernel.
pub(crate) struct PackedF32 {
    n: usize,
    k: usize,
    data: Vec<PanelPair>,
}

impl PackedF32 {
    /// Whether the kernel runs at `level` on this CPU.
    pub(crate) fn available(level: KernelLevel) -> bool {
        cfg!(target_arch = "x86_64") && level >= KernelLevel::Avx512 && cpu().avx512
    }
}

impl PackedWeight for PackedF32 {
    /// Packs `w`; the caller checks [`PackedF32::available`] first.
    fn pack(_name: &str, w: &[f32], n_out: usize, n_in: usize, level: KernelLevel) -> Result<Self> {
        let (n, k) = (n_out, n_in);
        assert_eq!(w.len(), n * k, "f32 weight size");
        assert!(PackedF32::available(level), "{NAME} is not available at level {level} on this CPU");
        let mut data = vec![PanelPair([0; PANEL]); n.div_ceil(PANEL) * k];
        if k > 0 {
            data.par_chunks_mut(k).enumerate().for_each(|(p, panel)| {
                for lane in 0..PANEL.min(n - p * PANEL) {
                    let row = &w[(p * PANEL + lane) * k..][..k];
                    for (step, &v) in panel.iter_mut().zip(row) {
                        step.0[lane] = v.to_bits();
                    }
                }
            });
        }
        Ok(PackedF32 { n, k, data })
    }

    fn product(&self, rows: usize, x: &[f32], out: &mut [f32]) {
        let (n, k) = (self.n, self.k);
        assert_eq!(x.len(), rows * k, "f32 product: input size");
        assert_eq!(out.len(), rows * n, "f32 product: output size");
        if rows == 0 || n == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            let mr = <x86::Avx512 as Tile>::MR;
            // The rows at a padded stride, then zero rows up to a whole tile. A spare buffer,
            // taken and given back (not borrowed: the product may start another on this thread
            // while it waits for its tasks).
            let mut words = SPARE.with(|s| s.take());
            let stride = driver::padded_stride(k);
            let len = rows.div_ceil(mr) * mr * stride;
            // Every word the kernel reads is written below (the padding of a row is never read).
            words.resize(len, 0);
            words.truncate(len);
            let (body, zeros) = words.split_at_mut(rows * stride);
            zeros.fill(0);
            let copy = |(i, dst): (usize, &mut [u32])| {
                for (r, d) in dst.chunks_exact_mut(stride).enumerate() {
                    let row = &x[(i * COPY_ROWS + r) * k..][..k];
                    // SAFETY: f32 and u32 have the same size and alignment; the words are the bits.
                    d[..k].copy_from_slice(unsafe { std::slice::from_raw_parts(row.as_ptr().cast::<u32>(), k) });
                }
            };
            if rows * k >= PARALLEL_VALUES {
                body.par_chunks_mut(COPY_ROWS * stride).enumerate().for_each(copy);
            } else {
                body.chunks_mut(COPY_ROWS * stride).enumerate().for_each(copy);
            }
            let a = RowsRef { words: &words, stride, m: rows };
            let b = PanelsRef { data: &self.data, pairs: k, n };
            // SAFETY: the CPU has AVX-512F (checked when the weights were packed); the rows hold
            // k words each and are padded to whole tiles; `out` is the rows × n destination,
            // uniquely borrowed.
            unsafe { driver::run::<x86::Avx512>(a, b, out.as_mut_ptr(), n, true) };
            SPARE.with(|s| s.set(words));
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("{NAME} is never packed off x86-64");
    }

    fn bytes(&self) -> u64 {
        (self.data.len() * std::mem::size_of::<PanelPair>()) as u64
    }

    fn kernel(&self) -> &'static str {
        NAME
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The AVX-512F tile: the sums of 12 rows × 32 columns in 24 registers over the depth chunk;
    //! per input, two weight vectors loaded and each row's activation broadcast from memory.

    use std::arch::x86_64::*;

    use super::super::driver::{sums512, Tile};
    use super::PANEL;

    /// AVX-512F: 12 rows × 32 columns.
    pub(super) struct Avx512;

    impl Tile for Avx512 {
        const MR: usize = 12;
        const COLS: usize = 32;
        const WORDS: usize = 1;
        // Measured (Zen 4, 2 threads, deberta-v3-large passes): 48 × 256 tasks, columns outside,
        // kept both threads busiest; 96-row tasks left one idle 5% more at the regions' ends.
        const TASK_COLS: usize = 256;
        const COLUMNS_OUTSIDE: bool = true;

        unsafe fn tile(
            a: *const u32,
            lda: usize,
            b: *const u32,
            steps: usize,
            c: *mut f32,
            ldc: usize,
            mr: usize,
            accumulate: bool,
        ) {
            // SAFETY: the caller vouches for the CPU and the memory.
            unsafe { tile_avx512::<12>(a.cast(), lda, b.cast(), steps, c, ldc, mr, accumulate) }
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_avx512<const MR: usize>(
        a: *const f32,
        lda: usize,
        b: *const f32,
        steps: usize,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        accumulate: bool,
    ) {
        // SAFETY (whole body): the caller vouches for the MR rows at `a` (row stride `lda`, `steps`
        // values read from each), for `steps` panel rows at `b` (32 values read from each) and for
        // the `mr` rows of 32 outputs at `c`.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; MR];
            let rows: [*const f32; MR] = std::array::from_fn(|r| a.add(r * lda));
            if accumulate {
                sums512::load(&mut acc, c, ldc, mr);
            }
            for q in 0..steps {
                let w = b.add(q * PANEL);
                let (w0, w1) = (_mm512_loadu_ps(w), _mm512_loadu_ps(w.add(16)));
                for (r, s) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(rows[r].add(q).read());
                    s[0] = _mm512_fmadd_ps(x, w0, s[0]);
                    s[1] = _mm512_fmadd_ps(x, w1, s[1]);
                }
            }
            sums512::store(&acc, c, ldc, mr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// The defined chain, computed plainly.
    fn chain(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                let mut s = 0.0f32;
                for q in 0..k {
                    s = x[r * k + q].mul_add(w[c * k + q], s);
                }
                out[r * n + c] = s;
            }
        }
        out
    }

    /// The kernel gives the defined chain's bits for shapes with partial tiles, partial panels,
    /// several depth chunks and several tasks, on 1 and 3 threads; any block of rows gives the
    /// same bits as the whole.
    #[test]
    fn the_kernel_computes_the_chain_in_any_batch() {
        if !PackedF32::available(KernelLevel::detected()) {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        let mut s = 3;
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        for &(m, n, k) in &[(1, 1, 1), (5, 33, 7), (13, 70, 1100), (61, 600, 64), (25, 48, 2500)] {
            let x: Vec<f32> = (0..m * k).map(|_| lcg(&mut s)).collect();
            let w: Vec<f32> = (0..n * k).map(|_| lcg(&mut s)).collect();
            let want = chain(&x, &w, m, n, k);
            let p = PackedF32::pack("w", &w, n, k, KernelLevel::Avx512).unwrap();
            assert_eq!(p.bytes(), (n.div_ceil(PANEL) * PANEL * k * 4) as u64);
            for threads in [1, 3] {
                let mut out = vec![f32::NAN; m * n];
                if threads == 1 {
                    p.product(m, &x, &mut out);
                } else {
                    pool.install(|| p.product(m, &x, &mut out));
                }
                assert!(
                    out.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{m}x{n}x{k} on {threads} threads differs from the chain"
                );
            }
            for (start, len) in [(0, 1), (m / 2, m - m / 2), (m - 1, 1)] {
                let mut part = vec![f32::NAN; len * n];
                pool.install(|| p.product(len, &x[start * k..(start + len) * k], &mut part));
                assert!(
                    part.iter().zip(&want[start * n..]).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{m}x{n}x{k}: rows {start}..{} alone differ",
                    start + len
                );
            }
        }
    }

    #[test]
    fn the_kernel_needs_the_avx512_level() {
        assert!(!PackedF32::available(KernelLevel::Avx2));
        assert!(!PackedF32::available(KernelLevel::Scalar));
        assert_eq!(PackedF32::available(KernelLevel::Avx512), cpu().avx512);
    }
}
