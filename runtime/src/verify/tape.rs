//! What a malicious-mode session records for its verification: every product and every batch of
//! AND gates this party took part in (operand components, the zero-sharing's PRF domain, the
//! result components), a digest of each input's components and digests of the opened words it
//! received.

use crate::kernels;
use crate::prf::Domain;
use crate::sharing::Shares;
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};

/// The form of a product: what each output word is the cross terms of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// Row-wise dot products of `rows × cols` operands (an elementwise product: `cols` = 1).
    Dot { rows: usize, cols: usize },
    /// An m×k by k×n matrix product.
    MatMul { m: usize, k: usize, n: usize },
}

impl Form {
    /// Output words.
    pub(crate) fn outputs(self) -> usize {
        match self {
            Form::Dot { rows, .. } => rows,
            Form::MatMul { m, n, .. } => m * n,
        }
    }

    /// Length of this product's part of a proof's vectors: both cross terms of every
    /// multiply-add a prover does alone (Dot), or of the batched k-term sum (MatMul).
    pub(crate) fn proof_len(self) -> usize {
        match self {
            Form::Dot { rows, cols } => 2 * rows * cols,
            Form::MatMul { k, .. } => 2 * k,
        }
    }
}

/// One product-type round (Araki et al. reshare) at this party.
pub(crate) struct Product {
    /// Its form.
    pub form: Form,
    /// This party's components of the left operand, (x_i, x_{i+1}).
    pub x: Shares,
    /// This party's components of the right operand.
    pub y: Shares,
    /// The PRF domain of the zero-sharing α that masked the cross terms.
    pub domain: Domain,
    /// The result (z_i sent to P_{i−1}, z_{i+1} received from P_{i+1}), set when the round ends.
    pub out: Arc<OnceLock<Shares>>,
    /// log2 of the product's modulus scale: 0 for Z_2^64; 32 for Z_2^32, whose relation
    /// z ≡ … (mod 2^32) is proven as 2^32·z ≡ 2^32·… (mod 2^64) — `x` is then recorded
    /// widened (x·2^32) and the result and masks are shifted when the claims are built.
    pub shift: u32,
}

impl Product {
    /// A result or mask word lifted to the Z_2^64 relation.
    pub(crate) fn lift(&self, w: u64) -> u64 {
        w << self.shift
    }
}

/// Digest of one input's two components at this party (of its value, for a public input).
pub(crate) struct InputDigest {
    /// The input's name (for the abort message).
    pub name: String,
    /// A public input: every party holds the whole value.
    pub public: bool,
    /// SHA-256 of component x_i (what P_{i−1} holds as its `next`).
    pub own: [u8; 32],
    /// SHA-256 of component x_{i+1} (what P_{i+1} holds as its `own`).
    pub next: [u8; 32],
}

/// One batch of AND gates (a boolean product round, [`crate::protocols::boolean::AndRound`])
/// at this party: 64 gates per word.
pub(crate) struct AndGates {
    /// This party's components of the left operand, (a_i, a_{i+1}), with the lanes outside
    /// `keep` cleared.
    pub a: Shares,
    /// This party's components of the right operand.
    pub b: Shares,
    /// The PRF domain of the XOR zero-sharing β that masked the cross terms.
    pub domain: Domain,
    /// The lanes proven, per word (`None`: all): a gate opened instead of reshared is sent
    /// with its other lanes cleared ([`crate::protocols::masked_bit`]).
    pub keep: Option<Vec<u64>>,
    /// A gate opened shifted: its lanes moved up by `shl` (the operands are recorded shifted,
    /// the zero-sharing's streams are shifted when the claims are built).
    pub shl: u32,
    /// The masked cross terms restricted to `keep`: (z_i, z_{i+1}), set when the round ends.
    pub out: Arc<OnceLock<Shares>>,
}

impl AndGates {
    /// The PRF stream words `f` shifted and restricted to the proven lanes.
    pub(crate) fn kept(&self, mut f: Vec<u64>) -> Vec<u64> {
        f.iter_mut().for_each(|w| *w <<= self.shl);
        if let Some(keep) = &self.keep {
            f.iter_mut().zip(keep).for_each(|(w, k)| *w &= k);
        }
        f
    }
}

/// Running digests of the words this party received in openings (a value's shares sent to
/// both peers, [`crate::protocols::masked_bit`]): P_i's words from P_{i−1} must equal what
/// P_{i+1} received from the same sender.
pub(crate) struct Opened {
    /// Words received from P_{i+1}.
    pub from_next: Sha256,
    /// Words received from P_{i−1}.
    pub from_prev: Sha256,
}

impl Default for Opened {
    fn default() -> Self {
        let fresh = || Sha256::new().chain_update(b"veil/v1/opened-words");
        Opened {
            from_next: fresh(),
            from_prev: fresh(),
        }
    }
}

/// This party's record of a session's verified work.
#[derive(Default)]
pub(crate) struct Tape {
    /// Products, in the order the session started them (the same at all three parties).
    pub products: Vec<Product>,
    /// AND gates, in the order the session started them.
    pub ands: Vec<AndGates>,
    /// Inputs, in the order they were bound.
    pub inputs: Vec<InputDigest>,
    /// Digests of opened words.
    pub opened: Opened,
}

impl Tape {
    /// Record a product started with operands `x`, `y` and zero-sharing domain `domain`; the
    /// returned slot takes the result.
    pub(crate) fn product(
        &mut self,
        form: Form,
        x: &Shares,
        y: &Shares,
        domain: Domain,
    ) -> Arc<OnceLock<Shares>> {
        self.product_mod(form, x, y, domain, 0)
    }

    /// [`Tape::product`] for a product mod 2^(64 − `shift`), with `x` already widened by
    /// 2^`shift` ([`Product::shift`]).
    pub(crate) fn product_mod(
        &mut self,
        form: Form,
        x: &Shares,
        y: &Shares,
        domain: Domain,
        shift: u32,
    ) -> Arc<OnceLock<Shares>> {
        let out = Arc::new(OnceLock::new());
        self.products.push(Product {
            form,
            x: x.clone(),
            y: y.clone(),
            domain,
            out: Arc::clone(&out),
            shift,
        });
        out
    }

    /// Record a batch of AND gates started with operands `a`, `b` (shifted by `shl`, lanes
    /// outside `keep` already cleared in `a`) and XOR zero-sharing domain `domain`; the
    /// returned slot takes the result.
    pub(crate) fn and(
        &mut self,
        a: &Shares,
        b: &Shares,
        domain: Domain,
        keep: Option<Vec<u64>>,
        shl: u32,
    ) -> Arc<OnceLock<Shares>> {
        let out = Arc::new(OnceLock::new());
        self.ands.push(AndGates {
            a: a.clone(),
            b: b.clone(),
            domain,
            keep,
            shl,
            out: Arc::clone(&out),
        });
        out
    }

    /// Fold the opened words received from each peer into the running digests.
    pub(crate) fn opened(&mut self, from_next: &[u64], from_prev: &[u64]) {
        for (h, words) in [
            (&mut self.opened.from_next, from_next),
            (&mut self.opened.from_prev, from_prev),
        ] {
            let mut bytes = Vec::with_capacity(8 * words.len() + 8);
            bytes.extend_from_slice(&(words.len() as u64).to_le_bytes());
            kernels::extend_le_bytes(&mut bytes, words);
            h.update(&bytes);
        }
    }

    /// Record the digests of an input's components.
    pub(crate) fn input(&mut self, name: &str, s: &Shares) {
        self.inputs.push(InputDigest {
            name: name.to_string(),
            public: false,
            own: digest(&s.own),
            next: digest(&s.next),
        });
    }

    /// Record the digest of a public input's value (each party compares it with its
    /// successor's, so the three values agree).
    pub(crate) fn public_input(&mut self, name: &str, words: &[u64]) {
        let d = digest(words);
        self.inputs.push(InputDigest {
            name: name.to_string(),
            public: true,
            own: d,
            next: d,
        });
    }
}

/// SHA-256 of words, little-endian, with their count (domain-separated from other hashes).
pub(crate) fn digest(words: &[u64]) -> [u8; 32] {
    let mut bytes = Vec::with_capacity(8 * words.len());
    kernels::extend_le_bytes(&mut bytes, words);
    Sha256::new()
        .chain_update(b"veil/v1/input-digest")
        .chain_update((words.len() as u64).to_le_bytes())
        .chain_update(&bytes)
        .finalize()
        .into()
}
