//! Top-k and MMR search with the exact results of LlamaIndex's `get_top_k_embeddings` and
//! `get_top_k_mmr_embeddings` (`llama_index/core/indices/query/embedding_utils.py`, 0.14.25).
//!
//! Similarity: cosine = dot / (|q| * |x|), dot and norms in f64 (see `kernels`), 0.0 where numpy
//! would give NaN.
//!
//! Tie order (DEFAULT mode): LlamaIndex pushes `(similarity, node_id)` tuples through a bounded
//! `heapq` (push, then pop the smallest while longer than k), then sorts the heap array by similarity
//! only, stably, descending. The surviving set is therefore the top k under the total order
//! (similarity, id) — which we compute with parallel bounded heaps — and when all survivors have
//! distinct similarities their order is simply by similarity. When two survivors share a similarity
//! (exact f64 equality), the heap array's layout matters, so we replay CPython's `heapq` literally
//! (`_siftdown` / `_siftup` of `Lib/heapq.py`) over every candidate in order, then sort stably.
//!
//! MMR: a literal port (first pick = first maximum of `sim * threshold`; each later pick maximises
//! `threshold * sim - (1 - threshold) * overlap_with_most_recent_pick` over the remaining candidates in
//! insertion order, strict `>`; reported similarity = that MMR score).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashSet};

use rayon::prelude::*;

use super::kernels::{cosine, dot_f32_f32, dot_f32_f64, dot_f32_f64_x2, norm_f64};
use super::{Filters, VectorStore};
use crate::error::{StoreError, StoreResult};

/// Below this many multiply-adds a query runs on the calling thread (no pool hand-off).
const PARALLEL_MIN_WORK: usize = 1 << 18;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QueryMode {
    Default,
    /// `threshold` None = LlamaIndex's default 0.5.
    Mmr {
        threshold: Option<f64>,
    },
}

/// One query, as `SimpleVectorStore.query` sees it.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    pub embedding: &'a [f64],
    /// `None` or `Some(0)`: every candidate.
    pub top_k: Option<usize>,
    pub node_ids: Option<&'a HashSet<String>>,
    pub filters: Option<&'a Filters>,
    pub mode: QueryMode,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub id: String,
    pub similarity: f64,
}

/// `(similarity, id)` with Python tuple ordering (similarity never NaN here).
#[derive(Clone, Copy, Debug)]
struct Scored<'a> {
    sim: f64,
    id: &'a str,
}

impl Scored<'_> {
    /// Python's `(s1, id1) < (s2, id2)`.
    #[inline]
    fn lt(&self, other: &Self) -> bool {
        if self.sim == other.sim {
            self.id.as_bytes() < other.id.as_bytes()
        } else {
            self.sim < other.sim
        }
    }
}

impl PartialEq for Scored<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored<'_> {}
impl PartialOrd for Scored<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        if self.lt(other) {
            Ordering::Less
        } else if other.lt(self) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }
}

fn shape_error(q: usize, d: usize) -> StoreError {
    // numpy's message for np.dot of a (q,) and a (d,) vector.
    StoreError::InvalidValue(format!(
        "shapes ({q},) and ({d},) not aligned: {q} (dim 0) != {d} (dim 0)"
    ))
}

/// CPython's `heapq` on `(similarity, id)` tuples, reproduced literally.
mod pyheap {
    use super::Scored;

    fn siftdown(heap: &mut [Scored], startpos: usize, mut pos: usize) {
        let newitem = heap[pos];
        while pos > startpos {
            let parentpos = (pos - 1) >> 1;
            let parent = heap[parentpos];
            if newitem.lt(&parent) {
                heap[pos] = parent;
                pos = parentpos;
                continue;
            }
            break;
        }
        heap[pos] = newitem;
    }

    fn siftup(heap: &mut [Scored], mut pos: usize) {
        let endpos = heap.len();
        let startpos = pos;
        let newitem = heap[pos];
        let mut childpos = 2 * pos + 1;
        while childpos < endpos {
            let rightpos = childpos + 1;
            if rightpos < endpos && !heap[childpos].lt(&heap[rightpos]) {
                childpos = rightpos;
            }
            heap[pos] = heap[childpos];
            pos = childpos;
            childpos = 2 * pos + 1;
        }
        heap[pos] = newitem;
        siftdown(heap, startpos, pos);
    }

    pub(super) fn heappush<'a>(heap: &mut Vec<Scored<'a>>, item: Scored<'a>) {
        heap.push(item);
        let last = heap.len() - 1;
        siftdown(heap, 0, last);
    }

    pub(super) fn heappop<'a>(heap: &mut Vec<Scored<'a>>) -> Option<Scored<'a>> {
        let last = heap.pop()?;
        if heap.is_empty() {
            return Some(last);
        }
        let ret = heap[0];
        heap[0] = last;
        siftup(heap, 0);
        Some(ret)
    }
}

/// `get_top_k_embeddings` over already computed similarities, by literal simulation.
fn top_k_by_simulation<'a>(items: impl Iterator<Item = Scored<'a>>, k: Option<usize>) -> Vec<Scored<'a>> {
    let mut heap = Vec::new();
    for it in items {
        pyheap::heappush(&mut heap, it);
        if let Some(k) = k {
            if heap.len() > k {
                pyheap::heappop(&mut heap);
            }
        }
    }
    heap.sort_by(|a, b| b.sim.partial_cmp(&a.sim).unwrap_or(Ordering::Equal));
    heap
}

/// The k largest items under (sim, id) order of a slice, sorted descending.
fn bounded_top<'a>(items: impl Iterator<Item = Scored<'a>>, k: usize) -> Vec<Scored<'a>> {
    let mut heap: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(k + 1);
    for it in items {
        if heap.len() < k {
            heap.push(Reverse(it));
        } else if let Some(min) = heap.peek() {
            if min.0.lt(&it) {
                heap.pop();
                heap.push(Reverse(it));
            }
        }
    }
    heap.into_iter().map(|r| r.0).collect()
}

impl VectorStore {
    /// Rows (in order) that pass `node_ids` and `filters`, with SimpleVectorStore.query's checks.
    pub fn candidates(&self, node_ids: Option<&HashSet<String>>, filters: Option<&Filters>) -> StoreResult<Vec<u32>> {
        if filters.is_some() && self.live > 0 && self.metadata_len() == 0 {
            return Err(StoreError::InvalidValue(
                "Cannot filter stores that were persisted without metadata. Please rebuild the store with metadata \
                 to enable filtering."
                    .into(),
            ));
        }
        self.matching_rows(node_ids, filters)
    }

    /// Cosine similarities of `q` against the candidate rows, in candidate order.
    fn similarities(&self, cands: &[u32], q: &[f64]) -> Vec<f64> {
        let qn = norm_f64(q);
        let sim = |&r: &u32| cosine(dot_f32_f64(self.row_embedding(r), q), qn, self.row_norm(r));
        if cands.len() * q.len() < PARALLEL_MIN_WORK {
            cands.iter().map(sim).collect()
        } else {
            cands.par_iter().with_min_len(256).map(sim).collect()
        }
    }

    fn check_dim(&self, q: usize, cands: &[u32]) -> StoreResult<()> {
        match self.dim {
            Some(d) if !cands.is_empty() && d != q => Err(shape_error(q, d)),
            _ => Ok(()),
        }
    }

    /// `SimpleVectorStore.query` for the DEFAULT and MMR modes.
    pub fn query(&self, q: &Query) -> StoreResult<Vec<Hit>> {
        let cands = self.candidates(q.node_ids, q.filters)?;
        self.check_dim(q.embedding.len(), &cands)?;
        if cands.is_empty() {
            return Ok(Vec::new());
        }
        let sims = self.similarities(&cands, q.embedding);
        match q.mode {
            QueryMode::Default => Ok(self.top_k(&cands, &sims, q.top_k)),
            QueryMode::Mmr { threshold } => self.mmr(&cands, &sims, q.top_k, threshold.unwrap_or(0.5)),
        }
    }

    /// `get_top_k_embeddings` given the candidates' similarities.
    fn top_k(&self, cands: &[u32], sims: &[f64], top_k: Option<usize>) -> Vec<Hit> {
        let k = top_k.filter(|&k| k > 0);
        let scored = |i: usize| Scored {
            sim: sims[i],
            id: self.row_id(cands[i]),
        };
        let n = cands.len();
        let mut survivors: Vec<Scored> = match k {
            Some(k) if k < n => {
                if n < 50_000 {
                    bounded_top((0..n).map(scored), k)
                } else {
                    let chunk = n.div_ceil(rayon::current_num_threads().max(1) * 4);
                    let parts: Vec<Vec<Scored>> = (0..n)
                        .into_par_iter()
                        .with_min_len(chunk)
                        .fold(Vec::new, |mut acc, i| {
                            acc.push(scored(i));
                            if acc.len() >= 4 * k.max(64) {
                                acc = bounded_top(acc.into_iter(), k);
                            }
                            acc
                        })
                        .map(|v| bounded_top(v.into_iter(), k))
                        .collect();
                    bounded_top(parts.into_iter().flatten(), k)
                }
            }
            _ => (0..n).map(scored).collect(),
        };
        // Descending by (sim, id): ties between survivors then show up as neighbours.
        survivors.sort_unstable_by(|a, b| b.cmp(a));
        let tied = survivors.windows(2).any(|w| w[0].sim == w[1].sim);
        let ordered = if tied {
            top_k_by_simulation((0..n).map(scored), k)
        } else {
            survivors
        };
        ordered
            .into_iter()
            .map(|s| Hit {
                id: s.id.to_owned(),
                similarity: s.sim,
            })
            .collect()
    }

    /// `get_top_k_mmr_embeddings` given the candidates' similarities to the query.
    fn mmr(&self, cands: &[u32], sims: &[f64], top_k: Option<usize>, threshold: f64) -> StoreResult<Vec<Hit>> {
        if !threshold.is_finite() {
            return Err(StoreError::InvalidValue(format!(
                "mmr_threshold must be a finite number, not {threshold}"
            )));
        }
        let n = cands.len();
        // First pick: the first maximum of sim * threshold.
        let mut score = f64::NEG_INFINITY;
        let mut best = 0usize;
        for (i, &s) in sims.iter().enumerate() {
            if s * threshold > score {
                best = i;
                score = s * threshold;
            }
        }
        let count = top_k.filter(|&k| k > 0).unwrap_or(n).min(n);
        let mut remaining: Vec<usize> = (0..n).collect();
        let mut out = Vec::with_capacity(count);
        let dim = self.dim.unwrap_or(0);
        while out.len() < count {
            out.push(Hit {
                id: self.row_id(cands[best]).to_owned(),
                similarity: score,
            });
            if let Some(p) = remaining.iter().position(|&i| i == best) {
                remaining.remove(p);
            }
            let recent = cands[best];
            let recent_row = self.row_embedding(recent);
            let recent_norm = self.row_norm(recent);
            let mmr_score = |&i: &usize| {
                let r = cands[i];
                let overlap = cosine(
                    dot_f32_f32(self.row_embedding(r), recent_row),
                    self.row_norm(r),
                    recent_norm,
                );
                threshold * sims[i] - (1.0 - threshold) * overlap
            };
            if out.len() == count {
                break;
            }
            let scores: Vec<f64> = if remaining.len() * dim < PARALLEL_MIN_WORK {
                remaining.iter().map(mmr_score).collect()
            } else {
                remaining.par_iter().with_min_len(256).map(mmr_score).collect()
            };
            score = f64::NEG_INFINITY;
            for (j, &s) in scores.iter().enumerate() {
                if s > score {
                    score = s;
                    best = remaining[j];
                }
            }
        }
        Ok(out)
    }

    /// Many DEFAULT-mode queries at once (`queries` is row-major, `n x dim`); the same results as one
    /// `query` per row. Rows are streamed once per block of queries.
    pub fn query_batch(
        &self,
        queries: &[f64],
        dim: usize,
        top_k: Option<usize>,
        filters: Option<&Filters>,
    ) -> StoreResult<Vec<Vec<Hit>>> {
        if dim == 0 || !queries.len().is_multiple_of(dim) {
            return Err(StoreError::InvalidValue(format!(
                "{} query values do not form rows of dimension {dim}",
                queries.len()
            )));
        }
        let nq = queries.len() / dim;
        if nq == 0 {
            return Ok(Vec::new());
        }
        let cands = self.candidates(None, filters)?;
        self.check_dim(dim, &cands)?;
        if cands.is_empty() {
            return Ok(vec![Vec::new(); nq]);
        }
        const BLOCK: usize = 16;
        let mut out = Vec::with_capacity(nq);
        for block in queries.chunks(BLOCK * dim) {
            let b = block.len() / dim;
            let qnorms: Vec<f64> = block.chunks_exact(dim).map(norm_f64).collect();
            // Candidate-major matrix, filled tile by tile: a tile of rows is streamed from memory once
            // for the whole block and stays in cache while each pair of queries (kept in L1) passes over it.
            const TILE: usize = 32;
            let mut m = vec![0.0f64; cands.len() * b];
            let fill = |(t, out): (usize, &mut [f64])| {
                let tile = &cands[t * TILE..(t * TILE + out.len() / b)];
                let mut pairs = block.chunks_exact(2 * dim);
                for (j, qq) in pairs.by_ref().enumerate() {
                    let (q0, q1) = qq.split_at(dim);
                    for (c, &r) in tile.iter().enumerate() {
                        let (d0, d1) = dot_f32_f64_x2(self.row_embedding(r), q0, q1);
                        let rn = self.row_norm(r);
                        out[c * b + 2 * j] = cosine(d0, qnorms[2 * j], rn);
                        out[c * b + 2 * j + 1] = cosine(d1, qnorms[2 * j + 1], rn);
                    }
                }
                if b % 2 == 1 {
                    let q = pairs.remainder();
                    for (c, &r) in tile.iter().enumerate() {
                        out[c * b + b - 1] =
                            cosine(dot_f32_f64(self.row_embedding(r), q), qnorms[b - 1], self.row_norm(r));
                    }
                }
            };
            if cands.len() * block.len() < PARALLEL_MIN_WORK {
                m.chunks_mut(b * TILE).enumerate().for_each(fill);
            } else {
                m.par_chunks_mut(b * TILE).enumerate().for_each(fill);
            }
            let mut results: Vec<Vec<Hit>> = (0..b)
                .into_par_iter()
                .map(|j| {
                    let sims: Vec<f64> = (0..cands.len()).map(|c| m[c * b + j]).collect();
                    self.top_k(&cands, &sims, top_k)
                })
                .collect();
            out.append(&mut results);
        }
        Ok(out)
    }
}
