use super::*;
use crate::model::kernels::PackedWeight;

/// A deterministic value in [-1, 1).
fn lcg(seed: &mut u64) -> f32 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// Roughly normal values (sum of four uniforms), scaled.
fn normal(seed: &mut u64, scale: f32) -> f32 {
    (lcg(seed) + lcg(seed) + lcg(seed) + lcg(seed)) * scale
}

fn matrix(seed: &mut u64, len: usize, scale: f32) -> Vec<f32> {
    (0..len).map(|_| normal(seed, scale)).collect()
}

/// `(q, scale)` of a weight row by the definition: scale `max|w| / 127`,
/// `q = round(w · 127 / max|w|)`.
fn quantized(row: &[f32]) -> (Vec<i32>, f32) {
    let amax = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if amax == 0.0 {
        return (vec![0; row.len()], 0.0);
    }
    let inv = 127.0 / amax;
    (row.iter().map(|v| (v * inv).round_ties_even().clamp(-127.0, 127.0) as i32).collect(), amax / 127.0)
}

/// `(q, scale, center)` of an activation row by the definition: symmetric about the middle of
/// the row's range, scale `(max − min) / 254`.
fn quantized_centered(row: &[f32]) -> (Vec<i32>, f32, f32) {
    let lo = row.iter().fold(f32::INFINITY, |m, &v| m.min(v));
    let hi = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let (center, radius) = ((lo * 0.5 + hi * 0.5) + 0.0, hi * 0.5 - lo * 0.5);
    if radius == 0.0 {
        return (vec![0; row.len()], 0.0, center);
    }
    let inv = 127.0 / radius;
    let q = row.iter().map(|v| ((v - center) * inv).round_ties_even().clamp(-127.0, 127.0) as i32).collect();
    (q, radius / 127.0, center)
}

/// The product by the definition, with plain integer dot products.
fn reference(m: usize, n: usize, k: usize, x: &[f32], w: &[f32]) -> Vec<f32> {
    let ws: Vec<_> = w.chunks(k.max(1)).take(n).map(quantized).collect();
    let mut out = vec![0.0f32; m * n];
    for r in 0..m {
        let (qx, sx, cx) = quantized_centered(&x[r * k..(r + 1) * k]);
        for (c, (qw, sw)) in ws.iter().enumerate() {
            let dot: i32 = qx.iter().zip(qw).map(|(a, b)| a * b).sum();
            let sum = qw.iter().sum::<i32>() as f32 * sw;
            out[r * n + c] = (dot as f32 * sw) * sx + cx * sum;
        }
    }
    out
}

fn supported() -> Vec<Level> {
    Level::ALL.into_iter().filter(|l| l.is_supported()).collect()
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn every_level_matches_the_definition_bit_for_bit() {
    let levels = supported();
    eprintln!("int8 levels tested: {:?}", levels.iter().map(|l| l.name()).collect::<Vec<_>>());
    let mut s = 11;
    let shapes = [
        (1, 1, 1),
        (1, 16, 4),
        (2, 17, 3),
        (3, 15, 5),
        (1, 48, 64),
        (5, 49, 67),
        (7, 47, 31),
        (8, 64, 129),
        (9, 96, 16),
        (13, 33, 250),
        (70, 130, 301),
        (25, 200, 1024),
    ];
    for (m, n, k) in shapes {
        // Rows of every sign balance: centered, shifted up, shifted down.
        let x: Vec<f32> =
            matrix(&mut s, m * k, 1.0).iter().enumerate().map(|(i, v)| v + [0.0, 0.7, -2.0][i / k % 3]).collect();
        let w = matrix(&mut s, n * k, 0.05);
        let packed = PackedInt8::new("w", &w, n, k, Level::for_cap(KernelLevel::detected())).unwrap();
        let want = reference(m, n, k, &x, &w);
        for &level in &levels {
            let mut out = vec![f32::NAN; m * n];
            packed.product_with(level, m, &x, &mut out);
            assert!(same_bits(&out, &want), "{} differs from the definition at m={m} n={n} k={k}", level.name());
        }
    }
}

#[test]
fn weights_are_packed_as_quantized() {
    let mut s = 3;
    let (n, k) = (19, 10);
    let w = matrix(&mut s, n * k, 0.1);
    let packed = PackedInt8::new("w", &w, n, k, Level::for_cap(KernelLevel::detected())).unwrap();
    for c in 0..n {
        let (q, scale) = quantized(&w[c * k..(c + 1) * k]);
        assert_eq!(packed.scales[c], scale);
        assert_eq!(packed.offsets[c], 128 * q.iter().sum::<i32>());
        assert_eq!(packed.sums[c], q.iter().sum::<i32>() as f32 * scale);
        for (i, &q) in q.iter().enumerate() {
            assert_eq!(packed.weight(c, i) as i32, q, "w[{c}][{i}]");
        }
        assert_eq!(q.iter().map(|q| q.abs()).max(), Some(127), "row {c} uses the full range");
    }
    assert!(packed.scales[n..].iter().all(|&s| s == 0.0));
    assert_eq!(packed.bytes(), (2 * 3 * 64 + 12 * 32) as u64);
}

/// Every row equals, bit for bit, the same row computed in any other batch, on any number of
/// threads.
#[test]
fn rows_do_not_depend_on_the_batch_or_the_threads() {
    let mut s = 5;
    let (big, n, k) = (150, 100, 333);
    let x = matrix(&mut s, big * k, 1.0);
    let w = matrix(&mut s, n * k, 0.05);
    let packed = PackedInt8::new("w", &w, n, k, Level::for_cap(KernelLevel::detected())).unwrap();
    for level in supported() {
        let mut full = vec![0.0; big * n];
        packed.product_with(level, big, &x, &mut full);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for (start, m) in [(0, 1), (3, 2), (5, 3), (10, 9), (0, 64), (40, 65), (1, 149), (0, 150)] {
                let mut part = vec![0.0; m * n];
                pool.install(|| packed.product_with(level, m, &x[start * k..(start + m) * k], &mut part));
                assert!(
                    same_bits(&part, &full[start * n..(start + m) * n]),
                    "{}: rows {start}..{} on {threads} threads differ from the full product",
                    level.name(),
                    start + m
                );
            }
        }
    }
}

/// Relative (Frobenius) error of the int8 product of `x` against the exact one.
fn relative_error(m: usize, n: usize, k: usize, x: &[f32], w: &[f32]) -> f64 {
    let packed = PackedInt8::new("w", w, n, k, Level::for_cap(KernelLevel::detected())).unwrap();
    let mut out = vec![0.0; m * n];
    packed.product(m, x, &mut out);
    let (mut err, mut norm) = (0.0f64, 0.0f64);
    for r in 0..m {
        for c in 0..n {
            let exact: f64 = (0..k).map(|i| x[r * k + i] as f64 * w[c * k + i] as f64).sum();
            err += (out[r * n + c] as f64 - exact).powi(2);
            norm += exact * exact;
        }
    }
    (err / norm).sqrt()
}

/// The error against the exact product stays near what rounding both operands to 255 levels
/// gives (about 1%), also for one-sided rows such as GELU outputs, which the centered
/// activation scale serves as well as centered ones.
#[test]
fn quantization_error_is_small() {
    let mut s = 9;
    let (m, n, k) = (32, 64, 1024);
    let w = matrix(&mut s, n * k, 0.02);
    let x = matrix(&mut s, m * k, 1.0);
    let gelu: Vec<f32> = x.iter().map(|&v| 0.5 * v * (1.0 + libm::erff(v / std::f32::consts::SQRT_2))).collect();
    let shifted: Vec<f32> = x.iter().map(|&v| v + 3.0).collect();
    for (name, x) in [("normal", x), ("gelu(normal)", gelu), ("normal + 3", shifted)] {
        let rel = relative_error(m, n, k, &x, &w);
        eprintln!("int8 product relative error (Frobenius), {name} rows: {rel:.5}");
        assert!(rel < 0.012, "{name}: relative error {rel}");
    }
}

/// A constant row comes back as exactly its value times the dequantized column sums.
#[test]
fn constant_rows() {
    let (n, k) = (5, 12);
    let mut s = 4;
    let w = matrix(&mut s, n * k, 0.1);
    let packed = PackedInt8::new("w", &w, n, k, Level::for_cap(KernelLevel::detected())).unwrap();
    let x = [vec![0.25f32; k], vec![-3.0; k]].concat();
    for level in supported() {
        let mut out = vec![0.0; 2 * n];
        packed.product_with(level, 2, &x, &mut out);
        for c in 0..n {
            assert_eq!(out[c], 0.25 * packed.sums[c], "{}", level.name());
            assert_eq!(out[n + c], -3.0 * packed.sums[c], "{}", level.name());
        }
    }
}

#[test]
fn zero_and_non_finite_rows() {
    let (n, k) = (20, 9);
    let mut s = 1;
    let w = matrix(&mut s, n * k, 0.1);
    let packed = PackedInt8::new("w", &w, n, k, Level::for_cap(KernelLevel::detected())).unwrap();
    let mut x = matrix(&mut s, 4 * k, 1.0);
    x[..k].fill(0.0);
    x[2 * k + 3] = f32::NAN;
    x[3 * k + 1] = f32::INFINITY;
    for level in supported() {
        let mut out = vec![1.0; 4 * n];
        packed.product_with(level, 4, &x, &mut out);
        assert!(out[..n].iter().all(|&v| v == 0.0), "{}: a zero row gives zeros", level.name());
        assert!(out[n..2 * n].iter().all(|v| v.is_finite()), "{}: rows are independent", level.name());
        assert!(out[2 * n..].iter().all(|v| v.is_nan()), "{}: non-finite rows give NaN", level.name());
    }
    let mut bad = w.clone();
    bad[5] = f32::NEG_INFINITY;
    let err =
        PackedInt8::new("layer.0.weight", &bad, n, k, Level::Scalar).err().expect("non-finite weights are refused");
    assert!(err.to_string().contains("layer.0.weight"), "{err}");
}

#[test]
fn kernel_names() {
    let w = [0.5f32; 8];
    for level in supported() {
        assert_eq!(PackedInt8::new("w", &w, 2, 4, level).unwrap().kernel(), level.name());
    }
    assert_eq!(Level::for_cap(KernelLevel::Scalar), Level::Scalar);
    for cap in [KernelLevel::Scalar, KernelLevel::Avx2, KernelLevel::Avx512] {
        let level = Level::for_cap(cap);
        assert!(level.is_supported());
        let packed = PackedInt8::pack("w", &w, 2, 4, cap).unwrap();
        assert_eq!(packed.kernel(), level.name());
    }
}

#[test]
fn empty_shapes() {
    let packed = PackedInt8::new("w", &[], 0, 5, Level::for_cap(KernelLevel::detected())).unwrap();
    packed.product(3, &[0.5; 15], &mut []);
    let packed = PackedInt8::new("w", &[], 4, 0, Level::for_cap(KernelLevel::detected())).unwrap();
    let mut out = vec![1.0; 8];
    packed.product(2, &[], &mut out);
    assert_eq!(out, vec![0.0; 8]);
    let packed = PackedInt8::new("w", &[1.0; 6], 2, 3, Level::for_cap(KernelLevel::detected())).unwrap();
    packed.product(0, &[], &mut []);
}
