//! Combinators that build multi-round protocols from smaller ones, so composite ops (ReLU, max,
//! argmax) run as one state machine the engine can batch with everything else in each round.

use super::{Expect, MultiRound, RoundProtocol, Step};
use crate::error::ProtocolError;
use crate::party::PartyCtx;
use crate::sharing::Shares;
use crate::transport::RoundId;

/// A one-round protocol seen as a [`MultiRound`] that finishes after its round.
pub struct OneRound<P>(pub P);

impl<P: RoundProtocol<Output = Shares>> MultiRound for OneRound<P> {
    fn to_next(&self) -> &[u64] {
        self.0.to_next()
    }

    fn to_prev(&self) -> &[u64] {
        self.0.to_prev()
    }

    fn expect(&self) -> Expect {
        self.0.expect()
    }

    fn step(
        self: Box<Self>,
        _: &mut PartyCtx,
        from_next: Vec<u64>,
        from_prev: Vec<u64>,
        round: RoundId,
    ) -> Result<Step, ProtocolError> {
        Ok(Step::Done(self.0.finish(from_next, from_prev, round)?))
    }
}

/// What to do with a finished sub-protocol's result: finish, or start the next machine.
pub type Continuation =
    Box<dyn FnOnce(&mut PartyCtx, Shares) -> Result<Step, ProtocolError> + Send>;

/// Run `inner` to completion, then hand its result to `then` in the same round.
pub struct Then {
    inner: Box<dyn MultiRound>,
    then: Continuation,
}

impl Then {
    /// `inner`, followed by `then`, boxed for the engine.
    pub fn boxed(
        inner: Box<dyn MultiRound>,
        then: impl FnOnce(&mut PartyCtx, Shares) -> Result<Step, ProtocolError> + Send + 'static,
    ) -> Box<dyn MultiRound> {
        Box::new(Then {
            inner,
            then: Box::new(then),
        })
    }
}

impl MultiRound for Then {
    fn to_next(&self) -> &[u64] {
        self.inner.to_next()
    }

    fn to_prev(&self) -> &[u64] {
        self.inner.to_prev()
    }

    fn expect(&self) -> Expect {
        self.inner.expect()
    }

    fn step(
        self: Box<Self>,
        ctx: &mut PartyCtx,
        from_next: Vec<u64>,
        from_prev: Vec<u64>,
        round: RoundId,
    ) -> Result<Step, ProtocolError> {
        let Then { inner, then } = *self;
        match inner.step(ctx, from_next, from_prev, round)? {
            Step::More(inner) => Ok(Step::More(Box::new(Then { inner, then }))),
            Step::Done(out) => then(ctx, out),
        }
    }
}
