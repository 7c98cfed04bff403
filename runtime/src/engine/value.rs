//! Values as one party holds them while a program runs, and the engine's inputs and outputs.

use std::borrow::Cow;
use std::sync::Arc;

use crate::sharing::Shares;
use veil_circuits::PartyId;

/// A value at one party: public words known to all, or this party's replicated shares
/// (reference-counted, so an input the caller holds in memory is used without a copy).
#[derive(Clone)]
pub(crate) enum Val {
    Public(Vec<u64>),
    Secret(Arc<Shares>),
}

impl Val {
    /// A secret value from freshly computed shares.
    pub(crate) fn secret(s: Shares) -> Val {
        Val::Secret(Arc::new(s))
    }

    /// "public" or "secret", for errors.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Val::Public(_) => "public",
            Val::Secret(_) => "secret",
        }
    }

    /// This party's shares of the value, a scalar repeated to `n` elements: public words become
    /// the trivial sharing x_0 = v; a secret of the right length is borrowed, not copied.
    pub(crate) fn shares(&self, me: PartyId, n: usize) -> Cow<'_, Shares> {
        match self {
            Val::Secret(s) => s.broadcast(n),
            Val::Public(p) => Cow::Owned(Shares::from_public(me, &broadcast(p, n))),
        }
    }

    /// `f` applied to the words of a public value, or to each component of a secret one (a data
    /// movement, or a map linear in the components).
    pub(crate) fn map(&self, f: impl Fn(&[u64]) -> Vec<u64>) -> Val {
        match self {
            Val::Public(x) => Val::Public(f(x)),
            Val::Secret(s) => Val::secret(s.map(f)),
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
}

/// An output as one party ends up with it.
#[derive(Clone, PartialEq, Eq)]
pub enum OutputValue {
    /// Plaintext words: this party is the recipient, or the value was public.
    Plain(Vec<u64>),
    /// This party's components, to hand to an external client who reconstructs.
    Shares(Shares),
}

impl std::fmt::Debug for InputValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputValue::Plain(v) => write!(f, "Plain {{ len: {}, .. }}", v.len()),
            InputValue::Shares(s) => write!(f, "{s:?}"),
            InputValue::Held(s) => write!(f, "{s:?}"),
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
