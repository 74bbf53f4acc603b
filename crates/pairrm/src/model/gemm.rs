//! Matrix products on the `gemm` crate, arranged so that each output row depends only on its own
//! input row: the same token gives the same bits whether it is computed alone or in a batch of any
//! size, on any number of threads.
//!
//! `gemm` picks special kernels for tiny products (a row-vector kernel for one row, a "horizontal"
//! kernel when `m·n ≤ 256`) and, when `m ≤ 64 && n ≤ 64`, a different depth blocking for `k > 512`.
//! Those choices depend on `m`, the number of rows — that is, on the batch. [`linear`] steers clear
//! of them: it pads tiny products with zero rows and splits deep narrow ones into depth chunks of at
//! most 512, so every call takes the general kernel with a depth blocking that does not depend on `m`.

use gemm::Parallelism;

/// Products with at most this many output elements take `gemm`'s horizontal kernel.
const HORIZONTAL_LIMIT: usize = 256;
/// Depth up to which `gemm` never splits the reduction.
const MAX_UNSPLIT_DEPTH: usize = 512;

/// How many threads a product may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// Run on the calling thread.
    One,
    /// Split over the current rayon pool.
    Pool,
}

impl Threads {
    fn parallelism(self, m: usize, n: usize) -> Parallelism {
        match self {
            Threads::Pool if m * n >= 4096 && rayon::current_num_threads() > 1 => Parallelism::Rayon(0),
            _ => Parallelism::None,
        }
    }
}

/// A strided matrix view: element `(r, c)` at `ptr[r * rs + c * cs]`.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    /// Row-major with row stride `rs`.
    pub fn rows(data: &'a [f32], rs: usize) -> Self {
        View { data, rs, cs: 1 }
    }

    /// The transpose of a row-major matrix with row stride `rs` (element `(r, c)` = `data[c * rs + r]`).
    pub fn transposed(data: &'a [f32], rs: usize) -> Self {
        View { data, rs: 1, cs: rs }
    }

    fn check(&self, rows: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * self.rs + (cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// `dst[m×n] (+)= a[m×k] · b[k×n]`, `dst` row-major with row stride `ldd`.
///
/// With `accumulate` the product is added to `dst`. Used for per-sequence attention products,
/// whose shapes depend only on the sequence.
#[allow(clippy::too_many_arguments)] // a GEMM call: three operands, their shapes and modes
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    dst: &mut [f32],
    ldd: usize,
    accumulate: bool,
    threads: Threads,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * ldd + n <= dst.len(), "destination out of bounds");
    // SAFETY: `dst` holds the whole destination (checked above) and is uniquely borrowed.
    unsafe { matmul_raw(m, n, k, a, b, dst.as_mut_ptr(), ldd, accumulate, threads) }
}

/// [`matmul`] into a raw destination: row `r`, column `c` at `dst + r * ldd + c`.
///
/// # Safety
/// `dst + (m-1)·ldd + n` must stay within one allocation that nothing else reads or writes at the
/// addresses this product writes (`m` rows of `n` elements) during the call.
#[allow(clippy::too_many_arguments)] // a GEMM call: three operands, their shapes and modes
pub unsafe fn matmul_raw(
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    dst: *mut f32,
    ldd: usize,
    accumulate: bool,
    threads: Threads,
) {
    if m == 0 || n == 0 {
        return;
    }
    a.check(m, k);
    b.check(k, n);
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                // SAFETY: within the destination rows the caller vouches for.
                unsafe { std::ptr::write_bytes(dst.add(r * ldd), 0, n) };
            }
        }
        return;
    }
    // SAFETY: the operands' bounds were checked above, the destination's by the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            ldd as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            threads.parallelism(m, n),
        );
    }
}

/// `dst[m×n] = x[m×k] · Wᵀ` for a torch `Linear` weight `w` of shape `[n, k]` (row-major), `x`
/// and `dst` row-major and contiguous. Row `r` of the result depends only on row `r` of `x`.
pub fn linear(m: usize, n: usize, k: usize, x: &[f32], w: &[f32], dst: &mut [f32], threads: Threads) {
    assert_eq!(dst.len(), m * n, "linear: output size");
    // SAFETY: `dst` holds exactly the m×n destination and is uniquely borrowed.
    unsafe { linear_into(m, n, k, x, w, dst.as_mut_ptr(), n, threads) }
}

/// [`linear`] into a strided destination: row `r`, column `c` at `dst + r·ldd + c`.
///
/// # Safety
/// As [`matmul_raw`]: the `m` rows of `n` elements at `dst` with row stride `ldd` must lie in one
/// allocation that nothing else accesses during the call.
#[allow(clippy::too_many_arguments)] // a GEMM call: operands, shapes and the destination's layout
pub unsafe fn linear_into(
    m: usize,
    n: usize,
    k: usize,
    x: &[f32],
    w: &[f32],
    dst: *mut f32,
    ldd: usize,
    threads: Threads,
) {
    assert_eq!(x.len(), m * k, "linear: input size");
    assert_eq!(w.len(), n * k, "linear: weight size");
    if m == 0 {
        return;
    }
    let min_rows = (HORIZONTAL_LIMIT / n.max(1) + 1).max(2);
    if m < min_rows {
        let mut xp = vec![0.0f32; min_rows * k];
        xp[..m * k].copy_from_slice(x);
        let mut dp = vec![0.0f32; min_rows * n];
        // SAFETY: `dp` is a contiguous min_rows×n destination owned here.
        unsafe { linear_general(min_rows, n, k, &xp, w, dp.as_mut_ptr(), n, threads) };
        for (r, row) in dp.chunks_exact(n).take(m).enumerate() {
            // SAFETY: row r of the destination the caller vouches for.
            unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), dst.add(r * ldd), n) };
        }
    } else {
        // SAFETY: the caller vouches for the destination.
        unsafe { linear_general(m, n, k, x, w, dst, ldd, threads) };
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn linear_general(
    m: usize,
    n: usize,
    k: usize,
    x: &[f32],
    w: &[f32],
    dst: *mut f32,
    ldd: usize,
    threads: Threads,
) {
    let chunk = if n <= 64 && k > MAX_UNSPLIT_DEPTH { MAX_UNSPLIT_DEPTH } else { k };
    let mut start = 0;
    while start < k {
        let depth = chunk.min(k - start);
        let (a, b) = (View::rows(&x[start..], k), View::transposed(&w[start..], k));
        // SAFETY: the destination is the caller's to vouch for.
        unsafe { matmul_raw(m, n, depth, a, b, dst, ldd, start > 0, threads) };
        start += depth;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn reference(m: usize, n: usize, k: usize, x: &[f32], w: &[f32]) -> Vec<f64> {
        let mut out = vec![0.0f64; m * n];
        for r in 0..m {
            for c in 0..n {
                out[r * n + c] = (0..k).map(|i| x[r * k + i] as f64 * w[c * k + i] as f64).sum();
            }
        }
        out
    }

    #[test]
    fn linear_is_correct() {
        let mut s = 1;
        for &(m, n, k) in &[(1, 3, 5), (7, 32, 32), (20, 64, 600), (3, 8, 8), (70, 48, 1100)] {
            let x: Vec<f32> = (0..m * k).map(|_| lcg(&mut s)).collect();
            let w: Vec<f32> = (0..n * k).map(|_| lcg(&mut s)).collect();
            let mut d = vec![0.0; m * n];
            linear(m, n, k, &x, &w, &mut d, Threads::One);
            let r = reference(m, n, k, &x, &w);
            for (a, b) in d.iter().zip(&r) {
                assert!((*a as f64 - b).abs() < 1e-4 * (1.0 + b.abs()), "{m}x{n}x{k}: {a} vs {b}");
            }
        }
    }

    /// Every row of a product equals, bit for bit, the same row computed in any other batch.
    #[test]
    fn rows_do_not_depend_on_the_batch() {
        let mut s = 7;
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for &(n, k) in &[(32, 32), (64, 32), (32, 64), (8, 8), (16, 8), (48, 1100), (256, 96), (1024, 1024)] {
            let big = 150;
            let x: Vec<f32> = (0..big * k).map(|_| lcg(&mut s)).collect();
            let w: Vec<f32> = (0..n * k).map(|_| lcg(&mut s)).collect();
            let mut full = vec![0.0; big * n];
            linear(big, n, k, &x, &w, &mut full, Threads::One);
            for &(start, m) in &[(0, 1), (3, 2), (5, 3), (10, 9), (0, 64), (40, 65), (1, 149)] {
                for threads in [Threads::One, Threads::Pool] {
                    let mut part = vec![0.0; m * n];
                    pool.install(|| linear(m, n, k, &x[start * k..(start + m) * k], &w, &mut part, threads));
                    assert!(
                        part.iter().zip(&full[start * n..(start + m) * n]).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "n={n} k={k} rows {start}..{} ({threads:?}) differ from the full product",
                        start + m
                    );
                }
            }
        }
    }
}
