//! The reference's float arithmetic, replicated bit for bit.
//!
//! LLM-Blender turns a comparison matrix into scores with numpy
//! (`(C - C.T).mean(-1)` on a float32 array, `gpt_eval/utils.py::get_scores_from_cmps`) and scores
//! into ranks with plain Python (`get_ranks_from_scores`). numpy's float32 `sum`/`mean` do not add
//! left to right: they use a blocked pairwise summation with float32 accumulators. The functions
//! here follow that algorithm exactly, so that equal logits give equal scores, to the bit.

use crate::error::{Error, Result};

/// numpy's `pairwise_sum` block size (`PW_BLOCKSIZE` in `loops_utils.h.src`).
const PW_BLOCKSIZE: usize = 128;

/// The float32 sum of `values` exactly as numpy computes `np.add.reduce` over a contiguous float32
/// axis (`FLOAT_pairwise_sum`, numpy 1.x and 2.x):
///
/// - fewer than 8 values: a plain left-to-right loop starting from `-0.0`;
/// - 8 to 128 values: 8 accumulators seeded with the first 8 values, each taking every 8th value,
///   combined as `((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`, then the `n % 8` leftover
///   values added one by one;
/// - more than 128 values: split at `n / 2` rounded down to a multiple of 8, both halves summed
///   recursively, then added.
///
/// All accumulators are float32. An empty slice sums to `-0.0` (numpy's reduction of an empty
/// array gives `0.0`; no caller here sums an empty slice).
pub fn numpy_sum_f32(values: &[f32]) -> f32 {
    let n = values.len();
    if n < 8 {
        let mut res = -0.0f32;
        for &v in values {
            res += v;
        }
        res
    } else if n <= PW_BLOCKSIZE {
        let mut r = [0.0f32; 8];
        r.copy_from_slice(&values[..8]);
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for (k, acc) in r.iter_mut().enumerate() {
                *acc += values[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &values[full..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        numpy_sum_f32(&values[..n2]) + numpy_sum_f32(&values[n2..])
    }
}

/// The float32 mean of `values` exactly as numpy's `ndarray.mean` on float32 data: the
/// [`numpy_sum_f32`] sum divided by the count, rounded to float32. (numpy divides in float64 and
/// casts back; for one division of float32 operands that double rounding is innocuous, so the
/// float32 division here gives the same bits.) An empty slice gives NaN, as numpy does.
pub fn numpy_mean_f32(values: &[f32]) -> f32 {
    if values.is_empty() {
        return f32::NAN;
    }
    // Counts are far below 2^24, so the conversion is exact.
    numpy_sum_f32(values) / values.len() as f32
}

/// Scores from a full comparison matrix, as `get_scores_from_cmps` (policy `max_logits`):
/// `score_i = mean_j (M[i][j] - M[j][i])` in float32, the mean over all `n` columns including
/// `j = i` (whose term is `M[i][i] - M[i][i]`, 0 for the zero diagonal the reference uses).
///
/// Higher is better. Rows of identical values give identical scores, bit for bit.
///
/// # Errors
/// [`Error::InvalidInput`] naming `matrix` if it is not square.
pub fn scores_from_matrix(matrix: &[Vec<f32>]) -> Result<Vec<f32>> {
    let n = matrix.len();
    if let Some((i, row)) = matrix.iter().enumerate().find(|(_, row)| row.len() != n) {
        return Err(Error::invalid_input(
            format!("matrix[{i}]"),
            format!("has {} entries, expected {n} (the matrix must be square)", row.len()),
        ));
    }
    let mut diff = vec![0.0f32; n];
    Ok((0..n)
        .map(|i| {
            for (j, d) in diff.iter_mut().enumerate() {
                *d = matrix[i][j] - matrix[j][i];
            }
            numpy_mean_f32(&diff)
        })
        .collect())
}

/// Ranks from scores, as `get_ranks_from_scores`: the rank of a score is 1 + its position in the
/// scores sorted descending, where equal scores share the better (smaller) rank. Equivalently,
/// 1 + the number of strictly greater scores; `-0.0` and `0.0` are equal.
///
/// NaN scores (which make the reference raise `ValueError`) rank after every number and share
/// that rank: 1 + the number of non-NaN scores.
pub fn ranks_from_scores(scores: &[f32]) -> Vec<usize> {
    let numbers = scores.iter().filter(|s| !s.is_nan()).count();
    scores
        .iter()
        .map(|&s| if s.is_nan() { 1 + numbers } else { 1 + scores.iter().filter(|&&t| t > s).count() })
        .collect()
}

/// The `[A,B]+[B,A]` comparison logit from `ab = logit(A, B)` and `ba = logit(B, A)`, with the
/// reference's exact arithmetic: it ranks the two candidates with the 2x2 matrix
/// `[[0, ab], [ba, 0]]` and returns `score_0 - score_1` in float32.
///
/// With `d = ab - ba` (float32), `score_0 = (-0 + 0 + d) / 2` and `score_1 = (-0 + -d + 0) / 2`, so
/// the result is `d/2 - (-d/2)`, which is exactly `d` whenever `d/2` is exact, i.e. unless
/// `|d| < 2^-125` (a subnormal half loses its last bit: `d` = the smallest subnormal gives `0`),
/// and except that a zero difference always comes out as `+0.0`.
/// This function computes the reference's expression, so it matches in that corner too.
pub fn both_logit(ab: f32, ba: f32) -> f32 {
    // Rows of C - C.T for C = [[0, ab], [ba, 0]]; the diagonal is 0 - 0 = +0.
    let row0 = [0.0f32, ab - ba];
    let row1 = [ba - ab, 0.0f32];
    numpy_mean_f32(&row0) - numpy_mean_f32(&row1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector shared with the numpy script below: `k_i * 2^e_i` with
    /// `k_i = (i*40503 + 17) % 65521 - 32760` and `e_i = [-24, 0, 10][i % 3]` (exact in float32).
    fn vector(n: usize) -> Vec<f32> {
        const EXP: [i32; 3] = [-24, 0, 10];
        (0..n)
            .map(|i| {
                let k = ((i as i64 * 40503 + 17) % 65521 - 32760) as f32;
                k * 2f32.powi(EXP[i % 3])
            })
            .collect()
    }

    fn naive_sum(values: &[f32]) -> f32 {
        values.iter().fold(0.0f32, |acc, &v| acc + v)
    }

    /// Expected bits from numpy 2.4.6 (`/work/refvenv/bin/python`), computed with:
    /// ```python
    /// import numpy as np
    /// f = np.float32
    /// def vec(n):
    ///     e = [-24, 0, 10]
    ///     return np.array([f((i*40503+17) % 65521 - 32760) * f(2.0**e[i % 3]) for i in range(n)],
    ///                     dtype=np.float32)
    /// for n in [3, 5, 7, 8, 13, 64, 127, 128, 129, 300, 1000]:
    ///     v = vec(n); s = np.add.reduce(v); m = v.mean()
    ///     naive = f(0)
    ///     for x in v: naive = f(naive + x)
    ///     print(n, hex(s.view(np.uint32)), hex(m.view(np.uint32)), hex(naive.view(np.uint32)))
    /// ```
    /// (`v.reshape(1, -1).mean(axis=-1)`, the shape `get_scores_from_cmps` reduces, gives the same
    /// means.)
    const NUMPY: [(usize, u32, u32, u32); 11] = [
        (3, 0xcb86c4d8, 0xcab3b120, 0xcb86c4d8),
        (5, 0xcb86c84e, 0xca57a6e3, 0xcb86c84e),
        (7, 0xcc2c0b27, 0xcac49f08, 0xcc2c0b27),
        (8, 0xcc2c1632, 0xcaac1632, 0xcc2c1632),
        (13, 0x4a9593a2, 0x48b8182a, 0x4a9593a2),
        (64, 0xcaaee248, 0xc7aee248, 0xcaaee240),
        (127, 0xcbaab014, 0xc82c0824, 0xcbaab011),
        (128, 0xcbaaaf1c, 0xc82aaf1c, 0xcbaaaf17),
        (129, 0xcc351d8b, 0xc8b3b61f, 0xcc351d8c),
        (300, 0x4beafc12, 0x47c8852e, 0x4beafc1e),
        (1000, 0x4c192ace, 0x471cd7dd, 0x4c192adf),
    ];

    #[test]
    fn numpy_pairwise_sum_and_mean_match_numpy_bits() {
        for (n, sum_bits, mean_bits, naive_bits) in NUMPY {
            let v = vector(n);
            assert_eq!(numpy_sum_f32(&v).to_bits(), sum_bits, "sum n={n}");
            assert_eq!(numpy_mean_f32(&v).to_bits(), mean_bits, "mean n={n}");
            assert_eq!(naive_sum(&v).to_bits(), naive_bits, "naive n={n}");
        }
        // The order matters for these vectors: a left-to-right sum differs from numpy's.
        for n in [64, 127, 128, 129, 300, 1000] {
            let v = vector(n);
            assert_ne!(numpy_sum_f32(&v).to_bits(), naive_sum(&v).to_bits(), "n={n}");
        }
    }

    #[test]
    fn sums_keep_negative_zero_and_empty_mean_is_nan() {
        assert_eq!(numpy_sum_f32(&[-0.0, -0.0]).to_bits(), (-0.0f32).to_bits());
        assert_eq!(numpy_sum_f32(&[-0.0; 20]).to_bits(), (-0.0f32).to_bits());
        assert_eq!(numpy_sum_f32(&[0.0, -0.0]).to_bits(), 0.0f32.to_bits());
        assert!(numpy_mean_f32(&[]).is_nan());
        assert_eq!(numpy_mean_f32(&[3.0]), 3.0);
    }

    #[test]
    fn scores_and_ranks_of_a_hand_computed_matrix() {
        // numpy: get_scores_from_cmps([[[0,1,2],[0.5,0,-1],[2,3,0]]]) -> [0.16666667, -1.5, 1.3333334],
        // ranks [2, 3, 1].
        let m = vec![vec![0.0, 1.0, 2.0], vec![0.5, 0.0, -1.0], vec![2.0, 3.0, 0.0]];
        let s = scores_from_matrix(&m).unwrap();
        assert_eq!(s, vec![(0.5f32 + 0.0) / 3.0, -4.5 / 3.0, 4.0 / 3.0]);
        assert_eq!(s[0], 0.166_666_67);
        assert_eq!(s[2], 1.333_333_4);
        assert_eq!(ranks_from_scores(&s), vec![2, 3, 1]);
    }

    #[test]
    fn identical_rows_tie_exactly() {
        // Candidates 1 and 2 are identical: their rows and columns hold the same logits.
        let m = vec![
            vec![0.0, 0.3, 0.3, -0.7],
            vec![0.1, 0.0, 0.25, 1.1],
            vec![0.1, 0.25, 0.0, 1.1],
            vec![0.2, -0.9, -0.9, 0.0],
        ];
        let s = scores_from_matrix(&m).unwrap();
        assert_eq!(s[1].to_bits(), s[2].to_bits());
        assert_eq!(ranks_from_scores(&s), vec![3, 1, 1, 4]);
    }

    #[test]
    fn ranks_share_the_better_rank_on_ties() {
        // numpy/Python: get_ranks_from_scores([[1, 3, 3, -0.0, 0.0, 2]]) -> [[4, 1, 1, 5, 5, 3]]
        assert_eq!(ranks_from_scores(&[1.0, 3.0, 3.0, -0.0, 0.0, 2.0]), vec![4, 1, 1, 5, 5, 3]);
        assert_eq!(ranks_from_scores(&[0.0]), vec![1]);
        assert_eq!(ranks_from_scores(&[]), Vec::<usize>::new());
        assert_eq!(ranks_from_scores(&[f32::NAN, 1.0, f32::NAN, 2.0]), vec![3, 2, 3, 1]);
        assert_eq!(ranks_from_scores(&[f32::NEG_INFINITY, f32::INFINITY]), vec![2, 1]);
    }

    #[test]
    fn non_square_matrix_is_an_error() {
        let err = scores_from_matrix(&[vec![0.0, 1.0], vec![0.0]]).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { ref field, .. } if field == "matrix[1]"));
        assert_eq!(scores_from_matrix(&[]).unwrap(), Vec::<f32>::new());
    }

    #[test]
    fn both_logit_is_the_difference_except_for_tiny_subnormals() {
        // numpy: s = get_scores_from_cmps([[[0, x], [y, 0]]]); s[:, 0] - s[:, 1]
        assert_eq!(both_logit(1.5, -0.25), 1.75);
        for (ab, ba) in [(0.3f32, 0.1f32), (-2.7, 1.9), (1e-30, 3e-31), (7.0, 7.0)] {
            assert_eq!(both_logit(ab, ba).to_bits(), (ab - ba).to_bits(), "{ab} {ba}");
        }
        // The reference's sum starts from -0.0 + 0.0, so a zero difference is always +0.0.
        assert_eq!(both_logit(-0.0, 0.0).to_bits(), 0.0f32.to_bits());
        // numpy: x = smallest subnormal, y = 0 -> 0.0; x = 3 ulp -> 4 ulp (0x4); 3e38 vs -3e38 -> inf.
        assert_eq!(both_logit(f32::from_bits(1), 0.0).to_bits(), 0);
        assert_eq!(both_logit(f32::from_bits(3), 0.0).to_bits(), 4);
        assert_eq!(both_logit(0.0, f32::from_bits(3)), -f32::from_bits(4));
        assert_eq!(both_logit(3e38, -3e38), f32::INFINITY);
        assert!(both_logit(f32::NAN, 0.0).is_nan());
    }
}
