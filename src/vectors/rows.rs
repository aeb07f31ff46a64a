//! Row storage: one contiguous f32 block, one row per vector, every row starting on a 64-byte boundary
//! (stride = dim rounded up to a multiple of 16 floats; padding is zero). Rows are append-only; the
//! table above decides which are alive and asks for a stable compaction (`retain`).
//!
//! `RowStorage` is an enum so that a read-only memory-mapped variant (rows used in place from the
//! binary vector file, new rows in an owned tail) can be added without touching the search code,
//! which only sees `&[f32]` rows.

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

    pub fn reserve(&mut self, rows: usize) {
        self.blocks.reserve(rows * self.blocks_per_row());
    }

    pub fn push(&mut self, v: &[f32]) -> u32 {
        debug_assert_eq!(v.len(), self.dim);
        let start = self.len * self.stride;
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

/// Where rows live. Only owned storage exists today.
#[derive(Clone, Debug)]
pub enum RowStorage {
    Owned(OwnedRows),
}

impl RowStorage {
    pub fn new(dim: usize) -> Self {
        RowStorage::Owned(OwnedRows::new(dim))
    }

    #[inline]
    pub fn row(&self, row: u32) -> &[f32] {
        match self {
            RowStorage::Owned(r) => r.row(row),
        }
    }

    pub fn push(&mut self, v: &[f32]) -> u32 {
        match self {
            RowStorage::Owned(r) => r.push(v),
        }
    }

    pub fn overwrite(&mut self, row: u32, v: &[f32]) {
        match self {
            RowStorage::Owned(r) => r.overwrite(row, v),
        }
    }

    pub fn reserve(&mut self, rows: usize) {
        match self {
            RowStorage::Owned(r) => r.reserve(rows),
        }
    }

    pub fn retain(&mut self, keep: &[bool]) {
        match self {
            RowStorage::Owned(r) => r.retain(keep),
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
