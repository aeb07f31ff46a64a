//! Metadata filters with the exact semantics of LlamaIndex's `build_metadata_filter_fn`
//! (`llama_index/core/vector_stores/utils.py`, 0.14.25), evaluated in Rust on `Value`s.
//!
//! - An empty filter list matches everything without looking at the metadata.
//! - Every filter of a list is evaluated (any may raise), then AND = all, OR = any, NOT = none.
//! - A missing key (or a JSON `null`) matches only `NE` / `NIN`; `IS_EMPTY` matches None, `""`, `[]`.
//! - The operators are Python's: `==`, `<`, `in`, iteration, with CPython 3.11's `TypeError` messages
//!   (`StoreError::Type`) exactly where Python raises.
//! - Numbers compare exactly across bool / int / float (`True == 1 == 1.0`, i64 vs f64 without
//!   rounding). Integers beyond i64 (`Value::BigInt`) compare exactly with integers and floats too.
//! - Nested `Filters` (`FilterNode::Group`) are our extension: LlamaIndex raises for them; here a group
//!   is evaluated recursively against the same metadata, like one more filter of the list.

use std::cmp::Ordering;

use crate::error::{StoreError, StoreResult};
use crate::json::{JStr, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterOperator {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
    Any,
    All,
    TextMatch,
    TextMatchInsensitive,
    Contains,
    IsEmpty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FilterCondition {
    #[default]
    And,
    Or,
    Not,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MetadataFilter {
    pub key: String,
    pub value: Value,
    pub operator: FilterOperator,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FilterNode {
    Filter(MetadataFilter),
    /// A nested `MetadataFilters` (our extension; LlamaIndex raises `ValueError`).
    Group(Filters),
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Filters {
    pub filters: Vec<FilterNode>,
    pub condition: FilterCondition,
}

impl Filters {
    /// True when the list is empty: such filters match every row without a metadata lookup.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Evaluates the filters against one node's metadata (a dict, normally).
    pub fn matches(&self, metadata: &Value) -> StoreResult<bool> {
        if self.filters.is_empty() {
            return Ok(true);
        }
        // Every filter is evaluated (any may raise) before the condition combines them.
        let (mut any, mut all) = (false, true);
        for node in &self.filters {
            let b = match node {
                FilterNode::Group(g) => g.matches(metadata)?,
                FilterNode::Filter(f) => {
                    let m = metadata_get(metadata, &f.key)?;
                    f.matches_value(m)?
                }
            };
            any |= b;
            all &= b;
        }
        Ok(match self.condition {
            FilterCondition::And => all,
            FilterCondition::Or => any,
            FilterCondition::Not => !any,
        })
    }
}

/// `metadata.get(key, None)`; `None` for a missing key or a JSON null.
fn metadata_get<'a>(metadata: &'a Value, key: &str) -> StoreResult<Option<&'a Value>> {
    match metadata {
        Value::Object(o) => Ok(o.get(key).filter(|v| !matches!(v, Value::Null))),
        // Python raises AttributeError here; we report it as a type error with Python's text.
        other => Err(StoreError::Type(format!(
            "'{}' object has no attribute 'get'",
            other.python_type_name()
        ))),
    }
}

impl MetadataFilter {
    /// One filter against the value found under its key (`None`: missing or null).
    pub fn matches_value(&self, metadata_value: Option<&Value>) -> StoreResult<bool> {
        use FilterOperator as Op;
        let v = &self.value;
        if self.operator == Op::IsEmpty {
            return Ok(match metadata_value {
                None => true,
                Some(Value::Str(s)) => s.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(_) => false,
            });
        }
        let Some(m) = metadata_value else {
            return Ok(matches!(self.operator, Op::Ne | Op::Nin));
        };
        match self.operator {
            Op::Eq => Ok(py_eq(m, v)),
            Op::Ne => Ok(!py_eq(m, v)),
            Op::Gt => py_compare(m, v, CmpOp::Gt),
            Op::Gte => py_compare(m, v, CmpOp::Ge),
            Op::Lt => py_compare(m, v, CmpOp::Lt),
            Op::Lte => py_compare(m, v, CmpOp::Le),
            Op::In => py_contains(v, m),
            Op::Nin => py_contains(v, m).map(|b| !b),
            Op::Contains => py_contains(m, v),
            Op::TextMatch => match (v, m) {
                (Value::Str(needle), Value::Str(hay)) => Ok(str_contains(hay, needle)),
                _ => Err(StoreError::Type(
                    "Both metadata_value and value should be strings to be used with a TEXT_MATCH filter".into(),
                )),
            },
            Op::TextMatchInsensitive => match (v, m) {
                (Value::Str(needle), Value::Str(hay)) => Ok(str_contains(&py_lower(hay), &py_lower(needle))),
                _ => Err(StoreError::Type(
                    "Both metadata_value and value should be strings to be used with a TEXT_MATCH_INSENSITIVE \
                     filter"
                        .into(),
                )),
            },
            Op::All => {
                for item in py_iter(v)? {
                    if !py_contains(m, &item)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Op::Any => {
                for item in py_iter(v)? {
                    if py_contains(m, &item)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Op::IsEmpty => unreachable!("handled above"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Applies the operator to an ordering; `None` (NaN involved) is false, as in IEEE.
    fn test(self, ord: Option<Ordering>) -> bool {
        match ord {
            None => false,
            Some(o) => match self {
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Le => o != Ordering::Greater,
                CmpOp::Gt => o == Ordering::Greater,
                CmpOp::Ge => o != Ordering::Less,
            },
        }
    }
}

/// A number as Python sees it (bool is an int).
enum Num<'a> {
    Int(i64),
    Big(&'a str),
    Float(f64),
}

fn as_num(v: &Value) -> Option<Num<'_>> {
    match v {
        Value::Bool(b) => Some(Num::Int(i64::from(*b))),
        Value::Int(i) => Some(Num::Int(*i)),
        Value::BigInt(s) => Some(Num::Big(s)),
        Value::Float(f) => Some(Num::Float(*f)),
        _ => None,
    }
}

/// Exact comparison of an i64 with an f64 (`None` if the float is NaN).
fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    // 2^63 is exactly representable; every i64 is below it and at or above -2^63.
    if f >= 9_223_372_036_854_775_808.0 {
        return Some(Ordering::Less);
    }
    if f < -9_223_372_036_854_775_808.0 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    let ti = t as i64; // exact: |t| < 2^63 and integral
    match i.cmp(&ti) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - t)),
        o => Some(o),
    }
}

fn big_is_negative(s: &str) -> bool {
    s.starts_with('-')
}

/// Exact comparison of two decimal integer strings (both outside i64 is not required).
fn cmp_big_big(a: &str, b: &str) -> Ordering {
    let (na, nb) = (big_is_negative(a), big_is_negative(b));
    let da = a.trim_start_matches(['-', '+']).trim_start_matches('0');
    let db = b.trim_start_matches(['-', '+']).trim_start_matches('0');
    let mag = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
    match (na, nb) {
        (false, false) => mag,
        (true, true) => mag.reverse(),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
    }
}

/// Exact comparison of an integer outside i64 with an f64, as Python compares int and float.
fn cmp_big_float(s: &str, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f.is_infinite() {
        return Some(if f > 0.0 { Ordering::Less } else { Ordering::Greater });
    }
    // |big| > 2^63 - 1. A float inside (-2^63, 2^63) is therefore beyond it on the side of big's sign;
    // a float outside that range is an integer (|f| > 2^53), whose exact digits `{:.0}` prints.
    if f.abs() < 9_223_372_036_854_775_808.0 {
        return Some(if big_is_negative(s) {
            Ordering::Less
        } else {
            Ordering::Greater
        });
    }
    Some(cmp_big_big(s, &format!("{f:.0}")))
}

fn cmp_num(a: &Num, b: &Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(*x, *y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(*y, *x).map(Ordering::reverse),
        // A BigInt lies outside i64, so its sign decides against any i64.
        (Num::Big(s), Num::Int(_)) => Some(if big_is_negative(s) {
            Ordering::Less
        } else {
            Ordering::Greater
        }),
        (Num::Int(_), Num::Big(s)) => Some(if big_is_negative(s) {
            Ordering::Greater
        } else {
            Ordering::Less
        }),
        (Num::Big(x), Num::Big(y)) => Some(cmp_big_big(x, y)),
        (Num::Big(x), Num::Float(y)) => cmp_big_float(x, *y),
        (Num::Float(x), Num::Big(y)) => cmp_big_float(y, *x).map(Ordering::reverse),
    }
}

/// Python `a == b` for JSON values.
pub fn py_eq(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return cmp_num(&x, &y) == Some(Ordering::Equal);
    }
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get_jstr(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => false,
    }
}

/// Python `a <op> b` (`<`, `<=`, `>`, `>=`), raising CPython's TypeError for unorderable types.
pub fn py_compare(a: &Value, b: &Value, op: CmpOp) -> StoreResult<bool> {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return Ok(op.test(cmp_num(&x, &y)));
    }
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(op.test(Some(x.as_bytes().cmp(y.as_bytes())))),
        (Value::Array(x), Value::Array(y)) => {
            // list_richcompare: the first index whose items differ (by ==) decides with `op`.
            match x.iter().zip(y).position(|(p, q)| !py_eq(p, q)) {
                Some(i) => py_compare(&x[i], &y[i], op),
                None => Ok(op.test(Some(x.len().cmp(&y.len())))),
            }
        }
        _ => Err(StoreError::Type(format!(
            "'{}' not supported between instances of '{}' and '{}'",
            op.symbol(),
            a.python_type_name(),
            b.python_type_name()
        ))),
    }
}

/// Python `item in container`.
pub fn py_contains(container: &Value, item: &Value) -> StoreResult<bool> {
    match container {
        Value::Array(items) => Ok(items.iter().any(|x| py_eq(item, x))),
        Value::Str(hay) => match item {
            Value::Str(needle) => Ok(str_contains(hay, needle)),
            other => Err(StoreError::Type(format!(
                "'in <string>' requires string as left operand, not {}",
                other.python_type_name()
            ))),
        },
        Value::Object(o) => match item {
            Value::Array(_) | Value::Object(_) => Err(StoreError::Type(format!(
                "unhashable type: '{}'",
                item.python_type_name()
            ))),
            Value::Str(k) => Ok(o.get_jstr(k).is_some()),
            // Keys of a JSON object are strings: no other hashable value equals one.
            _ => Ok(false),
        },
        other => Err(StoreError::Type(format!(
            "argument of type '{}' is not iterable",
            other.python_type_name()
        ))),
    }
}

/// Python `list(iter(v))`: list items, the characters of a str, the keys of a dict.
pub fn py_iter(v: &Value) -> StoreResult<Vec<Value>> {
    match v {
        Value::Array(items) => Ok(items.clone()),
        Value::Str(s) => Ok(s
            .code_points()
            .map(|cp| {
                let mut b = Vec::with_capacity(4);
                crate::json::push_code_point(&mut b, cp);
                Value::Str(JStr::from_wtf8_unchecked(b))
            })
            .collect()),
        Value::Object(o) => Ok(o.iter().map(|(k, _)| Value::Str(k.clone())).collect()),
        other => Err(StoreError::Type(format!(
            "'{}' object is not iterable",
            other.python_type_name()
        ))),
    }
}

/// Python `needle in hay` for strings (a byte substring test on generalized UTF-8).
fn str_contains(hay: &JStr, needle: &JStr) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty() || memchr::memmem::find(h, n).is_some()
}

/// Python `str.lower()`; lone surrogates are kept as they are.
fn py_lower(s: &JStr) -> JStr {
    if let Some(text) = s.as_str() {
        return JStr::from(text.to_lowercase());
    }
    let mut out = Vec::with_capacity(s.as_bytes().len());
    for cp in s.code_points() {
        match char::from_u32(cp) {
            Some(c) => {
                for l in c.to_lowercase() {
                    crate::json::push_code_point(&mut out, u32::from(l));
                }
            }
            None => crate::json::push_code_point(&mut out, cp),
        }
    }
    JStr::from_wtf8_unchecked(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Object;

    fn s(x: &str) -> Value {
        Value::str(x)
    }
    fn arr(v: Vec<Value>) -> Value {
        Value::Array(v)
    }
    fn obj(pairs: Vec<(&str, Value)>) -> Value {
        Value::Object(pairs.into_iter().map(|(k, v)| (JStr::new(k), v)).collect::<Object>())
    }

    /// Expected outcome: Ok(bool) or the TypeError message, as CPython 3.11 gives it (verified with python3
    /// running `build_metadata_filter_fn` on the same inputs).
    enum Want {
        T,
        F,
        Err(&'static str),
    }

    #[test]
    fn operators_match_python() {
        use FilterOperator as Op;
        use Want::*;
        let big = Value::BigInt("123456789012345678901234567890".into());
        let cases: Vec<(Option<Value>, Op, Value, Want)> = vec![
            // missing key / null
            (None, Op::Eq, s("a"), F),
            (None, Op::Ne, s("a"), T),
            (None, Op::Nin, arr(vec![s("a")]), T),
            (None, Op::In, arr(vec![s("a")]), F),
            (None, Op::Gt, s("a"), F),
            (None, Op::IsEmpty, s("a"), T),
            (Some(s("")), Op::IsEmpty, Value::Null, T),
            (Some(arr(vec![])), Op::IsEmpty, Value::Null, T),
            (Some(Value::Int(0)), Op::IsEmpty, Value::Null, F),
            (Some(obj(vec![])), Op::IsEmpty, Value::Null, F),
            // equality across numeric types
            (Some(Value::Bool(true)), Op::Eq, Value::Int(1), T),
            (Some(Value::Int(1)), Op::Eq, Value::Float(1.0), T),
            (
                Some(Value::Int(9_007_199_254_740_993)),
                Op::Eq,
                Value::Float(9_007_199_254_740_992.0),
                F,
            ),
            (Some(Value::Float(f64::NAN)), Op::Eq, Value::Float(f64::NAN), F),
            (Some(Value::Float(f64::NAN)), Op::Ne, Value::Float(f64::NAN), T),
            (Some(s("1")), Op::Eq, Value::Int(1), F),
            (Some(s("1")), Op::Ne, Value::Int(1), T),
            (
                Some(arr(vec![Value::Int(1), s("a")])),
                Op::Eq,
                arr(vec![Value::Float(1.0), s("a")]),
                T,
            ),
            (
                Some(obj(vec![("a", Value::Int(1)), ("b", Value::Int(2))])),
                Op::Eq,
                obj(vec![("b", Value::Int(2)), ("a", Value::Int(1))]),
                T,
            ),
            (Some(big.clone()), Op::Eq, Value::Int(5), F),
            (Some(big.clone()), Op::Gt, Value::Int(i64::MAX), T),
            (Some(big.clone()), Op::Gt, Value::Float(1.0), T),
            // ordering
            (Some(Value::Int(3)), Op::Gt, Value::Float(2.5), T),
            (Some(Value::Int(3)), Op::Lte, Value::Int(3), T),
            (Some(Value::Bool(true)), Op::Gt, Value::Bool(false), T),
            (Some(Value::Float(f64::NAN)), Op::Lt, Value::Int(1), F),
            (Some(s("b")), Op::Gt, s("a"), T),
            (Some(s("é")), Op::Gt, s("z"), T),
            (
                Some(arr(vec![Value::Int(1), Value::Int(2)])),
                Op::Lt,
                arr(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
                T,
            ),
            (
                Some(arr(vec![Value::Int(1)])),
                Op::Lt,
                arr(vec![s("a")]),
                Err("'<' not supported between instances of 'int' and 'str'"),
            ),
            (
                Some(s("a")),
                Op::Lt,
                Value::Int(1),
                Err("'<' not supported between instances of 'str' and 'int'"),
            ),
            (
                Some(Value::Int(1)),
                Op::Gt,
                Value::Null,
                Err("'>' not supported between instances of 'int' and 'NoneType'"),
            ),
            (
                Some(s("x")),
                Op::Gte,
                Value::Float(1.5),
                Err("'>=' not supported between instances of 'str' and 'float'"),
            ),
            (
                Some(arr(vec![Value::Int(1)])),
                Op::Gt,
                Value::Int(1),
                Err("'>' not supported between instances of 'list' and 'int'"),
            ),
            (
                Some(obj(vec![])),
                Op::Lte,
                obj(vec![]),
                Err("'<=' not supported between instances of 'dict' and 'dict'"),
            ),
            // in / nin
            (Some(s("a")), Op::In, arr(vec![s("a"), s("b")]), T),
            (Some(Value::Int(1)), Op::In, arr(vec![Value::Float(1.0)]), T),
            (Some(Value::Bool(true)), Op::In, arr(vec![Value::Int(1)]), T),
            (Some(s("ell")), Op::In, s("hello"), T),
            (Some(s("ell")), Op::Nin, s("hello"), F),
            (
                Some(Value::Int(1)),
                Op::In,
                s("abc"),
                Err("'in <string>' requires string as left operand, not int"),
            ),
            (
                Some(s("a")),
                Op::In,
                Value::Int(1),
                Err("argument of type 'int' is not iterable"),
            ),
            (
                Some(s("a")),
                Op::Nin,
                Value::Null,
                Err("argument of type 'NoneType' is not iterable"),
            ),
            (
                Some(arr(vec![Value::Int(1)])),
                Op::In,
                obj(vec![("a", Value::Int(1))]),
                Err("unhashable type: 'list'"),
            ),
            (Some(s("a")), Op::In, obj(vec![("a", Value::Int(1))]), T),
            // contains
            (Some(arr(vec![s("x"), s("y")])), Op::Contains, s("y"), T),
            (Some(s("hello")), Op::Contains, s("ell"), T),
            (
                Some(Value::Int(5)),
                Op::Contains,
                Value::Int(5),
                Err("argument of type 'int' is not iterable"),
            ),
            (
                Some(Value::Bool(true)),
                Op::Contains,
                s("a"),
                Err("argument of type 'bool' is not iterable"),
            ),
            (
                Some(Value::Float(1.5)),
                Op::Contains,
                s("a"),
                Err("argument of type 'float' is not iterable"),
            ),
            (
                Some(s("hello")),
                Op::Contains,
                Value::Int(1),
                Err("'in <string>' requires string as left operand, not int"),
            ),
            // text match
            (Some(s("Hello")), Op::TextMatch, s("ell"), T),
            (Some(s("Hello")), Op::TextMatch, s("hel"), F),
            (Some(s("Hello")), Op::TextMatchInsensitive, s("HEL"), T),
            (Some(s("ΑΣ")), Op::TextMatchInsensitive, s("ας"), T),
            (
                Some(Value::Int(1)),
                Op::TextMatch,
                s("1"),
                Err("Both metadata_value and value should be strings to be used with a TEXT_MATCH filter"),
            ),
            (
                Some(s("1")),
                Op::TextMatchInsensitive,
                Value::Int(1),
                Err("Both metadata_value and value should be strings to be used with a TEXT_MATCH_INSENSITIVE filter"),
            ),
            // any / all
            (Some(arr(vec![s("a"), s("b")])), Op::All, arr(vec![s("a"), s("b")]), T),
            (Some(arr(vec![s("a")])), Op::All, arr(vec![s("a"), s("b")]), F),
            (Some(arr(vec![s("a")])), Op::Any, arr(vec![s("z"), s("a")]), T),
            (Some(s("abc")), Op::All, s("ca"), T),
            (
                Some(s("abc")),
                Op::Any,
                arr(vec![Value::Int(1)]),
                Err("'in <string>' requires string as left operand, not int"),
            ),
            (Some(Value::Int(3)), Op::All, arr(vec![]), T),
            (Some(Value::Int(3)), Op::Any, arr(vec![]), F),
            (
                Some(Value::Int(3)),
                Op::Any,
                arr(vec![Value::Int(3)]),
                Err("argument of type 'int' is not iterable"),
            ),
            (
                Some(arr(vec![s("a")])),
                Op::Any,
                Value::Int(1),
                Err("'int' object is not iterable"),
            ),
            (
                Some(arr(vec![s("a")])),
                Op::All,
                Value::Null,
                Err("'NoneType' object is not iterable"),
            ),
            (Some(arr(vec![s("a")])), Op::Any, arr(vec![s("a"), Value::Int(1)]), T),
        ];
        for (i, (m, op, v, want)) in cases.into_iter().enumerate() {
            let f = MetadataFilter {
                key: "k".into(),
                value: v,
                operator: op,
            };
            let got = f.matches_value(m.as_ref());
            match (want, got) {
                (T, Ok(true)) | (F, Ok(false)) => {}
                (Err(msg), Result::Err(StoreError::Type(got))) if got == msg => {}
                (_, got) => panic!("case {i} ({op:?}): unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn conditions_evaluate_every_filter() {
        let meta = obj(vec![("a", Value::Int(1)), ("s", s("x"))]);
        let f = |key: &str, op, v| {
            FilterNode::Filter(MetadataFilter {
                key: key.into(),
                value: v,
                operator: op,
            })
        };
        let ok = f("a", FilterOperator::Eq, Value::Int(1));
        let no = f("a", FilterOperator::Eq, Value::Int(2));
        let bad = f("s", FilterOperator::Gt, Value::Int(1));
        let mk = |filters, condition| Filters { filters, condition };
        assert!(mk(vec![ok.clone(), ok.clone()], FilterCondition::And)
            .matches(&meta)
            .unwrap());
        assert!(!mk(vec![ok.clone(), no.clone()], FilterCondition::And)
            .matches(&meta)
            .unwrap());
        assert!(mk(vec![no.clone(), ok.clone()], FilterCondition::Or)
            .matches(&meta)
            .unwrap());
        assert!(mk(vec![no.clone()], FilterCondition::Not).matches(&meta).unwrap());
        assert!(!mk(vec![no.clone(), ok.clone()], FilterCondition::Not)
            .matches(&meta)
            .unwrap());
        // no short-circuit: OR with a true first filter still raises on the later one
        assert!(mk(vec![ok.clone(), bad], FilterCondition::Or).matches(&meta).is_err());
        assert!(mk(vec![], FilterCondition::And).matches(&Value::Null).unwrap());
        let nested = mk(
            vec![ok, FilterNode::Group(mk(vec![no], FilterCondition::Not))],
            FilterCondition::And,
        );
        assert!(nested.matches(&meta).unwrap());
        assert!(matches!(
            mk(vec![f("a", FilterOperator::Eq, Value::Int(1))], FilterCondition::And).matches(&arr(vec![])),
            Result::Err(StoreError::Type(m)) if m == "'list' object has no attribute 'get'"
        ));
    }

    #[test]
    fn big_ints_compare_exactly_with_floats() {
        // CPython: 2**70+1 == float(2**70) -> False, > -> True; -(2**70) < -1e300 -> False;
        // 10**400 > 1e308 -> True; 2**63 == float(2**63) -> True; -(2**63)-1 < float(-(2**63)) -> True.
        let big = |s: &str| Value::BigInt(s.into());
        let two70p1 = big("1180591620717411303425");
        assert!(!py_eq(&two70p1, &Value::Float(2f64.powi(70))));
        assert!(py_compare(&two70p1, &Value::Float(2f64.powi(70)), CmpOp::Gt).unwrap());
        assert!(!py_compare(&big("-1180591620717411303424"), &Value::Float(-1e300), CmpOp::Lt).unwrap());
        assert!(py_compare(&big(&format!("1{}", "0".repeat(400))), &Value::Float(1e308), CmpOp::Gt).unwrap());
        assert!(py_eq(
            &big("9223372036854775808"),
            &Value::Float(9_223_372_036_854_775_808.0)
        ));
        assert!(py_compare(
            &big("-9223372036854775809"),
            &Value::Float(-9_223_372_036_854_775_808.0),
            CmpOp::Lt
        )
        .unwrap());
        assert!(py_compare(&big("9223372036854775808"), &Value::Float(f64::INFINITY), CmpOp::Lt).unwrap());
        assert!(!py_eq(&big("9223372036854775808"), &Value::Float(f64::NAN)));
    }
}
