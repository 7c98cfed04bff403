//! Boolean replicated sharing over 64-bit words: 64 independent bit lanes per word.
//!
//! Construction: Araki, Furukawa, Lindell, Nof, Ohara, CCS 2016 (eprint 2016/768) §2 — the same
//! replicated sharing as the arithmetic one with XOR in place of addition: a = a_0 ⊕ a_1 ⊕ a_2,
//! P_i holds (a_i, a_{i+1}) in a [`Shares`] (here read as XOR components).
//!
//! XOR, NOT-free constants and shifts act on each component locally (they are GF(2)-linear).
//! AND: z_i = a_i·b_i ⊕ a_i·b_{i+1} ⊕ a_{i+1}·b_i ⊕ β_i with β a fresh XOR-sharing of zero from
//! the pairwise PRFs; P_i sends z_i to P_{i−1}. Security: semi-honest, honest majority — the word
//! P_{i−1} receives is masked by the PRF stream of k_{i,i+1}, which it does not hold.
//!
//! Cost: AND of n words = 1 round, 8·n bytes per party (64 AND gates per word).

use crate::error::ProtocolError;
use crate::party::PartyCtx;
use crate::sharing::Shares;
use veil_circuits::PartyId;

/// a ⊕= b on the first `a.len()` words of b (local).
pub fn xor_assign(a: &mut Shares, b: &Shares) {
    for (x, y) in a.own.iter_mut().zip(&b.own) {
        *x ^= y;
    }
    for (x, y) in a.next.iter_mut().zip(&b.next) {
        *x ^= y;
    }
}

/// a ⊕ b (local).
pub fn xor(a: &Shares, b: &Shares) -> Shares {
    let f = |x: &[u64], y: &[u64]| x.iter().zip(y).map(|(p, q)| p ^ q).collect();
    Shares {
        own: f(&a.own, &b.own),
        next: f(&a.next, &b.next),
    }
}

/// Every lane shifted left by `k` (local; `k < 64`).
pub fn shl(a: &Shares, k: u32) -> Shares {
    Shares {
        own: a.own.iter().map(|w| w << k).collect(),
        next: a.next.iter().map(|w| w << k).collect(),
    }
}

/// `(a >> k) & mask` on each component (local; selects bit lanes).
pub fn shr_mask(a: &Shares, k: u32, mask: u64) -> Shares {
    Shares {
        own: a.own.iter().map(|w| (w >> k) & mask).collect(),
        next: a.next.iter().map(|w| (w >> k) & mask).collect(),
    }
}

/// One party's state of a batch of AND gates.
pub type AndRound = super::Reshare;

impl AndRound {
    /// Start a ∧ b on equal-length boolean shares (recorded for the proof of AND gates in
    /// malicious mode).
    pub fn start(ctx: &mut PartyCtx, a: &Shares, b: &Shares) -> Result<Self, ProtocolError> {
        super::check_len("and", a.len(), b.len())?;
        let (domain, mut z) = ctx.zero_share_xor_in(a.len());
        super::hot::rep3_and_cross_xor_assign(&mut z, &a.own, &a.next, &b.own, &b.next);
        let record = ctx.tape.as_mut().map(|t| t.and(a, b, domain, None, 0));
        Ok(super::Reshare::recorded(z, record))
    }

    /// Start a ∧ b for a gate that is opened rather than reshared: only the lanes of
    /// z ≪ `shl` set in `keep` (one mask per word) are sent, so a's other lanes are cleared
    /// first. In malicious mode the batch is recorded for the session's proof of AND gates
    /// ([`crate::verify`]) as the gate on (a ≪ shl, b ≪ shl) — a lane shift commutes with ∧
    /// and ⊕ — restricted to `keep`; take the masked words with `Reshare::into_opened`.
    pub fn start_opened(
        ctx: &mut PartyCtx,
        a: &Shares,
        b: &Shares,
        keep: &[u64],
        shl: u32,
    ) -> Result<Self, ProtocolError> {
        super::check_len("and", a.len(), b.len())?;
        super::check_len("and", a.len(), keep.len())?;
        let a = a.map(|c| c.iter().zip(keep).map(|(w, k)| w & (k >> shl)).collect());
        let (domain, mut z) = ctx.zero_share_xor_in(a.len());
        super::hot::rep3_and_cross_xor_assign(&mut z, &a.own, &a.next, &b.own, &b.next);
        let record = ctx.tape.as_mut().map(|t| {
            let up = |s: &Shares| s.map(|c| c.iter().map(|w| w << shl).collect());
            t.and(&up(&a), &up(b), domain, Some(keep.to_vec()), shl)
        });
        Ok(super::Reshare::recorded(z, record))
    }
}

impl AndRound {
    /// One prefix level of a carry computation, without temporaries: the n gates
    /// P ∧ (G ≪ k), followed (when `with_p`) by the n gates P ∧ (P ≪ k), in one batch. In
    /// malicious mode the batch is recorded with its operands written out.
    pub fn start_prefix(
        ctx: &mut PartyCtx,
        p: &Shares,
        g: &Shares,
        k: u32,
        with_p: bool,
    ) -> Result<Self, ProtocolError> {
        super::check_len("and", p.len(), g.len())?;
        let n = p.len();
        let (domain, mut z) = ctx.zero_share_xor_in(if with_p { 2 * n } else { n });
        // z ^= a0·(b0 ⊕ b1) ⊕ a1·b0 with a = P and b = G ≪ k (then b = P ≪ k).
        super::hot::rep3_and_prefix_xor_assign(k, with_p, &mut z, &p.own, &p.next, &g.own, &g.next);
        let record = ctx.tape.as_mut().map(|t| {
            let (mut a, mut b) = (p.clone(), shl(g, k));
            if with_p {
                a = a.concat(p);
                b = b.concat(&shl(p, k));
            }
            t.and(&a, &b, domain, None, 0)
        });
        Ok(super::Reshare::recorded(z, record))
    }
}

/// Component `j` of `x` as a trivial boolean sharing at party `me` (component j is x_j, the
/// others 0): the two parties holding x_j hold it here too, so no communication and nothing a
/// party could make inconsistent. Local.
pub fn trivial_component(me: PartyId, x: &Shares, j: PartyId) -> Shares {
    let n = x.len();
    let pick = |c: &[u64], held: bool| if held { c.to_vec() } else { vec![0u64; n] };
    Shares {
        own: pick(&x.own, me == j),
        next: pick(&x.next, me.next() == j),
    }
}
