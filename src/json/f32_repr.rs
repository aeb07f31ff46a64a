//! Python's `repr(float(x))` for an f32 `x`, by exact integer arithmetic: the JSON writer's path for
//! embedding values (a vector store persist formats millions of them).
//!
//! A general double formatter (zmij, in `write.rs`) works for every double; an f32 widened to a
//! double is a narrow case with an exact shortcut. Within the range covered here (`1e-4 <= |x| < 2048`
//! and `|x|` not a power of two: all but a sliver of embedding values), `x = m / 2^s` with a 24-bit
//! `m` and `13 <= s <= 37`, so:
//! - its exact decimal value is `N * 10^-s` with `N = m * 5^s`;
//! - the doubles that read back as `x` are those within `h = 5^s / 2^30` of `N` (in units of
//!   `10^-s`; both ends included, since `x`'s 53-bit significand is even and ties round to even),
//!   except when `m` is a power of two, whose lower neighbour is closer (left to the general path);
//! - `repr` is the shortest decimal in that interval, the nearest one to `N` if several. With `j` the
//!   largest power of ten not above the interval's width (`10^j <= 2h < 10^(j+1)`, a function of `s`
//!   alone), the interval holds at most one multiple of `10^(j+1)`: that one if it exists (its trailing
//!   zeros are not written), otherwise `N` rounded to a multiple of `10^j`, ties to even.
//!
//! Dividing `N` by `10^j = 2^j 5^j` is a product `m * 5^(s-j)` (one 64x64-bit multiply, `s - j <= 21`)
//! and a shift by `j`, and the bits shifted out measure the distance to the interval's ends exactly.
//! The digits are written with fixed-size stores into the output's spare capacity; no copy has a
//! run-time length. About 0.75-0.85x the general path's time per value (166 instead of 231
//! instructions).
//!
//! Lists (a persist's rows) are computed eight values at a time where the CPU has AVX-512 with IFMA
//! (`avx512::parts8`, the same arithmetic in 64-bit lanes) and written one at a time by `emit`:
//! 11.4 instead of 16.4 ns per value in `benches/core.rs`, and a 10k x 768 persist's CPU time went
//! from ~290 to ~195 ms. A test compares every f32 in range with the general path, through both
//! paths (`make test-exhaustive`, run by CI).

/// `(j, 5^(s - j - 1))` for each `s` in `MIN_S..=MAX_S`: `j = floor(log10(5^s / 2^29))`.
struct Level {
    j: u32,
    pow5_up: u64,
}

const MIN_S: u32 = 13;
const MAX_S: u32 = 37;

const fn pow5(k: u32) -> u128 {
    let mut p = 1u128;
    let mut i = 0;
    while i < k {
        p *= 5;
        i += 1;
    }
    p
}

const fn level(s: u32) -> Level {
    // The largest j with 2^29 * 10^j <= 5^s (never equal: 5^s is odd).
    let width = pow5(s);
    let mut j = 0;
    let mut unit = 1u128 << 29;
    while unit * 10 <= width {
        unit *= 10;
        j += 1;
    }
    Level {
        j,
        pow5_up: pow5(s - j - 1) as u64,
    }
}

const LEVELS: [Level; (MAX_S - MIN_S + 1) as usize] = {
    let mut table = [const { Level { j: 0, pow5_up: 0 } }; (MAX_S - MIN_S + 1) as usize];
    let mut s = MIN_S;
    while s <= MAX_S {
        table[(s - MIN_S) as usize] = level(s);
        s += 1;
    }
    table
};

/// The shortest digits of `m / 2^s` as a double: `(digits, count, decpt)`, the value being
/// `0.d1d2...dcount * 10^decpt`. `digits` may end in zeros (not significant); `count` includes them.
#[inline]
fn shortest(m: u64, s: u32) -> (u64, u32, i32) {
    let level = &LEVELS[(s - MIN_S) as usize];
    let j = level.j;
    // One multiple of 10^(j+1) at most in the interval: N / 10^(j+1) = up / 2^(j+1).
    let up = u128::from(m) * u128::from(level.pow5_up);
    let (whole, frac) = ((up >> (j + 1)) as u64, (up as u64) & ((1 << (j + 1)) - 1));
    // Distances to the interval's half width 5^(s-j-1) / 2^(30+j+1), in units of 2^-(30+j+1).
    let below = frac << 30 <= level.pow5_up;
    let above = ((1 << (j + 1)) - frac) << 30 <= level.pow5_up;
    // Otherwise N rounded to a multiple of 10^j, ties to even. Both are computed and one is picked
    // without a branch: which one applies is close to a coin flip for some exponents.
    let exact = up * 5;
    let (whole_j, frac_j) = ((exact >> j) as u64, (exact as u64) & ((1 << j) - 1));
    let twice = frac_j << 1;
    let rounded = whole_j + u64::from(twice > 1 << j || (twice == 1 << j && whole_j & 1 == 1));
    let (digits, base, shift) = if below || above {
        // 4.5e14 < digits <= 9.1e15.
        (whole + u64::from(above && !below), 15, j + 1)
    } else {
        // 4.5e15 < digits < 9.1e16.
        (rounded, 16, j)
    };
    let count = base + u32::from(digits >= POW10[base as usize]);
    (digits, count, (count + shift) as i32 - s as i32)
}

/// `POW10[k] = 10^k`.
const POW10: [u64; 18] = {
    let mut table = [1u64; 18];
    let mut k = 1;
    while k < 18 {
        table[k] = table[k - 1] * 10;
        k += 1;
    }
    table
};

/// The 16 decimal digits of `v < 10^16` (leading zeros included) as ASCII, first digit in the lowest
/// byte, and how many of them at the end are zeros.
#[cfg(target_arch = "x86_64")]
#[inline]
fn sixteen_digits(v: u64) -> (u128, u32) {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_mul_epu32, _mm_mulhi_epu16, _mm_mullo_epi16,
        _mm_or_si128, _mm_set1_epi16, _mm_set1_epi32, _mm_set1_epi64x, _mm_set1_epi8, _mm_set_epi64x,
        _mm_setzero_si128, _mm_slli_epi16, _mm_slli_epi32, _mm_slli_epi64, _mm_srli_epi16, _mm_srli_epi64,
        _mm_sub_epi16, _mm_sub_epi64,
    };
    let (high, low) = (v / POW10[8], v % POW10[8]);
    // SAFETY: SSE2 is part of the x86_64 baseline; the lane arithmetic cannot overflow (see each step).
    unsafe {
        // Two 64-bit lanes, the high eight digits first (lower address): abcdefgh < 10^8.
        let x = _mm_set_epi64x(low as i64, high as i64);
        // abcd = x / 10^4 by multiply-shift (x * 109951163 < 2^64), efgh = x - abcd * 10^4; abcd goes
        // to the low 32 bits.
        let abcd = _mm_srli_epi64(_mm_mul_epu32(x, _mm_set1_epi64x(109_951_163)), 40);
        let efgh = _mm_sub_epi64(x, _mm_mul_epu32(abcd, _mm_set1_epi64x(10_000)));
        let y = _mm_or_si128(abcd, _mm_slli_epi64(efgh, 32));
        // Each 32-bit lane (< 10^4, high half zero): ab = y * 5243 >> 19 to the low 16 bits, cd above.
        let ab = _mm_srli_epi16(_mm_mulhi_epu16(y, _mm_set1_epi32(5243)), 3);
        let cd = _mm_sub_epi16(y, _mm_mullo_epi16(ab, _mm_set1_epi32(100)));
        let z = _mm_or_si128(ab, _mm_slli_epi32(cd, 16));
        // Each 16-bit lane (< 100): tens = z * 6554 >> 16 to the low byte, ones to the high byte:
        // (z << 8) - tens * 2559 = (z - 10 tens) * 256 + tens.
        let tens = _mm_mulhi_epu16(z, _mm_set1_epi16(6554));
        let digits = _mm_sub_epi16(_mm_slli_epi16(z, 8), _mm_mullo_epi16(tens, _mm_set1_epi16(2559)));
        let zeros = _mm_movemask_epi8(_mm_cmpeq_epi8(digits, _mm_setzero_si128())) as u16;
        let text = _mm_add_epi8(digits, _mm_set1_epi8(b'0' as i8));
        (std::mem::transmute::<__m128i, u128>(text), zeros.leading_ones())
    }
}

/// `sixteen_digits` without SIMD.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn sixteen_digits(v: u64) -> (u128, u32) {
    sixteen_digits_scalar(v)
}

/// `sixteen_digits` in plain integer arithmetic (the x86_64 build runs it only in tests, against
/// the SSE2 version).
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline]
fn sixteen_digits_scalar(v: u64) -> (u128, u32) {
    let digits =
        u128::from(eight_digits((v / POW10[8]) as u32)) | u128::from(eight_digits((v % POW10[8]) as u32)) << 64;
    (digits | u128::from_le_bytes([b'0'; 16]), digits.leading_zeros() / 8)
}

/// The eight decimal digits of `v < 10^8` as bytes 0..=9, first digit in the lowest byte.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline]
fn eight_digits(v: u32) -> u64 {
    // Lanes: (abcd, efgh) in 32 bits each, then (ab, cd, ef, gh) in 16, then one digit per byte.
    let v = u64::from(v);
    let merged = (v / 10_000) | ((v % 10_000) << 32);
    let hundreds = ((merged * 10_486) >> 20) & 0x0000_007F_0000_007F;
    let merged = hundreds | ((merged - hundreds * 100) << 16);
    let tens = ((merged * 103) >> 10) & 0x000F_000F_000F_000F;
    tens | ((merged - tens * 10) << 8)
}

/// Bytes of spare capacity `write` may touch beyond what it appends.
pub(super) const SLACK: usize = 32;

/// Whether the f32 with these `bits` is in the range covered here (see the module documentation).
#[inline]
fn covered(bits: u32) -> bool {
    (1e-4..2048.0).contains(&f64::from(f32::from_bits(bits).abs())) && bits & 0x7F_FFFF != 0
}

/// What `emit` writes for a covered value: the digits left-aligned in 17 places, `first` (never 0)
/// then 16 more as ASCII in `rest` (first in the lowest byte), `significant` of them without the
/// zeros at the end, the decimal point `decpt` places after the first digit's position
/// (`0.d1d2... * 10^decpt`), and the sign.
#[derive(Clone, Copy)]
struct Parts {
    first: u8,
    rest: u128,
    significant: usize,
    decpt: i32,
    negative: bool,
}

/// `Parts` of a covered `bits` (an f32's bits).
#[inline]
fn parts(bits: u32) -> Parts {
    let m = u64::from(bits & 0x7F_FFFF | 0x80_0000);
    let s = 150 - ((bits >> 23) & 0xFF);
    let (digits, count, decpt) = shortest(m, s);
    let aligned = digits * POW10[17 - count as usize];
    let first = aligned / POW10[16];
    let (rest, zeros_at_end) = sixteen_digits(aligned - first * POW10[16]);
    Parts {
        first: first as u8,
        rest,
        significant: 17 - zeros_at_end as usize,
        decpt,
        negative: bits >> 31 == 1,
    }
}

/// Appends the text of `p`. `out` must have `SLACK` bytes of spare capacity.
///
/// The text is assembled with stores only (no branch on the sign, no copy of a run-time length,
/// no reload of bytes just stored), since this runs once per embedding value.
#[inline]
fn emit(out: &mut Vec<u8>, p: &Parts) {
    assert!(out.capacity() - out.len() >= SLACK);
    let len = out.len();
    // SAFETY: every store below lands within `len + SLACK` bytes of the buffer's start (at most 30:
    // a sign, then at most 5 + 16 + 8 for "dddd." and the fraction's digits), inside its capacity
    // as asserted; `set_len` covers only bytes written here.
    unsafe {
        let start = out.as_mut_ptr().add(len);
        *start = b'-';
        let dst = start.add(usize::from(p.negative));
        let end = if p.decpt <= 0 {
            // 0.ddd, 0.0ddd, 0.00ddd or 0.000ddd (x >= 1e-4).
            let zeros = (-p.decpt) as usize;
            dst.cast::<[u8; 8]>().write_unaligned(*b"0.000000");
            *dst.add(2 + zeros) = b'0' + p.first;
            dst.add(3 + zeros).cast::<u128>().write_unaligned(p.rest.to_le());
            dst.add(2 + zeros + p.significant)
        } else {
            // d.ddd up to dddd.ddd (x < 2048), or ddd.0 when all digits are in the integer part.
            let decpt = p.decpt as usize;
            *dst = b'0' + p.first;
            dst.add(1).cast::<u128>().write_unaligned(p.rest.to_le());
            *dst.add(decpt) = b'.';
            // Digits decpt.. (zeros if there are none) after the point.
            let fraction = p.rest >> (8 * (decpt - 1));
            dst.add(decpt + 1).cast::<u128>().write_unaligned(fraction.to_le());
            dst.add(p.significant.max(decpt + 1) + 1)
        };
        out.set_len(len + end.offset_from(start) as usize);
    }
}

/// Appends `repr(float(x))` if `x` is in the range covered here (see the module documentation) and
/// returns true; otherwise appends nothing and returns false. `out` must have `SLACK` bytes of
/// spare capacity.
#[inline]
pub(super) fn write(out: &mut Vec<u8>, x: f32) -> bool {
    let bits = x.to_bits();
    if !covered(bits) {
        return false;
    }
    emit(out, &parts(bits));
    true
}

/// Appends `values` as Python writes a list of `float(value)` between its brackets, separated by
/// `", "`: this module's text where it applies, `fallback`'s elsewhere. `out` must keep `SLACK`
/// bytes of spare capacity after each value (reserving for the whole list up front is the fast way).
#[inline]
pub(super) fn write_items(out: &mut Vec<u8>, values: &[f32], fallback: impl Fn(&mut Vec<u8>, f32)) {
    let rest = write_eights(out, values, &fallback);
    let skip_first_separator = rest.len() == values.len();
    for (j, &x) in rest.iter().enumerate() {
        if j > 0 || !skip_first_separator {
            out.extend_from_slice(b", ");
        }
        if !write(out, x) {
            fallback(out, x);
        }
    }
}

/// The part of `write_items` that takes eight values at a time (with `avx512::parts8`, where the
/// CPU has it): writes a prefix of `values` and returns the rest.
#[cfg(target_arch = "x86_64")]
fn write_eights<'a>(out: &mut Vec<u8>, values: &'a [f32], fallback: &impl Fn(&mut Vec<u8>, f32)) -> &'a [f32] {
    if !avx512::available() {
        return values;
    }
    let mut chunks = values.chunks_exact(8);
    for (c, chunk) in chunks.by_ref().enumerate() {
        let chunk: &[f32; 8] = chunk.try_into().expect("chunks of 8");
        // SAFETY: the CPU has the features `parts8` is compiled for (checked above).
        let (lanes, covered) = unsafe { avx512::parts8(chunk) };
        for (i, (p, &x)) in lanes.iter().zip(chunk).enumerate() {
            if c + i > 0 {
                out.extend_from_slice(b", ");
            }
            if covered & 1 << i == 0 {
                fallback(out, x);
            } else {
                emit(out, p);
            }
        }
    }
    chunks.remainder()
}

/// `write_eights` where there is no eight-lane path: nothing written.
#[cfg(not(target_arch = "x86_64"))]
fn write_eights<'a>(_out: &mut Vec<u8>, values: &'a [f32], _fallback: &impl Fn(&mut Vec<u8>, f32)) -> &'a [f32] {
    values
}

/// `parts` of eight values at once, in 64-bit lanes: the exact integer arithmetic of `shortest`
/// with the 24 x 47-bit product in IFMA's two 52-bit halves, and the digits as in `sixteen_digits`.
/// About a quarter of the scalar path's instructions per value (the text is still assembled by
/// `emit`, one value at a time).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    #[allow(clippy::wildcard_imports)]
    use std::arch::x86_64::*;

    use super::{Parts, LEVELS, MAX_S, MIN_S, POW10};

    pub(super) fn available() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512ifma")
    }

    /// `LEVELS` packed for a gather: `pow5_up` (< 2^47) in the low bits, `j` from bit 58 up.
    const PACKED: [u64; (MAX_S - MIN_S + 1) as usize] = {
        let mut table = [0u64; (MAX_S - MIN_S + 1) as usize];
        let mut i = 0;
        while i < table.len() {
            assert!(LEVELS[i].pow5_up < 1 << 47 && LEVELS[i].j < 32);
            table[i] = LEVELS[i].pow5_up | (LEVELS[i].j as u64) << 58;
            i += 1;
        }
        table
    };

    /// `(parts, covered)`: bit `i` of `covered` is set if value `i` is in the covered range, and
    /// only those lanes of `parts` are meaningful.
    ///
    /// # Safety
    /// The CPU supports AVX-512 F, BW, DQ and IFMA (`available()`).
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512ifma")]
    pub(super) unsafe fn parts8(values: &[f32; 8]) -> ([Parts; 8], u8) {
        let one = _mm512_set1_epi64(1);
        let x = _mm256_loadu_ps(values.as_ptr());
        let bits = _mm512_cvtepu32_epi64(_mm256_castps_si256(x));
        // The range check of `covered`, on the value widened to a double (exact).
        let abs = _mm512_abs_pd(_mm512_cvtps_pd(x));
        let in_range = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(abs, _mm512_set1_pd(1e-4))
            & _mm512_cmp_pd_mask::<_CMP_LT_OQ>(abs, _mm512_set1_pd(2048.0));
        let mantissa = _mm512_and_si512(bits, _mm512_set1_epi64(0x7F_FFFF));
        let covered = in_range & _mm512_test_epi64_mask(mantissa, mantissa);
        let m = _mm512_or_si512(mantissa, _mm512_set1_epi64(0x80_0000));
        let s = _mm512_sub_epi64(
            _mm512_set1_epi64(150),
            _mm512_and_si512(_mm512_srli_epi64::<23>(bits), _mm512_set1_epi64(0xFF)),
        );
        // Lanes out of range read entry 0; their results are not used.
        let index = _mm512_maskz_sub_epi64(covered, s, _mm512_set1_epi64(i64::from(MIN_S)));
        let packed = _mm512_i64gather_epi64::<8>(index, PACKED.as_ptr().cast());
        let pow5_up = _mm512_and_si512(packed, _mm512_set1_epi64((1 << 58) - 1));
        let j = _mm512_srli_epi64::<58>(packed);
        let j1 = _mm512_add_epi64(j, one);
        // up = m * 5^(s-j-1) = hi * 2^52 + lo.
        let zero = _mm512_setzero_si512();
        let lo = _mm512_madd52lo_epu64(zero, m, pow5_up);
        let hi = _mm512_madd52hi_epu64(zero, m, pow5_up);
        let fifty_two = _mm512_set1_epi64(52);
        // whole = up >> (j+1), frac = up mod 2^(j+1) (j + 1 <= 18).
        let unit1 = _mm512_sllv_epi64(one, j1);
        let whole = _mm512_or_si512(
            _mm512_sllv_epi64(hi, _mm512_sub_epi64(fifty_two, j1)),
            _mm512_srlv_epi64(lo, j1),
        );
        let frac = _mm512_and_si512(lo, _mm512_sub_epi64(unit1, one));
        let below = _mm512_cmple_epu64_mask(_mm512_slli_epi64::<30>(frac), pow5_up);
        let above = _mm512_cmple_epu64_mask(_mm512_slli_epi64::<30>(_mm512_sub_epi64(unit1, frac)), pow5_up);
        // exact = 5 up = hi5 * 2^52 + lo5; N rounded to a multiple of 10^j (the quotient < 2^57).
        let lo5 = _mm512_add_epi64(lo, _mm512_slli_epi64::<2>(lo));
        let hi5 = _mm512_add_epi64(hi, _mm512_slli_epi64::<2>(hi));
        let unit = _mm512_sllv_epi64(one, j);
        let whole_j = _mm512_add_epi64(
            _mm512_sllv_epi64(hi5, _mm512_sub_epi64(fifty_two, j)),
            _mm512_srlv_epi64(lo5, j),
        );
        let twice = _mm512_slli_epi64::<1>(_mm512_and_si512(lo5, _mm512_sub_epi64(unit, one)));
        let round_up = _mm512_cmpgt_epu64_mask(twice, unit)
            | (_mm512_cmpeq_epu64_mask(twice, unit) & _mm512_test_epi64_mask(whole_j, one));
        let rounded = _mm512_mask_add_epi64(whole_j, round_up, whole_j, one);
        let short = below | above;
        let whole = _mm512_mask_add_epi64(whole, above & !below, whole, one);
        let digits = _mm512_mask_blend_epi64(short, rounded, whole);
        let base = _mm512_mask_blend_epi64(short, _mm512_set1_epi64(16), _mm512_set1_epi64(15));
        let limit = _mm512_mask_blend_epi64(
            short,
            _mm512_set1_epi64(POW10[16] as i64),
            _mm512_set1_epi64(POW10[15] as i64),
        );
        let count = _mm512_mask_add_epi64(base, _mm512_cmpge_epu64_mask(digits, limit), base, one);
        let shift = _mm512_mask_blend_epi64(short, j, j1);
        let decpt = _mm512_sub_epi64(_mm512_add_epi64(count, shift), s);
        // Left-aligned in 17 places: times 10^(17 - count), count in 15..=17.
        let scale = _mm512_permutexvar_epi64(
            _mm512_sub_epi64(count, _mm512_set1_epi64(15)),
            _mm512_setr_epi64(100, 10, 1, 1, 1, 1, 1, 1),
        );
        let aligned = _mm512_mullo_epi64(digits, scale);
        // aligned (< 10^17) = t * 10^8 + low: the quotient from doubles (relative error below 2^-51,
        // so off by at most one), then corrected.
        let e8 = _mm512_set1_epi64(POW10[8] as i64);
        let estimate = _mm512_cvttpd_epu64(_mm512_mul_pd(_mm512_cvtepu64_pd(aligned), _mm512_set1_pd(1e-8)));
        let low = _mm512_sub_epi64(aligned, _mm512_mullo_epi64(estimate, e8));
        let too_big = _mm512_cmplt_epi64_mask(low, zero);
        let t = _mm512_mask_sub_epi64(estimate, too_big, estimate, one);
        let low = _mm512_mask_add_epi64(low, too_big, low, e8);
        let too_small = _mm512_cmpge_epi64_mask(low, e8);
        let t = _mm512_mask_add_epi64(t, too_small, t, one);
        let low = _mm512_mask_sub_epi64(low, too_small, low, e8);
        // t / 10^8 for t < 10^9 < 2^32: t * ceil(2^57 / 10^8) >> 57 (exact while t * 24144128 < 2^57).
        let first = _mm512_srli_epi64::<57>(_mm512_mul_epu32(t, _mm512_set1_epi64(1_441_151_881)));
        let high = _mm512_sub_epi64(t, _mm512_mullo_epi64(first, e8));

        let mut out = [Parts {
            first: 0,
            rest: 0,
            significant: 0,
            decpt: 0,
            negative: false,
        }; 8];
        let (mut firsts, mut decpts, mut texts) = ([0u64; 8], [0i64; 8], [0u128; 8]);
        _mm512_storeu_si512(firsts.as_mut_ptr().cast(), first);
        _mm512_storeu_si512(decpts.as_mut_ptr().cast(), decpt);
        // (high, low) pairs, one value per 128-bit lane, then `sixteen_digits` lane by lane.
        let mut zeros = 0u128;
        for half in 0..2 {
            let pick = if half == 0 {
                _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11)
            } else {
                _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15)
            };
            let x = _mm512_permutex2var_epi64(high, pick, low);
            let abcd = _mm512_srli_epi64::<40>(_mm512_mul_epu32(x, _mm512_set1_epi64(109_951_163)));
            let efgh = _mm512_sub_epi64(x, _mm512_mul_epu32(abcd, _mm512_set1_epi64(10_000)));
            let y = _mm512_or_si512(abcd, _mm512_slli_epi64::<32>(efgh));
            let ab = _mm512_srli_epi16::<3>(_mm512_mulhi_epu16(y, _mm512_set1_epi32(5243)));
            let cd = _mm512_sub_epi16(y, _mm512_mullo_epi16(ab, _mm512_set1_epi32(100)));
            let z = _mm512_or_si512(ab, _mm512_slli_epi32::<16>(cd));
            let tens = _mm512_mulhi_epu16(z, _mm512_set1_epi16(6554));
            let digits = _mm512_sub_epi16(
                _mm512_slli_epi16::<8>(z),
                _mm512_mullo_epi16(tens, _mm512_set1_epi16(2559)),
            );
            zeros |= u128::from(_mm512_cmpeq_epi8_mask(digits, zero)) << (64 * half);
            let text = _mm512_add_epi8(digits, _mm512_set1_epi8(b'0' as i8));
            _mm512_storeu_si512(texts[4 * half..].as_mut_ptr().cast(), text);
        }
        for (i, p) in out.iter_mut().enumerate() {
            *p = Parts {
                first: firsts[i] as u8,
                rest: texts[i],
                significant: 17 - ((zeros >> (16 * i)) as u16).leading_ones() as usize,
                decpt: decpts[i] as i32,
                negative: values[i].is_sign_negative(),
            };
        }
        (out, covered)
    }
}

#[cfg(test)]
mod tests {
    use super::{eight_digits, sixteen_digits, sixteen_digits_scalar, write, MAX_S, MIN_S, SLACK};
    use crate::json::write_f64;
    use proptest::prelude::*;

    fn check_digits(v: u64) {
        let want = format!("{v:016}");
        let (text, zeros) = sixteen_digits(v);
        assert_eq!(String::from_utf8_lossy(&text.to_le_bytes()), want);
        assert_eq!(zeros as usize, want.len() - want.trim_end_matches('0').len());
        let scalar = u64::from_le_bytes(want.as_bytes()[8..].try_into().unwrap()) - 0x3030_3030_3030_3030;
        assert_eq!(eight_digits((v % 100_000_000) as u32), scalar);
        assert_eq!(sixteen_digits_scalar(v), (text, zeros));
    }

    #[test]
    fn sixteen_digits_edges() {
        for v in [
            0,
            1,
            9,
            10,
            99,
            100,
            9999,
            10_000,
            99_999_999,
            100_000_000,
            1_000_000_000_000_000 - 1,
            9_999_999_999_999_999,
        ] {
            check_digits(v);
        }
        for k in 0..16 {
            check_digits(10u64.pow(k));
            check_digits(10u64.pow(k) * 7);
        }
    }

    proptest! {
        #[test]
        fn sixteen_digits_are_the_decimal_text(v in 0u64..10_000_000_000_000_000) {
            check_digits(v);
        }
    }

    /// The general path's text for `x`, and this module's (None when `x` is out of its range).
    fn both(x: f32) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut general = Vec::new();
        write_f64(&mut general, f64::from(x));
        let mut fast = Vec::with_capacity(SLACK);
        let covered = write(&mut fast, x);
        (general, covered.then_some(fast))
    }

    fn check(x: f32) -> bool {
        let (general, fast) = both(x);
        if let Some(fast) = &fast {
            assert_eq!(
                String::from_utf8_lossy(fast),
                String::from_utf8_lossy(&general),
                "{x:e} (bits {:#x})",
                x.to_bits()
            );
        }
        fast.is_some()
    }

    /// `write_items(values)` against the general path's text of each value, joined by ", ".
    fn check_items(values: &[f32]) {
        let mut want = Vec::new();
        for (i, &x) in values.iter().enumerate() {
            if i > 0 {
                want.extend_from_slice(b", ");
            }
            write_f64(&mut want, f64::from(x));
        }
        let mut got = Vec::new();
        crate::json::write_f32_list_items(&mut got, values);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{values:?}"
        );
    }

    /// Every f32 with biased exponent in the covered span, positive and negative, whose mantissa is
    /// a multiple of `stride` (plus the mantissas next to 0 and 2^23): one at a time, and as lists
    /// of 64 (all through the eight-lane path where the CPU has it).
    fn sweep(stride: u32) -> usize {
        let mut covered = 0;
        let mut batch = Vec::with_capacity(64);
        for biased in (150 - MAX_S)..=(150 - MIN_S) {
            let edges = [1, 2, 3, 0x7F_FFFE, 0x7F_FFFF];
            for mantissa in (0..1 << 23).step_by(stride as usize).chain(edges) {
                for sign in [0, 1 << 31] {
                    let x = f32::from_bits(sign | biased << 23 | mantissa);
                    covered += usize::from(check(x));
                    batch.push(x);
                    if batch.len() == batch.capacity() {
                        check_items(&batch);
                        batch.clear();
                    }
                }
            }
        }
        check_items(&batch);
        covered
    }

    proptest! {
        /// Lists of any length mixing covered values with everything else (zeros, powers of two,
        /// tiny and huge values, NaN, infinities).
        #[test]
        fn lists_match_the_general_path(
            values in proptest::collection::vec(
                prop_oneof![
                    any::<u32>().prop_map(f32::from_bits),
                    (-1.0f32..1.0),
                    (-3000.0f32..3000.0),
                    Just(0.5f32), Just(-0.0f32), Just(f32::NAN), Just(2048.0f32), Just(1e-4f32),
                ],
                0..40,
            )
        ) {
            check_items(&values);
        }
    }

    #[test]
    fn sampled_f32_values_match_the_general_path() {
        // A prime stride visits every residue of the low mantissa bits across the exponents.
        assert!(sweep(4099) > 90_000);
    }

    /// All ~420 million values in range, both signs: `make test-exhaustive` (a release build, ~40 s).
    #[test]
    #[ignore = "exhaustive: run in release builds"]
    fn every_f32_in_range_matches_the_general_path() {
        assert!(sweep(1) > 400_000_000);
    }

    #[test]
    fn the_range_is_what_the_module_claims() {
        let covered = |x: f32| both(x).1.is_some();
        for x in [1.0001e-4f32, 0.1, -0.1, 0.3, 1.5, -1.5, 3.0, 1025.0, 2047.9999] {
            assert!(covered(x), "{x}");
        }
        let below = f32::from_bits(1e-4f32.to_bits() - 1);
        assert!(f64::from(below) < 1e-4 || covered(below));
        for x in [
            0.0,
            -0.0,
            9.9e-5,
            2048.0,
            4096.5,
            0.5,
            0.25,
            1.0,
            f32::NAN,
            f32::INFINITY,
            1e-30,
            3e38,
        ] {
            assert!(!covered(x), "{x}");
        }
    }

    #[test]
    /// Values with their `repr(float(numpy.float32(x)))` from CPython.
    fn known_values() {
        for (x, want) in [
            (0.1f32, "0.10000000149011612"),
            (-0.036_f32, "-0.035999998450279236"),
            (1e-4, "9.999999747378752e-05"),
            (0.000_123_456_79, "0.00012345678987912834"),
            (1025.0, "1025.0"),
            (1.5, "1.5"),
            (2047.9999, "2047.9998779296875"),
            (0.3, "0.30000001192092896"),
        ] {
            let mut out = Vec::new();
            crate::json::write_f32_as_python_float(&mut out, x);
            assert_eq!(std::str::from_utf8(&out).unwrap(), want);
        }
    }
}
