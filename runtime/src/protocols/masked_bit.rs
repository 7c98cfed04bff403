//! Boolean-shared bits to arithmetic shares by opening them under a random mask bit, with the
//! mask prepared beside the boolean circuit that computes them.
//!
//! Construction: a random bit r is held both ways — boolean shares r = r_0 ⊕ r_1 ⊕ r_2 drawn
//! from the pairwise PRFs (no communication), and arithmetic shares of r made by bit injection
//! ([`BitInject`], 2 rounds) — a daBit (Rotaru & Wood, INDOCRYPT 2019; here semi-honest). The
//! injection does not depend on the data, so it runs in the first two rounds of the boolean
//! circuit that computes b, its words appended to the circuit's messages. The circuit's last
//! AND round is not reshared: each party XORs its masked cross term z_i (a 3-out-of-3 XOR
//! sharing of the gate) with its own components of the rest of b and of r, and sends that
//! share v_i of c = b ⊕ r to both peers. Everyone opens c, and b = c ⊕ r = c + r − 2·c·r is
//! r where c = 0 and 1 − r where c = 1: local. With a value d to multiply in (ReLU, max, the
//! top-k select), the side multiplies the injected r into d in a third round (still beside the
//! circuit, which is longer), and b·d = r·d where c = 0 and d − r·d where c = 1.
//!
//! So a circuit of A AND rounds followed by an injection takes A rounds instead of A + 2.
//!
//! Security: semi-honest, honest majority. Component r_j is the stream of the key shared by
//! P_j and P_{j−1}, so each party lacks one component and r is uniform to it: c = b ⊕ r is a
//! uniform bit independent of b. Of the opened shares, P_i receives v_{i+1}, masked by the
//! zero-sharing stream of the key P_{i+1} and P_{i+2} share (uniform to P_i), and v_{i−1},
//! which equals c ⊕ v_i ⊕ v_{i+1}: its view is simulated from c alone. [`Mask::mask`] clears
//! every lane of v_i that is not a masked result bit (a lane left in would open a bit of the
//! data).
//! The side's multiplications are masked by fresh zero-sharings as usual.

use super::bit_inject::BitInject;
use super::compose::{OneRound, Then};
use super::{Expect, MulRound, MultiRound, Step};
use crate::error::ProtocolError;
use crate::party::PartyCtx;
use crate::sharing::Shares;
use crate::transport::RoundId;
use std::sync::{Arc, OnceLock};
use veil_circuits::PartyId;

/// One party's mask bits and the arithmetic side being computed from them.
pub(super) struct Mask {
    /// Boolean shares of the mask bits, in the caller's packed layout.
    r: Shares,
    /// Per word, the lanes that are result bits (all others are cleared before opening).
    keep: Vec<u64>,
    /// The value multiplied in, if any (a multiple of the bit count long).
    d: Option<Shares>,
    side: Side,
}

enum Side {
    /// [`BitInject`] of r, then (with d) the product r·d.
    Running(Box<dyn MultiRound>),
    /// Arithmetic shares of r (or r·d).
    Ready(Shares),
}

/// How the share of c a peer opens is verified (beyond its lanes and the digests that make
/// both its recipients see the same word).
pub(super) enum OpenCheck {
    /// Digests only (semi-honest `MsbOneHot`, whose last gate is opened as z ⊕ (z ≫ 1)).
    Digests,
    /// The share is a gate's masked cross terms (an AND not reshared) XOR `lin` — the
    /// components XORed into it: the gate's kept lanes go to the proof of AND gates through
    /// `slot` (as v ⊕ (lin & keep) ⊕ r).
    Gate {
        lin: Shares,
        slot: Option<Arc<OnceLock<Shares>>>,
    },
    /// The share is the sender's own component of the replicated `lin`: its receiver P_{i−1}
    /// holds that component too and checks it word for word.
    Linear(Shares),
}

/// A round's words for each peer and the words expected: the circuit's, then the side's.
pub(super) struct Framed {
    pub to_next: Vec<u64>,
    pub to_prev: Vec<u64>,
    pub expect: Expect,
}

impl Mask {
    /// Fresh mask bits in `words` packed words (word w keeps the lanes set in `keep(w)`, the
    /// others zero), and the start of their injection; `unpack` lists the kept bits one per
    /// word (lane 0) in result order. With `d` (a multiple of the bit count long; bit j
    /// multiplies elements j, j + n, j + 2n, …), the side goes on to r·d: 3 rounds in all.
    pub fn start(
        ctx: &mut PartyCtx,
        words: usize,
        keep: impl Fn(usize) -> u64,
        unpack: impl Fn(&[u64]) -> Vec<u64>,
        d: Option<Shares>,
    ) -> Result<Mask, ProtocolError> {
        let dom = ctx.next_domain();
        let keep: Vec<u64> = (0..words).map(keep).collect();
        let masked = |mut v: Vec<u64>| {
            v.iter_mut().zip(&keep).for_each(|(x, k)| *x &= k);
            v
        };
        let r = Shares {
            own: masked(ctx.rand_with_prev(dom, words)),
            next: masked(ctx.rand_with_next(dom, words)),
        };
        let lane0 = Shares {
            own: unpack(&r.own),
            next: unpack(&r.next),
        };
        let inject = Box::new(BitInject::start(ctx, &lane0)?);
        let side: Box<dyn MultiRound> = match &d {
            None => inject,
            Some(d) => {
                let (n, m) = (lane0.len(), d.len());
                if n == 0 || !m.is_multiple_of(n) {
                    return Err(ProtocolError::Argument {
                        op: "masked bit",
                        what: format!("{m} values to multiply for {n} bits"),
                    });
                }
                let d = d.clone();
                Then::boxed(inject, move |ctx, r| {
                    let mul = MulRound::mul(ctx, &r.repeat(d.len()), &d)?;
                    Ok(Step::More(Box::new(OneRound(mul))))
                })
            }
        };
        Ok(Mask {
            r,
            keep,
            d,
            side: Side::Running(side),
        })
    }

    /// The circuit's words for this round followed by the side's while it runs.
    pub fn frame(&self, to_next: &[u64], to_prev: &[u64], mut expect: Expect) -> Framed {
        let (mut next, mut prev) = (to_next.to_vec(), to_prev.to_vec());
        if let Side::Running(s) = &self.side {
            next.extend_from_slice(s.to_next());
            prev.extend_from_slice(s.to_prev());
            let e = s.expect();
            expect.from_next += e.from_next;
            expect.from_prev += e.from_prev;
        }
        Framed {
            to_next: next,
            to_prev: prev,
            expect,
        }
    }

    /// Take the side's words off the end of the peers' messages (the circuit's first `main`
    /// words stay) and step the side.
    pub fn step(
        self,
        ctx: &mut PartyCtx,
        from_next: &mut Vec<u64>,
        from_prev: &mut Vec<u64>,
        main: Expect,
        round: RoundId,
    ) -> Result<Mask, ProtocolError> {
        let side_next = from_next.split_off(main.from_next);
        let side_prev = from_prev.split_off(main.from_prev);
        let side = match self.side {
            Side::Running(s) => match s.step(ctx, side_next, side_prev, round)? {
                Step::More(s) => Side::Running(s),
                Step::Done(y) => Side::Ready(y),
            },
            ready => ready,
        };
        Ok(Mask { side, ..self })
    }

    /// Clear every lane of `v` (this party's share of b, same layout as r) that is not a
    /// result bit — a lane left in would open a bit of the data — and XOR in its own component
    /// of r: the result is its share of c = b ⊕ r, to send to both peers.
    pub fn mask(&self, v: &mut [u64]) {
        for ((v, r), k) in v.iter_mut().zip(&self.r.own).zip(&self.keep) {
            *v = (*v & k) ^ r;
        }
    }

    /// Per word, the lanes that are result bits.
    pub fn keep(&self) -> &[u64] {
        &self.keep
    }

    /// Check and record the opened shares the peers sent: a word with a lane set outside the
    /// result lanes is refused as malformed (an honest party clears them, [`Mask::mask`]); in
    /// malicious mode the words go into the digests the verification compares
    /// ([`crate::verify`]: P_{i+1} must have received the same words from P_{i−1}); and `check`
    /// says how the word from P_{i+1} is verified.
    pub fn record_open(
        &self,
        ctx: &mut PartyCtx,
        check: OpenCheck,
        (v, from_next, from_prev): (&[u64], &[u64], &[u64]),
        round: RoundId,
    ) -> Result<(), ProtocolError> {
        let next = ctx.id.next();
        for (peer, words) in [(next, from_next), (ctx.id.prev(), from_prev)] {
            if words.iter().zip(&self.keep).any(|(w, k)| w & !k != 0) {
                return Err(ProtocolError::PeerMisbehaved {
                    peer,
                    round,
                    what: "an opened word has bits set outside the opened lanes".into(),
                });
            }
        }
        if let Some(tape) = ctx.tape.as_mut() {
            tape.opened(from_next, from_prev);
        }
        // v ⊕ (lin & keep) ⊕ r, word by word: what a share of c holds beyond `lin`.
        let beyond = |w: &[u64], l: &[u64], r: &[u64]| -> Vec<u64> {
            w.iter()
                .zip(l)
                .zip(r)
                .zip(&self.keep)
                .map(|(((w, l), r), k)| w ^ (l & k) ^ r)
                .collect()
        };
        match check {
            OpenCheck::Digests => {}
            OpenCheck::Gate { lin, slot } => {
                if let Some(slot) = slot {
                    // Each recorded round finishes once; a second set cannot happen.
                    let _ = slot.set(Shares {
                        own: beyond(v, &lin.own, &self.r.own),
                        next: beyond(from_next, &lin.next, &self.r.next),
                    });
                }
            }
            OpenCheck::Linear(lin) => {
                if beyond(from_next, &lin.next, &self.r.next)
                    .iter()
                    .any(|&w| w != 0)
                {
                    return Err(ProtocolError::PeerMisbehaved {
                        peer: next,
                        round,
                        what: "an opened share is not the component it opens".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The result from the three shares of c (this party's `v` and both peers'): arithmetic
    /// shares of b, or of b·d; `bit(c, e)` reads the bit of result element e from c.
    pub fn finish(
        self,
        me: PartyId,
        v: &[u64],
        from_next: &[u64],
        from_prev: &[u64],
        bit: impl Fn(&[u64], usize) -> bool,
    ) -> Result<Shares, ProtocolError> {
        let Side::Ready(y) = self.side else {
            return Err(ProtocolError::Argument {
                op: "masked bit",
                what: "the mask's injection had not finished when the bits were opened".into(),
            });
        };
        let c: Vec<u64> = v
            .iter()
            .zip(from_next)
            .zip(from_prev)
            .map(|((a, b), c)| a ^ b ^ c)
            .collect();
        let set: Vec<bool> = (0..y.len()).map(|e| bit(&c, e)).collect();
        Ok(match self.d {
            // b = 1 − r where c = 1: negate r's components there and add the public c.
            None => {
                let flip = |v: &[u64]| -> Vec<u64> {
                    v.iter()
                        .zip(&set)
                        .map(|(&w, &s)| if s { w.wrapping_neg() } else { w })
                        .collect()
                };
                let c: Vec<u64> = set.iter().map(|&s| u64::from(s)).collect();
                Shares {
                    own: flip(&y.own),
                    next: flip(&y.next),
                }
                .add_public(me, &c)
            }
            // b·d = d − r·d where c = 1.
            Some(d) => {
                let pick = |y: &[u64], d: &[u64]| -> Vec<u64> {
                    y.iter()
                        .zip(d)
                        .zip(&set)
                        .map(|((&y, &d), &s)| if s { d.wrapping_sub(y) } else { y })
                        .collect()
                };
                Shares {
                    own: pick(&y.own, &d.own),
                    next: pick(&y.next, &d.next),
                }
            }
        })
    }
}
