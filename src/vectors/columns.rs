//! Per-key metadata columns: the fast path of filtered queries.
//!
//! A filtered query evaluates its filters against every live row's metadata. When the filter list is
//! made of plain filters (no nested groups), a row's outcome depends only on the values it holds under
//! the filters' keys. A `Column` stores one small code per physical row — an index into the column's
//! distinct scalar values, or "missing" (absent key or null), "no metadata entry", "dead row" — built
//! lazily by the first query that filters on the key and dropped by every mutation of the store
//! (`ColumnCache::invalidate`, called by the table). A query then evaluates each filter once per
//! distinct value and scans the codes.
//!
//! Guarantees: the same rows, and the same error at the same row, as `VectorStore::matching_rows`
//! (rows in order; per row `node_ids` first, then `KeyNotFound` for a row without a metadata entry,
//! then every filter in list order, the first error wins). A column is only built when every live row
//! with a metadata entry holds an object whose value under the key is missing, null, a bool, an int, a
//! float or a string; otherwise (`None`) the generic path runs.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use super::filter::{FilterCondition, FilterNode, Filters, MetadataFilter};
use super::VectorStore;
use crate::error::{StoreError, StoreResult};
use crate::json::Value;

/// Reserved codes; distinct values are numbered from `FIRST_VALUE`.
const DEAD: u32 = 0;
const NO_METADATA: u32 = 1;
const MISSING: u32 = 2;
const FIRST_VALUE: u32 = 3;

/// Columns kept at most; a query on one more key starts the cache afresh.
const MAX_COLUMNS: usize = 16;

/// Plain filters per query handled by the fast path (each costs one code lookup per row).
const MAX_FILTERS: usize = 8;

/// One key's values, one code per physical row.
struct Column {
    codes: Vec<u32>,
    /// `values[code - FIRST_VALUE]`.
    values: Vec<Value>,
}

/// The columns built so far, by key (`None`: the key holds values the fast path does not handle).
#[derive(Default)]
pub(super) struct ColumnCache {
    columns: Mutex<HashMap<String, Option<Arc<Column>>>>,
}

impl Clone for ColumnCache {
    /// A clone of the store starts without columns (they are rebuilt on demand).
    fn clone(&self) -> Self {
        ColumnCache::default()
    }
}

impl fmt::Debug for ColumnCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ColumnCache({} keys)", self.columns.lock().len())
    }
}

impl ColumnCache {
    /// Drops every column: to be called by each mutation of rows or metadata.
    pub(super) fn invalidate(&mut self) {
        self.columns.get_mut().clear();
    }
}

#[derive(Hash, PartialEq, Eq)]
enum Scalar<'a> {
    Bool(bool),
    Int(i64),
    /// By bits: NaN payloads and signed zeros stay apart (each is evaluated on its own).
    Float(u64),
    Str(&'a [u8]),
}

fn scalar(v: &Value) -> Option<Scalar<'_>> {
    Some(match v {
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Int(i) => Scalar::Int(*i),
        Value::Float(f) => Scalar::Float(f.to_bits()),
        Value::Str(s) => Scalar::Str(s.as_bytes()),
        _ => return None,
    })
}

fn build_column(store: &VectorStore, key: &str) -> Option<Column> {
    let mut codes = Vec::with_capacity(store.rows.len());
    let mut values: Vec<Value> = Vec::new();
    let mut seen: HashMap<Scalar, u32> = HashMap::new();
    for (r, m) in store.rows.iter().enumerate() {
        let code = if !m.alive {
            DEAD
        } else {
            // Metadata a binary load left unparsed is parsed (and cached) here; text that does not
            // parse leaves the query to the generic path, which reports it.
            let metadata = match &m.metadata {
                None => None,
                Some((_, meta)) => Some(store.meta_value(store.row_id(r as u32), meta).ok()?),
            };
            match metadata {
                None => NO_METADATA,
                Some(Value::Object(o)) => match o.get(key) {
                    None | Some(Value::Null) => MISSING,
                    Some(v) => {
                        let s = scalar(v)?;
                        let next = FIRST_VALUE + values.len() as u32;
                        let code = *seen.entry(s).or_insert(next);
                        if code == next {
                            values.push(v.clone());
                        }
                        code
                    }
                },
                // Not an object: the generic path reports Python's AttributeError text for it.
                Some(_) => return None,
            }
        };
        codes.push(code);
    }
    Some(Column { codes, values })
}

/// Outcome of one filter per code: `NO` / `YES` / `RAISES` for a value; `SKIP` for a dead row, `NO_ENTRY`
/// for a row without a metadata entry.
const NO: u8 = 0;
const YES: u8 = 1;
const RAISES: u8 = 2;
const SKIP: u8 = 3;
const NO_ENTRY: u8 = 4;

struct Outcomes<'a> {
    filter: &'a MetadataFilter,
    column: Arc<Column>,
    table: Vec<u8>,
}

impl<'a> Outcomes<'a> {
    fn new(filter: &'a MetadataFilter, column: Arc<Column>) -> Self {
        let code = |r: StoreResult<bool>| match r {
            Ok(b) => u8::from(b),
            Err(_) => RAISES,
        };
        let mut table = vec![SKIP, NO_ENTRY, code(filter.matches_value(None))];
        table.extend(column.values.iter().map(|v| code(filter.matches_value(Some(v)))));
        Outcomes { filter, column, table }
    }

    /// The filter's outcome for a live row with metadata.
    #[inline]
    fn get(&self, row: usize) -> StoreResult<bool> {
        let c = self.column.codes[row];
        match self.table[c as usize] {
            NO => Ok(false),
            YES => Ok(true),
            // Evaluated again for the error itself (at most once per query).
            _ => self.filter.matches_value(if c == MISSING {
                None
            } else {
                Some(&self.column.values[(c - FIRST_VALUE) as usize])
            }),
        }
    }
}

impl VectorStore {
    fn column(&self, key: &str) -> Option<Arc<Column>> {
        let mut cache = self.columns.columns.lock();
        if let Some(c) = cache.get(key) {
            return c.clone();
        }
        let col = build_column(self, key).map(Arc::new);
        if cache.len() >= MAX_COLUMNS {
            cache.clear();
        }
        cache.insert(key.to_owned(), col.clone());
        col
    }

    /// `matching_rows` through columns, or `None` when the fast path does not apply (no filters,
    /// nested groups, too many filters, or a key holding values columns do not handle).
    pub(super) fn matching_rows_by_columns(
        &self,
        node_ids: Option<&HashSet<String>>,
        filters: Option<&Filters>,
    ) -> Option<StoreResult<Vec<u32>>> {
        let filters = filters.filter(|f| !f.is_empty())?;
        if filters.filters.len() > MAX_FILTERS {
            return None;
        }
        let mut outcomes = Vec::with_capacity(filters.filters.len());
        for node in &filters.filters {
            let FilterNode::Filter(f) = node else { return None };
            outcomes.push(Outcomes::new(f, self.column(&f.key)?));
        }
        let codes = &outcomes[0].column.codes;
        let mut out = Vec::new();
        if let ([one], None) = (outcomes.as_slice(), node_ids) {
            // The common case: one filter, no id list. A scan over codes only.
            let table = &one.table;
            let negate = filters.condition == FilterCondition::Not;
            for (r, &c) in codes.iter().enumerate() {
                match table[c as usize] {
                    NO if negate => out.push(r as u32),
                    YES if !negate => out.push(r as u32),
                    NO | YES | SKIP => {}
                    NO_ENTRY => return Some(Err(StoreError::KeyNotFound(self.row_id(r as u32).to_owned()))),
                    _ => return Some(one.get(r).map(|_| Vec::new())),
                }
            }
            return Some(Ok(out));
        }
        for (r, &c) in codes.iter().enumerate() {
            if c == DEAD {
                continue;
            }
            if let Some(ids) = node_ids {
                if !ids.contains(self.row_id(r as u32)) {
                    continue;
                }
            }
            if c == NO_METADATA {
                return Some(Err(StoreError::KeyNotFound(self.row_id(r as u32).to_owned())));
            }
            let (mut any, mut all) = (false, true);
            for o in &outcomes {
                match o.get(r) {
                    Ok(b) => {
                        any |= b;
                        all &= b;
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
            let pass = match filters.condition {
                FilterCondition::And => all,
                FilterCondition::Or => any,
                FilterCondition::Not => !any,
            };
            if pass {
                out.push(r as u32);
            }
        }
        Some(Ok(out))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::json::{JStr, Object};
    use crate::vectors::{FilterOperator, NewRow};

    fn pool() -> Vec<Option<Value>> {
        vec![
            None,
            Some(Value::Null),
            Some(Value::Int(1)),
            Some(Value::Int(2)),
            Some(Value::Float(1.0)),
            Some(Value::Float(f64::NAN)),
            Some(Value::Float(-0.0)),
            Some(Value::Bool(true)),
            Some(Value::str("x")),
            Some(Value::str("1")),
            Some(Value::str("")),
            Some(Value::Array(vec![Value::Int(1)])),
        ]
    }

    const OPS: [FilterOperator; 14] = [
        FilterOperator::Eq,
        FilterOperator::Ne,
        FilterOperator::Gt,
        FilterOperator::Gte,
        FilterOperator::Lt,
        FilterOperator::Lte,
        FilterOperator::In,
        FilterOperator::Nin,
        FilterOperator::Any,
        FilterOperator::All,
        FilterOperator::TextMatch,
        FilterOperator::TextMatchInsensitive,
        FilterOperator::Contains,
        FilterOperator::IsEmpty,
    ];

    /// Metadata: `None` (no entry), a non-object, or an object with keys "a" / "b" from the pool.
    fn metadata(kind: u8, a: usize, b: usize) -> Option<Value> {
        let pool = pool();
        match kind {
            0 => None,
            1 if a == 0 => Some(Value::Int(7)),
            _ => {
                let mut o = Object::new();
                for (k, i) in [("a", a), ("b", b)] {
                    if let Some(v) = &pool[i] {
                        o.insert(JStr::new(k), v.clone());
                    }
                }
                Some(Value::Object(o))
            }
        }
    }

    fn errors_equal(a: &StoreResult<Vec<u32>>, b: &StoreResult<Vec<u32>>) -> bool {
        match (a, b) {
            (Ok(x), Ok(y)) => x == y,
            (Err(x), Err(y)) => format!("{x:?}") == format!("{y:?}"),
            _ => false,
        }
    }

    fn check(s: &VectorStore, ids: Option<&HashSet<String>>, f: &Filters) -> Result<(), TestCaseError> {
        let want = s.matching_rows(ids, Some(f));
        if let Some(got) = s.matching_rows_by_columns(ids, Some(f)) {
            prop_assert!(errors_equal(&got, &want), "{:?} vs {:?} for {:?}", got, want, f);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn columns_match_the_generic_path(
            rows in proptest::collection::vec((0u8..12, 0usize..12, 0usize..12), 0..30),
            dead in proptest::collection::vec(0usize..30, 0..6),
            filters in proptest::collection::vec((any::<bool>(), 0usize..14, 0usize..12), 1..4),
            cond in 0u8..3,
            id_subset in proptest::option::of(proptest::collection::vec(0usize..30, 0..10)),
            edit in proptest::option::of((0usize..30, 0u8..12, 0usize..12, 0usize..12)),
        ) {
            let mut s = VectorStore::new();
            let new: Vec<NewRow> = rows
                .iter()
                .enumerate()
                .map(|(i, &(kind, a, b))| NewRow { id: format!("n{i}"), ref_doc_id: None, metadata: metadata(kind, a, b) })
                .collect();
            let flat: Vec<f32> = (0..rows.len()).map(|i| i as f32 + 1.0).collect();
            s.add(new, &flat, 1).unwrap();
            for d in dead {
                s.remove(&format!("n{d}"));
            }
            let pool = pool();
            let f = Filters {
                filters: filters
                    .iter()
                    .map(|&(on_b, op, v)| {
                        FilterNode::Filter(MetadataFilter {
                            key: if on_b { "b" } else { "a" }.into(),
                            value: pool[v].clone().unwrap_or(Value::Array(vec![Value::Int(2), Value::str("x")])),
                            operator: OPS[op],
                        })
                    })
                    .collect(),
                condition: [FilterCondition::And, FilterCondition::Or, FilterCondition::Not][cond as usize],
            };
            let ids: Option<HashSet<String>> = id_subset.map(|v| v.iter().map(|i| format!("n{i}")).collect());
            check(&s, ids.as_ref(), &f)?;
            check(&s, None, &f)?;
            // A mutation after the columns were built: they must not be used stale.
            if let Some((i, kind, a, b)) = edit {
                s.set_metadata(&format!("n{i}"), metadata(kind, a, b));
                check(&s, ids.as_ref(), &f)?;
                s.add(vec![NewRow { id: format!("n{i}"), ref_doc_id: None, metadata: metadata(kind, b, a) }], &[2.0], 1).unwrap();
                check(&s, None, &f)?;
            }
        }
    }

    #[test]
    fn the_fast_path_is_taken_for_plain_scalar_filters() {
        let mut s = VectorStore::new();
        let new: Vec<NewRow> = (0..100)
            .map(|i| NewRow {
                id: format!("n{i}"),
                ref_doc_id: None,
                metadata: metadata(2, 2 + i % 3, 8),
            })
            .collect();
        s.add(new, &vec![1.0; 100], 1).unwrap();
        let f = Filters {
            filters: vec![FilterNode::Filter(MetadataFilter {
                key: "a".into(),
                value: Value::Int(2),
                operator: FilterOperator::Eq,
            })],
            condition: FilterCondition::And,
        };
        let got = s.matching_rows_by_columns(None, Some(&f)).expect("fast path").unwrap();
        assert_eq!(got, (0..100).filter(|i| i % 3 == 1).collect::<Vec<u32>>());
        // A list value under the key: no column, the generic path.
        s.set_metadata("n5", metadata(2, 11, 8));
        assert!(s.matching_rows_by_columns(None, Some(&f)).is_none());
    }
}
