//! A JSON writer byte-identical to `CPython` 3.11 `json.dumps(obj)` with default arguments.
//!
//! Guarantees, for every `Value`:
//! - separators `", "` and `": "`, no indentation, keys in insertion order (no sorting);
//! - `ensure_ascii=True`: the output is pure ASCII. `"` `\` `\n` `\r` `\t` `\b` `\f` get their short
//!   escapes, every other code point outside 0x20..=0x7E becomes `\uXXXX` (lowercase hex; DEL is
//!   `\u007f`, as CPython's `S_CHAR` has it), supplementary code points a surrogate pair, lone
//!   surrogates `\udXXX`;
//! - floats as Python's `float.__repr__`: shortest round-trip digits (from `zmij`; for most f32
//!   embedding values from `f32_repr`'s exact integer arithmetic) in Python's layout (`0.1`, `100.0`,
//!   `1e-05`, `1.5e+16`, `-0.0`), and `NaN`, `Infinity`, `-Infinity` (`allow_nan=True`);
//! - integers in decimal, `BigInt` digits verbatim, `true`, `false`, `null`.
//!
//! Nothing here allocates per value beyond growing the output buffer. Nesting is written recursively:
//! values produced by `read::parse` are at most `read::MAX_DEPTH` deep, which is safe on a 2 MB stack.

use super::f32_repr;
use super::value::{JStr, Value};

/// Serializes `v` exactly as `json.dumps(v)` would.
#[must_use]
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_value(&mut out, v);
    out
}

/// Appends `json.dumps(v)` to `out`.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => write_i64(out, *i),
        Value::BigInt(digits) => out.extend_from_slice(digits.as_bytes()),
        Value::Float(x) => write_f64(out, *x),
        Value::Str(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(obj) => {
            out.push(b'{');
            for (i, (k, item)) in obj.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_str(out, k);
                out.extend_from_slice(b": ");
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Appends an integer in decimal (Python `int.__repr__`).
pub fn write_i64(out: &mut Vec<u8>, i: i64) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let mut n = i.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[pos..]);
}

/// Appends a `JStr` quoted and escaped like `json.dumps` (`ensure_ascii=True`).
pub fn write_str(out: &mut Vec<u8>, s: &JStr) {
    write_wtf8(out, s.as_bytes());
}

/// Appends a `&str` quoted and escaped like `json.dumps` (`ensure_ascii=True`).
pub fn write_str_utf8(out: &mut Vec<u8>, s: &str) {
    write_wtf8(out, s.as_bytes());
}

/// Escape class of each byte: 0 = copied verbatim, `b'u'` = `\u00XX`, `NON_ASCII` = start (or
/// continuation) of a multi-byte code point, anything else = the letter of a short escape.
const NON_ASCII: u8 = 0xFF;
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0C] = b'f';
    t[0x7F] = b'u';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    let mut i = 0x80;
    while i < 0x100 {
        t[i] = NON_ASCII;
        i += 1;
    }
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// True if any of the 8 bytes in `w` needs escaping: < 0x20, `"`, `\`, 0x7F or >= 0x80.
#[inline]
fn word_needs_escape(w: u64) -> bool {
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    let quote = has_zero(w ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(w ^ (ONES * u64::from(b'\\')));
    let del = has_zero(w ^ (ONES * 0x7F));
    (control | quote | backslash | del | (w & HIGHS)) != 0
}

/// Index of the first byte at or after `i` that needs escaping, or `bytes.len()`.
#[inline]
fn safe_run_end(bytes: &[u8], mut i: usize) -> usize {
    while i + 8 <= bytes.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i..i + 8]);
        if word_needs_escape(u64::from_le_bytes(word)) {
            break;
        }
        i += 8;
    }
    while i < bytes.len() && ESCAPE[bytes[i] as usize] == 0 {
        i += 1;
    }
    i
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_u_escape(out: &mut Vec<u8>, unit: u32) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[(unit >> 12 & 0xF) as usize],
        HEX[(unit >> 8 & 0xF) as usize],
        HEX[(unit >> 4 & 0xF) as usize],
        HEX[(unit & 0xF) as usize],
    ]);
}

/// Decodes the generalized-UTF-8 code point starting at `bytes[i]` (a byte >= 0x80). Malformed input
/// (impossible for a `JStr` built by this crate) decodes as U+FFFD one byte at a time instead of panicking.
fn decode_at(bytes: &[u8], i: usize) -> (u32, usize) {
    let first = bytes[i];
    let (len, init) = match first {
        0xC0..=0xDF => (2, u32::from(first & 0x1F)),
        0xE0..=0xEF => (3, u32::from(first & 0x0F)),
        0xF0..=0xF7 => (4, u32::from(first & 0x07)),
        _ => return (0xFFFD, 1),
    };
    let Some(tail) = bytes.get(i + 1..i + len) else {
        return (0xFFFD, 1);
    };
    let mut cp = init;
    for &b in tail {
        if b & 0xC0 != 0x80 {
            return (0xFFFD, 1);
        }
        cp = (cp << 6) | u32::from(b & 0x3F);
    }
    (cp, len)
}

fn write_wtf8(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut i = 0;
    while i < bytes.len() {
        let end = safe_run_end(bytes, i);
        out.extend_from_slice(&bytes[i..end]);
        i = end;
        let Some(&b) = bytes.get(i) else { break };
        match ESCAPE[b as usize] {
            NON_ASCII => {
                let (cp, len) = decode_at(bytes, i);
                i += len;
                if cp >= 0x1_0000 {
                    let v = cp - 0x1_0000;
                    write_u_escape(out, 0xD800 | (v >> 10));
                    write_u_escape(out, 0xDC00 | (v & 0x3FF));
                } else {
                    write_u_escape(out, cp);
                }
            }
            b'u' => {
                write_u_escape(out, u32::from(b));
                i += 1;
            }
            letter => {
                out.extend_from_slice(&[b'\\', letter]);
                i += 1;
            }
        }
    }
    out.push(b'"');
}

/// Appends what Python writes for `float(x)` where `x` is an f32 (e.g. an embedding value from numpy):
/// the repr of the widened f64, `0.10000000149011612` for `0.1f32`.
#[inline]
pub fn write_f32_as_python_float(out: &mut Vec<u8>, x: f32) {
    out.reserve(f32_repr::SLACK);
    push_f32(out, x);
}

/// `write_f32_as_python_float` into reserved space: `f32_repr`'s exact digits where it applies,
/// `write_f64` elsewhere. `out` must have `f32_repr::SLACK` bytes of spare capacity.
#[inline]
fn push_f32(out: &mut Vec<u8>, x: f32) {
    if !f32_repr::write(out, x) {
        write_f64(out, f64::from(x));
    }
}

/// The longest `repr` of a float: `-1.2345678901234567e-308`.
const MAX_FLOAT_LEN: usize = 24;

/// Appends the f32 `values` as Python writes a list of `float(value)` between its brackets:
/// `write_f32_as_python_float` of each, separated by `", "`. One capacity reservation for the row.
pub fn write_f32_list_items(out: &mut Vec<u8>, values: &[f32]) {
    // The fast path's stores may reach `f32_repr::SLACK` bytes past what it appends.
    out.reserve(values.len() * (MAX_FLOAT_LEN + 2) + f32_repr::SLACK);
    f32_repr::write_items(out, values, |out, x| write_f64(out, f64::from(x)));
}

/// Appends Python's `repr(x)` (as `json.dumps` writes floats): shortest round-trip digits, scientific
/// notation iff the decimal exponent is < -4 or >= 16, `NaN`, `Infinity`, `-Infinity`.
#[inline]
pub fn write_f64(out: &mut Vec<u8>, x: f64) {
    // Fast path (almost every embedding value): for 1e-4 <= |x| < 1e15 both Python and zmij write
    // plain decimal notation, identically (sign included). Python switches to scientific notation
    // exactly at the doubles 1e-4 and 1e16: a double below 1e-4 cannot have "0.0001" as its
    // shortest repr, since that string parses to the double 1e-4. A range check instead of
    // scanning zmij's output for an `e` halves the cost per value.
    if (1e-4..1e15).contains(&x.abs()) {
        out.extend_from_slice(zmij::Buffer::new().format_finite(x).as_bytes());
        return;
    }
    write_f64_general(out, x);
}

/// `write_f64` outside the fast path's range: zero, non-finite, tiny and huge values.
#[cold]
pub(super) fn write_f64_general(out: &mut Vec<u8>, x: f64) {
    if !x.is_finite() {
        out.extend_from_slice(if x.is_nan() {
            b"NaN"
        } else if x > 0.0 {
            b"Infinity"
        } else {
            b"-Infinity"
        });
        return;
    }
    if x == 0.0 {
        out.extend_from_slice(if x.is_sign_negative() { b"-0.0" } else { b"0.0" });
        return;
    }
    let mut digits_buf = zmij::Buffer::new();
    let formatted = digits_buf.format_finite(x.abs()).as_bytes();
    // zmij's decimal layout is Python's for decimal exponents -3..=16. It differs only in scientific notation (`1.5e+16` with the mantissa's
    // trailing `.0` rules of its own) and at exponent -4, where it writes `0.0000123` and Python
    // `1.23e-05`.
    if !formatted.contains(&b'e') && !formatted.starts_with(b"0.0000") {
        if x < 0.0 {
            out.push(b'-');
        }
        out.extend_from_slice(formatted);
        return;
    }
    let (digits, n, decpt) = shortest_digits(formatted);
    let digits = &digits[..n];

    // Python's layout (PyOS_double_to_string, 'r' mode, Py_DTSF_ADD_DOT_0): the value is
    // 0.d1d2...dn x 10^decpt.
    let mut buf = [0u8; 40];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        buf[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    if x < 0.0 {
        put(b"-");
    }
    if decpt <= -4 || decpt > 16 {
        put(&digits[..1]);
        if n > 1 {
            put(b".");
            put(&digits[1..]);
        }
        let exp = decpt - 1;
        put(if exp < 0 { b"e-" } else { b"e+" });
        let e = exp.unsigned_abs();
        if e >= 100 {
            put(&[b'0' + (e / 100) as u8]);
        }
        put(&[b'0' + (e / 10 % 10) as u8, b'0' + (e % 10) as u8]);
    } else if decpt <= 0 {
        put(b"0.");
        for _ in 0..-decpt {
            put(b"0");
        }
        put(digits);
    } else {
        let d = decpt as usize;
        if d >= n {
            put(digits);
            for _ in n..d {
                put(b"0");
            }
            put(b".0");
        } else {
            put(&digits[..d]);
            put(b".");
            put(&digits[d..]);
        }
    }
    out.extend_from_slice(&buf[..len]);
}

/// Splits zmij's output for a finite positive number (`"1.5e+16"`, `"0.001"`, `"123.0"`, `"5e-324"`) into
/// significant digits (no leading or trailing zeros), their count, and `decpt` such that the value is
/// `0.d1d2...dn x 10^decpt`.
fn shortest_digits(s: &[u8]) -> ([u8; 32], usize, i32) {
    let mut digits = [0u8; 32];
    let mut n = 0usize;
    let mut int_digits = 0i32;
    let mut seen_dot = false;
    let mut leading_zeros = 0i32;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'.' => seen_dot = true,
            d @ b'0'..=b'9' => {
                if !seen_dot {
                    int_digits += 1;
                }
                if n == 0 && d == b'0' {
                    leading_zeros += 1;
                } else if n < digits.len() {
                    digits[n] = d;
                    n += 1;
                }
            }
            _ => break, // 'e' or 'E'
        }
        i += 1;
    }
    let mut exp = 0i32;
    if i < s.len() {
        let mut neg = false;
        for &c in &s[i + 1..] {
            match c {
                b'-' => neg = true,
                b'0'..=b'9' => exp = exp * 10 + i32::from(c - b'0'),
                _ => {}
            }
        }
        if neg {
            exp = -exp;
        }
    }
    while n > 1 && digits[n - 1] == b'0' {
        n -= 1;
    }
    (digits, n, int_digits + exp - leading_zeros)
}

#[cfg(test)]
mod tests {
    use super::super::value::{push_code_point, Object};
    use super::*;

    fn f(x: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, x);
        String::from_utf8(out).unwrap()
    }

    fn s(x: &str) -> String {
        let mut out = Vec::new();
        write_str_utf8(&mut out, x);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_match_cpython_repr() {
        // Expected strings generated with CPython 3.11: json.dumps(x).
        let cases: &[(f64, &str)] = &[
            (0.1, "0.1"),
            (1e-05, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e16 - 1.0, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1.5e16, "1.5e+16"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (0.30000000000000004, "0.30000000000000004"),
            (2.5e-07, "2.5e-07"),
            (1.5e-05, "1.5e-05"),
            (100.0, "100.0"),
            (1.0, "1.0"),
            (-1.5, "-1.5"),
            (123.456, "123.456"),
            (1e22, "1e+22"),
            (1e-100, "1e-100"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (f64::from(0.1f32), "0.10000000149011612"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (0.001, "0.001"),
            (12345.678, "12345.678"),
            (-2.5e-300, "-2.5e-300"),
        ];
        for &(x, want) in cases {
            assert_eq!(f(x), want, "{x:e}");
        }
        let mut out = Vec::new();
        write_f32_as_python_float(&mut out, 0.1f32);
        assert_eq!(out, b"0.10000000149011612");
    }

    #[test]
    fn ints() {
        for (i, want) in [
            (0i64, "0"),
            (-1, "-1"),
            (42, "42"),
            (i64::MAX, "9223372036854775807"),
            (i64::MIN, "-9223372036854775808"),
        ] {
            let mut out = Vec::new();
            write_i64(&mut out, i);
            assert_eq!(out, want.as_bytes());
        }
        assert_eq!(
            to_vec(&Value::BigInt("-123456789012345678901234567890".into())),
            b"-123456789012345678901234567890"
        );
    }

    #[test]
    fn strings_match_cpython() {
        assert_eq!(s(""), r#""""#);
        assert_eq!(s("plain ascii text"), r#""plain ascii text""#);
        assert_eq!(s("caf\u{e9}"), r#""caf\u00e9""#);
        assert_eq!(s("\u{1F600}"), r#""\ud83d\ude00""#);
        assert_eq!(s("a\u{7f}b"), r#""a\u007fb""#);
        assert_eq!(s("0123456789abcdef\u{7f}"), r#""0123456789abcdef\u007f""#);
        assert_eq!(s("\0"), r#""\u0000""#);
        assert_eq!(s("\"\\\n\r\t\u{8}\u{c}/"), r#""\"\\\n\r\t\b\f/""#);
        assert_eq!(s("\u{1}\u{1f}\u{ffff}\u{1234}"), r#""\u0001\u001f\uffff\u1234""#);
        assert_eq!(
            s("long run of safe ascii then \u{e9} and more safe text \"quoted\""),
            r#""long run of safe ascii then \u00e9 and more safe text \"quoted\"""#
        );
        let mut lone = Vec::new();
        push_code_point(&mut lone, 'x' as u32);
        push_code_point(&mut lone, 0xD800);
        push_code_point(&mut lone, 0xDFFF);
        let mut out = Vec::new();
        write_str(&mut out, &JStr::from_wtf8_unchecked(lone));
        assert_eq!(out, br#""x\ud800\udfff""#);
        // Malformed bytes (impossible from this crate) do not panic.
        let mut out = Vec::new();
        write_str(&mut out, &JStr::from_wtf8_unchecked(vec![b'a', 0xE2, 0x82]));
        assert_eq!(out, br#""a\ufffd\ufffd""#);
    }

    #[test]
    fn structures_match_cpython() {
        // json.dumps({"a": [1, 2.5, None, True, False, "x"], "b": {}, "c": [], "d": {"e": -0.0}})
        let mut inner = Object::new();
        inner.insert("e".into(), Value::Float(-0.0));
        let mut o = Object::new();
        o.insert(
            "a".into(),
            Value::Array(vec![
                Value::Int(1),
                Value::Float(2.5),
                Value::Null,
                Value::Bool(true),
                Value::Bool(false),
                Value::str("x"),
            ]),
        );
        o.insert("b".into(), Value::Object(Object::new()));
        o.insert("c".into(), Value::Array(vec![]));
        o.insert("d".into(), Value::Object(inner));
        assert_eq!(
            String::from_utf8(to_vec(&Value::Object(o))).unwrap(),
            r#"{"a": [1, 2.5, null, true, false, "x"], "b": {}, "c": [], "d": {"e": -0.0}}"#
        );
    }
}
