//! The portable kernel: plain Rust over the packed layout, for CPUs without AVX2.

use rayon::prelude::*;

use super::pack::{pack_rows, quantize_row, PackedInt8, RowFormat};
use super::{GROUP, PANEL};

/// `out = x · Wᵀ` (see [`PackedInt8::product`]), one panel of 16 columns at a time per row.
pub(super) fn product(w: &PackedInt8, m: usize, x: &[f32], out: &mut [f32]) {
    let (n, k, groups) = (w.n(), w.k(), w.groups);
    let rows = pack_rows(x, m, k, RowFormat { mr: 1, offset: false }, quantize_row);
    out.par_chunks_mut(n).enumerate().for_each(|(r, out_row)| {
        let words = &rows.words[r * groups..(r + 1) * groups];
        for (p, out_panel) in out_row.chunks_mut(PANEL).enumerate() {
            let mut acc = [0i32; PANEL];
            for (word, group) in words.iter().zip(&w.data[p * groups..(p + 1) * groups]) {
                let a = word.to_le_bytes().map(|b| b as i8 as i32);
                for (lane, acc) in acc.iter_mut().enumerate() {
                    let b = &group.0[lane * GROUP..(lane + 1) * GROUP];
                    *acc += a[0] * b[0] as i32 + a[1] * b[1] as i32 + a[2] * b[2] as i32 + a[3] * b[3] as i32;
                }
            }
            for (lane, o) in out_panel.iter_mut().enumerate() {
                let c = p * PANEL + lane;
                *o = (acc[lane] as f32 * w.scales[c]) * rows.scales[r] + rows.centers[r] * w.sums[c];
            }
        }
    });
}
