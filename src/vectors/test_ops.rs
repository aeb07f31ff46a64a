//! Random operation sequences on a `VectorStore`, shared by the property tests: the table against a
//! model of Python's dicts (`tests`) and the mapped representation against the owned one
//! (`binary_format`).

use proptest::prelude::*;

use super::{FilterNode, FilterOperator, Filters, MetadataFilter, NewRow, VectorStore};
use crate::json::{JStr, Object, Value};

#[derive(Clone, Debug)]
pub(super) enum Op {
    /// id, ref-doc, metadata `m`, first vector component (see `vector`).
    Add(u8, Option<u8>, Option<i64>, i8),
    Remove(u8),
    DeleteRef(u8),
    SetRef(u8, Option<u8>),
    SetMeta(u8, Option<i64>),
    DeleteNodes(Vec<u8>),
    /// `delete_nodes` with the filter `m == value`.
    DeleteWhere(i64),
}

/// Ops over ids `n0..n{ids-1}`, ref-docs `d0..d2` and metadata values `0..metas`.
pub(super) fn op_strategy(ids: u8, metas: i64) -> impl Strategy<Value = Op> {
    let id = 0u8..ids;
    let doc = 0u8..3;
    prop_oneof![
        4 => (id.clone(), proptest::option::of(doc.clone()), proptest::option::of(0i64..metas), -3i8..3)
            .prop_map(|(a, b, c, d)| Op::Add(a, b, c, d)),
        2 => id.clone().prop_map(Op::Remove),
        1 => doc.clone().prop_map(Op::DeleteRef),
        1 => (id.clone(), proptest::option::of(doc)).prop_map(|(a, b)| Op::SetRef(a, b)),
        1 => (id.clone(), proptest::option::of(0i64..metas)).prop_map(|(a, b)| Op::SetMeta(a, b)),
        1 => proptest::collection::vec(id, 0..6).prop_map(Op::DeleteNodes),
        1 => (0i64..metas).prop_map(Op::DeleteWhere),
    ]
}

/// The vector `Add(.., x)` stores.
pub(super) fn vector(x: i8) -> [f32; 3] {
    [f32::from(x), 1.0, 0.5]
}

/// The metadata `Add` / `SetMeta` store for `m`: `{"m": m}`.
pub(super) fn meta(m: i64) -> Value {
    let mut o = Object::new();
    o.insert(JStr::new("m"), Value::Int(m));
    Value::Object(o)
}

/// The filter `m == value`.
pub(super) fn m_is(m: i64) -> Filters {
    Filters {
        filters: vec![FilterNode::Filter(MetadataFilter {
            key: "m".into(),
            value: Value::Int(m),
            operator: FilterOperator::Eq,
        })],
        ..Filters::default()
    }
}

pub(super) fn apply(s: &mut VectorStore, op: &Op) -> Result<(), String> {
    match op {
        Op::Add(i, r, m, x) => s
            .add(
                vec![NewRow {
                    id: format!("n{i}"),
                    ref_doc_id: r.map(|d| format!("d{d}")),
                    metadata: m.map(meta),
                }],
                &vector(*x),
                3,
            )
            .map_err(|e| e.to_string()),
        Op::Remove(i) => {
            s.remove(&format!("n{i}"));
            Ok(())
        }
        Op::DeleteRef(d) => {
            s.delete_ref_doc(&format!("d{d}"));
            Ok(())
        }
        Op::SetRef(i, r) => {
            s.set_ref_doc_id(&format!("n{i}"), r.map(|d| format!("d{d}")));
            Ok(())
        }
        Op::SetMeta(i, m) => {
            s.set_metadata(&format!("n{i}"), m.map(meta));
            Ok(())
        }
        Op::DeleteNodes(list) => {
            let set = list.iter().map(|i| format!("n{i}")).collect();
            s.delete_nodes(Some(&set), None).map_err(|e| e.to_string())
        }
        Op::DeleteWhere(m) => s.delete_nodes(None, Some(&m_is(*m))).map_err(|e| e.to_string()),
    }
}
