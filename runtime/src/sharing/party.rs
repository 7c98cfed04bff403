//! One party's shares of a stored or sent value, in the ring the value lives in.

use super::compact::{Comp32, Shares32};
use super::replicated::Shares;
use std::sync::Arc;

/// One party's two components of a value: Z_2^64 words, or compact Z_2^32 components
/// (explicit words or seeds). Reference-counted so a node's cache and its sessions share them.
/// `Debug` is redacted (lengths and kinds only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartyShares {
    /// Z_2^64 components (a `Ring` or `Fixed` value).
    Ring64(Arc<Shares>),
    /// Compact Z_2^32 components (a `Ring32` value).
    Ring32(Arc<Shares32>),
}

impl PartyShares {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            PartyShares::Ring64(s) => s.len(),
            PartyShares::Ring32(s) => s.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ring's bit width: 64 or 32.
    pub fn ring_bits(&self) -> u32 {
        match self {
            PartyShares::Ring64(_) => 64,
            PartyShares::Ring32(_) => 32,
        }
    }

    /// Bytes of components held in memory: 8 per Z_2^64 word, 4 per explicit Z_2^32 word, the
    /// seed of a seeded component.
    pub fn held_bytes(&self) -> usize {
        let comp = |c: &Comp32| match c {
            Comp32::Words(w) => 4 * w.len(),
            Comp32::Seed { .. } => super::SEED_BYTES,
        };
        match self {
            PartyShares::Ring64(s) => 8 * (s.own.len() + s.next.len()),
            PartyShares::Ring32(s) => comp(&s.own) + comp(&s.next),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_bytes_count_seeds_as_seeds() {
        let wide = PartyShares::Ring64(Arc::new(Shares {
            own: vec![1; 10],
            next: vec![2; 10],
        }));
        assert_eq!(
            (wide.len(), wide.ring_bits(), wide.held_bytes()),
            (10, 64, 160)
        );
        let compact = PartyShares::Ring32(Arc::new(Shares32 {
            own: Comp32::seeded([3; 32], 0, 1000).unwrap(),
            next: Comp32::words(vec![4u32; 1000]),
        }));
        assert_eq!(
            (compact.len(), compact.ring_bits(), compact.held_bytes()),
            (1000, 32, 4032)
        );
        assert!(!format!("{compact:?}").contains("[3"), "seeds are redacted");
    }
}
