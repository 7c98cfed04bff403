//! Input: a party that holds a plaintext turns it into replicated shares.
//!
//! Construction: seed-compressed input sharing (Araki et al. CCS 2016 §2.1 style, as in ABY3
//! §5.3). For owner P_j and a fresh domain d:
//! | component | value | known to |
//! |---|---|---|
//! | x_j | F_{k_{j−1,j}}(d) | P_{j−1}, P_j (derived locally) |
//! | x_{j+1} | F_{k_{j,j+1}}(d) | P_j, P_{j+1} (derived locally) |
//! | x_{j+2} | v − x_j − x_{j+1} | sent by P_j to both others |
//!
//! Security: semi-honest, honest majority. P_{j+1} sees x_{j+1} and x_{j+2}; P_{j−1} sees x_j and
//! x_{j+2}; each misses one PRF stream, so what it sees is uniform and independent of v.
//!
//! Cost: 1 round; the owner sends 8 bytes per element to each of the two others (16 in all).

use super::{Expect, RoundProtocol, run_round};
use crate::error::ProtocolError;
use crate::party::PartyCtx;
use crate::sharing::Shares;
use crate::transport::{RoundId, Transport};
use veil_circuits::PartyId;

/// Where this party stands in an input protocol.
enum Role {
    /// The owner: done after sending `masked` to both peers.
    Owner { shares: Shares, masked: Vec<u64> },
    /// The owner is my previous party: I know x_{j+1} = my own, receive x_{j+2} = my next.
    AfterOwner { own: Vec<u64> },
    /// The owner is my next party: I know x_j = my next, receive x_{j+2} = my own.
    BeforeOwner { next: Vec<u64> },
}

/// One party's state of an input protocol.
pub struct InputRound {
    role: Role,
    n: usize,
}

impl InputRound {
    /// Start sharing an `n`-element input owned by `owner`; `value` must be `Some` exactly at
    /// the owner.
    pub fn start(
        ctx: &mut PartyCtx,
        owner: PartyId,
        n: usize,
        value: Option<&[u64]>,
    ) -> Result<Self, ProtocolError> {
        Self::start_in(ctx, owner, n, value, false)
    }

    /// As [`InputRound::start`] for a **boolean** sharing (x_{j+2} = v ⊕ x_j ⊕ x_{j+1}).
    pub fn start_xor(
        ctx: &mut PartyCtx,
        owner: PartyId,
        n: usize,
        value: Option<&[u64]>,
    ) -> Result<Self, ProtocolError> {
        Self::start_in(ctx, owner, n, value, true)
    }

    fn start_in(
        ctx: &mut PartyCtx,
        owner: PartyId,
        n: usize,
        value: Option<&[u64]>,
        boolean: bool,
    ) -> Result<Self, ProtocolError> {
        let d = ctx.next_domain();
        let role = if ctx.id == owner {
            let Some(v) = value else {
                return Err(ProtocolError::Argument {
                    op: "input",
                    what: "the owner must supply the plaintext".into(),
                });
            };
            super::check_len("input", v.len(), n)?;
            let own = ctx.rand_with_prev(d, n);
            let next = ctx.rand_with_next(d, n);
            let masked = v
                .iter()
                .zip(own.iter().zip(&next))
                .map(|(v, (a, b))| {
                    if boolean {
                        v ^ a ^ b
                    } else {
                        v.wrapping_sub(*a).wrapping_sub(*b)
                    }
                })
                .collect();
            Role::Owner {
                shares: Shares { own, next },
                masked,
            }
        } else if value.is_some() {
            return Err(ProtocolError::Argument {
                op: "input",
                what: format!("only the owner {owner} may supply the plaintext"),
            });
        } else if ctx.id.prev() == owner {
            Role::AfterOwner {
                own: ctx.rand_with_prev(d, n),
            }
        } else {
            Role::BeforeOwner {
                next: ctx.rand_with_next(d, n),
            }
        };
        Ok(InputRound { role, n })
    }
}

impl RoundProtocol for InputRound {
    type Output = Shares;

    fn to_next(&self) -> &[u64] {
        match &self.role {
            Role::Owner { masked, .. } => masked,
            _ => &[],
        }
    }

    fn to_prev(&self) -> &[u64] {
        self.to_next()
    }

    fn expect(&self) -> Expect {
        match self.role {
            Role::Owner { .. } => Expect::default(),
            Role::AfterOwner { .. } => Expect {
                from_next: 0,
                from_prev: self.n,
            },
            Role::BeforeOwner { .. } => Expect {
                from_next: self.n,
                from_prev: 0,
            },
        }
    }

    fn finish(
        self,
        from_next: Vec<u64>,
        from_prev: Vec<u64>,
        _: RoundId,
    ) -> Result<Shares, ProtocolError> {
        Ok(match self.role {
            Role::Owner { shares, .. } => shares,
            Role::AfterOwner { own } => Shares {
                own,
                next: from_prev,
            },
            Role::BeforeOwner { next } => Shares {
                own: from_next,
                next,
            },
        })
    }
}

/// Secret-share an `n`-element input held by `owner` (1 round).
pub async fn input<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    owner: PartyId,
    n: usize,
    value: Option<&[u64]>,
) -> Result<Shares, ProtocolError> {
    let p = InputRound::start(ctx, owner, n, value)?;
    run_round(ctx, net, p).await
}
