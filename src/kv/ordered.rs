//! `OrderedMap`: a hash map with Python `dict` order semantics (insertion order; replacing keeps the
//! position; delete + re-insert moves to the end) and O(1) deletes. Like CPython's dict, entries live
//! in a vector and a delete leaves a tombstone; the vector is compacted when tombstones outnumber live
//! entries, so iteration stays O(len) amortized.

use std::collections::HashMap;

use crate::json::JStr;

#[derive(Clone, Debug)]
pub struct OrderedMap<V> {
    pub(super) entries: Vec<Option<(JStr, V)>>,
    index: HashMap<JStr, usize>,
}

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap {
            entries: Vec::new(),
            index: HashMap::new(),
        }
    }
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

    #[must_use]
    pub fn contains_key(&self, key: &JStr) -> bool {
        self.index.contains_key(key)
    }

    #[must_use]
    pub fn get(&self, key: &JStr) -> Option<&V> {
        let &slot = self.index.get(key)?;
        self.entries[slot].as_ref().map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &JStr) -> Option<&mut V> {
        let &slot = self.index.get(key)?;
        self.entries[slot].as_mut().map(|(_, v)| v)
    }

    /// `d[key] = value`. Returns the previous value.
    pub fn insert(&mut self, key: JStr, value: V) -> Option<V> {
        if let Some(&slot) = self.index.get(&key) {
            if let Some((_, v)) = self.entries[slot].as_mut() {
                return Some(std::mem::replace(v, value));
            }
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push(Some((key, value)));
        None
    }

    /// `d.pop(key, None)`.
    pub fn remove(&mut self, key: &JStr) -> Option<V> {
        let slot = self.index.remove(key)?;
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
        for (i, (k, _)) in self.entries.iter().flatten().enumerate() {
            if let Some(slot) = self.index.get_mut(k) {
                *slot = i;
            }
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
