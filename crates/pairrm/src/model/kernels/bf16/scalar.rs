//! The portable tile: plain Rust over the packed layout, for CPUs without AVX2.

use super::super::driver::Tile;
use super::PANEL;

/// `f32::mul_add` (an FMA instruction where the target has one, a correctly rounded library
/// call elsewhere).
pub(super) struct Scalar;

const MR: usize = 4;
const COLS: usize = 16;

impl Tile for Scalar {
    const MR: usize = MR;
    const COLS: usize = COLS;
    const WORDS: usize = 2;

    unsafe fn tile(
        a: *const u32,
        lda: usize,
        b: *const u32,
        pairs: usize,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        accumulate: bool,
    ) {
        // SAFETY (whole body): the caller vouches for the MR rows at `a` (two words per pair), the
        // `pairs` panel rows at `b` and the `mr` rows of COLS outputs at `c`.
        let mut acc = [[0.0f32; COLS]; MR];
        if accumulate {
            for (r, row) in acc.iter_mut().enumerate().take(mr) {
                row.copy_from_slice(unsafe { std::slice::from_raw_parts(c.add(r * ldc), COLS) });
            }
        }
        for q in 0..pairs {
            let w = unsafe { std::slice::from_raw_parts(b.add(q * PANEL), COLS) };
            for (r, row) in acc.iter_mut().enumerate() {
                let x = unsafe { a.add(r * lda + 2 * q) };
                let (even, odd) = unsafe { (f32::from_bits(x.read()), f32::from_bits(x.add(1).read())) };
                for (s, &word) in row.iter_mut().zip(w) {
                    *s = odd.mul_add(f32::from_bits(word & 0xffff_0000), *s);
                    *s = even.mul_add(f32::from_bits(word << 16), *s);
                }
            }
        }
        for (r, row) in acc.iter().enumerate().take(mr) {
            unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), c.add(r * ldc), COLS) };
        }
    }
}
