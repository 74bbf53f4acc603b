//! The x86-64 kernels: AVX-512 VNNI, AVX-VNNI and AVX2, one generic micro-kernel over the
//! instruction set.
//!
//! A product packs the activation rows for the kernel's tile height, then splits the output
//! columns into blocks of `NV` vectors (on the current rayon pool); a block runs down all row
//! tiles, each tile an `MR × NV`-vector micro-kernel over the whole depth with its accumulators
//! in registers, dequantized straight into the output.

use std::arch::x86_64::*;
use std::ops::Range;

use rayon::prelude::*;

use super::pack::{key_range, pack_rows, quantize_groups, PackedInt8, PackedRows, RowFormat, RowQuant};
use super::{Level, GROUP, PANEL};

/// The destination of a product, written by the column blocks in disjoint columns.
struct SharedOut(*mut f32);

// SAFETY: the blocks sharing it write disjoint columns (see `run`).
unsafe impl Sync for SharedOut {}

/// `out = x · Wᵀ` with the kernel of `level` (see [`PackedInt8::product`]).
///
/// # Safety
/// The CPU must support `level`; `x` holds `m × k` values and `out` `m × n`.
pub(super) unsafe fn product(level: Level, w: &PackedInt8, m: usize, x: &[f32], out: &mut [f32]) {
    match level {
        Level::Avx512Vnni => run::<Avx512Vnni>(w, m, x, out),
        Level::AvxVnni => run::<AvxVnni>(w, m, x, out),
        Level::Avx2 => run::<Avx2>(w, m, x, out),
        #[cfg(test)]
        Level::Avx512Vnni256 => run::<Avx512Vnni256>(w, m, x, out),
        Level::Scalar => unreachable!("the scalar kernel is not an x86 kernel"),
    }
}

/// One instruction set's vector operations and tile shape.
trait Isa {
    /// 32-bit lanes per vector.
    const LANES: usize;
    /// Rows per tile.
    const MR: usize;
    /// Vectors per tile row.
    const NV: usize;
    /// Whether activations are stored as `qx + 128` (unsigned bytes for `vpdpbusd`), the column
    /// offsets then subtracted from the sums.
    const OFFSET: bool;
    /// A vector of 32-bit lanes.
    type V: Copy;
    /// One activation word broadcast, prepared for [`Isa::dot`].
    type B: Copy;

    /// Zeros.
    unsafe fn zero() -> Self::V;
    /// A vector of weights (4 bytes per lane) at `p`.
    unsafe fn load(p: *const i8) -> Self::V;
    /// The word at `p` in every lane.
    unsafe fn broadcast(p: *const u32) -> Self::B;
    /// `acc + Σ_j a[j] · w[j]` per lane, over the lane's four byte pairs.
    unsafe fn dot(acc: Self::V, a: Self::B, w: Self::V) -> Self::V;
    /// `out[i] = ((acc[i] − offsets[i]) as f32 · scales[i]) · sx + cx · sums[i]` for every lane
    /// (without the offsets when activations are not offset).
    unsafe fn finish(acc: Self::V, w: &Columns, sx: f32, cx: f32, out: *mut f32);
    /// One column block of one row chunk (see [`block`]), compiled for this instruction set.
    unsafe fn block(w: &PackedInt8, rows: &PackedRows, tiles: Range<usize>, m: usize, out: &SharedOut, v0: usize);
    /// The order keys of the minimum and maximum of `x` (see [`super::pack::key_range`]),
    /// compiled for this instruction set.
    unsafe fn range(x: &[f32]) -> (i32, i32);
    /// `x` quantized with `quant` into words `0, mr, 2·mr, ...` of `words` (see
    /// [`super::pack::quantize_groups`]), compiled for this instruction set.
    unsafe fn write(x: &[f32], words: &mut [u32], mr: usize, offset: bool, quant: &RowQuant);
}

/// One activation row quantized about the middle of its range (see
/// [`super::pack::quantize_row`]) with `S`'s instructions.
///
/// # Safety
/// The CPU must support `S`.
unsafe fn quantize_row<S: Isa>(x: &[f32], words: &mut [u32], mr: usize, offset: bool) -> RowQuant {
    let (lo, hi) = S::range(x);
    let quant = RowQuant::centered(lo, hi);
    S::write(x, words, mr, offset, &quant);
    quant
}

/// One weight row quantized symmetrically into `words` (one word per group) with the
/// instructions of `level`; returns its quantization.
///
/// # Safety
/// The CPU must support `level`.
pub(super) unsafe fn quantize_weight_row(level: Level, x: &[f32], words: &mut [u32]) -> RowQuant {
    unsafe fn with<S: Isa>(x: &[f32], words: &mut [u32]) -> RowQuant {
        let (lo, hi) = S::range(x);
        let quant = RowQuant::symmetric_of_range(lo, hi);
        S::write(x, words, 1, false, &quant);
        quant
    }
    match level {
        Level::Avx512Vnni => with::<Avx512Vnni>(x, words),
        Level::AvxVnni => with::<AvxVnni>(x, words),
        Level::Avx2 => with::<Avx2>(x, words),
        #[cfg(test)]
        Level::Avx512Vnni256 => with::<Avx512Vnni256>(x, words),
        Level::Scalar => unreachable!("the scalar kernel is not an x86 kernel"),
    }
}

/// One vector's column data: offsets, scales and sums (padded to whole panels, so whole vectors
/// read).
struct Columns {
    offsets: *const i32,
    scales: *const f32,
    sums: *const f32,
}

impl Columns {
    /// The columns of `w` from `c`.
    unsafe fn at(w: &PackedInt8, c: usize) -> Columns {
        Columns { offsets: w.offsets.as_ptr().add(c), scales: w.scales.as_ptr().add(c), sums: w.sums.as_ptr().add(c) }
    }
}

/// Packs the activations and runs the column blocks on the current pool.
///
/// # Safety
/// As [`product`], for `S`'s instruction set.
unsafe fn run<S: Isa>(w: &PackedInt8, m: usize, x: &[f32], out: &mut [f32]) {
    let format = RowFormat { mr: S::MR, offset: S::OFFSET };
    // SAFETY: the caller vouches that the CPU supports S.
    let rows =
        pack_rows(x, m, w.k(), format, |x, words, mr, offset| unsafe { quantize_row::<S>(x, words, mr, offset) });
    let out = SharedOut(out.as_mut_ptr());
    let blocks = (w.panels() * (PANEL / S::LANES)).div_ceil(S::NV);
    // Row chunks of about CHUNK_BYTES of packed activations, which stay in the core's L2 cache
    // while the column blocks stream past them.
    let tiles = m.div_ceil(S::MR);
    let chunk = (CHUNK_BYTES / (S::MR * w.k()).max(1)).clamp(1, tiles);
    let chunks = tiles.div_ceil(chunk);
    (0..chunks * blocks).into_par_iter().for_each(|task| {
        let (c, b) = (task / blocks, task % blocks);
        let tiles = c * chunk..((c + 1) * chunk).min(tiles);
        // SAFETY: each task writes only the rows of its chunk in the columns of its block; the
        // CPU supports S.
        unsafe { S::block(w, &rows, tiles, m, &out, b * S::NV) }
    });
}

/// Bytes of packed activation rows a task works through (see [`run`]).
const CHUNK_BYTES: usize = 256 << 10;

/// Where a tile's results go.
struct Epilogue<'a> {
    w: &'a PackedInt8,
    out: *mut f32,
    /// Columns of `out` (its row stride).
    n: usize,
    /// The tile's first column.
    col0: usize,
}

/// The columns of vectors `v0..v0 + NV` (fewer at the right edge) for row tiles `tiles`.
#[inline(always)]
unsafe fn block<S: Isa, const MR: usize, const NV: usize>(
    w: &PackedInt8,
    rows: &PackedRows,
    tiles: Range<usize>,
    m: usize,
    out: &SharedOut,
    v0: usize,
) {
    let vpp = PANEL / S::LANES;
    let nv = NV.min(w.panels() * vpp - v0);
    let groups = w.groups;
    let col0 = v0 * S::LANES;
    let weights = w.data.as_ptr().add(v0 / vpp * groups);
    let ep = Epilogue { w, out: out.0, n: w.n(), col0 };
    for t in tiles {
        let r0 = t * MR;
        let a = rows.words.as_ptr().add(r0 * groups);
        let nrows = MR.min(m - r0);
        if nv == NV {
            tile::<S, MR, NV>(a, weights, groups, &ep, rows, r0, nrows);
        } else {
            match nv {
                1 => tile::<S, MR, 1>(a, weights, groups, &ep, rows, r0, nrows),
                2 => tile::<S, MR, 2>(a, weights, groups, &ep, rows, r0, nrows),
                3 => tile::<S, MR, 3>(a, weights, groups, &ep, rows, r0, nrows),
                _ => unreachable!("a partial block is 1 to 3 vectors wide"),
            }
        }
    }
}

/// The micro-kernel: rows `r0..r0 + nrows` (the tile's words at `a`) times `NV` vectors of
/// columns (their panels from `w`), over all `groups`, written through `ep`.
#[inline(always)]
unsafe fn tile<S: Isa, const MR: usize, const NV: usize>(
    a: *const u32,
    w: *const super::pack::Group,
    groups: usize,
    ep: &Epilogue,
    rows: &PackedRows,
    r0: usize,
    nrows: usize,
) {
    let vpp = PANEL / S::LANES;
    let half = S::LANES * GROUP;
    let mut acc = [[S::zero(); NV]; MR];
    for g in 0..groups {
        let mut wv = [S::zero(); NV];
        for (j, wv) in wv.iter_mut().enumerate() {
            *wv = S::load(w.add(j / vpp * groups + g).cast::<i8>().add(j % vpp * half));
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let b = S::broadcast(a.add(g * MR + r));
            for (acc, &wv) in acc.iter_mut().zip(&wv) {
                *acc = S::dot(*acc, b, wv);
            }
        }
    }
    if nrows == MR && ep.col0 + NV * S::LANES <= ep.n {
        // A whole tile: straight-line stores.
        for (r, acc) in acc.iter().enumerate() {
            let (sx, cx) = (rows.scales[r0 + r], rows.centers[r0 + r]);
            let row = ep.out.add((r0 + r) * ep.n);
            for (j, &acc) in acc.iter().enumerate() {
                let c = ep.col0 + j * S::LANES;
                S::finish(acc, &Columns::at(ep.w, c), sx, cx, row.add(c));
            }
        }
        return;
    }
    for (r, acc) in acc.iter().enumerate().take(nrows) {
        let (sx, cx) = (rows.scales[r0 + r], rows.centers[r0 + r]);
        let row = ep.out.add((r0 + r) * ep.n);
        for (j, &acc) in acc.iter().enumerate() {
            let c = ep.col0 + j * S::LANES;
            let columns = Columns::at(ep.w, c);
            if c + S::LANES <= ep.n {
                S::finish(acc, &columns, sx, cx, row.add(c));
            } else if c < ep.n {
                let mut tmp = [0.0f32; PANEL];
                S::finish(acc, &columns, sx, cx, tmp.as_mut_ptr());
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), row.add(c), ep.n - c);
            }
        }
    }
}

/// AVX-512 VNNI: 512-bit `vpdpbusd`, tiles of 8 rows × 48 columns (24 accumulators of 32).
struct Avx512Vnni;

impl Isa for Avx512Vnni {
    const LANES: usize = 16;
    const MR: usize = 8;
    const NV: usize = 3;
    const OFFSET: bool = true;
    type V = __m512i;
    type B = __m512i;

    #[inline(always)]
    unsafe fn zero() -> __m512i {
        _mm512_setzero_si512()
    }
    #[inline(always)]
    unsafe fn load(p: *const i8) -> __m512i {
        _mm512_loadu_si512(p.cast())
    }
    #[inline(always)]
    unsafe fn broadcast(p: *const u32) -> __m512i {
        _mm512_set1_epi32(p.read_unaligned() as i32)
    }
    #[inline(always)]
    unsafe fn dot(acc: __m512i, a: __m512i, w: __m512i) -> __m512i {
        _mm512_dpbusd_epi32(acc, a, w)
    }
    #[inline(always)]
    unsafe fn finish(acc: __m512i, w: &Columns, sx: f32, cx: f32, out: *mut f32) {
        let dots = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, _mm512_loadu_si512(w.offsets.cast())));
        let scaled = _mm512_mul_ps(_mm512_mul_ps(dots, _mm512_loadu_ps(w.scales)), _mm512_set1_ps(sx));
        _mm512_storeu_ps(out, _mm512_add_ps(scaled, _mm512_mul_ps(_mm512_set1_ps(cx), _mm512_loadu_ps(w.sums))));
    }
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn block(w: &PackedInt8, rows: &PackedRows, tiles: Range<usize>, m: usize, out: &SharedOut, v0: usize) {
        block::<Self, { Self::MR }, { Self::NV }>(w, rows, tiles, m, out, v0)
    }
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn range(x: &[f32]) -> (i32, i32) {
        range_avx512(x)
    }
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn write(x: &[f32], words: &mut [u32], mr: usize, offset: bool, quant: &RowQuant) {
        write_avx512(x, words, mr, offset, quant)
    }
}

/// The 256-bit kernels' tile: 6 rows × 16 columns (12 accumulators, for AVX-VNNI's 16
/// registers).
macro_rules! vnni256 {
    ($name:ident, $doc:literal, $dot:ident, $features:literal) => {
        #[doc = $doc]
        struct $name;

        impl Isa for $name {
            const LANES: usize = 8;
            const MR: usize = 6;
            const NV: usize = 2;
            const OFFSET: bool = true;
            type V = __m256i;
            type B = __m256i;

            #[inline(always)]
            unsafe fn zero() -> __m256i {
                _mm256_setzero_si256()
            }
            #[inline(always)]
            unsafe fn load(p: *const i8) -> __m256i {
                _mm256_loadu_si256(p.cast())
            }
            #[inline(always)]
            unsafe fn broadcast(p: *const u32) -> __m256i {
                _mm256_set1_epi32(p.read_unaligned() as i32)
            }
            #[inline(always)]
            unsafe fn dot(acc: __m256i, a: __m256i, w: __m256i) -> __m256i {
                $dot(acc, a, w)
            }
            #[inline(always)]
            unsafe fn finish(acc: __m256i, w: &Columns, sx: f32, cx: f32, out: *mut f32) {
                finish256(_mm256_sub_epi32(acc, _mm256_loadu_si256(w.offsets.cast())), w, sx, cx, out)
            }
            #[target_feature(enable = $features)]
            unsafe fn block(
                w: &PackedInt8,
                rows: &PackedRows,
                tiles: Range<usize>,
                m: usize,
                out: &SharedOut,
                v0: usize,
            ) {
                block::<Self, { Self::MR }, { Self::NV }>(w, rows, tiles, m, out, v0)
            }
            #[target_feature(enable = "avx2")]
            unsafe fn range(x: &[f32]) -> (i32, i32) {
                range_avx2(x)
            }
            #[target_feature(enable = "avx2")]
            unsafe fn write(x: &[f32], words: &mut [u32], mr: usize, offset: bool, quant: &RowQuant) {
                write_avx2(x, words, mr, offset, quant)
            }
        }
    };
}

vnni256!(AvxVnni, "AVX-VNNI: 256-bit VEX `vpdpbusd`.", _mm256_dpbusd_avx_epi32, "avx2,avxvnni");
#[cfg(test)]
vnni256!(
    Avx512Vnni256,
    "The AVX-VNNI kernel with the EVEX `vpdpbusd` (AVX-512 VNNI + VL), to test its code on AVX-512 CPUs.",
    _mm256_dpbusd_epi32,
    "avx2,avx512f,avx512vl,avx512vnni"
);

/// AVX2: `|qx| · (qw with the sign of qx)` by `vpmaddubsw` (pairs sum to at most 2·127², no
/// saturation), pairs summed by `vpmaddwd`; tiles of 4 rows × 16 columns.
struct Avx2;

impl Isa for Avx2 {
    const LANES: usize = 8;
    const MR: usize = 4;
    const NV: usize = 2;
    const OFFSET: bool = false;
    type V = __m256i;
    /// `(|a|, a)`.
    type B = (__m256i, __m256i);

    #[inline(always)]
    unsafe fn zero() -> __m256i {
        _mm256_setzero_si256()
    }
    #[inline(always)]
    unsafe fn load(p: *const i8) -> __m256i {
        _mm256_loadu_si256(p.cast())
    }
    #[inline(always)]
    unsafe fn broadcast(p: *const u32) -> (__m256i, __m256i) {
        let a = _mm256_set1_epi32(p.read_unaligned() as i32);
        (_mm256_abs_epi8(a), a)
    }
    #[inline(always)]
    unsafe fn dot(acc: __m256i, a: (__m256i, __m256i), w: __m256i) -> __m256i {
        let pairs = _mm256_maddubs_epi16(a.0, _mm256_sign_epi8(w, a.1));
        _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
    }
    #[inline(always)]
    unsafe fn finish(acc: __m256i, w: &Columns, sx: f32, cx: f32, out: *mut f32) {
        finish256(acc, w, sx, cx, out)
    }
    #[target_feature(enable = "avx2")]
    unsafe fn block(w: &PackedInt8, rows: &PackedRows, tiles: Range<usize>, m: usize, out: &SharedOut, v0: usize) {
        block::<Self, { Self::MR }, { Self::NV }>(w, rows, tiles, m, out, v0)
    }
    #[target_feature(enable = "avx2")]
    unsafe fn range(x: &[f32]) -> (i32, i32) {
        range_avx2(x)
    }
    #[target_feature(enable = "avx2")]
    unsafe fn write(x: &[f32], words: &mut [u32], mr: usize, offset: bool, quant: &RowQuant) {
        write_avx2(x, words, mr, offset, quant)
    }
}

/// `out[i] = (dots[i] as f32 · scales[i]) · sx + cx · sums[i]` for 8 lanes.
#[inline(always)]
unsafe fn finish256(dots: __m256i, w: &Columns, sx: f32, cx: f32, out: *mut f32) {
    let scaled = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dots), _mm256_loadu_ps(w.scales)), _mm256_set1_ps(sx));
    _mm256_storeu_ps(out, _mm256_add_ps(scaled, _mm256_mul_ps(_mm256_set1_ps(cx), _mm256_loadu_ps(w.sums))));
}

/// [`super::pack::key_range`] 16 values at a time (integer minima and maxima: exact).
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn range_avx512(x: &[f32]) -> (i32, i32) {
    let chunks = x.len() / 16;
    let low31 = _mm512_set1_epi32(0x7fff_ffff);
    let (mut lo, mut hi) = (_mm512_set1_epi32(i32::MAX), _mm512_set1_epi32(i32::MIN));
    for c in 0..chunks {
        let b = _mm512_loadu_si512(x.as_ptr().add(16 * c).cast());
        let key = _mm512_xor_si512(b, _mm512_and_si512(_mm512_srai_epi32::<31>(b), low31));
        (lo, hi) = (_mm512_min_epi32(lo, key), _mm512_max_epi32(hi, key));
    }
    let (tail_lo, tail_hi) = key_range(&x[16 * chunks..]);
    (_mm512_reduce_min_epi32(lo).min(tail_lo), _mm512_reduce_max_epi32(hi).max(tail_hi))
}

/// [`super::pack::quantize_groups`] 16 values at a time (same results: `vcvtps2dq` rounds to
/// nearest even, as the portable code does).
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn write_avx512(x: &[f32], words: &mut [u32], mr: usize, offset: bool, quant: &RowQuant) {
    let chunks = x.len() / 16;
    let (center, inv) = (_mm512_set1_ps(quant.center), _mm512_set1_ps(quant.inv));
    let (qlo, qhi) = (_mm512_set1_epi32(-127), _mm512_set1_epi32(127));
    let flip = _mm_set1_epi8(if offset { 0x80u8 as i8 } else { 0 });
    for c in 0..chunks {
        let v = _mm512_sub_ps(_mm512_loadu_ps(x.as_ptr().add(16 * c)), center);
        let q = _mm512_cvtps_epi32(_mm512_mul_ps(v, inv));
        let q = _mm_xor_si128(_mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(q, qlo), qhi)), flip);
        let at = 4 * c * mr;
        words[at] = _mm_extract_epi32::<0>(q) as u32;
        words[at + mr] = _mm_extract_epi32::<1>(q) as u32;
        words[at + 2 * mr] = _mm_extract_epi32::<2>(q) as u32;
        words[at + 3 * mr] = _mm_extract_epi32::<3>(q) as u32;
    }
    if x.len() > 16 * chunks {
        quantize_groups(&x[16 * chunks..], &mut words[4 * chunks * mr..], mr, offset, quant);
    }
}

/// [`super::pack::key_range`] 8 values at a time.
#[target_feature(enable = "avx2")]
unsafe fn range_avx2(x: &[f32]) -> (i32, i32) {
    let chunks = x.len() / 8;
    let low31 = _mm256_set1_epi32(0x7fff_ffff);
    let (mut lo, mut hi) = (_mm256_set1_epi32(i32::MAX), _mm256_set1_epi32(i32::MIN));
    for c in 0..chunks {
        let b = _mm256_loadu_si256(x.as_ptr().add(8 * c).cast());
        let key = _mm256_xor_si256(b, _mm256_and_si256(_mm256_srai_epi32::<31>(b), low31));
        (lo, hi) = (_mm256_min_epi32(lo, key), _mm256_max_epi32(hi, key));
    }
    let (mut los, mut his) = ([0i32; 8], [0i32; 8]);
    _mm256_storeu_si256(los.as_mut_ptr().cast(), lo);
    _mm256_storeu_si256(his.as_mut_ptr().cast(), hi);
    let (tail_lo, tail_hi) = key_range(&x[8 * chunks..]);
    (los.into_iter().fold(tail_lo, i32::min), his.into_iter().fold(tail_hi, i32::max))
}

/// [`super::pack::quantize_groups`] 8 values at a time (same results, as [`write_avx512`]).
#[target_feature(enable = "avx2")]
unsafe fn write_avx2(x: &[f32], words: &mut [u32], mr: usize, offset: bool, quant: &RowQuant) {
    let chunks = x.len() / 8;
    let (center, inv) = (_mm256_set1_ps(quant.center), _mm256_set1_ps(quant.inv));
    let (qlo, qhi) = (_mm256_set1_epi32(-127), _mm256_set1_epi32(127));
    let flip = _mm256_set1_epi8(if offset { 0x80u8 as i8 } else { 0 });
    // The low byte of each 32-bit lane gathered into the first word of each 128-bit half.
    let gather = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, //
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    );
    for c in 0..chunks {
        let v = _mm256_sub_ps(_mm256_loadu_ps(x.as_ptr().add(8 * c)), center);
        let q = _mm256_cvtps_epi32(_mm256_mul_ps(v, inv));
        let q = _mm256_xor_si256(_mm256_shuffle_epi8(_mm256_min_epi32(_mm256_max_epi32(q, qlo), qhi), gather), flip);
        let at = 2 * c * mr;
        words[at] = _mm256_extract_epi32::<0>(q) as u32;
        words[at + mr] = _mm256_extract_epi32::<4>(q) as u32;
    }
    if x.len() > 8 * chunks {
        quantize_groups(&x[8 * chunks..], &mut words[2 * chunks * mr..], mr, offset, quant);
    }
}
