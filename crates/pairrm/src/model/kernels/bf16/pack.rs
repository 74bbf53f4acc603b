//! Rounding to bf16 and packing: weights once at load, activation rows at every product.

use rayon::prelude::*;

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

/// `w` (`[n, k]`, row-major) in panels of [`PANEL`] columns (see [`super::PackedBf16`]).
pub(super) fn pack_weights(w: &[f32], n: usize, k: usize) -> Vec<PanelPair> {
    let pairs = k.div_ceil(2);
    let mut data = vec![PanelPair([0; PANEL]); n.div_ceil(PANEL) * pairs];
    if pairs == 0 {
        return data;
    }
    data.par_chunks_mut(pairs).enumerate().for_each(|(p, panel)| {
        for lane in 0..PANEL.min(n - p * PANEL) {
            let row = &w[(p * PANEL + lane) * k..][..k];
            for (q, pair) in panel.iter_mut().enumerate() {
                let hi = row.get(2 * q + 1).copied().unwrap_or(0.0);
                pair.0[lane] = word(row[2 * q], hi);
            }
        }
    });
    data
}

/// How a kernel reads its activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RowFormat {
    /// One word per input pair, the two bf16 values (the `vdpbf16ps` operand).
    Pairs,
    /// Two words per input pair: the even then the odd value widened to f32 (FMA operands).
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
    /// Row `x` rounded to bf16 and written for a block of `mr` rows: pair `q` of this row at
    /// `dst[q · mr · words]` (`words` per pair as `format` says).
    pub fn pack_row(x: &[f32], dst: &mut [u32], mr: usize, format: RowFormat) {
        let step = mr * format.words();
        let mut chunks = x.chunks_exact(2);
        let mut q = 0;
        for pair in &mut chunks {
            match format {
                RowFormat::Pairs => dst[q * step] = word(pair[0], pair[1]),
                RowFormat::Wide => {
                    dst[q * step] = (round(pair[0]) as u32) << 16;
                    dst[q * step + 1] = (round(pair[1]) as u32) << 16;
                }
            }
            q += 1;
        }
        if let [last] = chunks.remainder() {
            match format {
                RowFormat::Pairs => dst[q * step] = word(*last, 0.0),
                RowFormat::Wide => {
                    dst[q * step] = (round(*last) as u32) << 16;
                    dst[q * step + 1] = 0;
                }
            }
        }
    }
}

/// Activation rows packed for a kernel: blocks of `mr` rows (the last one padded with zero rows),
/// each `[pairs][mr][words]`.
pub(super) struct PackedRows {
    pub(super) words: Vec<u32>,
    /// Words of one block.
    pub(super) block: usize,
}

thread_local! {
    /// A spare buffer for [`PackedRows`], taken for the duration of a product and given back
    /// (taken, not borrowed: a product may start another on the same thread while it waits).
    static SPARE: std::cell::Cell<Vec<u32>> = const { std::cell::Cell::new(Vec::new()) };
}

impl PackedRows {
    /// Packs `m` rows of `x` (`k` values each) for a kernel of tile height `mr` and `format`.
    pub(super) fn new(x: &[f32], m: usize, k: usize, mr: usize, format: RowFormat) -> Self {
        let pairs = k.div_ceil(2);
        let block = pairs * mr * format.words();
        let len = m.div_ceil(mr) * block;
        let mut words = SPARE.with(|s| s.take());
        // Every word is written below: no need to clear what the buffer held.
        words.resize(len, 0);
        words.truncate(len);
        if block > 0 {
            let wpp = format.words();
            words.par_chunks_mut(block).zip(x.par_chunks(mr * k)).for_each(|(dst, rows)| {
                for r in 0..mr {
                    match rows.get(r * k..(r + 1) * k) {
                        Some(row) => pack_row(row, &mut dst[r * wpp..], mr, format),
                        None => (0..pairs).for_each(|q| dst[(q * mr + r) * wpp..][..wpp].fill(0)),
                    }
                }
            });
        }
        PackedRows { words, block }
    }
}

impl Drop for PackedRows {
    fn drop(&mut self) {
        let words = std::mem::take(&mut self.words);
        SPARE.with(|s| s.set(words));
    }
}
