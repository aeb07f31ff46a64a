//! One-pass parsing of the common JSON number: match the grammar and build the value in the same loop
//! over the digits, then convert with the Eisel-Lemire algorithm (Lemire, "Number parsing at a
//! gigabyte per second", 2021; the algorithm of Rust's own `f64::from_str`). Loading a vector file is
//! mostly this: matching a number and then handing its text to `str::parse` read every digit twice.
//!
//! `fast_f64` answers only when the answer is certain: at most 19 significant digits (the decimal
//! significand fits a u64 exactly) and an exponent Eisel-Lemire resolves. Everything else (longer
//! significands, the algorithm's rare undecidable cases, anything not a plain number) returns `None`
//! and the caller falls back to `scan_number` + `str::parse`, which stays the reference.

use super::pow5_table::{POW5_128, POW5_MAX_Q, POW5_MIN_Q};

/// Significand bits stored in an f64 (the leading 1 is implicit).
const SIG_BITS: i32 = 52;
/// Biased exponent of infinity.
const INFINITE_POWER: i32 = 0x7FF;

/// Parses the JSON number at `b[start..]` exactly as `scan_number` matches it and `str::parse::<f64>`
/// converts it: `Some((end, value))`, or `None` when this fast path does not decide (see the module
/// header). Integers are converted to the nearest f64 too.
#[inline]
pub(super) fn fast_f64(b: &[u8], start: usize) -> Option<(usize, f64)> {
    let mut i = start;
    let negative = b.get(i) == Some(&b'-');
    i += usize::from(negative);
    let mut w: u64 = 0;
    // Significant digits in `w` (digits after leading zeros); more than 19 may overflow a u64.
    let mut significant = 0usize;
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            let first = i;
            i = digits(b, i, &mut w);
            significant = i - first;
        }
        _ => return None,
    }
    let mut exponent: i64 = 0;
    if b.get(i) == Some(&b'.') {
        let first = i + 1;
        i = first;
        if w == 0 {
            while b.get(i) == Some(&b'0') {
                i += 1; // leading zeros of `0.000123`: not significant
            }
        }
        let nonzero = i;
        i = digits(b, i, &mut w);
        significant += i - nonzero;
        if i == first {
            return None; // `1.` is the number 1 followed by a stray `.`: the general path decides
        }
        exponent = -((i - first) as i64);
    }
    if let Some(b'e' | b'E') = b.get(i) {
        let mut k = i + 1;
        let exp_negative = b.get(k) == Some(&b'-');
        if let Some(b'+' | b'-') = b.get(k) {
            k += 1;
        }
        let digits_start = k;
        let mut e: i64 = 0;
        while let Some(&c) = b.get(k).filter(|c| c.is_ascii_digit()) {
            e = e * 10 + i64::from(c - b'0');
            k += 1;
            if k - digits_start > 6 {
                return None; // an absurd exponent: the general path decides
            }
        }
        if k == digits_start {
            return None; // `1e` / `1e+`: the number ends before the `e`; the general path decides
        }
        exponent += if exp_negative { -e } else { e };
        i = k;
    }
    if significant > 19 {
        return None;
    }
    let magnitude = if w == 0 { 0.0 } else { eisel_lemire(w, exponent)? };
    Some((i, if negative { -magnitude } else { magnitude }))
}

/// Appends the decimal digits at `b[i..]` to `w` (wrapping: the caller bounds the digit count) and
/// returns the index after them. Eight digits at a time while there are eight.
#[inline(always)]
fn digits(b: &[u8], mut i: usize, w: &mut u64) -> usize {
    while let Some(chunk) = b.get(i..i + 8) {
        let chunk = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        if !eight_digits(chunk) {
            break;
        }
        *w = w.wrapping_mul(100_000_000).wrapping_add(parse_eight_digits(chunk));
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        *w = w.wrapping_mul(10).wrapping_add(u64::from(digit));
        i += 1;
    }
    i
}

/// Whether the eight bytes (little-endian in `chunk`) are all ASCII digits.
#[inline(always)]
fn eight_digits(chunk: u64) -> bool {
    (chunk & 0xF0F0_F0F0_F0F0_F0F0) | ((chunk.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4)
        == 0x3333_3333_3333_3333
}

/// The value of eight ASCII digits (little-endian in `chunk`, first digit in the low byte), with
/// three multiplications (SWAR: pairs, then fours, then the eight).
#[inline(always)]
fn parse_eight_digits(chunk: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let v = chunk.wrapping_sub(0x3030_3030_3030_3030);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    (v & MASK)
        .wrapping_mul(MUL1)
        .wrapping_add(((v >> 16) & MASK).wrapping_mul(MUL2))
        >> 32
}

/// The f64 nearest to `w * 10^q` (`w > 0`, exact), or `None` if the 128-bit approximation cannot
/// decide the rounding or the result would be subnormal, zero or infinite (left to `str::parse`).
fn eisel_lemire(w: u64, q: i64) -> Option<f64> {
    if !(POW5_MIN_Q..=POW5_MAX_Q).contains(&q) {
        return None;
    }
    let lz = w.leading_zeros();
    let w = w << lz;
    let (lo, hi) = product_approx(q, w);
    // The truncated product may be one short of a rounding boundary only when 5^q is not exact in
    // 128 bits and the low word is all ones; q in -27..=55 is safe even then (the paper, section 9).
    if lo == u64::MAX && !(-27..=55).contains(&q) {
        return None;
    }
    let upper_bit = (hi >> 63) as i32;
    let shift = upper_bit + 64 - SIG_BITS - 3;
    let mut mantissa = hi >> shift;
    // floor(log2(10^q)) + 63, then the exponent bias of 1023.
    let mut power2 = (((q as i32).wrapping_mul(152_170 + 65_536)) >> 16) + 63 + upper_bit - lz as i32 + 1023;
    if power2 <= 0 {
        return None; // subnormal or zero
    }
    // Exactly halfway between two floats (only possible when 5^q fits in 64 bits): round to even.
    if lo <= 1 && (-4..=23).contains(&q) && mantissa & 3 == 1 && (mantissa << shift) == hi {
        mantissa &= !1;
    }
    mantissa += mantissa & 1;
    mantissa >>= 1;
    if mantissa >= 2 << SIG_BITS {
        mantissa = 1 << SIG_BITS;
        power2 += 1;
    }
    mantissa &= !(1 << SIG_BITS);
    if power2 >= INFINITE_POWER {
        return None;
    }
    Some(f64::from_bits(mantissa | ((power2 as u64) << SIG_BITS)))
}

/// The high 128 bits of `w * 5^q` (as (low, high) words), computed from the 128-bit table entry with a
/// second multiplication only when the first leaves the bits that decide rounding uncertain.
#[inline]
fn product_approx(q: i64, w: u64) -> (u64, u64) {
    const PRECISION: u32 = SIG_BITS as u32 + 3;
    let mask = u64::MAX >> PRECISION;
    let (hi5, lo5) = POW5_128[(q - POW5_MIN_Q) as usize];
    let first = u128::from(w) * u128::from(hi5);
    let (mut first_lo, mut first_hi) = (first as u64, (first >> 64) as u64);
    if first_hi & mask == mask {
        let second_hi = ((u128::from(w) * u128::from(lo5)) >> 64) as u64;
        first_lo = first_lo.wrapping_add(second_hi);
        if second_hi > first_lo {
            first_hi += 1;
        }
    }
    (first_lo, first_hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the fast path must agree with: the general path's match and `str::parse`.
    fn reference(text: &str) -> Option<(usize, f64)> {
        let (end, _) = super::super::read::scan_number(text.as_bytes(), 0)?;
        Some((end, text[..end].parse().ok()?))
    }

    fn check(text: &str) {
        if let Some((end, x)) = fast_f64(text.as_bytes(), 0) {
            let (want_end, want) =
                reference(text).unwrap_or_else(|| panic!("{text:?}: fast path matched a non-number"));
            assert_eq!(end, want_end, "{text:?}: end");
            assert_eq!(x.to_bits(), want.to_bits(), "{text:?}: {x:e} vs {want:e}");
        }
    }

    #[test]
    fn eight_digit_chunks() {
        for text in ["12345678", "00000000", "99999999", "01234567"] {
            let chunk = u64::from_le_bytes(text.as_bytes().try_into().unwrap());
            assert!(eight_digits(chunk));
            assert_eq!(parse_eight_digits(chunk), text.parse::<u64>().unwrap());
        }
        for text in ["1234567a", "/2345678", ":2345678", "1234 678", "12345.78"] {
            assert!(
                !eight_digits(u64::from_le_bytes(text.as_bytes().try_into().unwrap())),
                "{text}"
            );
        }
    }

    #[test]
    fn decides_the_usual_embedding_values() {
        for text in [
            "0.10000000149011612",
            "-0.012345678901234567",
            "9.5e-05",
            "1",
            "0",
            "-0.0",
            "123.0",
        ] {
            assert!(fast_f64(text.as_bytes(), 0).is_some(), "{text}");
            check(text);
        }
    }

    #[test]
    fn edge_cases_agree_with_str_parse() {
        for text in [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "1e0",
            "1E+2",
            "1e-2",
            "2.5e-324",
            "1e308",
            "1.7976931348623157e308",
            "1.7976931348623159e308",
            "2.2250738585072014e-308",
            "2.2250738585072011e-308",
            "4.9e-324",
            "9007199254740993",
            "9007199254740992.5",
            "18446744073709551615",
            "18446744073709551616",
            "1.",
            "1.e5",
            "1e",
            "1e+",
            "-",
            "-a",
            "01",
            "00.5",
            "0.5.5",
            "1e5.5",
            "123456789012345678901234567890",
            "0.000000000000000000000000000000000000001",
            "1e1000000",
            "1e-1000000",
            "5e-1",
            "0.30000000000000004",
            "1.00000000000000011102230246251565404236316680908203125",
            "1.0000000000000001110223024625156540423631668090820312",
            "1.00000000000000011102230246251565404236316680908203124",
            "4503599627370496.5",
            "4503599627370497.5",
            "9.999999999999999e-05",
            "0.00010000000000000002",
        ] {
            check(text);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn agrees_with_str_parse_on_float_reprs(bits in any::<u64>()) {
            let x = f64::from_bits(bits);
            if x.is_finite() {
                check(&format!("{x:?}"));
                check(&format!("{x:e}"));
                check(&format!("{:?}", f64::from(x as f32)));
            }
        }

        #[test]
        fn agrees_with_str_parse_on_digit_strings(
            negative in any::<bool>(),
            int in "(0|[1-9][0-9]{0,20})",
            frac in proptest::option::of("[0-9]{1,22}"),
            exp in proptest::option::of((any::<bool>(), "[eE]", "[+-]?", 0u32..400)),
        ) {
            let mut text = String::new();
            if negative {
                text.push('-');
            }
            text.push_str(&int);
            if let Some(frac) = frac {
                text.push('.');
                text.push_str(&frac);
            }
            if let Some((_, e, sign, value)) = exp {
                text.push_str(&e);
                text.push_str(&sign);
                text.push_str(&value.to_string());
            }
            check(&text);
            check(&format!("{text}, "));
        }

        #[test]
        fn agrees_with_str_parse_on_exact_ties(n in (1u64 << 52)..(1u64 << 55)) {
            // above 2^53 odd integers lie halfway between two doubles; below it, n.5 does
            check(&n.to_string());
            check(&format!("{n}.5"));
            check(&format!("{}.5", n >> 1));
            check(&format!("-{n}"));
        }
    }
}
