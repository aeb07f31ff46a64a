//! `OrderedMap`: a hash map with Python `dict` order semantics (insertion order; replacing keeps the
//! position; delete + re-insert moves to the end) and O(1) deletes. Like CPython's dict, entries live
//! in a vector and a delete leaves a tombstone; the vector is compacted when tombstones outnumber live
//! entries, so iteration stays O(len) amortized.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use crate::json::JStr;

#[derive(Clone, Debug)]
pub struct OrderedMap<V> {
    pub(super) entries: Vec<Option<(JStr, V)>>,
    /// `(hash, slot in entries)` of the live keys (each key is stored once, in `entries`). With the
    /// hash kept here, growing the table does not hash every key again (a load inserts tens of
    /// thousands of keys one by one).
    index: HashTable<(u64, usize)>,
    hasher: RandomState,
}

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap {
            entries: Vec::new(),
            index: HashTable::new(),
            hasher: RandomState::default(),
        }
    }
}

/// A map's key hash function (see `OrderedMap::key_hasher`).
#[derive(Clone, Debug)]
pub struct KeyHasher(RandomState);

impl KeyHasher {
    #[must_use]
    pub fn hash(&self, key: &JStr) -> u64 {
        self.0.hash_one(key)
    }
}

/// The key of a live slot (the index only holds live slots).
fn key_at<V>(entries: &[Option<(JStr, V)>], slot: usize) -> Option<&JStr> {
    entries.get(slot)?.as_ref().map(|(k, _)| k)
}

impl<V> OrderedMap<V> {
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn slot(&self, key: &JStr) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(self.hasher.hash_one(key), |&(_, slot)| {
                key_at(entries, slot) == Some(key)
            })
            .map(|&(_, slot)| slot)
    }

    #[must_use]
    pub fn contains_key(&self, key: &JStr) -> bool {
        self.slot(key).is_some()
    }

    #[must_use]
    pub fn get(&self, key: &JStr) -> Option<&V> {
        let slot = self.slot(key)?;
        self.entries[slot].as_ref().map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &JStr) -> Option<&mut V> {
        let slot = self.slot(key)?;
        self.entries[slot].as_mut().map(|(_, v)| v)
    }

    /// Room for `additional` more keys without growing the index.
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
        self.index.reserve(additional, |&(h, _)| h);
    }

    /// The hash function of this map's keys, for `insert_hashed` (it can hash on another thread).
    #[must_use]
    pub fn key_hasher(&self) -> KeyHasher {
        KeyHasher(self.hasher.clone())
    }

    /// `d[key] = value`. Returns the previous value.
    pub fn insert(&mut self, key: JStr, value: V) -> Option<V> {
        self.insert_hashed(self.hasher.hash_one(&key), key, value)
    }

    /// `insert` with `hash = self.key_hasher().hash(&key)` computed beforehand.
    pub fn insert_hashed(&mut self, hash: u64, key: JStr, value: V) -> Option<V> {
        debug_assert_eq!(hash, self.hasher.hash_one(&key));
        let entries = &self.entries;
        if let Some(&(_, slot)) = self
            .index
            .find(hash, |&(h, slot)| h == hash && key_at(entries, slot) == Some(&key))
        {
            if let Some((_, v)) = self.entries[slot].as_mut() {
                return Some(std::mem::replace(v, value));
            }
        }
        self.index.insert_unique(hash, (hash, self.entries.len()), |&(h, _)| h);
        self.entries.push(Some((key, value)));
        None
    }

    /// `d.pop(key, None)`.
    pub fn remove(&mut self, key: &JStr) -> Option<V> {
        let entries = &self.entries;
        let found = self
            .index
            .find_entry(self.hasher.hash_one(key), |&(_, slot)| {
                key_at(entries, slot) == Some(key)
            })
            .ok()?;
        let ((_, slot), _) = found.remove();
        let (_, value) = self.entries[slot].take()?;
        if self.entries.len() > 8 && self.index.len() * 2 < self.entries.len() {
            self.compact();
        }
        Some(value)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.index.clear();
    }

    fn compact(&mut self) {
        self.entries.retain(Option::is_some);
        self.index.clear();
        for (slot, (k, _)) in self.entries.iter().flatten().enumerate() {
            let hash = self.hasher.hash_one(k);
            self.index.insert_unique(hash, (hash, slot), |&(h, _)| h);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&JStr, &V)> {
        self.entries.iter().flatten().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &JStr> {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }
}
