//! Dot-product kernels for similarity search.
//!
//! Contract:
//! - Rows are f32, queries are f64 (what Python hands us); every product and every sum is computed in
//!   f64. simsimd's f32 kernels accumulate in f32 lanes, which can miss the 1e-6 similarity contract at
//!   d = 1536, hence these kernels of our own.
//! - The scalar functions are the reference (the test oracle). The AVX2+FMA variants differ from them
//!   only by summation order (four 4-lane f64 accumulators), i.e. by a relative error around 1e-15.
//! - The backend is chosen once per process (`is_x86_feature_detected!`, cached) and is the same for
//!   every call, so a given (row, query) pair always yields bit-identical results: equal rows give
//!   exactly equal similarities, which the tie-order logic relies on.
//! - `cosine` returns 0.0 where numpy would produce NaN (a zero vector on either side, or a non-finite
//!   query component): a documented fix of LlamaIndex's behaviour.

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

fn backend() -> Backend {
    static BACKEND: OnceLock<Backend> = OnceLock::new();
    *BACKEND.get_or_init(detect)
}

fn detect() -> Backend {
    #[cfg(target_arch = "x86_64")]
    {
        if std::env::var_os("LLAMA_INDEX_RS_FORCE_SCALAR").is_none()
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
        {
            return Backend::Avx2Fma;
        }
    }
    Backend::Scalar
}

/// The kernel family in use, e.g. for `llama_index_rs.simd_backend()`.
pub fn backend_name() -> &'static str {
    match backend() {
        Backend::Scalar => "scalar (f32 rows, f64 accumulate)",
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2Fma => "avx2+fma (f32 rows, f64 accumulate)",
    }
}

/// Scalar reference: `sum(row[i] * q[i])` in f64. Panics if the lengths differ (a caller bug).
pub fn dot_f32_f64_scalar(row: &[f32], q: &[f64]) -> f64 {
    assert_eq!(row.len(), q.len());
    row.iter().zip(q).map(|(&a, &b)| f64::from(a) * b).sum()
}

/// Scalar reference: dot of two f32 rows in f64.
pub fn dot_f32_f32_scalar(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum()
}

/// `row . q` with f64 accumulation, dispatched to the best available kernel.
#[inline]
pub fn dot_f32_f64(row: &[f32], q: &[f64]) -> f64 {
    assert_eq!(row.len(), q.len());
    match backend() {
        Backend::Scalar => dot_f32_f64_scalar(row, q),
        // SAFETY: the backend is only selected when the CPU supports avx2 and fma; lengths are equal.
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2Fma => unsafe { avx2::dot_f32_f64(row, q) },
    }
}

/// `(row . q0, row . q1)`: one pass over the row for two queries (batched search). Bit-identical to two
/// `dot_f32_f64` calls: each query keeps the single kernel's accumulators and summation order.
#[inline]
pub fn dot_f32_f64_x2(row: &[f32], q0: &[f64], q1: &[f64]) -> (f64, f64) {
    assert!(row.len() == q0.len() && row.len() == q1.len());
    match backend() {
        Backend::Scalar => (dot_f32_f64_scalar(row, q0), dot_f32_f64_scalar(row, q1)),
        // SAFETY: the backend is only selected when the CPU supports avx2 and fma; lengths are equal.
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2Fma => unsafe { avx2::dot_f32_f64_x2(row, q0, q1) },
    }
}

/// `a . b` for two f32 rows with f64 accumulation (MMR overlaps).
#[inline]
pub fn dot_f32_f32(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    match backend() {
        Backend::Scalar => dot_f32_f32_scalar(a, b),
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2Fma => unsafe { avx2::dot_f32_f32(a, b) },
    }
}

/// Euclidean norm of an f32 row: sqrt of the f64 sum of squares.
pub fn norm_f32(row: &[f32]) -> f64 {
    dot_f32_f32(row, row).sqrt()
}

/// Euclidean norm of an f64 vector (the query), summed in order like the scalar kernels.
pub fn norm_f64(q: &[f64]) -> f64 {
    q.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Cosine from a dot product and the two norms; 0.0 where numpy would give NaN.
#[inline]
pub fn cosine(dot: f64, norm_a: f64, norm_b: f64) -> f64 {
    let s = dot / (norm_a * norm_b);
    if s.is_finite() {
        s
    } else {
        0.0
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256d) -> f64 {
        let lo = _mm256_castpd256_pd128(v);
        let hi = _mm256_extractf128_pd(v, 1);
        let s = _mm_add_pd(lo, hi);
        let h = _mm_unpackhi_pd(s, s);
        _mm_cvtsd_f64(_mm_add_sd(s, h))
    }

    /// # Safety
    /// avx2 and fma must be available; `row.len() == q.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_f32_f64(row: &[f32], q: &[f64]) -> f64 {
        let n = row.len();
        let (r, p) = (row.as_ptr(), q.as_ptr());
        let mut acc = [_mm256_setzero_pd(); 4];
        let mut i = 0;
        while i + 16 <= n {
            let a0 = _mm_loadu_ps(r.add(i));
            let a1 = _mm_loadu_ps(r.add(i + 4));
            let a2 = _mm_loadu_ps(r.add(i + 8));
            let a3 = _mm_loadu_ps(r.add(i + 12));
            acc[0] = _mm256_fmadd_pd(_mm256_cvtps_pd(a0), _mm256_loadu_pd(p.add(i)), acc[0]);
            acc[1] = _mm256_fmadd_pd(_mm256_cvtps_pd(a1), _mm256_loadu_pd(p.add(i + 4)), acc[1]);
            acc[2] = _mm256_fmadd_pd(_mm256_cvtps_pd(a2), _mm256_loadu_pd(p.add(i + 8)), acc[2]);
            acc[3] = _mm256_fmadd_pd(_mm256_cvtps_pd(a3), _mm256_loadu_pd(p.add(i + 12)), acc[3]);
            i += 16;
        }
        while i + 4 <= n {
            let a = _mm_loadu_ps(r.add(i));
            acc[0] = _mm256_fmadd_pd(_mm256_cvtps_pd(a), _mm256_loadu_pd(p.add(i)), acc[0]);
            i += 4;
        }
        let sum = _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3]));
        let mut total = hsum(sum);
        while i < n {
            total += f64::from(*r.add(i)) * *p.add(i);
            i += 1;
        }
        total
    }

    /// Two queries, each with exactly the accumulators and order of `dot_f32_f64`.
    ///
    /// # Safety
    /// avx2 and fma must be available; all three lengths are equal.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_f32_f64_x2(row: &[f32], q0: &[f64], q1: &[f64]) -> (f64, f64) {
        let n = row.len();
        let (r, p, s) = (row.as_ptr(), q0.as_ptr(), q1.as_ptr());
        let mut a = [_mm256_setzero_pd(); 4];
        let mut b = [_mm256_setzero_pd(); 4];
        let mut i = 0;
        while i + 16 <= n {
            for j in 0..4 {
                let x = _mm256_cvtps_pd(_mm_loadu_ps(r.add(i + 4 * j)));
                a[j] = _mm256_fmadd_pd(x, _mm256_loadu_pd(p.add(i + 4 * j)), a[j]);
                b[j] = _mm256_fmadd_pd(x, _mm256_loadu_pd(s.add(i + 4 * j)), b[j]);
            }
            i += 16;
        }
        while i + 4 <= n {
            let x = _mm256_cvtps_pd(_mm_loadu_ps(r.add(i)));
            a[0] = _mm256_fmadd_pd(x, _mm256_loadu_pd(p.add(i)), a[0]);
            b[0] = _mm256_fmadd_pd(x, _mm256_loadu_pd(s.add(i)), b[0]);
            i += 4;
        }
        let mut ta = hsum(_mm256_add_pd(_mm256_add_pd(a[0], a[1]), _mm256_add_pd(a[2], a[3])));
        let mut tb = hsum(_mm256_add_pd(_mm256_add_pd(b[0], b[1]), _mm256_add_pd(b[2], b[3])));
        while i < n {
            let x = f64::from(*r.add(i));
            ta += x * *p.add(i);
            tb += x * *s.add(i);
            i += 1;
        }
        (ta, tb)
    }

    /// # Safety
    /// avx2 and fma must be available; `a.len() == b.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_f32_f32(a: &[f32], b: &[f32]) -> f64 {
        let n = a.len();
        let (x, y) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_pd(); 4];
        let mut i = 0;
        while i + 16 <= n {
            for (j, slot) in acc.iter_mut().enumerate() {
                let xa = _mm256_cvtps_pd(_mm_loadu_ps(x.add(i + 4 * j)));
                let yb = _mm256_cvtps_pd(_mm_loadu_ps(y.add(i + 4 * j)));
                *slot = _mm256_fmadd_pd(xa, yb, *slot);
            }
            i += 16;
        }
        while i + 4 <= n {
            let xa = _mm256_cvtps_pd(_mm_loadu_ps(x.add(i)));
            let yb = _mm256_cvtps_pd(_mm_loadu_ps(y.add(i)));
            acc[0] = _mm256_fmadd_pd(xa, yb, acc[0]);
            i += 4;
        }
        let sum = _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3]));
        let mut total = hsum(sum);
        while i < n {
            total += f64::from(*x.add(i)) * f64::from(*y.add(i));
            i += 1;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    fn close(a: f64, b: f64, scale: f64) -> bool {
        (a - b).abs() <= 1e-12 * scale.max(f64::MIN_POSITIVE)
    }

    #[test]
    fn dispatched_matches_scalar_at_odd_dims() {
        let mut seed = 7;
        for &d in &[1usize, 3, 7, 8, 15, 16, 17, 97, 257, 1536] {
            let row: Vec<f32> = (0..d).map(|_| lcg(&mut seed) as f32).collect();
            let row2: Vec<f32> = (0..d).map(|_| lcg(&mut seed) as f32).collect();
            let q: Vec<f64> = (0..d).map(|_| lcg(&mut seed)).collect();
            let q2: Vec<f64> = (0..d).map(|_| lcg(&mut seed) * 1e3).collect();
            let scale: f64 = row.iter().zip(&q).map(|(&a, b)| (f64::from(a) * b).abs()).sum();
            assert!(
                close(dot_f32_f64(&row, &q), dot_f32_f64_scalar(&row, &q), scale),
                "d={d}"
            );
            let (x0, x1) = dot_f32_f64_x2(&row, &q, &q2);
            assert_eq!(
                (x0.to_bits(), x1.to_bits()),
                (dot_f32_f64(&row, &q).to_bits(), dot_f32_f64(&row, &q2).to_bits())
            );
            let scale2: f64 = row
                .iter()
                .zip(&row2)
                .map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs())
                .sum();
            assert!(
                close(dot_f32_f32(&row, &row2), dot_f32_f32_scalar(&row, &row2), scale2),
                "d={d}"
            );
        }
    }

    #[test]
    fn cosine_of_zero_vector_is_zero() {
        assert_eq!(cosine(0.0, 0.0, 1.0), 0.0);
        assert_eq!(cosine(f64::NAN, 1.0, 1.0), 0.0);
        assert!(!backend_name().is_empty());
    }

    proptest! {
        #[test]
        fn prop_dispatched_matches_scalar(
            pairs in proptest::collection::vec((-1e3f32..1e3f32, -1e3f64..1e3f64), 0..300)
        ) {
            let row: Vec<f32> = pairs.iter().map(|p| p.0).collect();
            let q: Vec<f64> = pairs.iter().map(|p| p.1).collect();
            let scale: f64 = row.iter().zip(&q).map(|(&a, b)| (f64::from(a) * b).abs()).sum();
            prop_assert!(close(dot_f32_f64(&row, &q), dot_f32_f64_scalar(&row, &q), scale));
            let q2: Vec<f64> = q.iter().rev().copied().collect();
            let (x0, x1) = dot_f32_f64_x2(&row, &q, &q2);
            prop_assert_eq!(x0.to_bits(), dot_f32_f64(&row, &q).to_bits());
            prop_assert_eq!(x1.to_bits(), dot_f32_f64(&row, &q2).to_bits());
            let q32: Vec<f32> = q.iter().map(|&x| x as f32).collect();
            let scale2: f64 = row.iter().zip(&q32).map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs()).sum();
            prop_assert!(close(dot_f32_f32(&row, &q32), dot_f32_f32_scalar(&row, &q32), scale2));
        }
    }
}
