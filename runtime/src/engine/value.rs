//! Values as one party holds them while a program runs, and the engine's inputs and outputs.

use std::sync::Arc;

use crate::sharing::Shares;

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
