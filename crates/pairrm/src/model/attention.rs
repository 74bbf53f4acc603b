//! Disentangled self-attention of one head over one sequence:
//! `softmax((Q·Kᵀ + c2p + p2c) / √(d·factor)) · V` with `c2p[i,j] = Q_i · K_rel[δ(i,j)]` and
//! `p2c[i,j] = K_j · Q_rel[δ(i,j)]`.
//!
//! All three score terms come from GEMMs; the relative terms are then gathered: `p2c` along each
//! key row for blocks of queries, `c2p` along each query row (a reversed contiguous run of the
//! product where the bucket index is linear), fused with the scaling. The softmax numerators are
//! computed in place and the division by their sum is applied to the `d`-wide output rows. Each
//! call uses only per-thread scratch memory, reused across calls.

use std::cell::RefCell;

use super::gemm::{matmul, matmul_raw, Threads, View};
use super::kernels::bf16::{self, Kernel, PanelBuf, RowBuf, RowsRef};
use super::position::RelIndex;
use super::vmath::{self, dispatch};
use crate::config::PosAttType;

thread_local! {
    /// Scratch of the attention of one head (scores, c2p, p2c and its gathered transpose).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The bf16 operands packed per head: keys, values, probabilities.
    static BF16_SCRATCH: RefCell<(PanelBuf, PanelBuf, RowBuf)> = RefCell::default();
}

/// The operands of the relative terms, and how the products run.
pub(crate) enum Products<'a> {
    /// f32 on the `gemm` crate, the projected rel tables (all heads, row stride as the rest)
    /// in f32: the exact tier.
    F32 {
        /// The rel-embedding table through the query projection.
        rel_q: &'a [f32],
        /// The rel-embedding table through the key projection.
        rel_k: &'a [f32],
    },
    /// bf16 products ([`bf16`]'s arithmetic) with `kernel`.
    Bf16 {
        kernel: Kernel,
        /// The head's query rows, rounded for the kernel.
        q: RowsRef<'a>,
        /// The head's key rows, rounded for the kernel (the left operand of p2c).
        k: RowsRef<'a>,
        /// The head's block of the rel table through the query projection, rel rows as columns.
        rel_q: &'a PanelBuf,
        /// The same through the key projection.
        rel_k: &'a PanelBuf,
    },
}

/// The inputs of one head's attention over one sequence. Every matrix is a column block of width
/// `d` in a row-major buffer with row stride `stride`.
pub(crate) struct HeadAttention<'a> {
    /// Query rows (of the query positions only); empty where the products are bf16 (they read
    /// the rounded rows of `Products::Bf16`).
    pub q: &'a [f32],
    /// Key rows (all positions).
    pub k: &'a [f32],
    /// Value rows (all positions).
    pub v: &'a [f32],
    /// How the products run, with the relative terms' operands.
    pub products: Products<'a>,
    /// Row stride of all the above (and of the f32 rel tables).
    pub stride: usize,
    /// Head width.
    pub d: usize,
    /// Sequence length.
    pub len: usize,
    /// Which relative terms the model uses.
    pub pos_att: PosAttType,
}

impl HeadAttention<'_> {
    /// Writes the context vectors of the query positions `qpos` (`[qpos.len() × d]`, row stride
    /// `ldo`) to `out`.
    ///
    /// # Safety
    /// `out + (qpos.len()-1)·ldo + d` must lie in one allocation, and no other thread may access
    /// those `qpos.len()` rows of `d` elements during the call.
    pub(crate) unsafe fn run(&self, qpos: &[usize], rel_index: &RelIndex, out: *mut f32, ldo: usize) {
        // SAFETY: the caller's guarantees, passed on.
        unsafe {
            match &self.products {
                Products::F32 { rel_q, rel_k } => self.run_f32(rel_q, rel_k, qpos, rel_index, out, ldo),
                Products::Bf16 { kernel, q, k, rel_q, rel_k } => {
                    self.run_bf16(*kernel, *q, *k, rel_q, rel_k, qpos, rel_index, out, ldo)
                }
            }
        }
    }

    /// The attention's scale, 1 / √(d · the number of score terms).
    fn scale(&self) -> f32 {
        1.0 / ((self.d as f32) * self.pos_att.scale_factor() as f32).sqrt()
    }

    /// Turns each query's score row (`len` wide) into softmax numerators in place: the c2p term
    /// added (the rel rows `lo..lo + width` of `c2p`), scaled, shifted by its maximum and
    /// exponentiated. Returns each row's sum, by which the context is divided.
    fn softmax_numerators(
        &self,
        scores: &mut [f32],
        c2p: &[f32],
        width: usize,
        qpos: &[usize],
        rel_index: &RelIndex,
        lo: usize,
    ) -> Vec<f32> {
        let scale = self.scale();
        qpos.iter()
            .zip(scores.chunks_exact_mut(self.len))
            .enumerate()
            .map(|(qi, (&i, row))| {
                if self.pos_att.c2p {
                    add_c2p_scaled(row, &c2p[qi * width..(qi + 1) * width], rel_index, i, lo, scale);
                } else {
                    scale_row(row, scale);
                }
                exp_shifted(row)
            })
            .collect()
    }

    ///
    /// # Safety
    /// As [`Self::run`].
    #[allow(clippy::too_many_arguments)] // the head's operands and the destination
    unsafe fn run_f32(
        &self,
        rel_q: &[f32],
        rel_k: &[f32],
        qpos: &[usize],
        rel_index: &RelIndex,
        out: *mut f32,
        ldo: usize,
    ) {
        let (nq, len, d) = (qpos.len(), self.len, self.d);
        // The rel rows any (query, key) of this sequence can use form a contiguous range.
        let lo = rel_index.index(0, len - 1);
        let hi = rel_index.index(len - 1, 0);
        let width = hi - lo + 1;
        let q = View::rows(self.q, self.stride);
        let k = View::rows(self.k, self.stride);

        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let need = nq * len + nq * width + len * width;
            if scratch.len() < need {
                scratch.resize(need, 0.0);
            }
            let (scores, rest) = scratch.split_at_mut(nq * len);
            let (c2p, rest) = rest.split_at_mut(nq * width);
            let p2c = &mut rest[..len * width];

            // Content to content: Q · Kᵀ.
            matmul(nq, len, d, q, View::transposed(self.k, self.stride), scores, len, false, Threads::One);
            if self.pos_att.p2c {
                // K · Q_relᵀ over the rel rows in use, added along each key row.
                let rq = View::transposed(&rel_q[lo * self.stride..], self.stride);
                matmul(len, width, d, k, rq, p2c, width, false, Threads::One);
                add_p2c(scores, p2c, width, qpos, rel_index, lo);
            }
            if self.pos_att.c2p {
                // Q · K_relᵀ over the rel rows in use.
                let rk = View::transposed(&rel_k[lo * self.stride..], self.stride);
                matmul(nq, width, d, q, rk, c2p, width, false, Threads::One);
            }
            // Softmax numerators in place; the division by their sum is applied to the output.
            let sums = self.softmax_numerators(scores, c2p, width, qpos, rel_index, lo);
            // SAFETY: the caller vouches for the destination rows.
            unsafe {
                matmul_raw(
                    nq,
                    d,
                    len,
                    View::rows(scores, len),
                    View::rows(self.v, self.stride),
                    out,
                    ldo,
                    false,
                    Threads::One,
                );
                divide_rows(out, ldo, d, &sums);
            }
        })
    }

    /// [`Self::run`] with bf16 products: the scores, the relative terms and the context are
    /// products of bf16-rounded operands accumulated in f32; the softmax stays f32.
    ///
    /// # Safety
    /// As [`Self::run`]; the CPU must support `kernel`, and `q`, `k` be rounded for it.
    #[allow(clippy::too_many_arguments)] // the head's operands and the destination
    unsafe fn run_bf16(
        &self,
        kernel: Kernel,
        q: RowsRef,
        k: RowsRef,
        rel_q: &PanelBuf,
        rel_k: &PanelBuf,
        qpos: &[usize],
        rel_index: &RelIndex,
        out: *mut f32,
        ldo: usize,
    ) {
        let (nq, len, d) = (qpos.len(), self.len, self.d);
        // The rel rows any (query, key) of this sequence can use, from the start of their panel.
        let lo = rel_index.index(0, len - 1) / bf16::PANEL * bf16::PANEL;
        let width = rel_index.index(len - 1, 0) - lo + 1;

        SCRATCH.with(|cell| {
            BF16_SCRATCH.with(|packed| {
                let mut scratch = cell.borrow_mut();
                let (keys, values, probs) = &mut *packed.borrow_mut();
                let need = nq * len + nq * width + len * width;
                if scratch.len() < need {
                    scratch.resize(need, 0.0);
                }
                let (scores, rest) = scratch.split_at_mut(nq * len);
                let (c2p, rest) = rest.split_at_mut(nq * width);
                let p2c = &mut rest[..len * width];

                // SAFETY (products): the CPU supports the kernel and the rows were rounded for it
                // (the caller vouches); each destination is a scratch block of exactly its size,
                // or the caller's rows.
                // Content to content: Q · Kᵀ.
                keys.columns(self.k, len, d, self.stride);
                unsafe { kernel.product(q, keys.view(0, len), scores.as_mut_ptr(), len) };
                if self.pos_att.p2c {
                    // K · Q_relᵀ over the rel rows in use, added along each key row.
                    unsafe { kernel.product(k, rel_q.view(lo, width), p2c.as_mut_ptr(), width) };
                    add_p2c(scores, p2c, width, qpos, rel_index, lo);
                }
                if self.pos_att.c2p {
                    // Q · K_relᵀ over the rel rows in use.
                    unsafe { kernel.product(q, rel_k.view(lo, width), c2p.as_mut_ptr(), width) };
                }
                let sums = self.softmax_numerators(scores, c2p, width, qpos, rel_index, lo);
                // The context: P · V, then the division by the sums.
                probs.fill(kernel, scores, nq, len, len, false);
                values.depth(self.v, len, d, self.stride);
                // SAFETY: the caller vouches for the destination rows.
                unsafe {
                    kernel.product(probs.view(0, nq, 0), values.view(0, d), out, ldo);
                    divide_rows(out, ldo, d, &sums);
                }
            })
        })
    }
}

/// Divides row `qi` (`d` values at `out + qi · ldo`) by `sums[qi]`, each by one multiplication
/// with the reciprocal.
///
/// # Safety
/// The `sums.len()` rows must be valid for writes, and not accessed elsewhere during the call.
unsafe fn divide_rows(out: *mut f32, ldo: usize, d: usize, sums: &[f32]) {
    for (qi, sum) in sums.iter().enumerate() {
        let inv = 1.0 / sum;
        // SAFETY: the caller's guarantee.
        for x in unsafe { std::slice::from_raw_parts_mut(out.add(qi * ldo), d) } {
            *x *= inv;
        }
    }
}

/// Queries per block of [`add_p2c`]: the block's score rows stay in L1 while the keys go by.
const QUERY_BLOCK: usize = 8;

/// `scores[qi][j] += p2c[j][index(qpos[qi], j) - lo]`: each key row of the `p2c` product is read
/// where the queries of a block use it.
fn add_p2c(scores: &mut [f32], p2c: &[f32], width: usize, qpos: &[usize], rel: &RelIndex, lo: usize) {
    let len = p2c.len() / width;
    for (block, block_pos) in scores.chunks_mut(QUERY_BLOCK * len).zip(qpos.chunks(QUERY_BLOCK)) {
        for (j, prow) in p2c.chunks_exact(width).enumerate() {
            for (row, &i) in block.chunks_exact_mut(len).zip(block_pos) {
                row[j] += prow[rel.index(i, j) - lo];
            }
        }
    }
}

dispatch! {
    /// `row[j] = (row[j] + c2p[index(i, j) - lo]) · scale` for query `i` over all keys `j`; the
    /// linear band of the index is a reversed contiguous run of `c2p`.
    pub fn add_c2p_scaled(row: &mut [f32], c2p: &[f32], rel: &RelIndex, i: usize, lo: usize, scale: f32) {
        let len = row.len();
        let (band, base) = rel.band_keys(i, len);
        for j in (0..band.start).chain(band.end..len) {
            row[j] = (row[j] + c2p[rel.index(i, j) - lo]) * scale;
        }
        if !band.is_empty() {
            // index(i, j) - lo = base + i - j - lo: from `first` at j = band.start, down by one.
            let first = (base + i as i64 - band.start as i64) as usize - lo;
            let run = &c2p[first + 1 - band.len()..=first];
            for (s, c) in row[band].iter_mut().zip(run.iter().rev()) {
                *s = (*s + c) * scale;
            }
        }
    }
}

dispatch! {
    /// `row[j] *= scale`.
    pub fn scale_row(row: &mut [f32], scale: f32) {
        for v in row.iter_mut() {
            *v *= scale;
        }
    }
}

/// Lanes of the reductions below: independent partial results the compiler keeps in one vector.
const LANES: usize = 8;

dispatch! {
    /// `row[j] = exp(row[j] - max(row))`; returns the sum. The max and the sum are reduced over
    /// [`LANES`] partial results in a fixed order, so they vectorize and stay deterministic.
    pub fn exp_shifted(row: &mut [f32]) -> f32 {
        let mut lanes = [f32::NEG_INFINITY; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for c in &mut chunks {
            for (v, m) in c.iter().zip(lanes.iter_mut()) {
                *m = if *v > *m { *v } else { *m };
            }
        }
        let mut max = lanes.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
        for &v in chunks.remainder() {
            max = if v > max { v } else { max };
        }
        let mut sums = [0.0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for c in &mut chunks {
            for (v, s) in c.iter_mut().zip(sums.iter_mut()) {
                *v = vmath::exp(*v - max);
                *s += *v;
            }
        }
        let mut sum = sums.iter().sum::<f32>();
        for v in chunks.into_remainder() {
            *v = vmath::exp(*v - max);
            sum += *v;
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2c_and_c2p_follow_the_index() {
        for (len, buckets, max_rel, span) in [(40, 8, 64, 8), (300, 256, 512, 256), (9, -1, 4, 4)] {
            let rel = RelIndex::new(len, buckets, max_rel, span);
            let lo = rel.index(0, len - 1);
            let width = rel.index(len - 1, 0) - lo + 1;
            let qpos: Vec<usize> = (0..len).step_by(3).collect();
            let p2c: Vec<f32> = (0..len * width).map(|x| (x % 97) as f32).collect();
            let c2p: Vec<f32> = (0..qpos.len() * width).map(|x| (x % 89) as f32 * 0.5).collect();
            let mut scores = vec![1.0f32; qpos.len() * len];
            add_p2c(&mut scores, &p2c, width, &qpos, &rel, lo);
            for (qi, &i) in qpos.iter().enumerate() {
                let row = &mut scores[qi * len..(qi + 1) * len];
                let want: Vec<f32> = (0..len)
                    .map(|j| {
                        let idx = rel.index(i, j) - lo;
                        (row[j] + c2p[qi * width + idx]) * 0.25
                    })
                    .collect();
                for j in 0..len {
                    assert_eq!(row[j], 1.0 + p2c[j * width + rel.index(i, j) - lo], "p2c len {len} i {i} j {j}");
                }
                add_c2p_scaled(row, &c2p[qi * width..(qi + 1) * width], &rel, i, lo, 0.25);
                assert_eq!(row, &want[..], "c2p len {len} i {i}");
            }
        }
    }

    #[test]
    fn exp_shifted_is_a_softmax_numerator() {
        let mut row: Vec<f32> = (0..37).map(|x| (x as f32 * 0.37).sin() * 5.0).collect();
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let want: Vec<f32> = row.iter().map(|v| (v - max).exp()).collect();
        let sum = exp_shifted(&mut row);
        assert!((sum - want.iter().sum::<f32>()).abs() < 1e-5);
        for (a, b) in row.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}

#[cfg(test)]
mod bf16_tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// One head's attention (head 1 of 2, d = 16) with f32 and with every bf16 kernel: the bf16
    /// kernels agree bit for bit, and stay close to f32.
    #[test]
    fn bf16_products_agree_across_kernels_and_with_f32() {
        let mut s = 17;
        let (d, heads, len, span) = (16, 2, 70, 32);
        let stride = d * heads;
        let rel = RelIndex::new(len, span as i64, 64, span);
        let mut values = |n: usize, scale: f32| (0..n).map(|_| lcg(&mut s) * scale).collect::<Vec<f32>>();
        let (q, k, v) = (values(len * stride, 1.5), values(len * stride, 1.5), values(len * stride, 1.0));
        let (rel_q, rel_k) = (values(2 * span * stride, 1.5), values(2 * span * stride, 1.5));
        let pos_att = PosAttType { c2p: true, p2c: true };
        let qpos: Vec<usize> = (0..len).filter(|i| i % 3 != 1).collect();
        let nq = qpos.len();
        // The query rows are the qpos rows of q.
        let q_rows: Vec<f32> = qpos.iter().flat_map(|&i| q[i * stride..(i + 1) * stride].to_vec()).collect();
        let head =
            |products| HeadAttention { q: &q_rows[d..], k: &k[d..], v: &v[d..], products, stride, d, len, pos_att };
        let run = |att: HeadAttention| {
            let mut out = vec![f32::NAN; nq * stride];
            // SAFETY: `out` holds the nq rows (stride `stride`) from column d; nothing else uses it.
            unsafe { att.run(&qpos, &rel, out[d..].as_mut_ptr(), stride) };
            out.chunks_exact(stride).flat_map(|r| r[d..2 * d].to_vec()).collect::<Vec<f32>>()
        };
        let exact = run(head(Products::F32 { rel_q: &rel_q[d..], rel_k: &rel_k[d..] }));
        let mut first: Option<Vec<f32>> = None;
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            let (mut qb, mut kb) = (RowBuf::default(), RowBuf::default());
            qb.fill(kernel, &q_rows, nq, stride, stride, false);
            kb.fill(kernel, &k, len, stride, stride, false);
            let (mut pq, mut pk) = (PanelBuf::default(), PanelBuf::default());
            pq.columns(&rel_q[d..], 2 * span, d, stride);
            pk.columns(&rel_k[d..], 2 * span, d, stride);
            let att = HeadAttention {
                q: &q_rows[d..],
                k: &k[d..],
                v: &v[d..],
                products: Products::Bf16 {
                    kernel,
                    q: qb.view(0, nq, d),
                    k: kb.view(0, len, d),
                    rel_q: &pq,
                    rel_k: &pk,
                },
                stride,
                d,
                len,
                pos_att,
            };
            let got = run(att);
            let worst = got.iter().zip(&exact).map(|(a, b)| (a - b).abs() / b.abs().max(0.1)).fold(0.0f32, f32::max);
            // Measured: 7.6e-3 (relative to max(|x|, 0.1)); bf16 keeps 8 significant bits.
            assert!(worst < 1.5e-2, "{}: relative error {worst} against f32", kernel.name());
            match &first {
                None => first = Some(got),
                Some(f) => assert!(
                    f.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{} differs from the first kernel",
                    kernel.name()
                ),
            }
        }
    }
}
