//! Disentangled self-attention of one head over one sequence:
//! `softmax((Q·Kᵀ + c2p + p2c) / √(d·factor)) · V` with `c2p[i,j] = Q_i · K_rel[δ(i,j)]` and
//! `p2c[i,j] = K_j · Q_rel[δ(i,j)]`.
//!
//! All three score terms come from GEMMs; the relative terms are then gathered:
//! `c2p` along each query row (contiguous in the rel table), `p2c` along each key row into a
//! key-major buffer that is added to the scores by cache-sized tiles. Each call uses only
//! per-thread scratch memory, reused across calls.

use std::cell::RefCell;

use super::gemm::{matmul, matmul_raw, Threads, View};
use super::ops::softmax_scaled;
use super::position::RelIndex;
use crate::config::PosAttType;

/// Tile edge of the transposed add of the `p2c` terms.
const TILE: usize = 16;

thread_local! {
    /// Scratch of the attention of one head (scores, c2p, p2c and its gathered transpose).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The inputs of one head's attention over one sequence. Every matrix is a column block of width
/// `d` in a row-major buffer with row stride `stride`.
pub(crate) struct HeadAttention<'a> {
    /// Query rows (of the query positions only).
    pub q: &'a [f32],
    /// Key rows (all positions).
    pub k: &'a [f32],
    /// Value rows (all positions).
    pub v: &'a [f32],
    /// The rel-embedding table through the query projection.
    pub rel_q: &'a [f32],
    /// The rel-embedding table through the key projection.
    pub rel_k: &'a [f32],
    /// Row stride of all the above.
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
        let (nq, len, d) = (qpos.len(), self.len, self.d);
        let inv_scale = 1.0 / ((d as f32) * self.pos_att.scale_factor() as f32).sqrt();
        // The rel rows any (query, key) of this sequence can use form a contiguous range.
        let lo = rel_index.index(0, len - 1);
        let hi = rel_index.index(len - 1, 0);
        let width = hi - lo + 1;
        let q = View::rows(self.q, self.stride);
        let k = View::rows(self.k, self.stride);

        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let need = nq * len + nq * width + len * width + len * nq;
            if scratch.len() < need {
                scratch.resize(need, 0.0);
            }
            let (scores, rest) = scratch.split_at_mut(nq * len);
            let (c2p, rest) = rest.split_at_mut(nq * width);
            let (p2c, rest) = rest.split_at_mut(len * width);
            let p2c_t = &mut rest[..len * nq];

            // Content to content: Q · Kᵀ.
            matmul(nq, len, d, q, View::transposed(self.k, self.stride), scores, len, false, Threads::One);
            if self.pos_att.p2c {
                // K · Q_relᵀ over the rel rows in use, gathered key-major: p2c_t[j][qi] = p2c(i, j).
                let rq = View::transposed(&self.rel_q[lo * self.stride..], self.stride);
                matmul(len, width, d, k, rq, p2c, width, false, Threads::One);
                for j in 0..len {
                    let row = &p2c[j * width..(j + 1) * width];
                    let dst = &mut p2c_t[j * nq..(j + 1) * nq];
                    for (t, &i) in dst.iter_mut().zip(qpos) {
                        *t = row[rel_index.index(i, j) - lo];
                    }
                }
                add_transposed(scores, p2c_t, nq, len);
            }
            if self.pos_att.c2p {
                // Q · K_relᵀ over the rel rows in use, gathered along each query row.
                let rk = View::transposed(&self.rel_k[lo * self.stride..], self.stride);
                matmul(nq, width, d, q, rk, c2p, width, false, Threads::One);
                for (qi, &i) in qpos.iter().enumerate() {
                    let crow = &c2p[qi * width..(qi + 1) * width];
                    let srow = &mut scores[qi * len..(qi + 1) * len];
                    for (s, idx) in srow.iter_mut().zip(rel_index.row(i, len)) {
                        *s += crow[idx - lo];
                    }
                }
            }
            for row in scores.chunks_exact_mut(len) {
                softmax_scaled(row, inv_scale);
            }
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
                )
            };
        })
    }
}

/// `scores[qi][j] += t[j][qi]` for `scores` `[nq × len]` and `t` `[len × nq]`, by tiles that stay
/// in L1.
fn add_transposed(scores: &mut [f32], t: &[f32], nq: usize, len: usize) {
    for q0 in (0..nq).step_by(TILE) {
        let q1 = (q0 + TILE).min(nq);
        for j0 in (0..len).step_by(TILE) {
            let j1 = (j0 + TILE).min(len);
            for qi in q0..q1 {
                let srow = &mut scores[qi * len + j0..qi * len + j1];
                for (s, j) in srow.iter_mut().zip(j0..j1) {
                    *s += t[j * nq + qi];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposed_add_covers_every_element() {
        for (nq, len) in [(1, 1), (3, 40), (17, 33), (40, 40)] {
            let mut s = vec![0.0; nq * len];
            let t: Vec<f32> = (0..len * nq).map(|x| x as f32).collect();
            add_transposed(&mut s, &t, nq, len);
            for qi in 0..nq {
                for j in 0..len {
                    assert_eq!(s[qi * len + j], t[j * nq + qi]);
                }
            }
        }
    }
}
