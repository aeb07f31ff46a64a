//! Property tests (write -> parse round trips, no panics on any input) and differential tests
//! against the real CPython `json` module (skipped when `python3` is absent).

use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::strategy::ValueTree;

use super::*;

/// Structural equality where floats compare by bits (NaN equal to any NaN).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        _ => a == b,
    }
}

/// A `JStr` from code points, surrogates included, combining adjacent high+low surrogates as the
/// reader does (a `JStr` never holds a surrogate pair).
fn jstr_from_code_points(cps: &[u32]) -> JStr {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cps.len() {
        let (c, next) = (cps[i], cps.get(i + 1).copied());
        match next {
            Some(low) if (0xD800..0xDC00).contains(&c) && (0xDC00..0xE000).contains(&low) => {
                push_code_point(&mut out, 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00));
                i += 2;
            }
            _ => {
                push_code_point(&mut out, c);
                i += 1;
            }
        }
    }
    JStr::from_wtf8_unchecked(out)
}

fn arb_code_point() -> impl Strategy<Value = u32> {
    prop_oneof![
        0x20u32..0x7F,
        0u32..0x20,
        0x7Fu32..0x800,
        0xD800u32..0xE000,
        0u32..0x110000
    ]
}

fn arb_jstr() -> impl Strategy<Value = JStr> {
    prop::collection::vec(arb_code_point(), 0..12).prop_map(|cps| jstr_from_code_points(&cps))
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<i128>()
            .prop_filter("outside i64", |i| i64::try_from(*i).is_err())
            .prop_map(|i| Value::BigInt(i.to_string().into())),
        any::<f64>().prop_map(Value::Float),
        any::<f32>().prop_map(|x| Value::Float(f64::from(x))),
        arb_jstr().prop_map(Value::Str),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((arb_jstr(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Bytes that look like JSON often enough to reach deep into the parser.
fn arb_jsonish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        prop::sample::select(vec![
            &b"["[..],
            b"]",
            b"{",
            b"}",
            b",",
            b":",
            b" ",
            b"\"",
            b"\\",
            b"\\u",
            b"d800",
            b"\\udc00",
            b"0",
            b"-",
            b"1",
            b"9",
            b".",
            b"e",
            b"E+",
            b"null",
            b"true",
            b"false",
            b"NaN",
            b"Infinity",
            b"-Infinity",
            b"\"a\"",
            b"\n",
            b"\xED\xA0\x80",
            b"\xC3\xA9",
            b"\xff",
            b"\x00",
            b"\x7f",
            b"\xEF\xBB\xBF",
        ])
        .prop_map(<[u8]>::to_vec),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(token, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn write_then_parse_round_trips(v in arb_value()) {
        let text = to_vec(&v);
        prop_assert!(text.is_ascii());
        let back = parse(&text, "t").unwrap();
        prop_assert!(same(&v, &back), "{v:?} -> {} -> {back:?}", String::from_utf8_lossy(&text));
        prop_assert_eq!(to_vec(&back), text.clone());
        let mut c = Cursor::new(&text, "t");
        prop_assert_eq!(c.raw_value().unwrap(), &text[..]);
        c.finish().unwrap();
    }

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse(&bytes, "t");
    }

    #[test]
    fn skip_accepts_what_parse_accepts(bytes in arb_jsonish()) {
        let parsed = parse(&bytes, "t");
        let mut c = Cursor::new(&bytes, "t");
        let skipped = c.skip_value().and_then(|()| c.finish());
        prop_assert_eq!(parsed.is_ok(), skipped.is_ok(), "{:?}", String::from_utf8_lossy(&bytes));
        if let Ok(v) = parsed {
            // Whatever we accept, we write in a form we read back identically.
            let text = to_vec(&v);
            prop_assert!(same(&v, &parse(&text, "t").unwrap()));
        }
    }

    #[test]
    fn floats_round_trip(bits in any::<u64>()) {
        let x = f64::from_bits(bits);
        let mut out = Vec::new();
        write_f64(&mut out, x);
        let mut c = Cursor::new(&out, "t");
        let y = c.parse_f64().unwrap();
        c.finish().unwrap();
        prop_assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
    }

    #[test]
    fn fast_float_path_matches_the_general_layout(bits in any::<u64>(), small in any::<u32>()) {
        // the general path (digits + Python's layout rules) is checked against CPython below; the
        // range-checked fast path must agree with it everywhere, f32-valued embeddings included
        for x in [f64::from_bits(bits), f64::from(f32::from_bits(small))] {
            let (mut fast, mut general) = (Vec::new(), Vec::new());
            write_f64(&mut fast, x);
            super::write::write_f64_general(&mut general, x);
            prop_assert_eq!(fast, general);
        }
    }

    #[test]
    fn parse_f64_items_matches_the_item_by_item_loop(
        items in proptest::collection::vec(
            ("(-?(0|[1-9][0-9]{0,22})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?|NaN|-Infinity|1\\.|01|x|\"a\")",
             "(, |,|,\n | ,  | )"),
            0..12,
        ),
        close in "(\\]|\\] |\\}|)",
    ) {
        let mut text = String::from("[");
        for (item, sep) in &items {
            text.push_str(item);
            text.push_str(sep);
        }
        text.push_str(&close);
        let tight = {
            let mut c = Cursor::new(text.as_bytes(), "t");
            let mut got = Vec::new();
            c.begin_array().and_then(|()| c.parse_f64_items(|x| got.push(x.to_bits()))).map(|()| (got, c.offset()))
        };
        let loose = {
            let mut c = Cursor::new(text.as_bytes(), "t");
            let mut got = Vec::new();
            let mut run = || -> crate::StoreResult<()> {
                c.begin_array()?;
                while c.next_array_item()? {
                    got.push(c.parse_f64()?.to_bits());
                }
                Ok(())
            };
            run().map(|()| (got, c.offset()))
        };
        prop_assert_eq!(format!("{tight:?}"), format!("{loose:?}"), "{}", text);
    }

    #[test]
    fn f32_round_trips_through_python_float(bits in any::<u32>()) {
        let x = f32::from_bits(bits);
        let mut out = Vec::new();
        write_f32_as_python_float(&mut out, x);
        let y = Cursor::new(&out, "t").parse_f64().unwrap();
        prop_assert!(f64::from(x).to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
        prop_assert!(x.is_nan() || (y as f32).to_bits() == x.to_bits());
    }
}

/// Runs a Python script feeding it `input` on stdin; `None` if python3 is not installed.
fn python(script: &str, input: &str) -> Option<String> {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    assert!(out.status.success(), "python3 failed");
    Some(String::from_utf8(out.stdout).expect("python prints ASCII"))
}

/// Deterministic pseudo-random numbers (SplitMix64).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[test]
fn floats_match_cpython() {
    let mut rng = SplitMix(7);
    let mut xs: Vec<f64> = Vec::new();
    for i in 0..3000 {
        xs.push(match i % 5 {
            0 => f64::from_bits(rng.next()),
            1 => f64::from(f32::from_bits(rng.next() as u32)),
            2 => f64::from((rng.next() as f32 / u32::MAX as f32 - 0.5) * 0.2), // embedding-like
            3 => (rng.next() % 1_000_000) as f64 * 10f64.powi((rng.next() % 50) as i32 - 25),
            _ => 10f64.powi((rng.next() % 40) as i32 - 20) * if rng.next().is_multiple_of(2) { 1.0 } else { -1.0 },
        });
    }
    xs.extend([
        0.0,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
    ]);
    let bits: Vec<String> = xs.iter().map(|x| format!("{:016x}", x.to_bits())).collect();
    floats_written_as_cpython_does(&bits, 'd', |i, out| write_f64(out, xs[i]));
}

/// Checks that `write(i, out)` writes what CPython's `json.dumps` writes for the float whose
/// big-endian bits are `bits[i]` in `struct` format `format` (`'d'` or `'f'`).
fn floats_written_as_cpython_does(bits: &[String], format: char, write: impl Fn(usize, &mut Vec<u8>)) {
    let input: String = bits.iter().map(|b| format!("{b}\n")).collect();
    let script = format!(
        "import sys, json, struct\nfor l in sys.stdin:\n    print(json.dumps(struct.unpack('>{format}', bytes.fromhex(l.strip()))[0]))"
    );
    let Some(expected) = python(&script, &input) else {
        return;
    };
    let lines: Vec<&str> = expected.lines().collect();
    assert_eq!(lines.len(), bits.len());
    for (i, want) in lines.into_iter().enumerate() {
        let mut out = Vec::new();
        write(i, &mut out);
        assert_eq!(std::str::from_utf8(&out).unwrap(), want, "bits {}", bits[i]);
    }
}

#[test]
fn strings_match_cpython() {
    let mut rng = SplitMix(11);
    let mut cases: Vec<Vec<u32>> = (0..0x80).map(|c| vec![c]).collect();
    for _ in 0..500 {
        let len = (rng.next() % 20) as usize;
        cases.push(
            (0..len)
                .map(|_| match rng.next() % 6 {
                    0 => (rng.next() % 0x80) as u32,
                    1 => 0x20 + (rng.next() % 0x5F) as u32,
                    2 => 0xD800 + (rng.next() % 0x800) as u32,
                    3 => 0x80 + (rng.next() % 0x780) as u32,
                    _ => (rng.next() % 0x110000) as u32,
                })
                .collect(),
        );
    }
    let input: String = cases
        .iter()
        .map(|cps| cps.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    let script =
        "import sys, json\nfor l in sys.stdin:\n    print(json.dumps(''.join(chr(int(c)) for c in l.split())))";
    let Some(expected) = python(script, &input) else { return };
    let lines: Vec<&str> = expected.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for (cps, want) in cases.iter().zip(lines) {
        let mut out = Vec::new();
        write_str(&mut out, &jstr_from_code_points(cps));
        assert_eq!(std::str::from_utf8(&out).unwrap(), want, "{cps:x?}");
    }
}

/// The reader accepts exactly what `json.loads(bytes)` accepts and produces values that `json.dumps`
/// writes identically.
#[test]
fn parser_matches_cpython() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let noise = arb_jsonish();
    let values = arb_value();
    let mut rng = SplitMix(3);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for i in 0..3000 {
        let mut doc = noise.new_tree(&mut runner).unwrap().current();
        if i % 3 != 0 {
            // A valid document, then up to 2 mutations: insert a noise fragment or delete a byte.
            let valid = to_vec(&values.new_tree(&mut runner).unwrap().current());
            for _ in 0..rng.next() % 3 {
                let at = (rng.next() as usize) % (valid.len() + 1);
                let mut mutated = valid.clone();
                if rng.next().is_multiple_of(2) {
                    mutated.splice(at..at, doc.iter().copied().take(3));
                } else if at < mutated.len() {
                    mutated.remove(at);
                }
                doc = mutated;
            }
            if doc.len() > 3 && i % 3 == 1 {
                doc = valid;
            }
        }
        inputs.push(doc);
    }
    for v in [
        &b"{\"a\": [1, 2.5e3, -0, -0.0, 1E400, \"\\ud83d\\ude00\\ud800x\", {\"a\": 1, \"a\": 2}]}"[..],
        b"\xEF\xBB\xBF [NaN, Infinity, -Infinity, 123456789012345678901234567890]",
        b"\"\xED\xA0\x80\"",
        b"\"caf\xC3\xA9 \\u00E9\\/\"",
    ] {
        inputs.push(v.to_vec());
    }
    let input: String = inputs
        .iter()
        .map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>() + "\n")
        .collect();
    let script = "import sys, json\nfor l in sys.stdin:\n    try:\n        print('ok', json.dumps(json.loads(bytes.fromhex(l.strip()))))\n    except (ValueError, RecursionError):\n        print('err')";
    let Some(expected) = python(script, &input) else { return };
    let lines: Vec<&str> = expected.lines().collect();
    assert_eq!(lines.len(), inputs.len());
    let mut accepted = 0;
    for (bytes, want) in inputs.iter().zip(lines) {
        let got = match parse(bytes, "t") {
            Ok(v) => format!("ok {}", String::from_utf8(to_vec(&v)).unwrap()),
            Err(_) => "err".to_string(),
        };
        assert_eq!(got, want, "input {:?}", String::from_utf8_lossy(bytes));
        accepted += usize::from(want != "err");
    }
    assert!(
        accepted > 1000,
        "only {accepted} accepted inputs: the generator is too noisy"
    );
}

/// `write_f32_as_python_float` (exact integer digits for most f32 values, see `f32_repr`) against
/// CPython's `json.dumps(float(x))`: random bit patterns, embedding-like values of every magnitude
/// in the fast range, and its edges.
#[test]
fn f32_values_match_cpython() {
    let mut rng = SplitMix(11);
    let mut xs: Vec<f32> = Vec::new();
    for i in 0..6000 {
        let bits = rng.next() as u32;
        xs.push(match i % 3 {
            0 => f32::from_bits(bits),
            // Exponents around the fast range 1e-4..2048 (biased 110..=140), any mantissa and sign.
            1 => f32::from_bits(bits & 0x807F_FFFF | (110 + (bits >> 8) % 31) << 23),
            _ => (bits as f32 / u32::MAX as f32 - 0.5) * 0.2,
        });
    }
    xs.extend([
        1e-4f32,
        1.0001e-4,
        0.1,
        0.5,
        1.0,
        1.5,
        1025.0,
        2047.9999,
        2048.0,
        -0.036,
        0.0,
        f32::MIN_POSITIVE,
    ]);
    let bits: Vec<String> = xs.iter().map(|x| format!("{:08x}", x.to_bits())).collect();
    floats_written_as_cpython_does(&bits, 'f', |i, out| write_f32_as_python_float(out, xs[i]));
}

/// The fast path of `write_f64` copies zmij's layout; these are the values where the two layouts
/// meet or part (decimal exponents -4, -3, 16, 17), with CPython's `json.dumps` output.
#[test]
fn float_layout_boundaries_match_cpython() {
    let cases: [(f64, &str); 17] = [
        (0.0001, "0.0001"),
        (0.00012345, "0.00012345"),
        (9.999e-05, "9.999e-05"),
        (1e-05, "1e-05"),
        (0.001, "0.001"),
        (0.000999, "0.000999"),
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (123456789012345678.0, "1.2345678901234568e+17"),
        (0.1, "0.1"),
        (2.5, "2.5"),
        (-0.00005, "-5e-05"),
        (1.5e-4, "0.00015"),
        (f64::from_bits(0.0001f64.to_bits() - 1), "9.999999999999999e-05"),
        (f64::from_bits(0.0001f64.to_bits() + 1), "0.00010000000000000002"),
        (f64::from_bits(1e15f64.to_bits() - 1), "999999999999999.9"),
        (f64::from_bits(1e16f64.to_bits() - 1), "9999999999999998.0"),
    ];
    for (x, want) in cases {
        let mut out = Vec::new();
        crate::json::write_f64(&mut out, x);
        assert_eq!(std::str::from_utf8(&out).unwrap(), want, "{x:e}");
    }
}
