//! Criterion benchmarks of the pure-Rust core: `cargo bench --no-default-features`.
//!
//! Top-k (one query, a batch of 64), a filter passing 10% of the rows, the JSON float writer, the
//! vector store's JSON format both ways, and the binary load. Sample sizes are small so the whole run
//! takes a few minutes; the machines are shared, so compare ratios within one run, not across runs.
//! (`benches/compare.py` is the side-by-side comparison with numpy, FAISS and the Simple* stores.)

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use llama_index_rs::json::{write_f32_as_python_float, write_f32_list_items, JStr, Object, Value};
use llama_index_rs::vectors::binary_format::{load_files, persist_files, PersistFormat};
use llama_index_rs::vectors::json_format::{from_json, to_json};
use llama_index_rs::vectors::{
    FilterCondition, FilterNode, FilterOperator, Filters, MetadataFilter, NewRow, Query, QueryMode, VectorStore,
};

fn lcg(seed: &mut u64) -> f32 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn store(n: usize, d: usize) -> VectorStore {
    let mut seed = 1;
    let flat: Vec<f32> = (0..n * d).map(|_| lcg(&mut seed)).collect();
    let rows = (0..n)
        .map(|i| NewRow {
            id: format!("n-{i}"),
            ref_doc_id: Some("None".into()),
            metadata: Some(Value::Object(
                [(JStr::new("bucket"), Value::Int((i % 10) as i64))]
                    .into_iter()
                    .collect::<Object>(),
            )),
        })
        .collect();
    let mut s = VectorStore::new();
    s.add(rows, &flat, d).unwrap();
    s
}

fn queries(nq: usize, d: usize) -> Vec<f64> {
    let mut seed = 2;
    (0..nq * d).map(|_| f64::from(lcg(&mut seed))).collect()
}

fn top_k(c: &mut Criterion) {
    let mut g = c.benchmark_group("top_k");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for &(n, d) in &[(10_000usize, 768usize), (100_000, 1536)] {
        let s = store(n, d);
        let q = queries(64, d);
        let bucket = Filters {
            filters: vec![FilterNode::Filter(MetadataFilter {
                key: "bucket".into(),
                value: Value::Int(3),
                operator: FilterOperator::Eq,
            })],
            condition: FilterCondition::And,
        };
        let one = |filters| Query {
            embedding: &q[..d],
            top_k: Some(10),
            node_ids: None,
            filters,
            mode: QueryMode::Default,
        };
        let label = format!("{n}x{d}");
        g.throughput(Throughput::Bytes((n * d * 4) as u64));
        g.bench_function(BenchmarkId::new("single", &label), |b| {
            b.iter(|| black_box(s.query(&one(None)).unwrap()))
        });
        g.bench_function(BenchmarkId::new("filter_10pct", &label), |b| {
            b.iter(|| black_box(s.query(&one(Some(&bucket))).unwrap()))
        });
        g.bench_function(BenchmarkId::new("batch64", &label), |b| {
            b.iter(|| black_box(s.query_batch(&q, d, Some(10), None).unwrap()))
        });
    }
    g.finish();
}

fn json(c: &mut Criterion) {
    let mut g = c.benchmark_group("json");
    g.sample_size(10).measurement_time(Duration::from_secs(2));
    let mut seed = 3;
    let floats: Vec<f32> = (0..100_000).map(|_| lcg(&mut seed) * 1e-2).collect();
    g.throughput(Throughput::Elements(floats.len() as u64));
    g.bench_function("write_f32_as_python_float", |b| {
        let mut out = Vec::with_capacity(floats.len() * 24);
        b.iter(|| {
            out.clear();
            for &x in &floats {
                write_f32_as_python_float(&mut out, x);
            }
            black_box(out.len())
        })
    });
    // The same values as rows of 768, the way a persist formats them (eight at a time with AVX-512).
    g.bench_function("write_f32_list_items_768", |b| {
        let mut out = Vec::with_capacity(floats.len() * 24);
        b.iter(|| {
            out.clear();
            for row in floats.chunks(768) {
                write_f32_list_items(&mut out, row);
            }
            black_box(out.len())
        })
    });
    let s = store(2_000, 768);
    let text = to_json(&s).unwrap();
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("vector_store_to_json_2000x768", |b| {
        b.iter(|| black_box(to_json(&s).unwrap().len()))
    });
    g.bench_function("vector_store_from_json_2000x768", |b| {
        b.iter(|| black_box(from_json(&text, "bench").unwrap().len()))
    });
    g.finish();
}

/// Binary loads. The file is written once and stays in the page cache (dropping it needs root), so
/// these time a warm load: mapping, checksums of the non-vector sections, the id and entry pass.
/// `LIRS_BENCH_BINARY_ROWS=1000000 LIRS_BENCH_BINARY_DIM=1536` adds a large case (6 GB on disk).
fn binary(c: &mut Criterion) {
    let mut g = c.benchmark_group("binary");
    g.sample_size(10).measurement_time(Duration::from_secs(2));
    let dir = tempfile::tempdir().unwrap();
    let mut cases = vec![
        (10_000usize, 768usize, PersistFormat::Both),
        (200_000, 768, PersistFormat::Binary),
    ];
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    if let (Some(n), Some(d)) = (env("LIRS_BENCH_BINARY_ROWS"), env("LIRS_BENCH_BINARY_DIM")) {
        cases.push((n, d, PersistFormat::Binary));
    }
    for (n, d, format) in cases {
        let path = dir.path().join(format!("{n}x{d}__vector_store.json"));
        persist_files(&store(n, d), &path, format).unwrap();
        g.bench_function(format!("load_{n}x{d}"), |b| {
            b.iter(|| black_box(load_files(&path).unwrap().store.len()))
        });
        // First use of the id index after a load (it is built then, not by the load).
        g.bench_function(format!("load_and_get_{n}x{d}"), |b| {
            b.iter(|| black_box(load_files(&path).unwrap().store.get("n-7").is_some()))
        });
        std::fs::remove_file(llama_index_rs::vectors::binary_format::binary_path_for(&path)).unwrap();
        let _ = std::fs::remove_file(&path);
    }
    g.finish();
}

criterion_group!(benches, top_k, json, binary);
criterion_main!(benches);
