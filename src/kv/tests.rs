use super::*;
use crate::json::{parse, to_vec};

fn j(s: &str) -> JStr {
    JStr::new(s)
}

fn load(text: &str) -> KvStore {
    KvStore::from_json(text.as_bytes(), "test.json").unwrap()
}

fn roundtrip(text: &str) -> String {
    String::from_utf8(load(text).to_json()).unwrap()
}

#[test]
fn dict_order_semantics() {
    let mut m = OrderedMap::default();
    for k in ["a", "b", "c"] {
        m.insert(j(k), k.len());
    }
    m.insert(j("a"), 10); // replace keeps position
    assert_eq!(m.keys().map(|k| k.as_str().unwrap()).collect::<String>(), "abc");
    assert_eq!(m.remove(&j("a")), Some(10));
    m.insert(j("a"), 1); // delete + re-add goes to the end
    assert_eq!(m.keys().map(|k| k.as_str().unwrap()).collect::<String>(), "bca");
    assert_eq!(m.remove(&j("zz")), None);
    assert_eq!(m.len(), 3);
}

#[test]
fn many_deletes_compact_and_keep_order() {
    let mut m = OrderedMap::default();
    for i in 0..1000 {
        m.insert(JStr::from(format!("k{i}")), i);
    }
    for i in (0..1000).filter(|i| i % 3 != 0) {
        assert_eq!(m.remove(&JStr::from(format!("k{i}"))), Some(i));
    }
    assert_eq!(
        m.values().copied().collect::<Vec<_>>(),
        (0..1000).filter(|i| i % 3 == 0).collect::<Vec<_>>()
    );
    assert_eq!(m.get(&j("k999")), Some(&999));
    assert!(m.entries.len() < 700);
}

#[test]
fn get_and_delete_create_the_collection() {
    let mut s = KvStore::new();
    assert!(s.get(&j("c1"), &j("k")).is_none());
    assert!(!s.delete(&j("c2"), &j("k")));
    assert_eq!(s.to_json(), b"{\"c1\": {}, \"c2\": {}}");
}

#[test]
fn put_normalizes_like_json_dumps() {
    let mut s = KvStore::new();
    let v = parse(
        br#"{"x": 1E5, "y": "\u00e9\ud83d\ude00", "z": [1.0, -0.0, 1e-5, 1e16, NaN]}"#,
        "v",
    )
    .unwrap();
    s.put_value(&j("data"), j("\u{e9}"), &v);
    assert_eq!(
        String::from_utf8(s.to_json()).unwrap(),
        r#"{"data": {"\u00e9": {"x": 100000.0, "y": "\u00e9\ud83d\ude00", "z": [1.0, -0.0, 1e-05, 1e+16, NaN]}}}"#
    );
}

#[test]
fn load_keeps_normalized_text_and_rewrites_the_rest() {
    let canonical = r#"{"a": {"k": {"t": "x\n\"\\\u0001\u007f\u00e9\ud800", "n": [1, -2, 0.5, Infinity, -Infinity, null, true, false, {}, []]}}, "b": {}}"#;
    assert_eq!(roundtrip(canonical), canonical);
    assert_eq!(
        roundtrip("\u{feff}{ \"a\" :{\"k\":[1 ,2],\"k2\":\"\u{e9}\\/\\u00E9\", \"k3\": -0, \"k4\": 1E400}}"),
        r#"{"a": {"k": [1, 2], "k2": "\u00e9/\u00e9", "k3": 0, "k4": Infinity}}"#
    );
}

#[test]
fn duplicate_keys_first_position_last_value() {
    assert_eq!(
        roundtrip(r#"{"a": {"x": 1, "y": 2, "x": 3}, "b": {}, "a": {"z": 4}}"#),
        r#"{"a": {"z": 4}, "b": {}}"#
    );
    assert_eq!(
        roundtrip(r#"{"a": {"x": {"p": 1, "q": 2, "p": 3}}}"#),
        r#"{"a": {"x": {"p": 3, "q": 2}}}"#
    );
}

#[test]
fn is_normalized_cases() {
    for ok in [
        r#"{"a": 1}"#,
        "[]",
        "{}",
        r#""\ud83d\ude00""#,
        "1.5e+16",
        "-0.0",
        "123456789012345678901234567890",
    ] {
        assert!(is_normalized(ok.as_bytes()), "{ok}");
    }
    for bad in [
        r#"{"a":1}"#,
        "[1,2]",
        r#""\u00E9""#,
        r#""\/""#,
        r#""\u0041""#,
        "1E5",
        "-0",
        "1.50",
        "\"\u{e9}\"",
        r#"{"a": 1, "a": 2}"#,
        r#"{"a": 1 }"#,
        "\"\x7f\"",
        "1e400",
    ] {
        assert!(!is_normalized(bad.as_bytes()), "{bad}");
    }
    let many: String = (0..20)
        .map(|i| format!("\"k{}\": {i}", i % 19))
        .collect::<Vec<_>>()
        .join(", ");
    assert!(!is_normalized(format!("{{{many}}}").as_bytes()));
}

#[test]
fn wrong_types_and_bad_json_are_errors_not_panics() {
    for bad in [
        "",
        "[1]",
        "\"x\"",
        "{\"a\": []}",
        "{\"a\": 1}",
        "{\"a\": {\"k\": }}",
        "{\"a\": {",
        "{} x",
        "{\"a\": {\"k\": 1}",
    ] {
        let err = KvStore::from_json(bad.as_bytes(), "f.json").unwrap_err();
        assert!(err.to_string().contains("f.json"), "{bad}: {err}");
    }
    let err = KvStore::from_json(b"{\"a\": []}", "f.json").unwrap_err();
    assert!(err.to_string().contains("must be a JSON object, found list"), "{err}");
}

#[test]
fn deep_nesting_is_accepted() {
    let depth = 500;
    let text = format!("{{\"c\": {{\"k\": {}{}}}}}", "[".repeat(depth), "]".repeat(depth));
    assert_eq!(roundtrip(&text), text);
}

#[test]
fn normalized_len_validates_what_the_reader_would_reject() {
    // Text the old check skipped over without looking (it ran after a validating scan).
    for bad in [
        "tru",
        "trux",
        "nul",
        "NaX",
        "Infinit",
        "-Infinit",
        "01",
        "-",
        "1-2",
        "[1, 2",
        "{\"a\": 1",
    ] {
        assert_eq!(normalized_len(bad.as_bytes()), None, "{bad}");
    }
    assert_eq!(normalized_len(b"{\"a\": [1, true]}, \"b\""), Some(16));
    assert_eq!(normalized_len(b"\"abcdefghijklmnop\\\\\" tail"), Some(20));
    let deep = format!("{}{}", "[".repeat(600), "]".repeat(600));
    assert_eq!(normalized_len(deep.as_bytes()), None); // left to the validating reader
    assert_eq!(
        roundtrip(&format!("{{\"c\": {{\"k\": {deep}}}}}")),
        format!("{{\"c\": {{\"k\": {deep}}}}}")
    );
}

/// A collection big enough to be read by two threads (`PARALLEL_MIN_BYTES`): `n` members shaped
/// like docstore nodes, `member(i)` giving each member's text.
fn big_collection(n: usize, member: impl Fn(usize) -> String) -> String {
    let members: Vec<String> = (0..n).map(member).collect();
    format!(
        "{{\"meta\": {{\"a\": {{\"doc_hash\": \"x\"}}}}, \"data\": {{{}}}, \"tail\": {{}}}}",
        members.join(", ")
    )
}

fn node(i: usize) -> String {
    let text = "line of text\\n".repeat(40);
    format!("\"n{i}\": {{\"__data__\": {{\"id_\": \"n{i}\", \"text\": \"{text}\"}}, \"__type__\": \"1\"}}")
}

#[test]
fn large_collections_load_in_two_halves_exactly_like_one() {
    let text = big_collection(8000, node);
    assert!(text.len() > 2 * super::PARALLEL_MIN_BYTES);
    assert!(super::split_candidate(text.as_bytes(), 40, b"{\"__data__\": {}}").is_some());
    assert_eq!(roundtrip(&text), text);
    // A key repeated on both sides of the middle: first position, last value.
    let dup = big_collection(8000, |i| {
        if i == 5990 {
            node(3).replace("id_", "id2")
        } else {
            node(i)
        }
    });
    let expected = String::from_utf8(to_vec(&parse(dup.as_bytes(), "t").unwrap())).unwrap();
    assert_eq!(roundtrip(&dup), expected);
    // Values that are not normalized, after the middle, are rewritten the same way.
    let odd = big_collection(8000, |i| {
        if i > 4000 && i % 7 == 0 {
            node(i).replace(": ", ":")
        } else {
            node(i)
        }
    });
    let expected = String::from_utf8(to_vec(&parse(odd.as_bytes(), "t").unwrap())).unwrap();
    assert_eq!(roundtrip(&odd), expected);
}

#[test]
fn errors_after_the_middle_are_the_sequential_errors() {
    for (at, bad) in [
        (5000, "[1, 2"),
        (7999, "{\"__data__\": nul}"),
        (3001, "\"\\x\""),
        (4500, "01"),
    ] {
        let text = big_collection(8000, |i| if i == at { format!("\"n{i}\": {bad}") } else { node(i) });
        let err = KvStore::from_json(text.as_bytes(), "f.json").unwrap_err().to_string();
        let expected = parse(text.as_bytes(), "f.json").unwrap_err().to_string();
        assert_eq!(err, expected);
    }
    // Truncated file: the helper runs off the end, the error is the sequential one.
    let text = big_collection(8000, node);
    let cut = &text.as_bytes()[..text.len() - 30];
    let err = KvStore::from_json(cut, "f.json").unwrap_err().to_string();
    assert_eq!(err, parse(cut, "f.json").unwrap_err().to_string());
}

#[test]
fn collections_after_a_split_one_are_read_by_the_helper_exactly() {
    // The helper thread of the split "data" collection also reads everything after it.
    let nodes: Vec<String> = (0..8000).map(node).collect();
    let doc = |rest: &str| format!("{{\"meta\": {{\"a\": 1}}, \"data\": {{{}}}{rest}", nodes.join(", "));
    for rest in [
        "}",
        ", \"tail\": {}}",
        ", \"tail\": {\"x\": [1.5, \"\\u00e9\"]}, \"more\": {\"y\": null}}",
        // a repeated collection name after the split: first position, last value
        ", \"meta\": {\"b\": 2}, \"tail\": {\"x\": 1}}",
        // not normalized: rewritten
        ", \"tail\": {\"x\" :1.0E3}}",
    ] {
        let text = doc(rest);
        assert!(text.len() > 2 * super::PARALLEL_MIN_BYTES);
        let expected = String::from_utf8(to_vec(&parse(text.as_bytes(), "t").unwrap())).unwrap();
        assert_eq!(roundtrip(&text), expected, "{rest}");
    }
    for rest in [
        ", \"tail\": {\"x\": nul}}",
        ", \"tail\": {\"x\": 1}} extra",
        ", \"tail\": {\"x\": 1}",
        ", \"tail\": {\"x\": 1},}",
    ] {
        let text = doc(rest);
        let err = KvStore::from_json(text.as_bytes(), "f.json").unwrap_err().to_string();
        assert_eq!(err, parse(text.as_bytes(), "f.json").unwrap_err().to_string(), "{rest}");
    }
    let err = KvStore::from_json(doc(", \"tail\": [1, 2]}").as_bytes(), "f.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("collection \"tail\" must be a JSON object, found list"),
        "{err}"
    );
    // an error before the split wins over one in a later collection
    let mut early = nodes.clone();
    early[100] = "\"n100\": [1,".into();
    let text = format!("{{\"data\": {{{}}}, \"tail\": {{\"x\": nul}}}}", early.join(", "));
    let err = KvStore::from_json(text.as_bytes(), "f.json").unwrap_err().to_string();
    assert_eq!(err, parse(text.as_bytes(), "f.json").unwrap_err().to_string());
}

#[test]
fn a_wrong_split_guess_is_discarded() {
    // The middle of the file is inside one huge member whose nested objects look like members.
    let nested: Vec<String> = (0..120_000)
        .map(|i| format!("\"k{i}\": {{\"__data__\": {i}}}"))
        .collect();
    let text = format!(
        "{{\"data\": {{\"a\": {{\"__data__\": 0}}, \"big\": {{\"__data__\": {{{}}}}}, \"z\": {{\"__data__\": 1}}}}}}",
        nested.join(", ")
    );
    assert!(text.len() > super::PARALLEL_MIN_BYTES);
    assert_eq!(roundtrip(&text), text);
    let store = load(&text);
    let data = store.collection(&j("data")).unwrap();
    assert_eq!(
        data.keys().map(|k| k.as_str().unwrap()).collect::<Vec<_>>(),
        ["a", "big", "z"]
    );
}

mod prop {
    use proptest::prelude::*;

    use super::super::canonical::{normalized_len, string_end_from, string_end_variants};
    use crate::json::{parse, to_vec};

    /// Pieces of string contents: plain runs, every escape `json.dumps` writes, and near misses.
    fn string_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "[ -~&&[^\"\\\\]]{1,40}",
            2 => Just("\\n".to_owned()),
            1 => prop::sample::select(vec![
                "\\\"", "\\\\", "\\t", "\\r", "\\b", "\\f", "\\u00e9", "\\u2019", "\\u001f", "\\ud83d\\ude00",
                "\\u007f",
            ])
            .prop_map(str::to_owned),
            1 => prop::sample::select(vec![
                "\\/", "\\u00E9", "\\u0041", "\\u000a", "\\x", "\\u12", "\x7f", "\t", "\u{e9}", "\"",
            ])
            .prop_map(str::to_owned),
        ]
    }

    /// Keys of which some share length, first and last 8 bytes (equal fingerprints, different text).
    fn object_key() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a",
            "b",
            "id_",
            "file_name",
            "file_path",
            "aaaaaaaXbbbbbbbb",
            "aaaaaaaYbbbbbbbb",
            "aaaaaaaZbbbbbbbb",
        ])
    }

    proptest! {
        /// The 32-bytes-at-a-time string scan (SSE2 and, where the CPU has it, AVX2) ends (or rejects) every string exactly where the scan by
        /// plain runs does, wherever the escapes fall relative to its blocks.
        #[test]
        fn block_string_scan_agrees_with_run_scan(
            lead in 0usize..40,
            pieces in proptest::collection::vec(string_piece(), 0..30),
            tail in "[ -~]{0,40}",
        ) {
            let text = format!("{}\"{}\"{tail}", " ".repeat(lead), pieces.concat());
            let b = text.as_bytes();
            for end in string_end_variants(b, lead) {
                prop_assert_eq!(end, string_end_from(b, lead + 1));
            }
        }

        /// An object is accepted exactly when its keys are distinct, whatever the objects checked
        /// before it on this thread (the checker remembers the key shapes it has verified) and even
        /// when different keys have equal fingerprints.
        #[test]
        fn objects_are_accepted_exactly_without_repeated_keys(
            objects in proptest::collection::vec(proptest::collection::vec(object_key(), 0..20), 1..6),
        ) {
            for keys in objects {
                let members: Vec<String> = keys.iter().enumerate().map(|(i, k)| format!("\"{k}\": {i}")).collect();
                let text = format!("{{\"v\": {{{}}}}}", members.join(", "));
                let distinct = keys.iter().collect::<std::collections::HashSet<_>>().len() == keys.len();
                prop_assert_eq!(normalized_len(text.as_bytes()).is_some(), distinct, "{}", text);
            }
        }

        /// Anything accepted is valid JSON that re-writes to itself; string scanning (8 bytes at a
        /// time) agrees with a byte-by-byte oracle on every string.
        #[test]
        fn accepted_text_is_valid_and_normalized(s in "[ -~\u{80}-\u{ff}\t\n\"\\\\]{0,40}", raw in any::<Vec<u8>>()) {
            let quoted = format!("\"{s}\"");
            for text in [quoted.as_bytes(), &raw[..]] {
                if let Some(n) = normalized_len(text) {
                    let v = parse(&text[..n], "t").expect("accepted text must parse");
                    prop_assert_eq!(to_vec(&v), text[..n].to_vec());
                }
            }
            let oracle = s.bytes().all(|c| (0x20..=0x7E).contains(&c) && c != b'"' && c != b'\\');
            if oracle {
                prop_assert_eq!(normalized_len(quoted.as_bytes()), Some(quoted.len()));
            }
        }
    }
}

#[test]
fn persist_streams_the_same_bytes_as_to_json() {
    // Several MB in many members: the file goes through the 1 MB buffer (and the 4 MB writeback
    // steps) in many pieces, and one value longer than a piece.
    let mut s = KvStore::new();
    for c in ["docstore/ref_doc_info", "docstore/data", "empty"] {
        s.collection_mut(&JStr::new(c));
    }
    let big = Value::Str(JStr::new(&"é\"\n".repeat(600_000)));
    for i in 0..20_000 {
        let v = Value::Object(
            [(
                JStr::new("text"),
                Value::str(&format!("node {i} ü {}", "x".repeat(i % 300))),
            )]
            .into_iter()
            .collect::<crate::json::Object>(),
        );
        s.put_value(&JStr::new("docstore/data"), JStr::new(&format!("n{i}")), &v);
        if i == 7_000 {
            s.put_value(&JStr::new("docstore/ref_doc_info"), JStr::new("big"), &big);
        }
    }
    let want = s.to_json();
    assert!(want.len() > 8 << 20, "{}", want.len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docstore.json");
    crate::persist::write_atomically_with(&path, |file| s.write_to(file)).unwrap();
    assert!(std::fs::read(&path).unwrap() == want);
    assert_eq!(KvStore::from_json_vec(want.clone(), "t").unwrap().to_json(), want);
}
