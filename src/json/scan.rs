//! Byte scans over JSON string contents, 16 bytes at a time (SSE2, part of every x86-64 CPU, so no
//! run-time dispatch), with a scalar fallback elsewhere. The scalar loops are also the test oracles.
//!
//! Node texts make up most of a docstore file and their strings break every few dozen bytes (each
//! line ends in `\n`), so these are written to be cheap to enter, not only fast on long runs.

/// Index of the first `"` or `\` in `b` at or after `from`, or `b.len()`.
#[inline]
#[must_use]
pub fn quote_or_backslash(b: &[u8], from: usize) -> usize {
    let mut i = from;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of the x86-64 baseline; every load reads 16 bytes inside `b`.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            while i + 16 <= b.len() {
                let v = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
                let hits = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
                let mask = _mm_movemask_epi8(hits) as u32;
                if mask != 0 {
                    return i + mask.trailing_zeros() as usize;
                }
                i += 16;
            }
        }
    }
    while i < b.len() && b[i] != b'"' && b[i] != b'\\' {
        i += 1;
    }
    i
}

/// Appends `b[from..k]` to `out` and returns `k`, the index of the first `"` or `\` at or after
/// `from` (or `b.len()`): `quote_or_backslash` that copies each 16-byte block as it scans it (for
/// decoding escaped strings, whose runs between escapes are short).
#[inline]
pub fn copy_until_quote_or_backslash(b: &[u8], from: usize, out: &mut Vec<u8>) -> usize {
    let mut i = from;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_storeu_si128,
        };
        let start_len = out.len();
        out.reserve(b.len().saturating_sub(from));
        // SAFETY: SSE2 is part of the x86-64 baseline. Loads read 16 bytes inside `b`. A store at
        // `o = start_len + (i - from)` writes `out[o..o + 16]`, within the capacity reserved above
        // because `i + 16 <= b.len()`. `set_len` only covers bytes those stores wrote.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            while i + 16 <= b.len() {
                let v = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
                let o = start_len + (i - from);
                _mm_storeu_si128(out.as_mut_ptr().add(o).cast::<__m128i>(), v);
                let mask =
                    _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash))) as u32;
                if mask != 0 {
                    let n = mask.trailing_zeros() as usize;
                    out.set_len(o + n);
                    return i + n;
                }
                i += 16;
                out.set_len(o + 16);
            }
        }
    }
    let end = quote_or_backslash(b, i);
    out.extend_from_slice(&b[i..end]);
    end
}

/// Number of leading bytes of `b` that a `json.dumps` string holds unescaped: printable ASCII
/// (0x20..=0x7E) other than `"` and `\`.
#[inline]
#[must_use]
pub fn plain_ascii_run(b: &[u8]) -> usize {
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of the x86-64 baseline; every load reads 16 bytes inside `b`.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            let del = _mm_set1_epi8(0x7F);
            let below_space = _mm_set1_epi8(0x20);
            while i + 16 <= b.len() {
                let v = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
                // Signed compare: bytes >= 0x80 are negative, so `0x20 > v` catches them and controls.
                let bad = _mm_or_si128(
                    _mm_or_si128(_mm_cmpgt_epi8(below_space, v), _mm_cmpeq_epi8(v, del)),
                    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                );
                let mask = _mm_movemask_epi8(bad) as u32;
                if mask != 0 {
                    return i + mask.trailing_zeros() as usize;
                }
                i += 16;
            }
        }
    }
    while let Some(&c) = b.get(i) {
        if !(0x20..=0x7E).contains(&c) || c == b'"' || c == b'\\' {
            break;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn oracle_quote(b: &[u8], from: usize) -> usize {
        b[from..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\')
            .map_or(b.len(), |p| from + p)
    }

    fn oracle_plain(b: &[u8]) -> usize {
        b.iter()
            .position(|&c| !(0x20..=0x7E).contains(&c) || c == b'"' || c == b'\\')
            .unwrap_or(b.len())
    }

    proptest! {
        #[test]
        fn scans_agree_with_byte_loops(b in proptest::collection::vec(
            prop_oneof![4 => 0x20u8..0x7F, 1 => any::<u8>(), 1 => Just(b'"'), 1 => Just(b'\\')], 0..80),
            from in 0usize..80) {
            let from = from.min(b.len());
            prop_assert_eq!(quote_or_backslash(&b, from), oracle_quote(&b, from));
            prop_assert_eq!(plain_ascii_run(&b), oracle_plain(&b));
            let mut out = b"prefix".to_vec();
            let end = copy_until_quote_or_backslash(&b, from, &mut out);
            prop_assert_eq!(end, oracle_quote(&b, from));
            prop_assert_eq!(&out[..6], b"prefix");
            prop_assert_eq!(&out[6..], &b[from..end]);
        }
    }

    #[test]
    fn every_byte_value_at_every_lane() {
        for bad in 0..=255u8 {
            for at in 0..40 {
                let mut b = vec![b'a'; 40];
                b[at] = bad;
                assert_eq!(plain_ascii_run(&b), oracle_plain(&b), "{bad:#x} at {at}");
                assert_eq!(quote_or_backslash(&b, 0), oracle_quote(&b, 0), "{bad:#x} at {at}");
            }
        }
    }
}
