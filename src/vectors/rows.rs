//! Row storage: one contiguous f32 block, one row per vector, every row starting on a 64-byte boundary
//! (stride = dim rounded up to a multiple of 16 floats; padding is zero). Rows are append-only; the
//! table above decides which are alive and asks for a stable compaction (`retain`).
//!
//! `RowStorage` is an enum: `Owned`, or `Mapped` — rows used in place from a read-only memory map of
//! the binary vector file, rows added after the load in an owned tail, replaced mapped rows in an
//! owned patch area (the file is never written). The search code only sees `&[f32]` rows either way.
//! A compaction of a mapped storage copies the surviving rows into owned storage.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use memmap2::Mmap;
use rayon::prelude::*;

/// 16 f32 = 64 bytes, 64-byte aligned: the allocation unit that makes every row cache-line aligned.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct A64([f32; 16]);

const LANES: usize = 16;

/// Owned, aligned rows.
#[derive(Clone, Debug, Default)]
pub struct OwnedRows {
    blocks: Vec<A64>,
    dim: usize,
    stride: usize,
    len: usize,
}

impl OwnedRows {
    pub fn new(dim: usize) -> Self {
        OwnedRows {
            blocks: Vec::new(),
            dim,
            stride: dim.div_ceil(LANES) * LANES,
            len: 0,
        }
    }

    /// `n` rows of `dim` floats written in place by `fill(row, out)`, on the pool when `parallel`
    /// (see `extend_filled`). `None` as soon as a `fill` returns false.
    pub fn filled(
        n: usize,
        dim: usize,
        parallel: bool,
        fill: impl Fn(usize, &mut [f32]) -> bool + Sync,
    ) -> Option<Self> {
        let mut rows = OwnedRows::new(dim);
        rows.extend_filled(n, parallel, fill).then_some(rows)
    }

    /// Appends `n` rows written in place by `fill(i, out)` (`i` counts from 0 in each call), on the
    /// pool when `parallel` (a few dozen rows per task). The new rows are not touched before: each
    /// is zeroed (so the padding is zero) right before its `fill`, by the thread that fills it. So
    /// the page faults of fresh memory are split across the filling threads and get huge pages, and
    /// rows that reuse freed heap memory are written once, not cleared first. Returns false, leaving
    /// the rows as they were, as soon as a `fill` returns false (or if the rows cannot grow).
    pub fn extend_filled(&mut self, n: usize, parallel: bool, fill: impl Fn(usize, &mut [f32]) -> bool + Sync) -> bool {
        let dim = self.dim;
        let per_row = self.blocks_per_row();
        let Some(blocks) = n.checked_mul(per_row) else {
            return false;
        };
        let Some(total) = self.blocks.len().checked_add(blocks) else {
            return false;
        };
        if std::alloc::Layout::array::<A64>(total).is_err() {
            return false;
        }
        self.reserve(n);
        let failed = AtomicBool::new(false);
        let fill_row = |(i, out): (usize, &mut [MaybeUninit<A64>])| {
            if failed.load(Ordering::Relaxed) {
                return;
            }
            out.iter_mut().for_each(|b| {
                b.write(A64::default());
            });
            // SAFETY: every block of `out` was just initialised, and A64 is repr(C) of 16 f32.
            let floats = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), out.len() * LANES) };
            if !fill(i, &mut floats[..dim]) {
                failed.store(true, Ordering::Relaxed);
            }
        };
        let spare = &mut self.blocks.spare_capacity_mut()[..blocks];
        if per_row == 0 {
            // dim 0: no floats to fill (the table rejects such rows with its own message).
        } else if parallel && n > 1 {
            spare
                .par_chunks_mut(per_row)
                .enumerate()
                .with_min_len(32)
                .for_each(fill_row);
        } else {
            spare.chunks_mut(per_row).enumerate().for_each(fill_row);
        }
        if failed.into_inner() {
            return false;
        }
        // SAFETY: no fill failed, so every row's chunk of the `blocks` blocks after the current
        // length was initialised.
        unsafe { self.blocks.set_len(total) };
        self.len += n;
        true
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn floats(&self) -> &[f32] {
        // SAFETY: A64 is repr(C) of exactly 16 f32 with no padding; the Vec holds initialised values.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast::<f32>(), self.blocks.len() * LANES) }
    }

    fn floats_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `floats`, and we hold `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr().cast::<f32>(), self.blocks.len() * LANES) }
    }

    fn blocks_per_row(&self) -> usize {
        self.stride / LANES
    }

    /// Room for `rows` more rows. Every growth of the block asks for huge pages (`hugepages`): a
    /// query reads all rows, and with 4 KiB pages a scan of 600 MB was ~15% slower than numpy's
    /// over the same matrix, which numpy backs with huge pages.
    pub fn reserve(&mut self, rows: usize) {
        let blocks = rows * self.blocks_per_row();
        if self.blocks.capacity() - self.blocks.len() < blocks {
            self.blocks.reserve(blocks);
            crate::hugepages::advise(&self.blocks);
        }
    }

    pub fn push(&mut self, v: &[f32]) -> u32 {
        debug_assert_eq!(v.len(), self.dim);
        let start = self.len * self.stride;
        self.reserve(1);
        self.blocks
            .resize(self.blocks.len() + self.blocks_per_row(), A64::default());
        self.floats_mut()[start..start + v.len()].copy_from_slice(v);
        self.len += 1;
        u32::try_from(self.len - 1).expect("more than u32::MAX rows")
    }

    pub fn overwrite(&mut self, row: u32, v: &[f32]) {
        let start = row as usize * self.stride;
        let dim = self.dim;
        self.floats_mut()[start..start + dim].copy_from_slice(v);
    }

    #[inline]
    pub fn row(&self, row: u32) -> &[f32] {
        let start = row as usize * self.stride;
        &self.floats()[start..start + self.dim]
    }

    /// Keeps rows whose `keep[i]` is true, in order.
    pub fn retain(&mut self, keep: &[bool]) {
        let bpr = self.blocks_per_row();
        let mut out = 0;
        for (i, &k) in keep.iter().enumerate().take(self.len) {
            if k {
                if out != i {
                    self.blocks.copy_within(i * bpr..(i + 1) * bpr, out * bpr);
                }
                out += 1;
            }
        }
        self.blocks.truncate(out * bpr);
        self.len = out;
    }
}

/// Rows in a read-only memory map (a binary vector file), plus owned rows added or replaced later.
#[derive(Clone, Debug)]
pub struct MappedRows {
    map: Arc<Mmap>,
    /// Byte offset of row 0 in the map (a multiple of 64, so rows are as aligned as owned ones).
    offset: usize,
    mapped: usize,
    dim: usize,
    stride: usize,
    /// Rows appended after the load: physical row `mapped + i` is `tail.row(i)`.
    tail: OwnedRows,
    /// Mapped rows whose vector was replaced: mapped row -> row in `patches`.
    patched: HashMap<u32, u32>,
    patches: OwnedRows,
}

impl MappedRows {
    /// `map[offset..offset + rows * stride * 4]` holds `rows` little-endian f32 rows of `stride` floats
    /// (`stride` = `dim` rounded up to 16). The caller has checked the bounds; this checks alignment.
    pub fn new(map: Arc<Mmap>, offset: usize, rows: usize, dim: usize) -> Option<Self> {
        let stride = dim.div_ceil(LANES) * LANES;
        let end = rows.checked_mul(stride)?.checked_mul(4)?.checked_add(offset)?;
        if cfg!(target_endian = "big") || end > map.len() || !(map.as_ptr() as usize + offset).is_multiple_of(64) {
            return None;
        }
        Some(MappedRows {
            map,
            offset,
            mapped: rows,
            dim,
            stride,
            tail: OwnedRows::new(dim),
            patched: HashMap::new(),
            patches: OwnedRows::new(dim),
        })
    }

    #[inline]
    fn mapped_floats(&self) -> &[f32] {
        // SAFETY: `new` checked that the range lies in the map and is 64-byte aligned; f32 has no
        // invalid bit patterns; the map is read-only and lives as long as `self` (Arc).
        unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().add(self.offset).cast::<f32>(),
                self.mapped * self.stride,
            )
        }
    }

    #[inline]
    pub fn row(&self, row: u32) -> &[f32] {
        let r = row as usize;
        if r >= self.mapped {
            return self.tail.row(row - self.mapped as u32);
        }
        if !self.patched.is_empty() {
            if let Some(&p) = self.patched.get(&row) {
                return self.patches.row(p);
            }
        }
        let start = r * self.stride;
        &self.mapped_floats()[start..start + self.dim]
    }

    fn len(&self) -> usize {
        self.mapped + self.tail.len
    }

    /// Copies the rows with `keep[i]` (all rows when `keep` is shorter) into owned storage.
    fn to_owned_rows(&self, keep: &[bool]) -> OwnedRows {
        let mut out = OwnedRows::new(self.dim);
        let n = self.len();
        out.reserve(n);
        for r in 0..n {
            if keep.get(r).copied().unwrap_or(keep.is_empty()) {
                out.push(self.row(r as u32));
            }
        }
        out
    }
}

/// Where rows live.
#[derive(Clone, Debug)]
pub enum RowStorage {
    Owned(OwnedRows),
    Mapped(MappedRows),
}

impl RowStorage {
    pub fn new(dim: usize) -> Self {
        RowStorage::Owned(OwnedRows::new(dim))
    }

    #[inline]
    pub fn row(&self, row: u32) -> &[f32] {
        match self {
            RowStorage::Owned(r) => r.row(row),
            RowStorage::Mapped(m) => m.row(row),
        }
    }

    pub fn push(&mut self, v: &[f32]) -> u32 {
        match self {
            RowStorage::Owned(r) => r.push(v),
            RowStorage::Mapped(m) => {
                let i = m.tail.push(v);
                u32::try_from(m.mapped + i as usize).expect("more than u32::MAX rows")
            }
        }
    }

    pub fn overwrite(&mut self, row: u32, v: &[f32]) {
        match self {
            RowStorage::Owned(r) => r.overwrite(row, v),
            RowStorage::Mapped(m) if row as usize >= m.mapped => m.tail.overwrite(row - m.mapped as u32, v),
            RowStorage::Mapped(m) => match m.patched.get(&row) {
                Some(&p) => m.patches.overwrite(p, v),
                None => {
                    let p = m.patches.push(v);
                    m.patched.insert(row, p);
                }
            },
        }
    }

    pub fn reserve(&mut self, rows: usize) {
        match self {
            RowStorage::Owned(r) => r.reserve(rows),
            RowStorage::Mapped(m) => m.tail.reserve(rows),
        }
    }

    pub fn retain(&mut self, keep: &[bool]) {
        match self {
            RowStorage::Owned(r) => r.retain(keep),
            RowStorage::Mapped(m) => *self = RowStorage::Owned(m.to_owned_rows(keep)),
        }
    }

    /// True when (some) rows are used in place from a memory-mapped file.
    pub fn is_mapped(&self) -> bool {
        matches!(self, RowStorage::Mapped(_))
    }

    /// The whole owned block (rows with their zero padding) when the storage is owned, for writers
    /// that copy it out in one piece.
    pub fn owned_block(&self) -> Option<&[f32]> {
        match self {
            RowStorage::Owned(r) => Some(&r.floats()[..r.len * r.stride]),
            RowStorage::Mapped(_) => None,
        }
    }

    /// The mapped rows as stored in the file (padding included) and how many there are, when mapped
    /// and no mapped row was replaced.
    pub fn mapped_block(&self) -> Option<(&[f32], usize)> {
        match self {
            RowStorage::Mapped(m) if m.patched.is_empty() => Some((m.mapped_floats(), m.mapped)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_aligned_and_retain_keeps_order() {
        let mut s = RowStorage::new(3);
        for i in 0..5u8 {
            let f = f32::from(i);
            s.push(&[f, f + 0.5, -f]);
        }
        for i in 0..5 {
            assert_eq!(s.row(i).as_ptr() as usize % 64, 0);
        }
        s.overwrite(1, &[9.0, 9.0, 9.0]);
        s.retain(&[false, true, false, true, true]);
        assert_eq!(s.row(0), &[9.0, 9.0, 9.0]);
        assert_eq!(s.row(1), &[3.0, 3.5, -3.0]);
        assert_eq!(s.row(2), &[4.0, 4.5, -4.0]);
        assert_eq!(s.row(2).as_ptr() as usize % 64, 0);
    }
}
