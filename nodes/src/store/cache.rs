//! Decoded stored values kept in memory, so a program that reads a large stored value on every
//! request (a RAG corpus, a model's weights) neither re-reads it from the database nor copies
//! it: sessions share the components through an `Arc`.
//!
//! The database stays the source of truth. The cache is read-through and bounded by a byte
//! budget (least recently used entries go first); a value larger than the budget is never
//! held. Stored values are immutable (a store under an existing id is refused), so the only
//! invalidation is deletion: `Store::delete_value_of` removes the entry and bumps a generation
//! counter, and a read that started before the deletion does not insert what it read.
//!
//! Security: the cache holds exactly what the database holds (this node's two components and
//! the access rights), in this process's memory; nothing is logged (`Debug` is redacted).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use veil_runtime::sharing::PartyShares;

use crate::policy::Access;
use crate::store::StoredValue;

/// A stored value as sessions use it: the access lists and this party's components.
pub struct HeldValue {
    /// Owner, per-program grants and raw-receive rights (see [`crate::policy`]).
    pub access: Access,
    /// This party's two components, shared with sessions without a copy.
    pub shares: PartyShares,
}

impl From<StoredValue> for HeldValue {
    fn from(v: StoredValue) -> Self {
        HeldValue {
            access: v.access,
            shares: v.shares,
        }
    }
}

impl HeldValue {
    /// Bytes of components held in memory (a seeded component holds only its seed).
    pub fn bytes(&self) -> usize {
        self.shares.held_bytes()
    }
}

impl fmt::Debug for HeldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldValue")
            .field("access", &self.access)
            .field("words", &self.shares.len())
            .finish_non_exhaustive()
    }
}

/// The bounded cache (see the module docs). `Send + Sync`.
pub struct ValueCache {
    inner: Mutex<Inner>,
}

struct Inner {
    budget: usize,
    used: usize,
    /// Bumped by every deletion; an insert carries the generation its read started in.
    generation: u64,
    tick: u64,
    entries: HashMap<String, (Arc<HeldValue>, u64)>,
}

impl fmt::Debug for ValueCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.lock();
        f.debug_struct("ValueCache")
            .field("budget", &c.budget)
            .field("used", &c.used)
            .field("entries", &c.entries.len())
            .finish()
    }
}

impl ValueCache {
    /// An empty cache holding at most `budget` bytes of share words (0 disables it).
    pub fn new(budget: usize) -> Self {
        ValueCache {
            inner: Mutex::new(Inner {
                budget,
                used: 0,
                generation: 0,
                tick: 0,
                entries: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The critical sections never panic midway; a poisoned lock still holds a valid map.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The held value under `id`, or the generation to pass to [`ValueCache::insert`] after
    /// reading it from the database.
    pub fn get(&self, id: &str) -> Result<Arc<HeldValue>, u64> {
        let mut c = self.lock();
        c.tick += 1;
        let tick = c.tick;
        match c.entries.get_mut(id) {
            Some((v, used)) => {
                *used = tick;
                Ok(Arc::clone(v))
            }
            None => Err(c.generation),
        }
    }

    /// Hold `v` under `id` if no deletion happened since `generation` and it fits the budget,
    /// evicting the least recently used entries to make room.
    pub fn insert(&self, id: &str, v: Arc<HeldValue>, generation: u64) {
        let mut c = self.lock();
        let size = v.bytes();
        if generation != c.generation || size > c.budget || c.entries.contains_key(id) {
            return;
        }
        while c.used + size > c.budget {
            let Some(oldest) = c
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((old, _)) = c.entries.remove(&oldest) {
                c.used -= old.bytes();
            }
        }
        c.tick += 1;
        let tick = c.tick;
        c.used += size;
        c.entries.insert(id.to_owned(), (v, tick));
    }

    /// The current generation, for an insert after a write.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Forget `id` (it was deleted) and start a new generation.
    pub fn remove(&self, id: &str) {
        let mut c = self.lock();
        c.generation += 1;
        if let Some((old, _)) = c.entries.remove(id) {
            c.used -= old.bytes();
        }
    }

    /// Bytes of share words held now.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.lock().used
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_runtime::sharing::Shares;

    fn value(words: usize) -> Arc<HeldValue> {
        Arc::new(HeldValue::from(StoredValue {
            access: Access::inline("alice"),
            shares: PartyShares::Ring64(Arc::new(Shares {
                own: vec![1; words],
                next: vec![2; words],
            })),
        }))
    }

    #[test]
    fn holds_within_budget_and_evicts_least_recently_used() {
        // 16 bytes per word: a budget of 100 words holds two values of 40 words.
        let c = ValueCache::new(1600);
        for id in ["a", "b"] {
            let g = c.get(id).unwrap_err();
            c.insert(id, value(40), g);
        }
        assert_eq!(c.used(), 1280);
        // Touch "a", so "b" is the least recently used when "c" needs room.
        assert!(c.get("a").is_ok());
        let g = c.get("c").unwrap_err();
        c.insert("c", value(40), g);
        assert!(c.get("a").is_ok() && c.get("c").is_ok());
        assert!(c.get("b").is_err());
        assert_eq!(c.used(), 1280);
        // Larger than the whole budget: not held, nothing evicted.
        let g = c.get("huge").unwrap_err();
        c.insert("huge", value(101), g);
        assert!(c.get("huge").is_err());
        assert_eq!(c.used(), 1280);
    }

    #[test]
    fn a_read_that_overlaps_a_deletion_is_not_held() {
        let c = ValueCache::new(1 << 20);
        let g = c.get("v").unwrap_err();
        // The value is deleted while the database read is in flight.
        c.remove("v");
        c.insert("v", value(4), g);
        assert!(c.get("v").is_err());
        // A fresh read after the deletion is held, and a later deletion drops it.
        let g = c.get("v").unwrap_err();
        c.insert("v", value(4), g);
        let held = c.get("v").unwrap();
        assert_eq!(held.shares, value(4).shares);
        c.remove("v");
        assert!(c.get("v").is_err());
        assert_eq!(c.used(), 0);
        // A session still using the removed value keeps its own reference.
        assert_eq!(held.shares.held_bytes(), 64);
    }

    #[test]
    fn a_zero_budget_holds_nothing_and_debug_is_redacted() {
        let c = ValueCache::new(0);
        let g = c.get("v").unwrap_err();
        c.insert("v", value(1), g);
        assert!(c.get("v").is_err());
        let v = value(3);
        let shown = format!("{v:?}");
        assert!(
            shown.contains("words: 3") && !shown.contains("1, 1"),
            "{shown}"
        );
    }
}
