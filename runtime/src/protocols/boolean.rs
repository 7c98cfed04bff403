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
    /// Start a ∧ b on equal-length boolean shares.
    pub fn start(ctx: &mut PartyCtx, a: &Shares, b: &Shares) -> Result<Self, ProtocolError> {
        Self::start_kept(ctx, a, b, None)
    }

    /// Start a ∧ b on the lanes set in `keep` (one mask per word; `None`: all lanes), the
    /// others of `a` cleared first: for gates that are opened rather than reshared, whose other
    /// lanes are never sent. In malicious mode the batch is recorded for the session's proof of
    /// AND gates ([`crate::verify`]), on its kept lanes.
    pub fn start_kept(
        ctx: &mut PartyCtx,
        a: &Shares,
        b: &Shares,
        keep: Option<&[u64]>,
    ) -> Result<Self, ProtocolError> {
        super::check_len("and", a.len(), b.len())?;
        let cleared;
        let a = match keep {
            Some(k) => {
                super::check_len("and", a.len(), k.len())?;
                let and = |c: &[u64]| c.iter().zip(k).map(|(w, k)| w & k).collect();
                cleared = a.map(and);
                &cleared
            }
            None => a,
        };
        let (domain, mut z) = ctx.zero_share_xor_in(a.len());
        super::hot::rep3_and_cross_xor_assign(&mut z, &a.own, &a.next, &b.own, &b.next);
        let record = ctx
            .tape
            .as_mut()
            .map(|t| t.and(a, b, domain, keep.map(<[u64]>::to_vec)));
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

impl AndRound {
    /// One prefix level of a carry computation, without temporaries: the n gates
    /// P ∧ (G ≪ k), followed (when `with_p`) by the n gates P ∧ (P ≪ k), in one batch.
    pub fn start_prefix(
        ctx: &mut PartyCtx,
        p: &Shares,
        g: &Shares,
        k: u32,
        with_p: bool,
    ) -> Result<Self, ProtocolError> {
        super::check_len("and", p.len(), g.len())?;
        let n = p.len();
        let mut z = ctx.zero_share_xor(if with_p { 2 * n } else { n });
        // z ^= a0·(b0 ⊕ b1) ⊕ a1·b0 with a = P and b = G ≪ k (then b = P ≪ k).
        super::hot::rep3_and_prefix_xor_assign(k, with_p, &mut z, &p.own, &p.next, &g.own, &g.next);
        Ok(super::Reshare::new(z))
    }
}
