//! Dot-product kernels for similarity search.
//!
//! Two families, both deterministic per (row, query) pair:
//!
//! - **Exact** (`dot_f32_f64`, `dot_f32_f32`): f32 rows, f64 queries, every product and every sum in
//!   f64. The scalar functions are the reference (the test oracle); the AVX2+FMA variants differ from
//!   them only by summation order (four 4-lane f64 accumulators), a relative error around 1e-15.
//! - **Search tiles** (`dot_tile`, used by every top-k query, single or batched): the query is scaled
//!   by a power of two `s` (exact) so that `max |q_i|` lies in [0.5, 1), rounded to f32 once
//!   (`PackedQuery`), and multiplied with f32 rows using f32 FMAs in `LANES`-wide registers. Each lane
//!   accumulates at most `RUN_STEPS` products in f32; then the run's lanes are converted (exactly) to
//!   f64 and added to f64 accumulators. A tile computes R rows x Q queries at once from registers
//!   (rows and queries each loaded once per step), which is what makes batches compute-bound at BLAS
//!   speed; every pair in a tile goes through exactly the same operations in the same order whatever
//!   the tile shape, so `query` and `query_batch` give bit-identical similarities, and identical rows
//!   give identical similarities (ties are decided on exact equality).
//!
//! Error bound of a search tile (u = 2^-24, the f32 unit roundoff; p_i = x_i * q_i):
//! rounding the scaled query to f32 changes each p_i by at most u |p_i|; a lane's run of m <= RUN_STEPS
//! FMAs commits at most m roundings, each bounded by u times the sum of |p_i| seen so far in that run,
//! so the run error is at most gamma_m * sum_run |p_i| (Higham, Accuracy and Stability, 3.1); the f64
//! conversions are exact and the f64 additions add at most (d / LANES + 4) * 2^-53 relative. Summed:
//!
//!   |dot_tile - x.q| <= ((RUN_STEPS + 1) u + O(u^2)) * sum |x_i q_i| <= 9.000002 u |x| |q|
//!
//! by Cauchy-Schwarz, hence |cos_tile - cos_exact| <= 9u (1 + 1e-6) < 5.4e-7 for every d, inside the
//! 1e-6 contract. (RUN_STEPS = 8: the flush costs about 5 vector operations per pair, so halving the
//! flushes relative to runs of 4 buys ~20% of batch throughput; runs of 16 would break the contract.)
//! The bound needs products and partial sums to stay in the normal f32 range, so a
//! row whose norm lies outside [2^-100, 2^100] (`row_fits_f32_tile`) or a query that is zero or not
//! finite uses the exact f64 kernel instead — decided per row / per query, so still per pair.
//! (`tile_error_is_within_bound` checks the bound at d = 1536 on adversarial data.)
//!
//! - The backend is chosen once per process (`is_x86_feature_detected!`, cached): AVX-512F (16 lanes),
//!   else AVX2+FMA (8 lanes), else scalar (f64 sums of the f32-rounded query: exact up to the query
//!   rounding). `LLAMA_INDEX_RS_FORCE_SCALAR` / `LLAMA_INDEX_RS_FORCE_AVX2` pin a backend for tests.
//! - `cosine` returns 0.0 where numpy would produce NaN (a zero vector on either side, or a non-finite
//!   query component): a documented fix of LlamaIndex's behaviour.

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    #[cfg(target_arch = "x86_64")]
    Avx512,
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
            if std::env::var_os("LLAMA_INDEX_RS_FORCE_AVX2").is_none() && is_x86_feature_detected!("avx512f") {
                return Backend::Avx512;
            }
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
        Backend::Avx2Fma => "avx2+fma (f32 runs of 8 steps, f64 accumulate)",
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => "avx512f (f32 runs of 8 steps, f64 accumulate)",
    }
}

/// Products accumulated per f32 lane before the lane is flushed into f64 (see the error bound above).
pub const RUN_STEPS: usize = 8;

/// Below this dimension every pair takes the exact kernel: speed is moot there, and small
/// dimensions are where numpy's f64 cosine produces exact coincidences (collinear rows at exactly
/// +-1.0, small-integer data) whose tie order LlamaIndex's results depend on.
pub const TILE_MIN_DIM: usize = 32;

/// A query prepared for `dot_tile`: scaled by a power of two, rounded to f32 once.
#[derive(Clone, Debug)]
pub struct PackedQuery {
    /// `q * scale` rounded to f32 (zeros when `fast` is false).
    pub values: Vec<f32>,
    /// `|q| * scale`, the norm that goes with `values` in a cosine.
    pub scaled_norm: f64,
    /// `|q|`, the norm that goes with the exact kernel.
    pub norm: f64,
    /// False for a zero or non-finite query: those pairs take the exact kernel.
    pub fast: bool,
}

impl PackedQuery {
    /// A packing that sends every pair to the exact kernel.
    pub fn exact(q: &[f64]) -> Self {
        PackedQuery {
            values: vec![0.0; q.len()],
            scaled_norm: norm_f64(q),
            norm: norm_f64(q),
            fast: false,
        }
    }

    pub fn new(q: &[f64]) -> Self {
        let max = q.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let finite = q.iter().all(|x| x.is_finite());
        if !finite || max == 0.0 || !max.is_normal() || q.len() < TILE_MIN_DIM {
            return PackedQuery::exact(q);
        }
        // 2^-(e+1) with max in [2^e, 2^(e+1)): scaled max in [0.5, 1). Exact: a power of two.
        let e = ((max.to_bits() >> 52) & 0x7ff) as i32 - 1023;
        let scale = f64::from_bits(((1023 - e - 1) as u64) << 52);
        let scaled: Vec<f64> = q.iter().map(|x| x * scale).collect();
        PackedQuery {
            values: scaled.iter().map(|&x| x as f32).collect(),
            scaled_norm: norm_f64(&scaled),
            norm: norm_f64(q),
            fast: true,
        }
    }
}

/// Whether a row with this norm may go through `dot_tile` (see the error bound in the header).
#[inline]
pub fn row_fits_f32_tile(norm: f64) -> bool {
    const LO: f64 = 7.888_609_052_210_118e-31; // 2^-100
    const HI: f64 = 1.267_650_600_228_229_4e30; // 2^100
    (LO..=HI).contains(&norm)
}

/// Dot products of R rows with Q packed queries (all of one length), `out[r][q]`, with the
/// summation order described in the header: identical for a pair whatever R and Q are.
#[inline]
pub fn dot_tile<const R: usize, const Q: usize>(rows: &[&[f32]; R], qs: &[&[f32]; Q]) -> [[f64; Q]; R] {
    dispatch_tile::<R, Q, 0>(rows, qs)
}

/// How far ahead of its loads `dot_tile_streaming` prefetches, in bytes (16 cache lines). From an
/// in-process A/B at 100k x 1536 (randomised order, 40 rounds, 2-core EPYC VM): 768-1536 bytes all
/// took 8-18% less time than no prefetch, 4096 less so.
const STREAM_AHEAD: usize = 1024;

/// `dot_tile` (same arithmetic, bit-identical results) for a row of a run of consecutive rows in
/// memory: each load is preceded by a software prefetch `STREAM_AHEAD` bytes ahead, which near the
/// row's end reaches into the rows that follow. The hardware prefetchers alone leave one stream per
/// core short of the bandwidth numpy's matvec gets; over scattered rows (a filter) or in a batch
/// (compute-bound) the prefetches cost time instead, so only single queries over runs use it.
#[inline]
pub fn dot_tile_streaming<const R: usize, const Q: usize>(rows: &[&[f32]; R], qs: &[&[f32]; Q]) -> [[f64; Q]; R] {
    dispatch_tile::<R, Q, STREAM_AHEAD>(rows, qs)
}

#[inline]
fn dispatch_tile<const R: usize, const Q: usize, const AHEAD: usize>(
    rows: &[&[f32]; R],
    qs: &[&[f32]; Q],
) -> [[f64; Q]; R] {
    let d = qs[0].len();
    assert!(rows.iter().all(|r| r.len() == d) && qs.iter().all(|q| q.len() == d));
    match backend() {
        Backend::Scalar => {
            let mut out = [[0.0; Q]; R];
            for (o, r) in out.iter_mut().zip(rows) {
                for (x, q) in o.iter_mut().zip(qs) {
                    *x = r.iter().zip(*q).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
                }
            }
            out
        }
        // SAFETY: the backend is only selected when the CPU supports it; lengths are checked above.
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2Fma => unsafe { avx2::tile::<R, Q, AHEAD>(rows, qs) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => unsafe { avx512::tile::<R, Q, AHEAD>(rows, qs) },
    }
}

/// The cosine of one row (with its stored norm) and a query, exactly as the search computes it.
#[inline]
pub fn search_similarity(row: &[f32], row_norm: f64, q: &[f64], packed: &PackedQuery) -> f64 {
    if packed.fast && row_fits_f32_tile(row_norm) {
        cosine(
            dot_tile::<1, 1>(&[row], &[&packed.values])[0][0],
            packed.scaled_norm,
            row_norm,
        )
    } else {
        cosine(dot_f32_f64(row, q), packed.norm, row_norm)
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
        Backend::Avx2Fma | Backend::Avx512 => unsafe { avx2::dot_f32_f64(row, q) },
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
        Backend::Avx2Fma | Backend::Avx512 => unsafe { avx2::dot_f32_f32(a, b) },
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

/// The tiles' software prefetch: `AHEAD` bytes past element `off` of `row`; nothing when `AHEAD` is 0.
/// A hint only: it never faults, so the address may lie past the row.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_ahead<const AHEAD: usize>(row: &[f32], off: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    if AHEAD > 0 {
        let p = row.as_ptr().wrapping_add(off + AHEAD / size_of::<f32>());
        // SAFETY: SSE, which the intrinsic needs, is part of every x86_64 CPU; a prefetch reads nothing.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
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

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn flush<const R: usize, const Q: usize>(acc64: &mut [[__m256d; Q]; R], acc: &[[__m256; Q]; R]) {
        for i in 0..R {
            for j in 0..Q {
                let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(acc[i][j]));
                let hi = _mm256_cvtps_pd(_mm256_extractf128_ps(acc[i][j], 1));
                acc64[i][j] = _mm256_add_pd(_mm256_add_pd(acc64[i][j], lo), hi);
            }
        }
    }

    /// The search tile with 8 f32 lanes (see the module header), prefetching `AHEAD` bytes ahead of
    /// each row load when `AHEAD > 0`.
    ///
    /// # Safety
    /// avx2 and fma must be available; every row and query has the same length.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile<const R: usize, const Q: usize, const AHEAD: usize>(
        rows: &[&[f32]; R],
        qs: &[&[f32]; Q],
    ) -> [[f64; Q]; R] {
        const L: usize = 8;
        let d = qs[0].len();
        let full = d / L;
        let mut acc64 = [[_mm256_setzero_pd(); Q]; R];
        let mut qv = [_mm256_setzero_ps(); Q];
        let mut step = 0;
        while step < full {
            let end = (step + super::RUN_STEPS).min(full);
            let mut acc = [[_mm256_setzero_ps(); Q]; R];
            while step < end {
                let off = step * L;
                for j in 0..Q {
                    qv[j] = _mm256_loadu_ps(qs[j].as_ptr().add(off));
                }
                for i in 0..R {
                    super::prefetch_ahead::<AHEAD>(rows[i], off);
                    let x = _mm256_loadu_ps(rows[i].as_ptr().add(off));
                    for j in 0..Q {
                        acc[i][j] = _mm256_fmadd_ps(x, qv[j], acc[i][j]);
                    }
                }
                step += 1;
            }
            flush(&mut acc64, &acc);
        }
        let rest = d - full * L;
        if rest > 0 {
            let off = full * L;
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rest as i32), idx);
            let mut acc = [[_mm256_setzero_ps(); Q]; R];
            for j in 0..Q {
                qv[j] = _mm256_maskload_ps(qs[j].as_ptr().add(off), mask);
            }
            for i in 0..R {
                let x = _mm256_maskload_ps(rows[i].as_ptr().add(off), mask);
                for j in 0..Q {
                    acc[i][j] = _mm256_fmadd_ps(x, qv[j], acc[i][j]);
                }
            }
            flush(&mut acc64, &acc);
        }
        let mut out = [[0.0; Q]; R];
        for i in 0..R {
            for j in 0..Q {
                out[i][j] = hsum(acc64[i][j]);
            }
        }
        out
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

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn flush<const R: usize, const Q: usize>(acc64: &mut [[__m512d; Q]; R], acc: &[[__m512; Q]; R]) {
        for i in 0..R {
            for j in 0..Q {
                let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(acc[i][j]));
                let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[i][j]), 1)));
                acc64[i][j] = _mm512_add_pd(_mm512_add_pd(acc64[i][j], lo), hi);
            }
        }
    }

    /// The search tile with 16 f32 lanes (see the module header), prefetching `AHEAD` bytes ahead of
    /// each row load when `AHEAD > 0`.
    ///
    /// # Safety
    /// avx512f must be available; every row and query has the same length.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn tile<const R: usize, const Q: usize, const AHEAD: usize>(
        rows: &[&[f32]; R],
        qs: &[&[f32]; Q],
    ) -> [[f64; Q]; R] {
        const L: usize = 16;
        let d = qs[0].len();
        let full = d / L;
        let mut acc64 = [[_mm512_setzero_pd(); Q]; R];
        let mut qv = [_mm512_setzero_ps(); Q];
        let mut step = 0;
        while step < full {
            let end = (step + super::RUN_STEPS).min(full);
            let mut acc = [[_mm512_setzero_ps(); Q]; R];
            while step < end {
                let off = step * L;
                for j in 0..Q {
                    qv[j] = _mm512_loadu_ps(qs[j].as_ptr().add(off));
                }
                for i in 0..R {
                    super::prefetch_ahead::<AHEAD>(rows[i], off);
                    let x = _mm512_loadu_ps(rows[i].as_ptr().add(off));
                    for j in 0..Q {
                        acc[i][j] = _mm512_fmadd_ps(x, qv[j], acc[i][j]);
                    }
                }
                step += 1;
            }
            flush(&mut acc64, &acc);
        }
        let rest = d - full * L;
        if rest > 0 {
            let off = full * L;
            let mask: __mmask16 = (1u16 << rest) - 1;
            let mut acc = [[_mm512_setzero_ps(); Q]; R];
            for j in 0..Q {
                qv[j] = _mm512_maskz_loadu_ps(mask, qs[j].as_ptr().add(off));
            }
            for i in 0..R {
                let x = _mm512_maskz_loadu_ps(mask, rows[i].as_ptr().add(off));
                for j in 0..Q {
                    acc[i][j] = _mm512_fmadd_ps(x, qv[j], acc[i][j]);
                }
            }
            flush(&mut acc64, &acc);
        }
        let mut out = [[0.0; Q]; R];
        for i in 0..R {
            for j in 0..Q {
                out[i][j] = _mm512_reduce_add_pd(acc64[i][j]);
            }
        }
        out
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
            let _ = &q2;
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

    /// Exact cosine: f64 products of the f32 row and the f64 query, summed in f64 (the reference).
    fn cos_ref(row: &[f32], q: &[f64]) -> f64 {
        dot_f32_f64_scalar(row, q) / (dot_f32_f32_scalar(row, row).sqrt() * norm_f64(q))
    }

    fn cos_tile(row: &[f32], q: &[f64]) -> f64 {
        search_similarity(row, norm_f32(row), q, &PackedQuery::new(q))
    }

    #[test]
    fn tile_error_is_within_bound() {
        // Adversarial for f32 runs: large magnitudes, no normalisation, same-sign products (every
        // rounding error pushes one way at the partial sums' largest), and near-total cancellation.
        let d = 1536;
        let mut seed = 99;
        let mut worst = 0.0f64;
        for case in 0..400 {
            let q: Vec<f64> = (0..d)
                .map(|i| match case % 4 {
                    0 => 1e6 * (lcg(&mut seed) + 1.5),
                    1 => lcg(&mut seed) * 3.0e-3 * (1.0 + (i % 7) as f64),
                    _ => lcg(&mut seed) * 1e12,
                })
                .collect();
            let row: Vec<f32> = match case % 4 {
                // x proportional to q: cos = 1, products all positive and as large as they can be
                0 => q.iter().map(|&x| (x * 1e20) as f32).collect(),
                1 => (0..d).map(|_| (lcg(&mut seed) * 1e25) as f32).collect(),
                // cancellation: the first half is cancelled by the second half up to a small residue
                2 => (0..d)
                    .map(|i| {
                        let j = i % (d / 2);
                        let v = (q[j] / 1e12) as f32 * 1e-10;
                        if i < d / 2 {
                            v
                        } else {
                            -v * (1.0 + 1e-4 * lcg(&mut seed) as f32)
                        }
                    })
                    .collect(),
                _ => q
                    .iter()
                    .map(|&x| ((x + lcg(&mut seed) * 1e11) * 3e-20) as f32)
                    .collect(),
            };
            let err = (cos_tile(&row, &q) - cos_ref(&row, &q)).abs();
            worst = worst.max(err);
        }
        // Analytical bound: 9u < 5.4e-7 (module header); observed errors are far smaller.
        assert!(worst < 3e-7, "max |cos_tile - cos_ref| = {worst:e}");
        eprintln!("max |cos_tile - cos_ref| at d = {d}: {worst:e}");
    }

    #[test]
    fn tile_is_bit_identical_across_shapes_and_rows_out_of_range_are_exact() {
        let mut seed = 3;
        for &d in &[1usize, 3, 7, 8, 15, 16, 17, 97, 257, 1536] {
            let rows: Vec<Vec<f32>> = (0..4)
                .map(|_| (0..d).map(|_| lcg(&mut seed) as f32).collect())
                .collect();
            let qs: Vec<PackedQuery> = (0..4)
                .map(|_| PackedQuery::new(&(0..d).map(|_| lcg(&mut seed) * 7.0).collect::<Vec<_>>()))
                .collect();
            let r: [&[f32]; 4] = std::array::from_fn(|i| rows[i].as_slice());
            let q: [&[f32]; 4] = std::array::from_fn(|j| qs[j].values.as_slice());
            let big = dot_tile::<4, 4>(&r, &q);
            for i in 0..4 {
                for j in 0..4 {
                    let one = dot_tile::<1, 1>(&[r[i]], &[q[j]])[0][0];
                    assert_eq!(big[i][j].to_bits(), one.to_bits(), "d={d}");
                    let streamed = dot_tile_streaming::<1, 1>(&[r[i]], &[q[j]])[0][0];
                    assert_eq!(streamed.to_bits(), one.to_bits(), "d={d}");
                    let exact = dot_f32_f64_scalar(r[i], &q[j].iter().map(|&x| f64::from(x)).collect::<Vec<_>>());
                    assert!((one - exact).abs() <= 1e-6 * d as f64, "d={d}");
                }
            }
        }
        // A row beyond the tile's range goes through the exact kernel.
        let row = vec![1e36f32, 3e35, -2e36];
        let q = vec![0.5, 0.25, 1.0];
        assert_eq!(
            cos_tile(&row, &q),
            cosine(dot_f32_f64(&row, &q), norm_f64(&q), norm_f32(&row))
        );
        let tiny = vec![1e-38f32, 3e-39, -2e-38];
        assert!((cos_tile(&tiny, &q) - cos_ref(&tiny, &q)).abs() < 1e-12);
        assert_eq!(cos_tile(&row, &[f64::INFINITY, 0.0, 1.0]), 0.0);
    }

    proptest! {
        #[test]
        fn prop_tile_within_contract(
            pairs in proptest::collection::vec((-1e3f32..1e3f32, -1e3f64..1e3f64), 1..300)
        ) {
            let row: Vec<f32> = pairs.iter().map(|p| p.0).collect();
            let q: Vec<f64> = pairs.iter().map(|p| p.1).collect();
            let (a, b) = (cos_tile(&row, &q), cos_ref(&row, &q));
            prop_assert!((a - if b.is_finite() { b } else { 0.0 }).abs() < 5.4e-7, "{} vs {}", a, b);
        }

        #[test]
        fn prop_dispatched_matches_scalar(
            pairs in proptest::collection::vec((-1e3f32..1e3f32, -1e3f64..1e3f64), 0..300)
        ) {
            let row: Vec<f32> = pairs.iter().map(|p| p.0).collect();
            let q: Vec<f64> = pairs.iter().map(|p| p.1).collect();
            let scale: f64 = row.iter().zip(&q).map(|(&a, b)| (f64::from(a) * b).abs()).sum();
            prop_assert!(close(dot_f32_f64(&row, &q), dot_f32_f64_scalar(&row, &q), scale));
            let q32: Vec<f32> = q.iter().map(|&x| x as f32).collect();
            let scale2: f64 = row.iter().zip(&q32).map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs()).sum();
            prop_assert!(close(dot_f32_f32(&row, &q32), dot_f32_f32_scalar(&row, &q32), scale2));
        }
    }
}
