//! Values as one party holds them while a program runs, and the engine's inputs and outputs.

use std::borrow::Cow;
use std::sync::Arc;

use crate::sharing::{Shares, Shares32};
use veil_circuits::PartyId;

/// A value at one party: public words known to all (a Ring32 value's words are below 2^32),
/// this party's replicated shares, or its compact shares mod 2^32 of a Ring32 value
/// (reference-counted, so an input the caller holds in memory is used without a copy).
#[derive(Clone)]
pub(crate) enum Val {
    Public(Vec<u64>),
    Secret(Arc<Shares>),
    Secret32(Arc<Shares32>),
}

impl Val {
    /// A secret value from freshly computed shares.
    pub(crate) fn secret(s: Shares) -> Val {
        Val::Secret(Arc::new(s))
    }

    /// A secret Ring32 value from freshly computed compact shares.
    pub(crate) fn secret32(s: Shares32) -> Val {
        Val::Secret32(Arc::new(s))
    }

    /// "public", "secret" or "secret Ring32", for errors.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Val::Public(_) => "public",
            Val::Secret(_) => "secret",
            Val::Secret32(_) => "secret Ring32",
        }
    }

    /// This party's shares of the value, a scalar repeated to `n` elements: public words become
    /// the trivial sharing x_0 = v; a secret of the right length is borrowed, not copied.
    /// `None` for compact Ring32 shares (they are not shares over Z_2^64).
    pub(crate) fn shares(&self, me: PartyId, n: usize) -> Option<Cow<'_, Shares>> {
        match self {
            Val::Secret(s) => Some(s.broadcast(n)),
            Val::Public(p) => Some(Cow::Owned(Shares::from_public(me, &broadcast(p, n)))),
            Val::Secret32(_) => None,
        }
    }

    /// This party's compact shares of a Ring32 value, a scalar repeated to `n` elements:
    /// public words (below 2^32) become the trivial sharing x_0 = v. `None` for Z_2^64 shares.
    pub(crate) fn shares32(&self, me: PartyId, n: usize) -> Option<Cow<'_, Shares32>> {
        match self {
            Val::Secret32(s) if s.len() == 1 && n != 1 => {
                Some(Cow::Owned(s.map(|w| vec![w[0]; n])))
            }
            Val::Secret32(s) => Some(Cow::Borrowed(s)),
            Val::Public(p) => {
                let words: Vec<u32> = broadcast(p, n).into_iter().map(|w| w as u32).collect();
                Some(Cow::Owned(Shares32::from_public(me, &words)))
            }
            Val::Secret(_) => None,
        }
    }

    /// `f` applied to the words of a public value, or to each component of a secret one (a data
    /// movement, or a map linear in the components). Compact components are zero-extended to
    /// words and reduced back mod 2^32, which commutes with any such map.
    pub(crate) fn map(&self, f: impl Fn(&[u64]) -> Vec<u64>) -> Val {
        match self {
            Val::Public(x) => Val::Public(f(x)),
            Val::Secret(s) => Val::secret(s.map(f)),
            Val::Secret32(s) => Val::secret32(s.map(|w| {
                let wide: Vec<u64> = w.iter().map(|&x| u64::from(x)).collect();
                f(&wide).into_iter().map(|x| x as u32).collect()
            })),
        }
    }
}

/// Public words, a one-element vector repeated to `n` elements (scalar broadcast); other lengths
/// are copied as they are.
pub(crate) fn broadcast(v: &[u64], n: usize) -> Vec<u64> {
    if v.len() == 1 && n != 1 {
        vec![v[0]; n]
    } else {
        v.to_vec()
    }
}

/// An input handed to one party.
#[derive(Clone)]
pub enum InputValue {
    /// Plaintext words: a public input (given to every party) or a secret input at its owner party.
    Plain(Vec<u64>),
    /// This party's two components of a client-owned secret input (made with `share3`).
    Shares(Shares),
    /// The same, held in memory by the caller and shared with the session without a copy (a
    /// node's cache of stored values).
    Held(Arc<Shares>),
    /// This party's compact shares mod 2^32 of a client-owned **Ring32** secret input (made with
    /// `share3_compact`; seeded components are expanded only as the ops stream them).
    Compact(Arc<Shares32>),
}

/// An output as one party ends up with it.
#[derive(Clone, PartialEq, Eq)]
pub enum OutputValue {
    /// Plaintext words: this party is the recipient, or the value was public.
    Plain(Vec<u64>),
    /// This party's components, to hand to an external client who reconstructs (for a Ring32
    /// output, words below 2^32, reconstructed mod 2^32).
    Shares(Shares),
}

impl std::fmt::Debug for InputValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputValue::Plain(v) => write!(f, "Plain {{ len: {}, .. }}", v.len()),
            InputValue::Shares(s) => write!(f, "{s:?}"),
            InputValue::Held(s) => write!(f, "{s:?}"),
            InputValue::Compact(s) => write!(f, "{s:?}"),
        }
    }
}

impl std::fmt::Debug for OutputValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputValue::Plain(v) => write!(f, "Plain {{ len: {}, .. }}", v.len()),
            OutputValue::Shares(s) => write!(f, "{s:?}"),
        }
    }
}
