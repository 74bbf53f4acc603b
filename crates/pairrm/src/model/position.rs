//! Relative positions: DeBERTa-v2's log buckets and the rel-embedding row used for each (query, key).

/// Maps a relative distance `r = i - j` to its log bucket, exactly as transformers'
/// `make_log_bucket_position(r, bucket_size, max_position)` does it: in float32 arithmetic.
///
/// With `mid = bucket_size / 2`: `|r| <= mid` keeps `r`; beyond, the bucket is
/// `sign(r) * (ceil(ln(|r| / mid) / ln((max_position - 1) / mid) * (mid - 1)) + mid)`.
pub fn log_bucket(r: i64, bucket_size: usize, max_position: usize) -> i64 {
    let mid = (bucket_size / 2) as i64;
    let abs = r.abs();
    if abs <= mid {
        return r;
    }
    // Every step in f32, as torch computes it (abs_pos / mid is a float32 true division; the
    // log of the python float (max_position - 1) / mid is taken of a float32 tensor).
    let ratio = abs as f32 / mid as f32;
    let base = ((max_position as f64 - 1.0) / mid as f64) as f32;
    let log_pos = (ratio.ln() / base.ln() * (mid - 1) as f32).ceil() + mid as f32;
    r.signum() * log_pos as i64
}

/// The rel-embedding row for every relative distance of a sequence of up to `max_len` tokens.
///
/// `index(i, j)` = `clamp(δ(i - j) + span, 0, 2·span − 1)` where δ is [`log_bucket`] when the
/// model uses buckets and the identity otherwise.
#[derive(Debug, Clone)]
pub struct RelIndex {
    /// Row for distance r at position `r + offset`.
    rows: Vec<u32>,
    offset: usize,
    /// The distances `band.0 ..= band.1` around 0 where the row is linear: `index = band_base + r`.
    band: (i64, i64),
    band_base: i64,
}

impl RelIndex {
    /// Builds the table for distances `-(max_len-1) ..= max_len-1`.
    ///
    /// `position_buckets > 0` selects log buckets; `span` is the attention span (rows on each side).
    pub fn new(max_len: usize, position_buckets: i64, max_relative_positions: usize, span: usize) -> Self {
        let max_len = max_len.max(1);
        let offset = max_len - 1;
        let rows = (0..2 * max_len - 1)
            .map(|k| {
                let r = k as i64 - offset as i64;
                let delta = if position_buckets > 0 && max_relative_positions > 0 {
                    log_bucket(r, position_buckets as usize, max_relative_positions)
                } else {
                    r
                };
                (delta + span as i64).clamp(0, 2 * span as i64 - 1) as u32
            })
            .collect::<Vec<u32>>();
        let at = |r: i64| rows[(r + offset as i64) as usize] as i64;
        let band_base = at(0);
        let (mut lo, mut hi) = (0i64, 0i64);
        while hi < offset as i64 && at(hi + 1) == band_base + hi + 1 {
            hi += 1;
        }
        while lo > -(offset as i64) && at(lo - 1) == band_base + lo - 1 {
            lo -= 1;
        }
        RelIndex { rows, offset, band: (lo, hi), band_base }
    }

    /// The keys `j` (a range within `0..len`) that query `i` sees through the linear band, where
    /// `index(i, j) = base + i - j`; returns the range and `base`.
    #[inline]
    pub fn band_keys(&self, i: usize, len: usize) -> (std::ops::Range<usize>, i64) {
        let start = (i as i64 - self.band.1).clamp(0, len as i64) as usize;
        let end = (i as i64 - self.band.0 + 1).clamp(start as i64, len as i64) as usize;
        (start..end, self.band_base)
    }

    /// Longest sequence this table covers.
    pub fn max_len(&self) -> usize {
        self.offset + 1
    }

    /// The rel-embedding row for query `i` and key `j`.
    #[inline]
    pub fn index(&self, i: usize, j: usize) -> usize {
        self.rows[i + self.offset - j] as usize
    }

    /// Rows for keys `0..len` seen from query `i`: `out[j] = index(i, j)`.
    #[inline]
    pub fn row(&self, i: usize, len: usize) -> impl Iterator<Item = usize> + '_ {
        // index(i, j) = rows[i + offset - j]: walk the table backwards.
        let start = i + self.offset;
        (0..len).map(move |j| self.rows[start - j] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_distances_are_kept() {
        for r in -128..=128 {
            assert_eq!(log_bucket(r, 256, 512), r);
        }
        assert_eq!(log_bucket(4, 8, 64), 4);
        assert_eq!(log_bucket(-4, 8, 64), -4);
    }

    #[test]
    fn buckets_are_odd_and_monotonic() {
        let mut prev = 0;
        for r in 0..10_000 {
            let b = log_bucket(r, 256, 512);
            assert_eq!(log_bucket(-r, 256, 512), -b);
            assert!(b >= prev);
            prev = b;
        }
        // ceil(ln(8191/128) / ln(511/128) * 127) + 128
        assert_eq!(log_bucket(8191, 256, 512), 510);
    }

    /// Against transformers' `make_log_bucket_position` for r in 0..=8192 and several configs
    /// (`tests/fixtures/log_buckets.json`, written by tools/make_fixtures.py): every value.
    #[test]
    fn buckets_match_the_reference() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/log_buckets.json");
        let g: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let configs = g["breakpoints"].as_object().unwrap();
        assert!(configs.len() >= 5);
        for (key, points) in configs {
            let (b, m) = key.split_once('/').unwrap();
            let (bucket, max_pos): (usize, usize) = (b.parse().unwrap(), m.parse().unwrap());
            let points: Vec<(i64, i64)> =
                points.as_array().unwrap().iter().map(|p| (p[0].as_i64().unwrap(), p[1].as_i64().unwrap())).collect();
            for r in 0..=8192i64 {
                let want = points.iter().rev().find(|(start, _)| *start <= r).unwrap().1;
                assert_eq!(log_bucket(r, bucket, max_pos), want, "r={r} bucket={bucket} max={max_pos}");
                assert_eq!(log_bucket(-r, bucket, max_pos), -want, "r=-{r} bucket={bucket} max={max_pos}");
            }
        }
    }

    #[test]
    fn index_clamps_to_the_table() {
        let t = RelIndex::new(100, 8, 64, 8);
        assert_eq!(t.index(0, 0), 8);
        assert_eq!(t.index(3, 0), 11);
        assert_eq!(t.index(0, 3), 5);
        assert_eq!(t.index(99, 0), 15);
        assert_eq!(t.index(0, 99), 0);
        let row: Vec<usize> = t.row(5, 10).collect();
        assert_eq!(row, (0..10).map(|j| t.index(5, j)).collect::<Vec<_>>());
    }

    #[test]
    fn band_keys_are_where_the_index_is_linear() {
        for (len, buckets, max_rel, span) in
            [(600, 256, 512, 256), (100, 8, 64, 8), (40, -1, 16, 16), (5, 256, 512, 256)]
        {
            let t = RelIndex::new(len, buckets, max_rel, span);
            for i in 0..len {
                let (keys, base) = t.band_keys(i, len);
                for j in 0..len {
                    let linear = t.index(i, j) as i64 == base + i as i64 - j as i64;
                    if keys.contains(&j) {
                        assert!(linear, "len {len} i {i} j {j}");
                    }
                }
                assert!(keys.contains(&i));
            }
        }
    }

    #[test]
    fn without_buckets_distance_is_clamped() {
        let t = RelIndex::new(40, -1, 16, 16);
        assert_eq!(t.index(20, 0), 31);
        assert_eq!(t.index(0, 20), 0);
        assert_eq!(t.index(10, 3), 23);
    }
}
