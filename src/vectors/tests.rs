//! Store-level tests: table semantics against a model of Python's dicts, search against literal ports
//! of LlamaIndex's `get_top_k_embeddings` / `get_top_k_mmr_embeddings`.

use std::collections::HashSet;

use proptest::prelude::*;

use super::kernels::{dot_f32_f32, norm_f32, search_similarity, PackedQuery};
use super::test_ops::{apply, meta as meta_of, op_strategy, vector, Op};
use super::*;
use crate::error::StoreError;
use crate::json::{JStr, Object, Value};

fn meta(pairs: &[(&str, Value)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (JStr::new(k), v.clone())).collect::<Object>())
}

fn row(id: &str, r: Option<&str>, m: Option<Value>) -> NewRow {
    NewRow {
        id: id.into(),
        ref_doc_id: r.map(Into::into),
        metadata: m,
    }
}

fn ids(store: &VectorStore) -> Vec<String> {
    store.rows().map(|r| r.id.to_owned()).collect()
}

fn add1(store: &mut VectorStore, id: &str, v: &[f32]) {
    store
        .add(vec![row(id, Some("doc"), Some(meta(&[])))], v, v.len())
        .unwrap();
}

// ---------- literal ports of the Python oracle ----------

/// Python's `(a_sim, a_id) < (b_sim, b_id)`.
fn tuple_lt(a: &(f64, String), b: &(f64, String)) -> bool {
    if a.0 == b.0 {
        a.1 < b.1
    } else {
        a.0 < b.0
    }
}

fn py_siftdown(heap: &mut [(f64, String)], startpos: usize, mut pos: usize) {
    let newitem = heap[pos].clone();
    while pos > startpos {
        let parentpos = (pos - 1) >> 1;
        let parent = heap[parentpos].clone();
        if tuple_lt(&newitem, &parent) {
            heap[pos] = parent;
            pos = parentpos;
            continue;
        }
        break;
    }
    heap[pos] = newitem;
}

fn py_siftup(heap: &mut [(f64, String)], mut pos: usize) {
    let endpos = heap.len();
    let startpos = pos;
    let newitem = heap[pos].clone();
    let mut childpos = 2 * pos + 1;
    while childpos < endpos {
        let rightpos = childpos + 1;
        if rightpos < endpos && !tuple_lt(&heap[childpos], &heap[rightpos]) {
            childpos = rightpos;
        }
        heap[pos] = heap[childpos].clone();
        pos = childpos;
        childpos = 2 * pos + 1;
    }
    heap[pos] = newitem;
    py_siftdown(heap, startpos, pos);
}

/// `get_top_k_embeddings` over (similarity, id) pairs in candidate order.
fn py_get_top_k(pairs: &[(f64, String)], top_k: Option<usize>) -> Vec<(f64, String)> {
    let mut heap: Vec<(f64, String)> = Vec::new();
    for p in pairs {
        heap.push(p.clone());
        let n = heap.len();
        py_siftdown(&mut heap, 0, n - 1);
        if let Some(k) = top_k.filter(|&k| k > 0) {
            if heap.len() > k {
                let last = heap.pop().unwrap();
                if !heap.is_empty() {
                    heap[0] = last;
                    py_siftup(&mut heap, 0);
                }
            }
        }
    }
    heap.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap()); // stable, like sorted(..., reverse=True)
    heap
}

/// The search's own per-pair similarity (its accuracy is tested in `kernels`): the oracle ports
/// below test ranking, tie order and MMR on exactly the similarities the search sees.
fn cos_q(row: &[f32], q: &[f64]) -> f64 {
    search_similarity(row, norm_f32(row), q, &PackedQuery::new(q))
}

fn cos_rows(a: &[f32], b: &[f32]) -> f64 {
    let s = dot_f32_f32(a, b) / (norm_f32(a) * norm_f32(b));
    if s.is_finite() {
        s
    } else {
        0.0
    }
}

/// `get_top_k_mmr_embeddings`, literally.
fn py_mmr(q: &[f64], embs: &[Vec<f32>], ids: &[String], top_k: Option<usize>, thr: Option<f64>) -> Vec<(f64, String)> {
    let threshold = thr.unwrap_or(0.5);
    let mut embed_map: Vec<usize> = (0..ids.len()).collect(); // dict order, deletions keep order
    let mut embed_similarity = vec![0.0; ids.len()];
    let mut score = f64::NEG_INFINITY;
    let mut high: Option<usize> = None;
    for (i, e) in embs.iter().enumerate() {
        let s = search_similarity(e, norm_f32(e), q, &PackedQuery::exact(q)); // MMR: exact kernel
        embed_similarity[i] = s;
        if s * threshold > score {
            high = Some(i);
            score = s * threshold;
        }
    }
    let mut results = Vec::new();
    let n = embs.len();
    let count = top_k.filter(|&k| k > 0).unwrap_or(n);
    while results.len() < count.min(n) {
        let h = high.unwrap();
        results.push((score, ids[h].clone()));
        embed_map.retain(|&i| i != h);
        let recent = h;
        score = f64::NEG_INFINITY;
        for &i in &embed_map {
            let overlap = cos_rows(&embs[i], &embs[recent]);
            let v = threshold * embed_similarity[i] - (1.0 - threshold) * overlap;
            if v > score {
                score = v;
                high = Some(i);
            }
        }
    }
    results
}

// ---------- table semantics ----------

#[test]
fn replace_in_place_and_readd_at_end() {
    let mut s = VectorStore::new();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        add1(&mut s, id, &[i as f32, 1.0, 2.0]);
    }
    add1(&mut s, "a", &[9.0, 9.0, 9.0]);
    assert_eq!(ids(&s), ["a", "b", "c"]);
    assert_eq!(s.get("a").unwrap(), &[9.0, 9.0, 9.0]);
    s.delete_nodes(Some(&HashSet::from(["a".to_string()])), None).unwrap();
    add1(&mut s, "a", &[1.0, 1.0, 1.0]);
    assert_eq!(ids(&s), ["b", "c", "a"]);
    assert_eq!(s.len(), 3);
    assert!(s.contains("a") && !s.contains("z"));
}

#[test]
fn compaction_preserves_order_and_lookups() {
    let mut s = VectorStore::new();
    let n = 100;
    let rows: Vec<NewRow> = (0..n)
        .map(|i| row(&format!("n{i}"), Some(&format!("d{}", i % 7)), None))
        .collect();
    let emb: Vec<f32> = (0..n * 5).map(|x| (x % 13) as f32 + 0.25).collect();
    s.add(rows, &emb, 5).unwrap();
    for i in (0..n).filter(|i| i % 3 != 0) {
        assert!(s.remove(&format!("n{i}")));
    }
    let expect: Vec<String> = (0..n).filter(|i| i % 3 == 0).map(|i| format!("n{i}")).collect();
    assert_eq!(ids(&s), expect);
    assert!(s.rows.len() < n, "compacted");
    for i in (0..n).filter(|i| i % 3 == 0) {
        assert_eq!(s.get(&format!("n{i}")).unwrap(), &emb[i * 5..i * 5 + 5]);
    }
    s.delete_ref_doc("d0");
    assert!(ids(&s).iter().all(|id| id[1..].parse::<usize>().unwrap() % 7 != 0));
}

#[test]
fn add_validates_everything_first() {
    let mut s = VectorStore::new();
    add1(&mut s, "a", &[1.0, 2.0]);
    let e = s
        .add(
            vec![row("b", None, None), row("c", None, None)],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            3,
        )
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::InvalidValue(m) if m.contains("\"b\"") && m.contains('3') && m.contains('2')),
        "{e}"
    );
    let e = s
        .add(
            vec![row("b", None, None), row("c", None, None)],
            &[1.0, 2.0, f32::NAN, 4.0],
            2,
        )
        .unwrap_err();
    assert!(matches!(&e, StoreError::InvalidValue(m) if m.contains("\"c\"")), "{e}");
    assert!(s.add(vec![row("b", None, None)], &[1.0, 2.0, 3.0], 2).is_err());
    assert!(s.add(vec![row("b", None, None)], &[], 0).is_err());
    assert_eq!(ids(&s), ["a"]);
    // once empty, a new dimension is accepted (Python has no fixed dimension)
    s.delete_ref_doc("doc");
    add1(&mut s, "x", &[1.0, 2.0, 3.0]);
    assert_eq!(s.dim(), Some(3));
    s.clear();
    assert_eq!(s.dim(), None);
    assert!(s.is_empty());
}

#[test]
fn dict_order_of_ref_and_metadata_entries_follows_python() {
    // Python: three independent dicts.
    let mut s = VectorStore::new();
    add1(&mut s, "a", &[1.0]);
    add1(&mut s, "b", &[2.0]);
    s.set_ref_doc_id("orphan", Some("d9".into())); // ref dict: a, b, orphan
    assert!(s.remove("a")); // embedding gone, ref/metadata entries stay in place
    assert_eq!(ids(&s), ["b"]);
    let refs: Vec<_> = s.ref_doc_entries().map(|(k, _)| k.to_owned()).collect();
    assert_eq!(refs, ["a", "b", "orphan"]);
    assert_eq!(s.get_ref_doc_id("a"), Some("doc"));
    add1(&mut s, "a", &[3.0]); // embedding at the end, ref entry keeps its position
    assert_eq!(ids(&s), ["b", "a"]);
    let refs: Vec<_> = s.ref_doc_entries().map(|(k, _)| k.to_owned()).collect();
    assert_eq!(refs, ["a", "b", "orphan"]);
    s.set_metadata("b", None);
    s.set_metadata("b", Some(meta(&[("k", Value::Int(1))])));
    let metas: Vec<_> = s.metadata_entries().unwrap().map(|(k, _)| k.to_owned()).collect();
    assert_eq!(metas, ["a", "b"]);
    assert_eq!((s.metadata_len(), s.ref_doc_len()), (2, 3));
    s.delete_ref_doc("d9");
    assert_eq!(s.ref_doc_len(), 2);
    s.delete_ref_doc("doc");
    assert_eq!((s.len(), s.metadata_len(), s.ref_doc_len()), (0, 0, 0));
}

// ---------- query semantics ----------

fn eq_filter(key: &str, v: Value) -> Filters {
    Filters {
        filters: vec![FilterNode::Filter(MetadataFilter {
            key: key.into(),
            value: v,
            operator: FilterOperator::Eq,
        })],
        condition: FilterCondition::And,
    }
}

fn q<'a>(e: &'a [f64], k: Option<usize>) -> Query<'a> {
    Query {
        embedding: e,
        top_k: k,
        node_ids: None,
        filters: None,
        mode: QueryMode::Default,
    }
}

#[test]
fn query_errors_like_simple_vector_store() {
    let mut s = VectorStore::new();
    let empty = Filters::default();
    let query = [1.0, 0.0];
    assert!(s
        .query(&Query {
            filters: Some(&empty),
            ..q(&query, Some(2))
        })
        .unwrap()
        .is_empty());
    s.add(
        vec![row("a", Some("d"), None), row("b", Some("d"), None)],
        &[1.0, 0.0, 0.0, 1.0],
        2,
    )
    .unwrap();
    let e = s
        .query(&Query {
            filters: Some(&empty),
            ..q(&query, Some(2))
        })
        .unwrap_err();
    assert!(matches!(&e, StoreError::InvalidValue(m) if m.starts_with("Cannot filter stores")));
    s.set_metadata("b", Some(meta(&[("x", Value::Int(1))])));
    // empty filter list: no metadata lookup at all
    assert_eq!(
        s.query(&Query {
            filters: Some(&empty),
            ..q(&query, Some(2))
        })
        .unwrap()
        .len(),
        2
    );
    let f = eq_filter("x", Value::Int(1));
    let e = s
        .query(&Query {
            filters: Some(&f),
            ..q(&query, Some(2))
        })
        .unwrap_err();
    assert!(matches!(&e, StoreError::KeyNotFound(id) if id == "a"));
    // node_ids restrict first: "a" is never looked up
    let only_b = HashSet::from(["b".to_string()]);
    let hits = s
        .query(&Query {
            filters: Some(&f),
            node_ids: Some(&only_b),
            ..q(&query, Some(2))
        })
        .unwrap();
    assert_eq!(
        hits,
        vec![Hit {
            id: "b".into(),
            similarity: 0.0
        }]
    );
    let e = s.query(&q(&[1.0, 0.0, 0.0], None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "shapes (3,) and (2,) not aligned: 3 (dim 0) != 2 (dim 0)"
    );
    let none = HashSet::new();
    assert!(s
        .query(&Query {
            node_ids: Some(&none),
            ..q(&[1.0], None)
        })
        .unwrap()
        .is_empty());
    // delete_nodes raises before deleting anything
    assert!(s.delete_nodes(None, Some(&f)).is_err());
    assert_eq!(s.len(), 2);
    s.delete_nodes(Some(&only_b), Some(&f)).unwrap();
    assert_eq!(ids(&s), ["a"]);
}

#[test]
fn zero_vectors_score_zero() {
    let mut s = VectorStore::new();
    s.add(
        vec![row("z", None, None), row("a", None, None)],
        &[0.0, 0.0, 1.0, 1.0],
        2,
    )
    .unwrap();
    let hits = s.query(&q(&[1.0, 0.0], None)).unwrap();
    assert_eq!(hits[0].id, "a");
    assert_eq!(
        hits[1],
        Hit {
            id: "z".into(),
            similarity: 0.0
        }
    );
    let hits = s.query(&q(&[0.0, 0.0], None)).unwrap();
    assert!(hits.iter().all(|h| h.similarity == 0.0));
}

/// Cases checked against LlamaIndex 0.14.25 (`SimpleVectorStore.query`, see the python snippet in
/// the commit that added this test): duplicates tie, the k-th place goes by heap order.
#[test]
fn golden_tie_order_from_llamaindex() {
    let vecs: [[f32; 2]; 8] = [
        [1.0, 0.0],
        [1.0, 0.0],
        [0.0, 1.0],
        [1.0, 0.0],
        [1.0, 1.0],
        [0.0, 1.0],
        [1.0, 0.0],
        [1.0, 1.0],
    ];
    let names = ["n3", "n1", "n7", "n0", "n5", "n2", "n6", "n4"];
    let mut s = VectorStore::new();
    let rows = names.iter().map(|n| row(n, Some("d"), None)).collect();
    s.add(rows, &vecs.concat(), 2).unwrap();
    let got = |k| {
        s.query(&q(&[1.0, 0.2], k))
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(got(Some(1)), GOLDEN[0]);
    assert_eq!(got(Some(2)), GOLDEN[1]);
    assert_eq!(got(Some(3)), GOLDEN[2]);
    assert_eq!(got(Some(5)), GOLDEN[3]);
    assert_eq!(got(None), GOLDEN[4]);
}

const GOLDEN: [&str; 5] = ["n6", "n3,n6", "n1,n3,n6", "n0,n1,n3,n6,n5", "n0,n1,n6,n3,n4,n5,n2,n7"];

fn build(vecs: &[Vec<f32>], dim: usize) -> (VectorStore, Vec<String>) {
    let mut s = VectorStore::new();
    let ids: Vec<String> = (0..vecs.len()).map(|i| format!("id{}", (i * 7919) % 1000)).collect();
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    let mut flat = Vec::new();
    let mut kept = Vec::new();
    for (id, v) in ids.iter().zip(vecs) {
        if seen.insert(id.clone()) {
            rows.push(row(id, Some("d"), Some(meta(&[]))));
            flat.extend_from_slice(v);
            kept.push(id.clone());
        }
    }
    s.add(rows, &flat, dim).unwrap();
    (s, kept)
}

fn small_vec(dim: usize) -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(-2i8..=2, dim).prop_map(|v| v.into_iter().map(f32::from).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn prop_top_k_equals_python(
        (dim, vecs) in (1usize..5).prop_flat_map(|d| (Just(d), proptest::collection::vec(small_vec(d), 0..60))),
        qv in proptest::collection::vec(-2i8..=2, 4),
        k in proptest::option::of(0usize..70),
    ) {
        let (s, ids) = build(&vecs, dim);
        let query: Vec<f64> = qv[..dim].iter().map(|&x| f64::from(x)).collect();
        let pairs: Vec<(f64, String)> = s.rows().map(|r| (cos_q(r.embedding, &query), r.id.to_owned())).collect();
        prop_assert_eq!(pairs.len(), ids.len());
        let want = py_get_top_k(&pairs, k);
        let got: Vec<(f64, String)> = s.query(&q(&query, k)).unwrap().into_iter().map(|h| (h.similarity, h.id)).collect();
        prop_assert_eq!(&got, &want);
        let batch = s.query_batch(&query, dim, k, None).unwrap();
        let got_b: Vec<(f64, String)> = batch[0].iter().map(|h| (h.similarity, h.id.clone())).collect();
        prop_assert_eq!(&got_b, &want);
    }

    #[test]
    fn prop_mmr_equals_python(
        (dim, vecs) in (1usize..5).prop_flat_map(|d| (Just(d), proptest::collection::vec(small_vec(d), 0..40))),
        qv in proptest::collection::vec(-2i8..=2, 4),
        k in proptest::option::of(0usize..50),
        thr in proptest::option::of(0.0f64..=1.0),
    ) {
        let (s, _) = build(&vecs, dim);
        let query: Vec<f64> = qv[..dim].iter().map(|&x| f64::from(x)).collect();
        let embs: Vec<Vec<f32>> = s.rows().map(|r| r.embedding.to_vec()).collect();
        let ids: Vec<String> = s.rows().map(|r| r.id.to_owned()).collect();
        let want = py_mmr(&query, &embs, &ids, k, thr);
        let got: Vec<(f64, String)> = s
            .query(&Query { mode: QueryMode::Mmr { threshold: thr }, ..q(&query, k) })
            .unwrap()
            .into_iter()
            .map(|h| (h.similarity, h.id))
            .collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn parallel_path_matches_python_with_many_ties() {
    // Big enough for the parallel similarity pass and the parallel bounded heaps.
    let dim = 8;
    let n = 60_000;
    let mut seed = 12345u64;
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let protos: Vec<Vec<f32>> = (0..50)
        .map(|_| (0..dim).map(|_| (next() % 7) as f32 - 3.0).collect())
        .collect();
    let mut s = VectorStore::new();
    let rows: Vec<NewRow> = (0..n)
        .map(|i| row(&format!("r{}", next() % 1_000_000_000 + i), None, None))
        .collect();
    let flat: Vec<f32> = (0..n).flat_map(|_| protos[next() % protos.len()].clone()).collect();
    s.add(rows, &flat, dim).unwrap();
    let query: Vec<f64> = (0..dim).map(|i| i as f64 - 3.5).collect();
    let pairs: Vec<(f64, String)> = s
        .rows()
        .map(|r| (cos_q(r.embedding, &query), r.id.to_owned()))
        .collect();
    for k in [Some(1), Some(10), Some(2000), None] {
        let want = py_get_top_k(&pairs, k);
        let got: Vec<(f64, String)> = s
            .query(&q(&query, k))
            .unwrap()
            .into_iter()
            .map(|h| (h.similarity, h.id))
            .collect();
        assert_eq!(got, want, "k={k:?}");
    }
    // distinct similarities: the fast path without simulation
    let mut s2 = VectorStore::new();
    let rows: Vec<NewRow> = (0..n).map(|i| row(&format!("u{i}"), None, None)).collect();
    let flat: Vec<f32> = (0..n * dim)
        .map(|_| (next() % 100_000) as f32 / 1000.0 - 50.0)
        .collect();
    s2.add(rows, &flat, dim).unwrap();
    let pairs: Vec<(f64, String)> = s2
        .rows()
        .map(|r| (cos_q(r.embedding, &query), r.id.to_owned()))
        .collect();
    let want = py_get_top_k(&pairs, Some(10));
    let got: Vec<(f64, String)> = s2
        .query(&q(&query, Some(10)))
        .unwrap()
        .into_iter()
        .map(|h| (h.similarity, h.id))
        .collect();
    assert_eq!(got, want);
    // batch equals per-query
    let qs: Vec<f64> = (0..21 * dim).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
    let batch = s.query_batch(&qs, dim, Some(5), None).unwrap();
    for (j, qv) in qs.chunks(dim).enumerate() {
        assert_eq!(batch[j], s.query(&q(qv, Some(5))).unwrap());
    }
}

#[test]
fn batch_tiles_match_single_queries_and_python_with_ties() {
    // Dimensions on the tile path (>= TILE_MIN_DIM, with SIMD tails), rows repeated from a few
    // prototypes (exact ties on the k-th place), enough rows and queries for several tasks, cache
    // blocks and query groups (a partial last group), plus rows outside the tile's norm range.
    for &dim in &[32usize, 47, 97, 1536] {
        let n = if dim > 500 { 900 } else { 5000 };
        let mut seed = 77u64 + dim as u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        let protos: Vec<Vec<f32>> = (0..40)
            .map(|p| {
                let scale = match p {
                    0 => 1e-35,
                    1 => 1e35,
                    _ => 1.0,
                };
                (0..dim)
                    .map(|_| ((next() % 2001) as f32 / 1000.0 - 1.0) * scale)
                    .collect()
            })
            .collect();
        let mut s = VectorStore::new();
        let rows: Vec<NewRow> = (0..n)
            .map(|i| row(&format!("r{}", next() % 100_000 + i), None, None))
            .collect();
        let flat: Vec<f32> = (0..n).flat_map(|_| protos[next() % protos.len()].clone()).collect();
        s.add(rows, &flat, dim).unwrap();
        let nq = 7;
        let qs: Vec<f64> = (0..nq * dim).map(|_| (next() % 2001) as f64 / 1000.0 - 1.0).collect();
        for k in [1usize, 10, 30] {
            let batch = s.query_batch(&qs, dim, Some(k), None).unwrap();
            for (j, qv) in qs.chunks(dim).enumerate() {
                let single = s.query(&q(qv, Some(k))).unwrap();
                assert_eq!(batch[j], single, "dim={dim} k={k} query {j}");
                let pairs: Vec<(f64, String)> = s.rows().map(|r| (cos_q(r.embedding, qv), r.id.to_owned())).collect();
                let want = py_get_top_k(&pairs, Some(k));
                let got: Vec<(f64, String)> = single.into_iter().map(|h| (h.similarity, h.id)).collect();
                assert_eq!(got, want, "dim={dim} k={k} query {j}");
            }
        }
    }
}

/// Captured from LlamaIndex 0.14.25's `get_top_k_mmr_embeddings` on the same data.
#[test]
fn golden_mmr_from_llamaindex() {
    let vecs: [[f32; 2]; 9] = [
        [1.0, 0.0],
        [1.0, 0.0],
        [0.0, 1.0],
        [1.0, 0.0],
        [1.0, 1.0],
        [0.0, 1.0],
        [1.0, 0.0],
        [1.0, 1.0],
        [0.5, -1.0],
    ];
    let names = ["n3", "n1", "n7", "n0", "n5", "n2", "n6", "n4", "n8"];
    let mut s = VectorStore::new();
    s.add(
        names.iter().map(|n| row(n, Some("d"), None)).collect(),
        &vecs.concat(),
        2,
    )
    .unwrap();
    type Case<'a> = (Option<usize>, Option<f64>, &'a str, &'a [f64]);
    let cases: [Case; 5] = [
        (
            Some(3),
            None,
            "n3,n7,n8",
            &[0.49029033784546006, 0.09805806756909201, 0.5787722983960123],
        ),
        (
            Some(5),
            Some(0.3),
            "n3,n7,n8,n2,n1",
            &[
                0.294174202707276,
                0.0588348405414552,
                0.7050342554375737,
                0.6849338742413962,
                0.294174202707276,
            ],
        ),
        (
            None,
            Some(0.9),
            "n3,n1,n0,n6,n5,n4,n8,n7,n2",
            &[
                0.8825226081218281,
                0.7825226081218282,
                0.7825226081218282,
                0.7825226081218282,
                0.6781345867854045,
                0.6488452649040592,
                0.26842844181458164,
                0.26594724072435716,
                0.07650452162436563,
            ],
        ),
        (
            Some(4),
            Some(0.0),
            "n3,n7,n8,n2",
            &[0.0, 0.0, 0.8944271909999159, 0.8944271909999159],
        ),
        (Some(2), Some(1.0), "n3,n1", &[0.9805806756909201, 0.9805806756909201]),
    ];
    for (k, thr, want_ids, want_sims) in cases {
        let hits = s
            .query(&Query {
                mode: QueryMode::Mmr { threshold: thr },
                ..q(&[1.0, 0.2], k)
            })
            .unwrap();
        let got_ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(got_ids.join(","), want_ids, "k={k:?} thr={thr:?}");
        for (h, w) in hits.iter().zip(want_sims) {
            // The contract's 1e-6 (the search tile rounds the query to f32; see `kernels`).
            assert!((h.similarity - w).abs() < 1e-6, "{} vs {w}", h.similarity);
        }
    }
}

/// Rough timing, not a gate: `cargo test --release --no-default-features -- --ignored --nocapture timing`.
#[test]
#[ignore = "timing, run by hand in release mode"]
fn timing_100k_x_1536() {
    use std::time::Instant;
    let (n, dim) = (100_000usize, 1536usize);
    let mut seed = 1u64;
    let flat: Vec<f32> = (0..n * dim)
        .map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    let rows: Vec<NewRow> = (0..n)
        .map(|i| {
            row(
                &format!("node-{i}"),
                Some("doc"),
                Some(meta(&[("i", Value::Int(i as i64))])),
            )
        })
        .collect();
    let mut s = VectorStore::new();
    let t = Instant::now();
    s.add(rows, &flat, dim).unwrap();
    println!("backend: {}", backend_name());
    println!("add {n} x {dim}: {:?}", t.elapsed());
    let query: Vec<f64> = flat[..dim].iter().map(|&x| f64::from(x) + 0.01).collect();
    for _ in 0..3 {
        let t = Instant::now();
        let hits = s.query(&q(&query, Some(10))).unwrap();
        println!("top-10 query: {:?} (best {})", t.elapsed(), hits[0].id);
    }
    let f = Filters {
        filters: vec![FilterNode::Filter(MetadataFilter {
            key: "i".into(),
            value: Value::Int(50_000),
            operator: FilterOperator::Lt,
        })],
        condition: FilterCondition::And,
    };
    let t = Instant::now();
    s.query(&Query {
        filters: Some(&f),
        ..q(&query, Some(10))
    })
    .unwrap();
    println!("top-10 query with a filter (half pass): {:?}", t.elapsed());
    let t = Instant::now();
    s.query(&Query {
        mode: QueryMode::Mmr { threshold: None },
        ..q(&query, Some(10))
    })
    .unwrap();
    println!("MMR top-10: {:?}", t.elapsed());
    let qs: Vec<f64> = flat[..16 * dim].iter().map(|&x| f64::from(x)).collect();
    let t = Instant::now();
    s.query_batch(&qs, dim, Some(10), None).unwrap();
    println!("query_batch 16 queries: {:?}", t.elapsed());
    let t = Instant::now();
    for qv in qs.chunks(dim) {
        s.query(&q(qv, Some(10))).unwrap();
    }
    println!("16 single queries: {:?}", t.elapsed());
    let small = {
        let mut s = VectorStore::new();
        s.add(
            (0..10).map(|i| row(&format!("s{i}"), None, None)).collect(),
            &flat[..10 * dim],
            dim,
        )
        .unwrap();
        s
    };
    let t = Instant::now();
    for _ in 0..1000 {
        small.query(&q(&query, Some(3))).unwrap();
    }
    println!("10-row query: {:?} each", t.elapsed() / 1000);
}

// ---------- table vs a model of SimpleVectorStore's three Python dicts ----------

/// A Python dict: assignment to an existing key keeps its position, deletion forgets it.
#[derive(Default, Debug)]
struct PyDict<T>(Vec<(String, T)>);

impl<T: Clone> PyDict<T> {
    fn set(&mut self, k: &str, v: T) {
        match self.0.iter_mut().find(|e| e.0 == k) {
            Some(e) => e.1 = v,
            None => self.0.push((k.to_owned(), v)),
        }
    }
    fn del(&mut self, k: &str) {
        self.0.retain(|e| e.0 != k);
    }
    fn get(&self, k: &str) -> Option<&T> {
        self.0.iter().find(|e| e.0 == k).map(|e| &e.1)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn prop_table_follows_python_dicts(ops in proptest::collection::vec(op_strategy(12, 5), 0..60)) {
        let mut s = VectorStore::new();
        let (mut emb, mut refs, mut metas) = (PyDict::<[f32; 3]>::default(), PyDict::<String>::default(), PyDict::<i64>::default());
        for op in ops {
            // `Remove` is applied below, where its return value is checked.
            let result = if matches!(op, Op::Remove(_)) { Ok(()) } else { apply(&mut s, &op) };
            match op {
                Op::Add(i, r, m, x) => {
                    result.unwrap();
                    let id = format!("n{i}");
                    emb.set(&id, vector(x));
                    match r.map(|d| format!("d{d}")) { Some(r) => refs.set(&id, r), None => refs.del(&id) }
                    match m { Some(m) => metas.set(&id, m), None => metas.del(&id) }
                }
                Op::Remove(i) => {
                    let id = format!("n{i}");
                    prop_assert_eq!(s.remove(&id), emb.get(&id).is_some());
                    emb.del(&id);
                }
                Op::DeleteRef(d) => {
                    let d = format!("d{d}");
                    let doomed: Vec<String> = refs.0.iter().filter(|e| e.1 == d).map(|e| e.0.clone()).collect();
                    for id in doomed {
                        emb.del(&id);
                        refs.del(&id);
                        metas.del(&id);
                    }
                }
                Op::SetRef(i, r) => {
                    let id = format!("n{i}");
                    match r.map(|d| format!("d{d}")) { Some(r) => refs.set(&id, r), None => refs.del(&id) }
                }
                Op::SetMeta(i, m) => {
                    let id = format!("n{i}");
                    match m { Some(m) => metas.set(&id, m), None => metas.del(&id) }
                }
                Op::DeleteNodes(list) => {
                    result.unwrap();
                    let set: HashSet<String> = list.iter().map(|i| format!("n{i}")).collect();
                    let doomed: Vec<String> = emb.0.iter().filter(|e| set.contains(&e.0)).map(|e| e.0.clone()).collect();
                    for id in doomed {
                        emb.del(&id);
                        refs.del(&id);
                        metas.del(&id);
                    }
                }
                Op::DeleteWhere(m) => {
                    // Python reads metadata_dict[id] for every row: a row without one is a KeyError,
                    // raised before anything is deleted.
                    if emb.0.iter().any(|e| metas.get(&e.0).is_none()) {
                        prop_assert!(result.is_err());
                    } else {
                        result.unwrap();
                        let doomed: Vec<String> = emb.0.iter().filter(|e| metas.get(&e.0) == Some(&m)).map(|e| e.0.clone()).collect();
                        for id in doomed {
                            emb.del(&id);
                            refs.del(&id);
                            metas.del(&id);
                        }
                    }
                }
            }
            let got_rows: Vec<(String, Vec<f32>)> = s.rows().map(|r| (r.id.to_owned(), r.embedding.to_vec())).collect();
            let want_rows: Vec<(String, Vec<f32>)> = emb.0.iter().map(|e| (e.0.clone(), e.1.to_vec())).collect();
            prop_assert_eq!(got_rows, want_rows);
            let got_refs: Vec<(String, String)> = s.ref_doc_entries().map(|(a, b)| (a.to_owned(), b.to_owned())).collect();
            prop_assert_eq!(&got_refs, &refs.0);
            let got_meta: Vec<(String, Value)> = s.metadata_entries().unwrap().map(|(a, b)| (a.to_owned(), b.clone())).collect();
            let want_meta: Vec<(String, Value)> = metas.0.iter().map(|e| (e.0.clone(), meta_of(e.1))).collect();
            prop_assert_eq!(got_meta, want_meta);
            prop_assert_eq!((s.len(), s.ref_doc_len(), s.metadata_len()), (emb.0.len(), refs.0.len(), metas.0.len()));
            for i in 0..12 {
                let id = format!("n{i}");
                prop_assert_eq!(s.get_ref_doc_id(&id), refs.get(&id).map(String::as_str));
                prop_assert_eq!(s.get_metadata(&id).unwrap().cloned(), metas.get(&id).map(|&m| meta_of(m)));
                prop_assert_eq!(s.get(&id).map(<[f32]>::to_vec), emb.get(&id).map(|v| v.to_vec()));
            }
        }
    }
}

// ---------- add_block (a whole batch as row storage) vs row-by-row adds ----------

/// A batch as a block, the way the Python binding builds one.
fn block_of(vs: &[[f32; 3]]) -> OwnedRows {
    OwnedRows::filled(vs.len(), 3, vs.len() > 4, |i, out| {
        out.copy_from_slice(&vs[i]);
        true
    })
    .unwrap()
}

/// Everything observable about a store's three dicts.
fn state(s: &VectorStore) -> (Vec<(String, Vec<f32>)>, Vec<(String, String)>, Vec<(String, Value)>) {
    (
        s.rows().map(|r| (r.id.to_owned(), r.embedding.to_vec())).collect(),
        s.ref_doc_entries().map(|(a, b)| (a.to_owned(), b.to_owned())).collect(),
        s.metadata_entries()
            .unwrap()
            .map(|(a, b)| (a.to_owned(), b.clone()))
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The first batch into an empty store is adopted as storage (a repeated id in it leaves a
    /// tombstone), later ones are copied: either way the dicts must equal those of adding the same
    /// rows one at a time, and so must queries after removals and compaction.
    #[test]
    fn prop_add_block_equals_row_by_row_adds(
        batches in proptest::collection::vec(
            (proptest::collection::vec((0u8..8, -3i8..3, proptest::option::of(0u8..3)), 0..12), proptest::collection::vec(0u8..8, 0..4)),
            1..5,
        )
    ) {
        let (mut by_block, mut by_row) = (VectorStore::new(), VectorStore::new());
        for (batch, removals) in batches {
            let rows: Vec<NewRow> = batch
                .iter()
                .map(|&(i, _, m)| row(&format!("n{i}"), Some("d"), m.map(|m| Value::Int(m.into()))))
                .collect();
            let vs: Vec<[f32; 3]> = batch.iter().map(|&(i, x, _)| [f32::from(x), 1.0, f32::from(i)]).collect();
            by_block.add_block(rows.clone(), block_of(&vs)).unwrap();
            for (r, v) in rows.into_iter().zip(&vs) {
                by_row.add(vec![r], v, 3).unwrap();
            }
            for i in removals {
                prop_assert_eq!(by_block.remove(&format!("n{i}")), by_row.remove(&format!("n{i}")));
            }
            prop_assert_eq!(state(&by_block), state(&by_row));
            prop_assert_eq!(by_block.len(), by_row.len());
            let query = [0.5, 1.0, -0.25];
            prop_assert_eq!(by_block.query(&q(&query, None)).unwrap(), by_row.query(&q(&query, None)).unwrap());
            for i in 0..8 {
                let id = format!("n{i}");
                prop_assert_eq!(by_block.get(&id), by_row.get(&id));
            }
        }
    }
}

#[test]
fn add_block_validates_before_adopting() {
    let mut s = VectorStore::new();
    let bad = OwnedRows::filled(3, 2, false, |i, out| {
        out.copy_from_slice(&[1.0, if i == 1 { f32::NAN } else { 0.0 }]);
        true
    })
    .unwrap();
    let rows = vec![row("a", None, None), row("b", None, None), row("c", None, None)];
    let err = s.add_block(rows.clone(), bad).unwrap_err().to_string();
    assert!(err.contains("\"b\"") && err.contains("NaN at index 1"), "{err}");
    assert!(s.is_empty() && s.dim().is_none());
    let short = OwnedRows::filled(2, 2, false, |_, _| true).unwrap();
    assert!(s.add_block(rows, short).is_err());
    assert!(s.is_empty());
    // a fill that gives up yields no block
    assert!(OwnedRows::filled(100, 4, true, |i, _| i != 57).is_none());
}
