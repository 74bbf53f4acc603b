//! Rounding to bf16 and packing: weights once at load, activation rows at every product.

use rayon::prelude::*;

use super::super::driver::padded_stride;
use super::{PanelPair, PANEL};
use crate::model::vmath::dispatch;

/// `x` rounded to bf16 (the upper 16 bits of an f32): to nearest, ties to even; subnormals and
/// zeros to a zero of the same sign; NaN to a quiet NaN; overflow to infinity.
#[inline(always)]
pub(crate) fn round(x: f32) -> u16 {
    let b = x.to_bits();
    let nearest = b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16;
    let is_nan = (b & 0x7fff_ffff) > 0x7f80_0000;
    let is_tiny = (b & 0x7f80_0000) == 0;
    let r = if is_nan {
        (b >> 16) | 0x40
    } else if is_tiny {
        (b >> 16) & 0x8000
    } else {
        nearest
    };
    r as u16
}

/// The word of one input pair: `lo` (the even input) in the low half.
#[inline(always)]
fn word(lo: f32, hi: f32) -> u32 {
    round(lo) as u32 | (round(hi) as u32) << 16
}

/// The `n` rows of `src` (row stride `lds`, `k` values each) as the columns of panels of [`PANEL`]
/// (see [`super::PackedBf16`]), into `dst`: a weight's output channels, or the keys of a head. On
/// the current rayon pool when `parallel` and the values are many.
pub(super) fn pack_columns(src: &[f32], n: usize, k: usize, lds: usize, dst: &mut Vec<PanelPair>, parallel: bool) {
    let pairs = k.div_ceil(2);
    dst.clear();
    dst.resize(n.div_ceil(PANEL) * pairs, PanelPair([0; PANEL]));
    if pairs == 0 {
        return;
    }
    let pack = |(p, panel): (usize, &mut [PanelPair])| {
        for lane in 0..PANEL.min(n - p * PANEL) {
            let row = &src[(p * PANEL + lane) * lds..][..k];
            for (q, pair) in panel.iter_mut().enumerate() {
                let hi = row.get(2 * q + 1).copied().unwrap_or(0.0);
                pair.0[lane] = word(row[2 * q], hi);
            }
        }
    };
    if parallel && n * k >= PARALLEL_VALUES {
        dst.par_chunks_mut(pairs).enumerate().for_each(pack);
    } else {
        dst.chunks_mut(pairs).enumerate().for_each(pack);
    }
}

/// The `depth` rows of `src` (row stride `lds`, `n` values each) as the depth of panels of
/// [`PANEL`] columns, into `dst`: the values of a head, for the product of the probabilities with
/// them.
pub(super) fn pack_depth(src: &[f32], depth: usize, n: usize, lds: usize, dst: &mut Vec<PanelPair>) {
    let pairs = depth.div_ceil(2);
    dst.clear();
    dst.resize(n.div_ceil(PANEL) * pairs, PanelPair([0; PANEL]));
    for q in 0..pairs {
        let even = &src[2 * q * lds..][..n];
        let odd = (2 * q + 1 < depth).then(|| &src[(2 * q + 1) * lds..][..n]);
        for (c, &lo) in even.iter().enumerate() {
            let hi = odd.map_or(0.0, |o| o[c]);
            dst[(c / PANEL) * pairs + q].0[c % PANEL] = word(lo, hi);
        }
    }
}

/// Operands with fewer values than this are packed on the calling thread.
const PARALLEL_VALUES: usize = 1 << 16;

/// How a kernel reads its activations: row-major, each row padded with a zero to an even length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RowFormat {
    /// bf16 values, two to a word: a word per input pair (the `vdpbf16ps` operand; the even input
    /// in the low half, as little-endian x86 stores it).
    Pairs,
    /// The bf16 values widened to f32, a word each (FMA operands).
    Wide,
}

impl RowFormat {
    /// Words per input pair.
    pub(super) fn words(self) -> usize {
        match self {
            RowFormat::Pairs => 1,
            RowFormat::Wide => 2,
        }
    }
}

dispatch! {
    /// `x` rounded to bf16 into `dst` in `format` (`dst` holds `ceil(len / 2)` pairs).
    pub fn round_row(x: &[f32], dst: &mut [u32], format: RowFormat) {
        let pairs = x.len().div_ceil(2);
        match format {
            RowFormat::Pairs => {
                let dst = &mut dst[..pairs];
                // SAFETY: the words' memory as 2·pairs u16 values (a u32's alignment suits u16).
                let halves = unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<u16>(), 2 * pairs) };
                for (h, &v) in halves.iter_mut().zip(x) {
                    *h = round(v);
                }
                halves[x.len()..].fill(0);
            }
            RowFormat::Wide => {
                let dst = &mut dst[..2 * pairs];
                for (w, &v) in dst.iter_mut().zip(x) {
                    *w = (round(v) as u32) << 16;
                }
                dst[x.len()..].fill(0);
            }
        }
    }
}

/// Rows per parallel rounding task.
const ROUND_ROWS: usize = 16;

/// `m` rows of `x` (`k` values each, row stride `ldx`) rounded in `format` into `words`, followed
/// by `pad` zero rows; returns the row stride in words. On the current rayon pool when `parallel`
/// and the rows are many.
#[allow(clippy::too_many_arguments)] // rows: source, shape, destination, layout
pub(super) fn round_rows(
    x: &[f32],
    m: usize,
    k: usize,
    ldx: usize,
    format: RowFormat,
    pad: usize,
    words: &mut Vec<u32>,
    parallel: bool,
) -> usize {
    let stride = padded_stride(k.div_ceil(2) * format.words());
    let len = (m + pad) * stride;
    // Every word that is read is written below: no need to clear what the buffer held.
    words.resize(len, 0);
    words.truncate(len);
    let (body, zeros) = words.split_at_mut(m * stride);
    zeros.fill(0);
    if k > 0 && m > 0 {
        let round = |(i, dst): (usize, &mut [u32])| {
            for (r, d) in dst.chunks_exact_mut(stride).enumerate() {
                let row = (i * ROUND_ROWS + r) * ldx;
                round_row(&x[row..row + k], d, format);
            }
        };
        if parallel && m * k >= PARALLEL_VALUES {
            body.par_chunks_mut(ROUND_ROWS * stride).enumerate().for_each(round);
        } else {
            body.chunks_mut(ROUND_ROWS * stride).enumerate().for_each(round);
        }
    }
    stride
}
