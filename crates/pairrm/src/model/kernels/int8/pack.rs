//! Quantization and packing: weights once at load, activations at every product.

use std::cell::Cell;

use rayon::prelude::*;

use super::{Level, GROUP, PANEL};
use crate::error::{Error, Result};
use crate::model::kernels::{KernelLevel, PackedWeight};

/// Bytes of one group: four inputs of each of a panel's 16 columns.
pub(super) const GROUP_BYTES: usize = PANEL * GROUP;

/// One group of a panel, aligned so that a 512-bit load of it never splits a cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Group(pub(super) [i8; GROUP_BYTES]);

/// The largest magnitude of a quantized value.
const QMAX: f32 = 127.0;

/// How one row is quantized: `q = round((x − center) · inv)`, read back as `q · scale + center`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RowQuant {
    pub(super) inv: f32,
    pub(super) scale: f32,
    pub(super) center: f32,
}

impl RowQuant {
    /// Symmetric about 0 (the weights): scale `max|x| / 127`, from the order keys of the row's
    /// minimum and maximum (see [`key`]). A zero row has scale 0.
    pub(super) fn symmetric_of_range(lo_key: i32, hi_key: i32) -> Self {
        if lo_key > hi_key {
            return RowQuant { inv: 0.0, scale: 0.0, center: 0.0 };
        }
        Self::radius(from_key(lo_key).abs().max(from_key(hi_key).abs()), 0.0)
    }

    /// Symmetric about the middle of the row's range (the activations): scale
    /// `(max − min) / 254`, from the order keys of the row's minimum and maximum (see [`key`]).
    /// A constant row has scale 0 and comes back exactly as its center; an empty row is all 0; a
    /// row holding an infinity or NaN has scale and center NaN, so its results are NaN.
    pub(super) fn centered(lo_key: i32, hi_key: i32) -> Self {
        if lo_key > hi_key {
            return RowQuant { inv: 0.0, scale: 0.0, center: 0.0 };
        }
        let (lo, hi) = (from_key(lo_key), from_key(hi_key));
        if !(lo.is_finite() && hi.is_finite()) {
            return RowQuant { inv: 0.0, scale: f32::NAN, center: f32::NAN };
        }
        // Halves first: `lo + hi` may overflow. Adding +0 makes a −0 center +0 (whichever zero
        // the minimum was), so that results keep one sign of zero.
        Self::radius(hi * 0.5 - lo * 0.5, (lo * 0.5 + hi * 0.5) + 0.0)
    }

    fn radius(radius: f32, center: f32) -> Self {
        let inv = QMAX / radius;
        if radius == 0.0 || !inv.is_finite() {
            RowQuant { inv: 0.0, scale: 0.0, center }
        } else {
            RowQuant { inv, scale: radius / QMAX, center }
        }
    }

    /// `x` quantized: `round((x − center) · inv)` (ties to even, as the vector conversions
    /// round) clamped to ±127.
    #[inline]
    pub(super) fn quantize(&self, x: f32) -> i8 {
        // |v| ≤ 127 (and a little) here, far below 2²²: adding and removing 1.5·2²³ leaves v
        // rounded to an integer, ties to even — `round_ties_even` without its library call.
        const SHIFT: f32 = 12_582_912.0;
        let v = (x - self.center) * self.inv;
        ((v + SHIFT) - SHIFT).clamp(-QMAX, QMAX) as i8
    }
}

/// An integer that orders floats as `<` does (−0 just below +0; NaNs beyond the infinities),
/// so that a row's range is found with exact, order-independent integer minima and maxima.
#[inline]
pub(super) fn key(v: f32) -> i32 {
    let b = v.to_bits() as i32;
    b ^ ((b >> 31) & 0x7fff_ffff)
}

/// The float with order key `k` (the inverse of [`key`]).
fn from_key(k: i32) -> f32 {
    f32::from_bits((k ^ ((k >> 31) & 0x7fff_ffff)) as u32)
}

/// The order keys of the minimum and maximum of `x` (`(i32::MAX, i32::MIN)` when empty).
pub(super) fn key_range(x: &[f32]) -> (i32, i32) {
    x.iter().map(|&v| key(v)).fold((i32::MAX, i32::MIN), |(lo, hi), k| (lo.min(k), hi.max(k)))
}

/// The weights of a torch `Linear` (`[n, k]`, f32, row-major) quantized per output channel and
/// packed for the int8 kernels.
pub(crate) struct PackedInt8 {
    n: usize,
    k: usize,
    /// Groups per panel: `ceil(k / 4)`.
    pub(super) groups: usize,
    /// Panel `p`'s group `g` at `data[p · groups + g]`; inputs past `k` and columns past `n` are 0.
    pub(super) data: Vec<Group>,
    /// `sw[c]`, 0 past `n` (padded to whole panels).
    pub(super) scales: Vec<f32>,
    /// `128 · Σ_k qw[c][k]`, the offset the VNNI kernels subtract (padded to whole panels).
    pub(super) offsets: Vec<i32>,
    /// `(Σ_k qw[c][k]) · sw[c]`: the column sum that multiplies an activation row's center.
    pub(super) sums: Vec<f32>,
    /// The kernels products run with.
    level: Level,
}

impl PackedInt8 {
    /// Quantizes and packs `w` (`[n, k]` row-major) for the kernels of `level`, which this CPU
    /// must support; `name` names the tensor in errors.
    pub(crate) fn new(name: &str, w: &[f32], n: usize, k: usize, level: Level) -> Result<Self> {
        assert_eq!(w.len(), n * k, "int8 weight size");
        assert!(level.is_supported(), "int8 kernel {} is not supported by this CPU", level.name());
        if let Some(v) = w.iter().find(|v| !v.is_finite()) {
            return Err(Error::invalid_input(name, format!("holds {v}: int8 weights must be finite")));
        }
        let groups = k.div_ceil(GROUP);
        let panels = n.div_ceil(PANEL);
        let mut data = vec![Group([0; GROUP_BYTES]); panels * groups];
        let mut scales = vec![0.0f32; panels * PANEL];
        let mut offsets = vec![0i32; panels * PANEL];
        let mut sums = vec![0.0f32; panels * PANEL];
        data.par_chunks_mut(groups.max(1))
            .zip(scales.par_chunks_mut(PANEL))
            .zip(offsets.par_chunks_mut(PANEL))
            .zip(sums.par_chunks_mut(PANEL))
            .enumerate()
            .for_each(|(p, (((panel, scales), offsets), sums))| {
                let mut words = vec![0u32; groups];
                for lane in 0..PANEL.min(n - p * PANEL) {
                    let row = &w[(p * PANEL + lane) * k..][..k];
                    let quant = quantize_weight_row(level, row, &mut words);
                    let mut sum = 0i32;
                    for (group, word) in panel.iter_mut().zip(&words) {
                        let q = word.to_le_bytes().map(|b| b as i8);
                        sum += q.iter().map(|&q| q as i32).sum::<i32>();
                        group.0[lane * GROUP..(lane + 1) * GROUP].copy_from_slice(&q);
                    }
                    scales[lane] = quant.scale;
                    offsets[lane] = 128 * sum;
                    sums[lane] = sum as f32 * quant.scale;
                }
            });
        Ok(PackedInt8 { n, k, groups, data, scales, offsets, sums, level })
    }

    /// Output columns.
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// Inputs.
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Panels of 16 columns.
    pub(super) fn panels(&self) -> usize {
        self.n.div_ceil(PANEL)
    }

    /// The weight `qw[c][i]` as packed (for tests).
    #[cfg(test)]
    pub(super) fn weight(&self, c: usize, i: usize) -> i8 {
        self.data[(c / PANEL) * self.groups + i / GROUP].0[(c % PANEL) * GROUP + i % GROUP]
    }

    /// [`PackedWeight::product`] with the kernels of `level`, which this CPU must support (the
    /// packed layout is the same for every level).
    pub(super) fn product_with(&self, level: Level, m: usize, x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), m * self.k, "int8 product: input size");
        assert_eq!(out.len(), m * self.n, "int8 product: output size");
        assert!(level.is_supported(), "int8 kernel {} is not supported by this CPU", level.name());
        if m == 0 || self.n == 0 {
            return;
        }
        match level {
            Level::Scalar => super::scalar::product(self, m, x, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU supports the level (asserted above); the sizes were checked.
            _ => unsafe { super::x86::product(level, self, m, x, out) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the scalar level is supported off x86-64"),
        }
    }
}

thread_local! {
    /// The activation buffer of this thread's last product, kept for the next one: a product
    /// that allocated it afresh would spend a tenth of its time faulting in and zeroing pages.
    static SPARE_WORDS: Cell<Vec<u32>> = const { Cell::new(Vec::new()) };
}

impl PackedWeight for PackedInt8 {
    fn pack(name: &str, w: &[f32], n_out: usize, n_in: usize, level: KernelLevel) -> Result<Self> {
        PackedInt8::new(name, w, n_out, n_in, Level::for_cap(level))
    }

    fn product(&self, rows: usize, x: &[f32], out: &mut [f32]) {
        self.product_with(self.level, rows, x, out);
    }

    fn bytes(&self) -> u64 {
        (self.data.len() * GROUP_BYTES + 4 * (self.scales.len() + self.offsets.len() + self.sums.len())) as u64
    }

    fn kernel(&self) -> &'static str {
        self.level.name()
    }
}

/// Activation rows quantized and packed for one kernel: tiles of `mr` rows, and in each tile, for
/// each group of four inputs, the four quantized values of each row as one 32-bit word (so that a
/// kernel broadcasts one word per row).
pub(super) struct PackedRows {
    /// Word `(t · groups + g) · mr + i` holds inputs `4g..4g+4` of row `t · mr + i`. The padding
    /// rows of the last tile hold stale values: kernels compute them and drop the results.
    pub(super) words: Vec<u32>,
    /// `sx[r]` for every row, 0 for the padding rows of the last tile.
    pub(super) scales: Vec<f32>,
    /// Every row's center (see [`RowQuant::centered`]), 0 for the padding rows.
    pub(super) centers: Vec<f32>,
}

impl Drop for PackedRows {
    fn drop(&mut self) {
        SPARE_WORDS.set(std::mem::take(&mut self.words));
    }
}

/// How a kernel wants its activation words.
#[derive(Clone, Copy)]
pub(super) struct RowFormat {
    /// Rows per tile.
    pub(super) mr: usize,
    /// Whether bytes are stored as `qx + 128` (unsigned), for `vpdpbusd`.
    pub(super) offset: bool,
}

/// One weight row quantized symmetrically into `words` (one word per group) with the
/// instructions of `level`, which this CPU must support.
fn quantize_weight_row(level: Level, x: &[f32], words: &mut [u32]) -> RowQuant {
    match level {
        Level::Scalar => {
            let (lo, hi) = key_range(x);
            let quant = RowQuant::symmetric_of_range(lo, hi);
            quantize_groups(x, words, 1, false, &quant);
            quant
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller checked that the CPU supports the level.
        _ => unsafe { super::x86::quantize_weight_row(level, x, words) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("only the scalar level is supported off x86-64"),
    }
}

/// The portable row quantizer: writes the words of row `x` (word `g` of the row at
/// `words[g · mr]`) and returns how the row was quantized.
pub(super) fn quantize_row(x: &[f32], words: &mut [u32], mr: usize, offset: bool) -> RowQuant {
    let (lo, hi) = key_range(x);
    let quant = RowQuant::centered(lo, hi);
    quantize_groups(x, words, mr, offset, &quant);
    quant
}

/// Quantizes `x` into words `0, mr, 2·mr, ...` of `words` (the last group padded with zeros):
/// the vector quantizers' tail.
pub(super) fn quantize_groups(x: &[f32], words: &mut [u32], mr: usize, offset: bool, quant: &RowQuant) {
    let flip = if offset { 0x80 } else { 0 };
    for (g, chunk) in x.chunks(GROUP).enumerate() {
        let mut bytes = [flip; GROUP];
        for (b, &v) in bytes.iter_mut().zip(chunk) {
            *b = quant.quantize(v) as u8 ^ flip;
        }
        words[g * mr] = u32::from_le_bytes(bytes);
    }
}

/// Quantizes the `m` rows of `x` (`k` values each) into `format` with `quantizer` (a function
/// like [`quantize_row`]), tiles in parallel on the current pool when the work is large enough to
/// pay for it.
pub(super) fn pack_rows<Q>(x: &[f32], m: usize, k: usize, format: RowFormat, quantizer: Q) -> PackedRows
where
    Q: Fn(&[f32], &mut [u32], usize, bool) -> RowQuant + Sync,
{
    let RowFormat { mr, offset } = format;
    let groups = k.div_ceil(GROUP);
    let tiles = m.div_ceil(mr);
    // Taken, not borrowed: a product nested in this one's parallel loop (rayon may run one on
    // a waiting thread) finds no spare buffer and allocates its own.
    let mut words = SPARE_WORDS.take();
    let len = tiles * groups * mr;
    if words.len() < len {
        words.resize(len, 0);
    } else {
        words.truncate(len);
    }
    let mut quants = vec![RowQuant { inv: 0.0, scale: 0.0, center: 0.0 }; tiles * mr];
    let tile = |(t, (words, quants)): (usize, (&mut [u32], &mut [RowQuant]))| {
        for (i, quant) in quants.iter_mut().enumerate().take(m - t * mr) {
            let r = t * mr + i;
            *quant = quantizer(&x[r * k..(r + 1) * k], &mut words[i..], mr, offset);
        }
    };
    let chunk = (groups * mr).max(1);
    if m * k >= 1 << 16 {
        words.par_chunks_mut(chunk).zip(quants.par_chunks_mut(mr)).enumerate().for_each(tile);
    } else {
        words.chunks_mut(chunk).zip(quants.chunks_mut(mr)).enumerate().for_each(tile);
    }
    PackedRows {
        words,
        scales: quants.iter().map(|q| q.scale).collect(),
        centers: quants.iter().map(|q| q.center).collect(),
    }
}
