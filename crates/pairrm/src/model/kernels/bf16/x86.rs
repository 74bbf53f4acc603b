//! The x86-64 tiles: AVX512-BF16 (`vdpbf16ps`), and AVX-512F and AVX2 widening the weights to
//! f32 (a shift for the even input, a mask for the odd one) for FMAs in the same order.
//!
//! Each tile keeps `MR × NV` vectors of sums in registers over the depth chunk; per input pair it
//! loads the weight vectors once and broadcasts each row's activation straight from memory.

use std::arch::x86_64::*;

use super::super::driver::{sums512, Tile};
use super::PANEL;

/// `vdpbf16ps`: 12 rows × 32 columns (24 accumulators).
pub(super) struct Avx512Bf16;

impl Tile for Avx512Bf16 {
    const MR: usize = 12;
    const COLS: usize = 32;
    const WORDS: usize = 1;

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
        // SAFETY: the caller vouches for the CPU and the memory.
        unsafe { tile_avx512_bf16::<12>(a, lda, b, pairs, c, ldc, mr, accumulate) }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx512_bf16<const MR: usize>(
    a: *const u32,
    lda: usize,
    b: *const u32,
    pairs: usize,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    accumulate: bool,
) {
    // SAFETY (whole body): the caller vouches for the MR rows at `a` (row stride `lda`, `pairs`
    // words read from each), for `pairs` panel rows at `b` (32 words read from each) and for the
    // `mr` rows of 32 outputs at `c`.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let rows: [*const u32; MR] = std::array::from_fn(|r| a.add(r * lda));
        if accumulate {
            sums512::load(&mut acc, c, ldc, mr);
        }
        for q in 0..pairs {
            let w = b.add(q * PANEL);
            let w0: __m512bh = std::mem::transmute(_mm512_loadu_si512(w.cast()));
            let w1: __m512bh = std::mem::transmute(_mm512_loadu_si512(w.add(16).cast()));
            for (r, s) in acc.iter_mut().enumerate() {
                let v: __m512bh = std::mem::transmute(_mm512_set1_epi32(rows[r].add(q).read() as i32));
                s[0] = _mm512_dpbf16_ps(s[0], v, w0);
                s[1] = _mm512_dpbf16_ps(s[1], v, w1);
            }
        }
        sums512::store(&acc, c, ldc, mr);
    }
}

/// AVX-512F: 12 rows × 32 columns.
pub(super) struct Avx512;

impl Tile for Avx512 {
    const MR: usize = 12;
    const COLS: usize = 32;
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
        // SAFETY: the caller vouches for the CPU and the memory.
        unsafe { tile_avx512::<12>(a, lda, b, pairs, c, ldc, mr, accumulate) }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx512<const MR: usize>(
    a: *const u32,
    lda: usize,
    b: *const u32,
    pairs: usize,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    accumulate: bool,
) {
    // SAFETY (whole body): as `tile_avx512_bf16`, two words per pair read from each row at `a`.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let rows: [*const f32; MR] = std::array::from_fn(|r| a.add(r * lda).cast::<f32>());
        if accumulate {
            sums512::load(&mut acc, c, ldc, mr);
        }
        let high = _mm512_set1_epi32(0xffff_0000u32 as i32);
        for q in 0..pairs {
            let w = b.add(q * PANEL);
            let (v0, v1) = (_mm512_loadu_si512(w.cast()), _mm512_loadu_si512(w.add(16).cast()));
            let (o0, o1) =
                (_mm512_castsi512_ps(_mm512_and_si512(v0, high)), _mm512_castsi512_ps(_mm512_and_si512(v1, high)));
            for (r, s) in acc.iter_mut().enumerate() {
                let odd = _mm512_set1_ps(rows[r].add(2 * q + 1).read());
                s[0] = _mm512_fmadd_ps(odd, o0, s[0]);
                s[1] = _mm512_fmadd_ps(odd, o1, s[1]);
            }
            let (e0, e1) =
                (_mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), _mm512_castsi512_ps(_mm512_slli_epi32(v1, 16)));
            for (r, s) in acc.iter_mut().enumerate() {
                let even = _mm512_set1_ps(rows[r].add(2 * q).read());
                s[0] = _mm512_fmadd_ps(even, e0, s[0]);
                s[1] = _mm512_fmadd_ps(even, e1, s[1]);
            }
        }
        sums512::store(&acc, c, ldc, mr);
    }
}

/// AVX2: 6 rows × 16 columns (12 accumulators of the 16 registers).
pub(super) struct Avx2;

impl Tile for Avx2 {
    const MR: usize = 6;
    const COLS: usize = 16;
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
        // SAFETY: the caller vouches for the CPU and the memory.
        unsafe { tile_avx2::<6>(a, lda, b, pairs, c, ldc, mr, accumulate) }
    }
}

#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx2<const MR: usize>(
    a: *const u32,
    lda: usize,
    b: *const u32,
    pairs: usize,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    accumulate: bool,
) {
    // SAFETY (whole body): as `tile_avx512`, 16 words read per pair at `b`.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        let rows: [*const f32; MR] = std::array::from_fn(|r| a.add(r * lda).cast::<f32>());
        if accumulate {
            for (r, s) in acc.iter_mut().enumerate() {
                if r < mr {
                    s[0] = _mm256_loadu_ps(c.add(r * ldc));
                    s[1] = _mm256_loadu_ps(c.add(r * ldc + 8));
                }
            }
        }
        let high = _mm256_set1_epi32(0xffff_0000u32 as i32);
        for q in 0..pairs {
            let w = b.add(q * PANEL);
            let (v0, v1) = (_mm256_loadu_si256(w.cast()), _mm256_loadu_si256(w.add(8).cast()));
            let (o0, o1) =
                (_mm256_castsi256_ps(_mm256_and_si256(v0, high)), _mm256_castsi256_ps(_mm256_and_si256(v1, high)));
            for (r, s) in acc.iter_mut().enumerate() {
                let odd = _mm256_broadcast_ss(&*rows[r].add(2 * q + 1));
                s[0] = _mm256_fmadd_ps(odd, o0, s[0]);
                s[1] = _mm256_fmadd_ps(odd, o1, s[1]);
            }
            let (e0, e1) =
                (_mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)));
            for (r, s) in acc.iter_mut().enumerate() {
                let even = _mm256_broadcast_ss(&*rows[r].add(2 * q));
                s[0] = _mm256_fmadd_ps(even, e0, s[0]);
                s[1] = _mm256_fmadd_ps(even, e1, s[1]);
            }
        }
        for (r, s) in acc.iter().enumerate() {
            if r < mr {
                _mm256_storeu_ps(c.add(r * ldc), s[0]);
                _mm256_storeu_ps(c.add(r * ldc + 8), s[1]);
            }
        }
    }
}
