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

use super::kernels::{cosine, dot_f32_f32, dot_f32_f64, dot_tile, dot_tile_streaming, row_fits_f32_tile, PackedQuery};
use super::{Filters, VectorStore};
use crate::error::{StoreError, StoreResult};

/// Below this many multiply-adds a query runs on the calling thread (no pool hand-off). Waking
/// idle pool threads is not free: on the 2-vCPU VM of the benchmarks it took ~0.15-0.25 ms after
/// an idle pause, longer than one thread needs for 2M multiply-adds (8 MB of rows, ~0.25 ms
/// from memory). A filter passing 10% of 10k x 768 rows went from 0.35 ms to ~0.2 ms.
const PARALLEL_MIN_WORK: usize = 1 << 21;

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

/// The k largest `(sim, id)` items offered so far (k >= 1), by Python tuple order. `id_of` is only
/// called for an item that can enter: most items lose on similarity alone, without touching their id.
struct BoundedTop<'a> {
    k: usize,
    heap: BinaryHeap<Reverse<Scored<'a>>>,
    /// The smallest similarity in a full heap (-inf until it is full).
    floor: f64,
}

impl<'a> BoundedTop<'a> {
    fn new(k: usize) -> Self {
        BoundedTop {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            floor: f64::NEG_INFINITY,
        }
    }

    #[inline]
    fn offer(&mut self, i: usize, sim: f64, id_of: impl Fn(usize) -> &'a str) {
        // `floor` is -inf until the heap is full: every item enters then.
        if sim >= self.floor {
            self.push(Scored { sim, id: id_of(i) });
        }
    }

    /// Offers an item whose id is already known (`sim >= floor` must be checked by the caller or not at all).
    fn push(&mut self, it: Scored<'a>) {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(it));
        } else if self.heap.peek().is_some_and(|min| min.0.lt(&it)) {
            self.heap.pop();
            self.heap.push(Reverse(it));
        } else {
            return;
        }
        if self.heap.len() == self.k {
            self.floor = self.heap.peek().map_or(f64::NEG_INFINITY, |m| m.0.sim);
        }
    }

    /// The survivors, unordered.
    fn into_vec(self) -> Vec<Scored<'a>> {
        self.heap.into_iter().map(|r| r.0).collect()
    }
}

/// The k largest of `(sim, id)` items (unordered).
fn bounded_top<'a>(
    items: impl Iterator<Item = (usize, f64)>,
    k: usize,
    id_of: impl Fn(usize) -> &'a str,
) -> Vec<Scored<'a>> {
    let mut top = BoundedTop::new(k);
    for (i, sim) in items {
        top.offer(i, sim, &id_of);
    }
    top.into_vec()
}

/// The k largest of several survivor lists (unordered).
fn merge_tops<'a>(parts: impl Iterator<Item = Scored<'a>>, k: usize) -> Vec<Scored<'a>> {
    let mut top = BoundedTop::new(k);
    for it in parts {
        top.push(it);
    }
    top.into_vec()
}

/// Whether `rows` (ascending, as candidates are) are consecutive row numbers: one contiguous stretch
/// of the row storage. Only the tile shape depends on it, never a result.
fn is_run(rows: &[u32]) -> bool {
    match (rows.first(), rows.last()) {
        (Some(&a), Some(&b)) => b.wrapping_sub(a) as usize == rows.len() - 1,
        _ => true,
    }
}

/// Rows per cache block in `query_batch`: a block (~192 KiB) stays in L2 while every group of queries
/// passes over it, so rows come from memory once per batch.
fn batch_block_rows(dim: usize) -> usize {
    ((48 * 1024 / dim.max(1)).clamp(4, 512) / 4) * 4
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
        if node_ids.is_none() && filters.is_none_or(Filters::is_empty) && self.live == self.rows.len() {
            // Every row, no tombstones: no need to walk the row table.
            return Ok((0..self.rows.len() as u32).collect());
        }
        match self.matching_rows_by_columns(node_ids, filters) {
            Some(rows) => rows,
            None => self.matching_rows(node_ids, filters),
        }
    }

    /// Cosine similarities of `q` against the candidate rows, in candidate order.
    fn similarities(&self, cands: &[u32], q: &[f64]) -> Vec<f64> {
        self.similarities_with(cands, q, PackedQuery::new(q))
    }

    /// `similarities` with a given packing (`PackedQuery::exact` forces the exact kernel).
    fn similarities_with(&self, cands: &[u32], q: &[f64], packed: PackedQuery) -> Vec<f64> {
        let mut sims = vec![0.0; cands.len()];
        let fill = |(rows, out): (&[u32], &mut [f64])| {
            if is_run(rows) {
                self.score_rows::<1, 1, true>(rows, [&packed], [q], out);
            } else {
                self.score_rows::<4, 1, false>(rows, [&packed], [q], out);
            }
        };
        if cands.len() * q.len() < PARALLEL_MIN_WORK {
            fill((cands, &mut sims));
        } else {
            // Several chunks per thread even for a few thousand (filtered) rows: one chunk would
            // only move the work to a pool thread.
            let chunk = cands
                .len()
                .div_ceil(rayon::current_num_threads().max(1) * 4)
                .clamp(256, 1024);
            cands.par_chunks(chunk).zip(sims.par_chunks_mut(chunk)).for_each(fill);
        }
        sims
    }

    /// Cosines of `rows` against Q queries, `out[c * Q + j]`: `dot_tile` over R rows at a time, the exact
    /// kernel for the pairs the tile must not take (see `kernels`). Per pair the arithmetic is the same
    /// whatever R and Q and whichever rows share a tile, so every caller gets bit-identical similarities.
    ///
    /// R sets how many rows are read at once. A batch takes 4 (each row load feeds Q FMAs, so the
    /// tile is compute-bound). A single query over consecutive rows takes 1: one sequential stream per
    /// thread, which the hardware prefetchers follow best (3-6% less time than 4-row tiles at 100k x
    /// 1536 and 1M x 768 on the 2-core EPYC VM, alternating runs), and with `STREAMING` (software
    /// prefetch ahead, see `dot_tile_streaming`). Over scattered rows (a filter) it takes 4, whose
    /// cache misses overlap (4-row tiles took 20% less time there).
    fn score_rows<const R: usize, const Q: usize, const STREAMING: bool>(
        &self,
        rows: &[u32],
        packs: [&PackedQuery; Q],
        raw: [&[f64]; Q],
        out: &mut [f64],
    ) {
        let qs: [&[f32]; Q] = std::array::from_fn(|j| packs[j].values.as_slice());
        let mut store = |c: usize, r: u32, dots: &[f64; Q]| {
            let rn = self.row_norm(r);
            let fits = row_fits_f32_tile(rn);
            for j in 0..Q {
                out[c * Q + j] = if fits && packs[j].fast {
                    cosine(dots[j], packs[j].scaled_norm, rn)
                } else {
                    cosine(dot_f32_f64(self.row_embedding(r), raw[j]), packs[j].norm, rn)
                };
            }
        };
        let mut tiles = rows.chunks_exact(R);
        for (t, tile) in tiles.by_ref().enumerate() {
            let emb: [&[f32]; R] = std::array::from_fn(|i| self.row_embedding(tile[i]));
            let dots = if STREAMING {
                dot_tile_streaming::<R, Q>(&emb, &qs)
            } else {
                dot_tile::<R, Q>(&emb, &qs)
            };
            for (i, &r) in tile.iter().enumerate() {
                store(R * t + i, r, &dots[i]);
            }
        }
        let base = rows.len() - tiles.remainder().len();
        for (i, &r) in tiles.remainder().iter().enumerate() {
            let dots = dot_tile::<1, Q>(&[self.row_embedding(r)], &qs);
            store(base + i, r, &dots[0]);
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
        match q.mode {
            QueryMode::Default => {
                let sims = self.similarities(&cands, q.embedding);
                Ok(self.top_k(&cands, &sims, q.top_k))
            }
            QueryMode::Mmr { threshold } => {
                // MMR subtracts row-to-row overlaps (exact kernel) from query similarities: a query equal
                // to a stored row must give exactly the overlap's value, as in numpy, so exact here too.
                let sims = self.similarities_with(&cands, q.embedding, PackedQuery::exact(q.embedding));
                self.mmr(&cands, &sims, q.top_k, threshold.unwrap_or(0.5))
            }
        }
    }

    /// `get_top_k_embeddings` given the candidates' similarities.
    fn top_k(&self, cands: &[u32], sims: &[f64], top_k: Option<usize>) -> Vec<Hit> {
        let k = top_k.filter(|&k| k > 0);
        let n = cands.len();
        let id_of = |i: usize| self.row_id(cands[i]);
        let survivors: Vec<Scored> = match k {
            Some(k) if k < n => {
                if n < 50_000 {
                    bounded_top(sims.iter().copied().enumerate(), k, id_of)
                } else {
                    let chunk = n.div_ceil(rayon::current_num_threads().max(1) * 2).max(k);
                    let parts: Vec<Vec<Scored>> = sims
                        .par_chunks(chunk)
                        .enumerate()
                        .map(|(c, part)| {
                            bounded_top(
                                part.iter().copied().enumerate().map(|(i, s)| (c * chunk + i, s)),
                                k,
                                id_of,
                            )
                        })
                        .collect();
                    merge_tops(parts.into_iter().flatten(), k)
                }
            }
            _ => (0..n)
                .map(|i| Scored {
                    sim: sims[i],
                    id: id_of(i),
                })
                .collect(),
        };
        self.order_survivors(cands, sims, survivors, k)
    }

    /// Sorts the top-k survivors into LlamaIndex's order (replaying heapq when survivors tie).
    fn order_survivors<'a>(
        &'a self,
        cands: &[u32],
        sims: &[f64],
        mut survivors: Vec<Scored<'a>>,
        k: Option<usize>,
    ) -> Vec<Hit> {
        // Descending by (sim, id): ties between survivors then show up as neighbours.
        survivors.sort_unstable_by(|a, b| b.cmp(a));
        let tied = survivors.windows(2).any(|w| w[0].sim == w[1].sim);
        let ordered = if tied {
            top_k_by_simulation(
                (0..cands.len()).map(|i| Scored {
                    sim: sims[i],
                    id: self.row_id(cands[i]),
                }),
                k,
            )
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
        let n = cands.len();
        let k = match top_k.filter(|&k| k > 0) {
            // Every row (or nearly) is returned: no heap to share, run the single-query path per query.
            Some(k) if k < n / 4 => k,
            _ => {
                return Ok(queries
                    .chunks_exact(dim)
                    .map(|q| {
                        let sims = self.similarities(&cands, q);
                        self.top_k(&cands, &sims, top_k)
                    })
                    .collect())
            }
        };
        // Queries in groups of QG (the last one padded with a zero query, whose results are dropped).
        const QG: usize = 4;
        let zero = vec![0.0f64; dim];
        let raw: Vec<&[f64]> = queries
            .chunks_exact(dim)
            .chain(std::iter::repeat(zero.as_slice()))
            .take(nq.div_ceil(QG) * QG)
            .collect();
        let packs: Vec<PackedQuery> = raw.iter().map(|q| PackedQuery::new(q)).collect();
        let nqp = raw.len();
        // Each task scans a contiguous chunk of rows, block by block: a block is streamed from memory once
        // and stays in cache while every group of queries passes over it. Each task keeps one bounded
        // top-k per query across its blocks; the tasks' survivors are merged per query at the end.
        let block = batch_block_rows(dim);
        let tasks = if n * dim * nq < PARALLEL_MIN_WORK {
            1
        } else {
            rayon::current_num_threads().max(1) * 4
        };
        let chunk = n.div_ceil(tasks).div_ceil(block).max(1) * block;
        let id_of = |i: usize| self.row_id(cands[i]);
        let scan = |(t, rows): (usize, &[u32])| -> Vec<Vec<Scored>> {
            let mut tops: Vec<BoundedTop> = (0..nq).map(|_| BoundedTop::new(k)).collect();
            let mut sims = vec![0.0f64; block * QG];
            for (b, brows) in rows.chunks(block).enumerate() {
                let first = t * chunk + b * block;
                let sims = &mut sims[..brows.len() * QG];
                for g in 0..nqp / QG {
                    let p: [&PackedQuery; QG] = std::array::from_fn(|j| &packs[g * QG + j]);
                    let r: [&[f64]; QG] = std::array::from_fn(|j| raw[g * QG + j]);
                    self.score_rows::<4, QG, false>(brows, p, r, sims);
                    for (j, top) in tops.iter_mut().skip(g * QG).take(QG).enumerate() {
                        for (c, s) in sims.chunks_exact(QG).enumerate() {
                            top.offer(first + c, s[j], id_of);
                        }
                    }
                }
            }
            tops.into_iter().map(BoundedTop::into_vec).collect()
        };
        let parts: Vec<Vec<Vec<Scored>>> = if tasks == 1 {
            vec![scan((0, &cands))]
        } else {
            cands.par_chunks(chunk).enumerate().map(scan).collect()
        };
        let out: Vec<Vec<Hit>> = (0..nq)
            .into_par_iter()
            .map(|j| {
                let mut survivors = merge_tops(parts.iter().flat_map(|p| p[j].iter().copied()), k);
                survivors.sort_unstable_by(|a, b| b.cmp(a));
                if survivors.windows(2).any(|w| w[0].sim == w[1].sim) {
                    // Tied survivors: the heapq replay needs every similarity, recomputed bit-identically.
                    let q = raw[j];
                    let sims = self.similarities(&cands, q);
                    self.order_survivors(&cands, &sims, survivors, Some(k))
                } else {
                    survivors
                        .into_iter()
                        .map(|s| Hit {
                            id: s.id.to_owned(),
                            similarity: s.sim,
                        })
                        .collect()
                }
            })
            .collect();
        Ok(out)
    }
}
