//! Compact replicated sharing over Z_2^32, for large client-owned inputs (a corpus of int8
//! embeddings, texts packed four bytes per word).
//!
//! Construction: replicated 2-of-3 sharing as in [`share3`](super::share3) (Araki et al.,
//! CCS 2016, §2.1), but mod 2^32: x = x_0 + x_1 + x_2 (mod 2^32), P_i holds (x_i, x_{i+1})
//! ([`Shares32`] `{ own, next }`). Two of the components are seeded, as in
//! [`share3_seeded`](super::share3_seeded) (the standard PRG compression of replicated shares):
//! for a *rotation* r, x_r and x_{r+1} are the AES-128-CTR keystreams of two fresh 32-byte seeds
//! (u32 word j is half j mod 2 of keystream word ⌊j/2⌋, one word per element; [`expand32`]) and
//! x_{r+2} = x − x_r − x_{r+1} is
//! explicit ([`share3_compact`]):
//!
//! | party   | `own`              | `next`             |
//! |---------|--------------------|--------------------|
//! | P_r     | seed of x_r        | seed of x_{r+1}    |
//! | P_{r+1} | seed of x_{r+1}    | x_{r+2} (explicit) |
//! | P_{r+2} | x_{r+2} (explicit) | seed of x_r        |
//!
//! A client that rotates r from block to block sends each node 8/3 bytes per element on
//! average (an explicit u32 in two blocks of three, 64 bytes of seeds otherwise), against 16
//! for explicit shares over Z_2^64.
//!
//! The keystream is seekable, so element j of a seeded component is keystream word
//! `offset + j`, and rows `a..b` of a seeded component are the same seed with offset
//! `offset + a` ([`Comp32::rows`]): slicing a seeded component costs nothing and expands
//! nothing. Such a slice describes part of the *same* component, never a new one.
//!
//! Security: each node receives exactly its two components, one or both as a seed that
//! determines nothing else. With AES-128 in counter mode as a PRG (a PRF on distinct counter
//! blocks) and the seeds uniform (a CSPRNG), x_r and
//! x_{r+1} are indistinguishable from uniform mod 2^32, so any two components are jointly
//! indistinguishable from uniform and independent of x, and the missing component is what
//! hides x from each node. Every sharing draws two fresh seeds: **a seed must never be reused
//! across values** (two values shared under one seed leak their difference to the node that
//! holds the explicit components). Nodes learn the length and the rotation.

use super::replicated::{ReconstructError, Shares, reconstruct};
use crate::kernels::aes_ctr::AesCtr;
use crate::kernels::{Src32, Words32};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use veil_circuits::PartyId;

use super::seeded::SEED_BYTES;

/// A malformed compact component or sharing (caller or client fault).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompactError {
    /// A component does not have the element count it should.
    #[error("compact {component} component has {got} elements, expected {expected}")]
    Length {
        /// `"own"` or `"next"`.
        component: &'static str,
        /// The element count wanted.
        expected: usize,
        /// The element count it has.
        got: usize,
    },
    /// A range of elements outside a component, or a seeded component whose keystream words
    /// run past the addressable positions.
    #[error("elements {start}..{end} are outside a compact component of {len} elements")]
    Range {
        /// First element asked for (for a seeded component: its keystream offset).
        start: usize,
        /// One past the last element asked for (saturating).
        end: usize,
        /// Elements of the component.
        len: usize,
    },
}

/// One component of a compact sharing: explicit words, or `len` words of an AES-CTR
/// keystream from word `offset`. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub enum Comp32 {
    /// The words themselves.
    Words(Arc<[u32]>),
    /// Keystream words `offset..offset + len` of the stream of `seed` ([`expand32`]).
    Seed {
        /// The component's seed.
        seed: [u8; SEED_BYTES],
        /// First keystream word (u32 position) of element 0.
        offset: usize,
        /// Elements.
        len: usize,
    },
}

impl fmt::Debug for Comp32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Comp32::Words(w) => write!(f, "Words {{ len: {}, .. }}", w.len()),
            Comp32::Seed { offset, len, .. } => {
                write!(f, "Seed {{ offset: {offset}, len: {len}, .. }}")
            }
        }
    }
}

/// Keystream words `offset..offset + out.len()` of the stream of `seed` into `out`: the words
/// a seeded component stands for. The stream is AES-128 in counter mode
/// ([`AesCtr`](crate::kernels::aes_ctr::AesCtr), AES-NI/VAES where the CPU has them) keyed with
/// the seed's first 16 bytes, its next 8 bytes the counter block's high half; u32 word j is the
/// low (j even) or high (j odd) half of u64 keystream word ⌊j/2⌋.
pub fn expand32(seed: &[u8; SEED_BYTES], offset: usize, out: &mut [u32]) {
    if out.is_empty() {
        return;
    }
    let (key, tweak) = seed.split_at(16);
    let key: &[u8; 16] = key.try_into().expect("16 bytes");
    let tweak = u64::from_le_bytes(tweak[..8].try_into().expect("8 bytes"));
    let first = offset / 2;
    let mut wide = vec![0u64; (offset + out.len()).div_ceil(2) - first];
    AesCtr::new(key).fill_at(tweak, first as u64, &mut wide);
    let halves = wide.iter().flat_map(|w| [*w as u32, (*w >> 32) as u32]);
    for (o, h) in out.iter_mut().zip(halves.skip(offset % 2)) {
        *o = h;
    }
}

impl Comp32 {
    /// A seeded component of `len` words from keystream word `offset`, checked to address
    /// only words below 2^64 (what a node calls on a client's declaration).
    pub fn seeded(
        seed: [u8; SEED_BYTES],
        offset: usize,
        len: usize,
    ) -> Result<Comp32, CompactError> {
        match offset.checked_add(len) {
            Some(_) => Ok(Comp32::Seed { seed, offset, len }),
            None => Err(CompactError::Range {
                start: offset,
                end: usize::MAX,
                len,
            }),
        }
    }

    /// An explicit component.
    pub fn words(words: impl Into<Arc<[u32]>>) -> Comp32 {
        Comp32::Words(words.into())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Comp32::Words(w) => w.len(),
            Comp32::Seed { len, .. } => *len,
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True for a seeded component.
    pub fn is_seeded(&self) -> bool {
        matches!(self, Comp32::Seed { .. })
    }

    /// `Ok` when the component has `expected` elements and, if seeded, addresses words that
    /// exist: the check a node runs on a component it receives.
    pub fn check_len(&self, component: &'static str, expected: usize) -> Result<(), CompactError> {
        if let Comp32::Seed { offset, len, .. } = self
            && offset.checked_add(*len).is_none()
        {
            return Err(CompactError::Range {
                start: *offset,
                end: usize::MAX,
                len: *len,
            });
        }
        if self.len() == expected {
            Ok(())
        } else {
            Err(CompactError::Length {
                component,
                expected,
                got: self.len(),
            })
        }
    }

    /// Elements `range` of the component: a seeded component stays seeded (its offset moves),
    /// an explicit one is copied.
    pub fn rows(&self, range: Range<usize>) -> Result<Comp32, CompactError> {
        let len = self.len();
        if range.start > range.end || range.end > len {
            return Err(CompactError::Range {
                start: range.start,
                end: range.end,
                len,
            });
        }
        Ok(match self {
            Comp32::Words(w) => Comp32::Words(w[range].into()),
            Comp32::Seed { seed, offset, .. } => Comp32::Seed {
                seed: *seed,
                offset: offset + range.start,
                len: range.end - range.start,
            },
        })
    }

    /// Elements `start..start + out.len()` into `out`. Panics if they are not all within the
    /// component (callers check ranges first).
    pub fn read_into(&self, start: usize, out: &mut [u32]) {
        let end = start + out.len();
        assert!(
            end <= self.len(),
            "Comp32::read_into: elements {start}..{end} of {}",
            self.len()
        );
        match self {
            Comp32::Words(w) => out.copy_from_slice(&w[start..end]),
            Comp32::Seed { seed, offset, .. } => expand32(seed, offset + start, out),
        }
    }

    /// Every element into `out` (`out.len()` must equal [`Comp32::len`]; panics otherwise).
    pub fn expand_into(&self, out: &mut [u32]) {
        assert!(
            out.len() == self.len(),
            "Comp32::expand_into: {} elements into {}",
            self.len(),
            out.len()
        );
        self.read_into(0, out);
    }

    /// Every element, explicit (a seeded component is expanded).
    pub fn to_vec(&self) -> Vec<u32> {
        let mut out = vec![0u32; self.len()];
        self.expand_into(&mut out);
        out
    }

    /// The component as a kernel source: explicit words in place, a seed as a stream.
    pub fn src(&self) -> Src32<'_> {
        match self {
            Comp32::Words(w) => Src32::Slice(w),
            Comp32::Seed { .. } => Src32::Stream(self),
        }
    }

    /// The component as explicit words (shared, not copied, when it already is).
    pub fn to_words(&self) -> Arc<[u32]> {
        match self {
            Comp32::Words(w) => Arc::clone(w),
            Comp32::Seed { .. } => self.to_vec().into(),
        }
    }
}

impl Words32 for Comp32 {
    fn len(&self) -> usize {
        Comp32::len(self)
    }

    fn read_into(&self, start: usize, out: &mut [u32]) {
        Comp32::read_into(self, start, out);
    }
}

/// One party's compact replicated shares mod 2^32: P_i holds (x_i, x_{i+1}). `Debug` is
/// redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Shares32 {
    /// x_i.
    pub own: Comp32,
    /// x_{i+1}.
    pub next: Comp32,
}

impl fmt::Debug for Shares32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shares32 {{ len: {}, own: {}, next: {}, .. }}",
            self.len(),
            kind(&self.own),
            kind(&self.next)
        )
    }
}

fn kind(c: &Comp32) -> &'static str {
    if c.is_seeded() { "seed" } else { "words" }
}

impl Shares32 {
    /// Shares from explicit components.
    pub fn from_words(own: Vec<u32>, next: Vec<u32>) -> Shares32 {
        Shares32 {
            own: Comp32::words(own),
            next: Comp32::words(next),
        }
    }

    /// Number of elements (of `own`; [`Shares32::check_len`] checks both).
    pub fn len(&self) -> usize {
        self.own.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `Ok` when both components have `expected` elements (and seeded ones address words that
    /// exist): what a node checks before it uses shares a client sent.
    pub fn check_len(&self, expected: usize) -> Result<(), CompactError> {
        self.own.check_len("own", expected)?;
        self.next.check_len("next", expected)
    }

    /// Elements `range` of both components (seeded components stay seeded).
    pub fn rows(&self, range: Range<usize>) -> Result<Shares32, CompactError> {
        Ok(Shares32 {
            own: self.own.rows(range.clone())?,
            next: self.next.rows(range)?,
        })
    }

    /// Both components expanded: `(x_i, x_{i+1})` as words.
    pub fn expand(&self) -> (Vec<u32>, Vec<u32>) {
        (self.own.to_vec(), self.next.to_vec())
    }

    /// The same shares with both components explicit.
    pub fn explicit(&self) -> Shares32 {
        Shares32 {
            own: Comp32::Words(self.own.to_words()),
            next: Comp32::Words(self.next.to_words()),
        }
    }

    /// The shares as Z_2^64 words below 2^32 (each component zero-extended): the form of a
    /// Z_2^32 output handed to a client, who reconstructs mod 2^32 ([`reconstruct32`]).
    pub fn to_u64(&self) -> Shares {
        let widen = |c: &Comp32| c.to_vec().into_iter().map(u64::from).collect();
        Shares {
            own: widen(&self.own),
            next: widen(&self.next),
        }
    }
}

/// Panics unless `a` and `b` have the same length (shapes are validated upstream).
fn assert_same_len(op: &'static str, a: usize, b: usize) {
    assert_eq!(a, b, "{op}: operands have {a} and {b} elements");
}

/// `f` on the words of two components, as explicit words.
fn zip_words(a: &Comp32, b: &Comp32, f: impl Fn(u32, u32) -> u32) -> Comp32 {
    let (a, b) = (a.to_words(), b.to_words());
    Comp32::words(
        a.iter()
            .zip(b.iter())
            .map(|(x, y)| f(*x, *y))
            .collect::<Vec<u32>>(),
    )
}

/// The local share arithmetic mod 2^32 (no communication): sums, differences, negation, public
/// values as trivial sharings, data movements, and the exact conversions to and from Z_2^64
/// ([`Shares32::widen`], [`Shares32::narrow`]). Each applies componentwise; public constants
/// are added to x_0 only. Results are explicit.
impl Shares32 {
    /// Shares of a public value held by `party` (x_0 = c, x_1 = x_2 = 0): P0 gets (c, 0), P1
    /// gets (0, 0), P2 gets (0, c).
    pub fn from_public(party: PartyId, values: &[u32]) -> Shares32 {
        let (c, z) = (values.to_vec(), vec![0u32; values.len()]);
        match party {
            PartyId::P0 => Shares32::from_words(c, z),
            PartyId::P1 => Shares32::from_words(z.clone(), z),
            PartyId::P2 => Shares32::from_words(z, c),
        }
    }

    /// [x + y] mod 2^32. Panics if lengths differ (shapes are validated upstream).
    pub fn add(&self, other: &Shares32) -> Shares32 {
        assert_same_len("add32", self.len(), other.len());
        Shares32 {
            own: zip_words(&self.own, &other.own, u32::wrapping_add),
            next: zip_words(&self.next, &other.next, u32::wrapping_add),
        }
    }

    /// [x − y] mod 2^32. Panics if lengths differ.
    pub fn sub(&self, other: &Shares32) -> Shares32 {
        assert_same_len("sub32", self.len(), other.len());
        Shares32 {
            own: zip_words(&self.own, &other.own, u32::wrapping_sub),
            next: zip_words(&self.next, &other.next, u32::wrapping_sub),
        }
    }

    /// [−x] mod 2^32: both components negated.
    pub fn neg(&self) -> Shares32 {
        self.map(|w| w.iter().map(|x| x.wrapping_neg()).collect())
    }

    /// `f` applied to each component alike (expanded): a data movement, or a map linear in the
    /// components.
    pub fn map(&self, f: impl Fn(&[u32]) -> Vec<u32>) -> Shares32 {
        Shares32 {
            own: Comp32::words(f(&self.own.to_words())),
            next: Comp32::words(f(&self.next.to_words())),
        }
    }

    /// The parts one after another (explicit).
    pub fn concat(parts: &[&Shares32]) -> Shares32 {
        let join = |c: fn(&Shares32) -> &Comp32| {
            let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
            for p in parts {
                out.extend_from_slice(&c(p).to_words());
            }
            Comp32::words(out)
        };
        Shares32 {
            own: join(|p| &p.own),
            next: join(|p| &p.next),
        }
    }

    /// Widen to Z_2^64 exactly: each component times 2^32. If x_0 + x_1 + x_2 ≡ x (mod 2^32),
    /// the sum is x + c·2^32 for an integer carry c, so Σ x_j·2^32 ≡ x·2^32 (mod 2^64): the
    /// unknown carry is multiplied by 2^64 ≡ 0. Local, no randomness, same privacy as the
    /// input sharing (each new component is a function of one old one).
    pub fn widen(&self) -> Shares {
        let up = |c: &Comp32| c.to_words().iter().map(|&w| u64::from(w) << 32).collect();
        Shares {
            own: up(&self.own),
            next: up(&self.next),
        }
    }

    /// Narrow Z_2^64 shares to Z_2^32: each component mod 2^32 (reduction mod 2^32 is a ring
    /// homomorphism, so the components still sum to x mod 2^32). Local.
    pub fn narrow(s: &Shares) -> Shares32 {
        let down = |w: &[u64]| w.iter().map(|&x| x as u32).collect::<Vec<u32>>();
        Shares32::from_words(down(&s.own), down(&s.next))
    }
}

/// A compact sharing as the client makes it: the two seeds and the explicit component, for a
/// rotation r (see the module table). `Debug` is redacted.
pub struct CompactShares {
    /// r: the party that gets both seeds.
    pub rotation: PartyId,
    /// Seed of x_r (P_r's own component, P_{r+2}'s next).
    pub seed_r: [u8; SEED_BYTES],
    /// Seed of x_{r+1} (P_r's next component, P_{r+1}'s own).
    pub seed_r1: [u8; SEED_BYTES],
    /// x_{r+2} = x − x_r − x_{r+1} mod 2^32 (P_{r+1}'s next component, P_{r+2}'s own).
    pub explicit: Arc<[u32]>,
}

impl fmt::Debug for CompactShares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CompactShares {{ rotation: {}, len: {}, .. }}",
            self.rotation,
            self.explicit.len()
        )
    }
}

/// Share `values` (mod 2^32) with two fresh seeds from `rng` (a CSPRNG): x_r and x_{r+1} are
/// seeded, x_{r+2} explicit, for r = `rotation`.
pub fn share3_compact<R: rand::CryptoRng + rand::RngCore>(
    values: &[u32],
    rotation: PartyId,
    rng: &mut R,
) -> CompactShares {
    let mut seed_r = [0u8; SEED_BYTES];
    let mut seed_r1 = [0u8; SEED_BYTES];
    rng.fill_bytes(&mut seed_r);
    rng.fill_bytes(&mut seed_r1);
    // x_{r+2} = x − x_r − x_{r+1}, one bounded chunk of keystream at a time.
    const CHUNK: usize = 1 << 14;
    let mut a = vec![0u32; CHUNK.min(values.len())];
    let mut b = a.clone();
    let mut explicit = Vec::with_capacity(values.len());
    for (k, v) in values.chunks(CHUNK).enumerate() {
        let (a, b) = (&mut a[..v.len()], &mut b[..v.len()]);
        expand32(&seed_r, k * CHUNK, a);
        expand32(&seed_r1, k * CHUNK, b);
        explicit.extend(
            v.iter()
                .zip(a.iter().zip(b.iter()))
                .map(|(v, (a, b))| v.wrapping_sub(*a).wrapping_sub(*b)),
        );
    }
    CompactShares {
        rotation,
        seed_r,
        seed_r1,
        explicit: explicit.into(),
    }
}

impl CompactShares {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.explicit.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.explicit.is_empty()
    }

    /// What `party` receives (see the module table); the explicit component is shared, not
    /// copied.
    pub fn party(&self, party: PartyId) -> Shares32 {
        let len = self.len();
        let seed = |seed: [u8; SEED_BYTES]| Comp32::Seed {
            seed,
            offset: 0,
            len,
        };
        let explicit = Comp32::Words(Arc::clone(&self.explicit));
        match (party.index() + 3 - self.rotation.index()) % 3 {
            0 => Shares32 {
                own: seed(self.seed_r),
                next: seed(self.seed_r1),
            },
            1 => Shares32 {
                own: seed(self.seed_r1),
                next: explicit,
            },
            _ => Shares32 {
                own: explicit,
                next: seed(self.seed_r),
            },
        }
    }

    /// What each party receives, in party order.
    pub fn parties(&self) -> [Shares32; 3] {
        PartyId::ALL.map(|p| self.party(p))
    }
}

/// Reconstruct mod 2^32 from all three parties' compact shares, checking both copies of every
/// component (errors as [`reconstruct`]).
pub fn reconstruct32(shares: &[Shares32; 3]) -> Result<Vec<u32>, ReconstructError> {
    let wide = shares.each_ref().map(Shares32::to_u64);
    Ok(reconstruct(&wide)?.into_iter().map(|w| w as u32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_rng;
    use rand::Rng;

    fn values(rng: &mut impl rand::Rng, n: usize) -> Vec<u32> {
        let mut v: Vec<u32> = (0..n).map(|_| rng.random()).collect();
        for (x, e) in v.iter_mut().zip([0, 1, u32::MAX, 1 << 31, (1 << 31) - 1]) {
            *x = e;
        }
        v
    }

    #[test]
    fn compact_shares_reconstruct_for_every_rotation() {
        let mut rng = test_rng();
        for n in [0, 1, 15, 16, 17, 1000, (1 << 14) + 3] {
            let x = values(&mut rng, n);
            for r in PartyId::ALL {
                let s = share3_compact(&x, r, &mut rng);
                assert_eq!(s.len(), n);
                let parts = s.parties();
                assert_eq!(reconstruct32(&parts).unwrap(), x, "n = {n}, rotation {r}");
                // P_r holds two seeds; the others one seed and the explicit component.
                for (p, sh) in PartyId::ALL.into_iter().zip(&parts) {
                    let seeds = [&sh.own, &sh.next].iter().filter(|c| c.is_seeded()).count();
                    assert_eq!(seeds, if p == r { 2 } else { 1 }, "{p} of rotation {r}");
                    sh.check_len(n).unwrap();
                }
                // P_i.next is P_{i+1}.own.
                for i in 0..3 {
                    assert_eq!(parts[i].next.to_vec(), parts[(i + 1) % 3].own.to_vec());
                }
            }
        }
    }

    #[test]
    fn rows_of_a_seeded_component_are_its_offset_keystream() {
        let mut rng = test_rng();
        let x = values(&mut rng, 500);
        let s = share3_compact(&x, PartyId::P1, &mut rng);
        let full = s.parties();
        for (a, b) in [(0, 0), (0, 500), (3, 17), (16, 32), (499, 500), (100, 400)] {
            let part = full.each_ref().map(|p| p.rows(a..b).unwrap());
            assert_eq!(reconstruct32(&part).unwrap(), x[a..b], "{a}..{b}");
            for (p, q) in part.iter().zip(&full) {
                // Seeded stays seeded; the words are the matching slice.
                assert_eq!(p.own.is_seeded(), q.own.is_seeded());
                assert_eq!(p.own.to_vec(), q.own.to_vec()[a..b]);
                assert_eq!(p.next.to_vec(), q.next.to_vec()[a..b]);
            }
        }
        // A prefix of a longer expansion; reads at any offset agree with the whole.
        let seed = [7u8; SEED_BYTES];
        let long = Comp32::seeded(seed, 5, 300).unwrap().to_vec();
        let mut w = vec![0u32; 41];
        for start in [0, 1, 11, 16, 259] {
            Comp32::seeded(seed, 5, 300)
                .unwrap()
                .read_into(start, &mut w);
            assert_eq!(w, long[start..start + 41]);
        }
        assert_eq!(Comp32::seeded(seed, 0, 10).unwrap().to_vec(), {
            let mut v = vec![0u32; 10];
            expand32(&seed, 0, &mut v);
            v
        });
        assert_eq!(
            Comp32::seeded(seed, 0, 310).unwrap().to_vec()[5..305],
            long[..]
        );
    }

    #[test]
    fn the_keystream_is_aes_ctr_halves() {
        // Word j is half j mod 2 of the AES-CTR word ⌊j/2⌋ (key = seed[..16], tweak =
        // seed[16..24]), from any offset.
        let mut seed = [3u8; SEED_BYTES];
        seed[16..24].copy_from_slice(&77u64.to_le_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&seed[..16]);
        let mut wide = [0u64; 40];
        AesCtr::new(&key).fill_at(77, 0, &mut wide);
        let halves: Vec<u32> = wide
            .iter()
            .flat_map(|w| [*w as u32, (*w >> 32) as u32])
            .collect();
        for offset in [0, 1, 2, 7, 30] {
            let mut words = [0u32; 33];
            expand32(&seed, offset, &mut words);
            assert_eq!(words[..], halves[offset..offset + 33], "offset {offset}");
        }
        // Another tweak or key is another stream.
        let mut other = seed;
        other[20] ^= 1;
        let (mut a, mut b) = ([0u32; 8], [0u32; 8]);
        expand32(&seed, 0, &mut a);
        expand32(&other, 0, &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn fresh_seeds_per_sharing() {
        let mut rng = test_rng();
        let x = vec![9u32; 64];
        let (a, b) = (
            share3_compact(&x, PartyId::P0, &mut rng),
            share3_compact(&x, PartyId::P0, &mut rng),
        );
        let seeds = [a.seed_r, a.seed_r1, b.seed_r, b.seed_r1];
        for i in 0..4 {
            for j in i + 1..4 {
                assert_ne!(seeds[i], seeds[j]);
            }
        }
        assert_ne!(a.explicit, b.explicit);
    }

    #[test]
    fn lengths_and_ranges_are_checked() {
        let s = share3_compact(&[1, 2, 3], PartyId::P2, &mut test_rng()).party(PartyId::P0);
        assert_eq!(
            s.check_len(4),
            Err(CompactError::Length {
                component: "own",
                expected: 4,
                got: 3
            })
        );
        let bad_next = Shares32 {
            own: s.own.clone(),
            next: Comp32::words(vec![0u32; 2]),
        };
        assert_eq!(
            bad_next.check_len(3),
            Err(CompactError::Length {
                component: "next",
                expected: 3,
                got: 2
            })
        );
        assert_eq!(
            s.rows(2..4),
            Err(CompactError::Range {
                start: 2,
                end: 4,
                len: 3
            })
        );
        assert!(Comp32::seeded([0; SEED_BYTES], usize::MAX, 2).is_err());
        let overflowing = Comp32::Seed {
            seed: [0; SEED_BYTES],
            offset: usize::MAX,
            len: 2,
        };
        assert!(matches!(
            overflowing.check_len("own", 2),
            Err(CompactError::Range { .. })
        ));
        let err = CompactError::Length {
            component: "own",
            expected: 4,
            got: 3,
        };
        assert_eq!(
            err.to_string(),
            "compact own component has 3 elements, expected 4"
        );
    }

    /// Each party's result of `f` on its shares.
    fn per_party(s: &[Shares32; 3], f: impl Fn(PartyId, &Shares32) -> Shares32) -> [Shares32; 3] {
        [
            f(PartyId::P0, &s[0]),
            f(PartyId::P1, &s[1]),
            f(PartyId::P2, &s[2]),
        ]
    }

    #[test]
    fn local_ops_match_plaintext_mod_2_32() {
        let mut rng = test_rng();
        for n in [0, 1, 17, 300] {
            let (x, y, c) = (
                values(&mut rng, n),
                values(&mut rng, n),
                values(&mut rng, n),
            );
            let xs = share3_compact(&x, PartyId::P1, &mut rng).parties();
            let ys = share3_compact(&y, PartyId::P2, &mut rng).parties();
            let open = |s: [Shares32; 3]| reconstruct32(&s).unwrap();
            let zip = |f: fn(u32, u32) -> u32| -> Vec<u32> {
                x.iter().zip(&y).map(|(a, b)| f(*a, *b)).collect()
            };
            assert_eq!(
                open(per_party(&xs, |p, s| s.add(&ys[p.index()]))),
                zip(u32::wrapping_add)
            );
            assert_eq!(
                open(per_party(&xs, |p, s| s.sub(&ys[p.index()]))),
                zip(u32::wrapping_sub)
            );
            assert_eq!(
                open(per_party(&xs, |_, s| s.neg())),
                zip(|a, _| a.wrapping_neg())
            );
            assert_eq!(open(per_party(&xs, |p, _| Shares32::from_public(p, &c))), c);
            let both = per_party(&xs, |p, s| Shares32::concat(&[s, &ys[p.index()]]));
            assert_eq!(open(both), [x.clone(), y.clone()].concat());
            // Widen: x·2^32 mod 2^64 exactly, whatever the carries of the components.
            let wide = xs.each_ref().map(Shares32::widen);
            let want: Vec<u64> = x.iter().map(|&v| u64::from(v) << 32).collect();
            assert_eq!(reconstruct(&wide).unwrap(), want);
            // Narrow: any Z_2^64 sharing, components mod 2^32.
            let big: Vec<u64> = (0..n).map(|_| rng.random()).collect();
            let bs = crate::sharing::share3(&big, &mut rng);
            let narrow = bs.each_ref().map(Shares32::narrow);
            let want: Vec<u32> = big.iter().map(|&v| v as u32).collect();
            assert_eq!(reconstruct32(&narrow).unwrap(), want);
        }
    }

    #[test]
    fn debug_is_redacted() {
        let c = share3_compact(&[1, 2, 3, 4, 5], PartyId::P0, &mut test_rng());
        assert_eq!(
            format!("{c:?}"),
            "CompactShares { rotation: P0, len: 5, .. }"
        );
        assert_eq!(
            format!("{:?}", c.party(PartyId::P1)),
            "Shares32 { len: 5, own: seed, next: words, .. }"
        );
        assert_eq!(
            format!("{:?}", c.party(PartyId::P0).own),
            "Seed { offset: 0, len: 5, .. }"
        );
        assert_eq!(
            format!("{:?}", c.party(PartyId::P2).own),
            "Words { len: 5, .. }"
        );
    }

    #[test]
    fn a_single_view_of_zeros_is_not_the_zeros() {
        // Each party's explicit component of a zero vector is x − x_r − x_{r+1} = −(seeds):
        // uniform-looking, and different for two sharings of the same zeros.
        let mut rng = test_rng();
        let z = vec![0u32; 4096];
        let a = share3_compact(&z, PartyId::P0, &mut rng);
        let b = share3_compact(&z, PartyId::P0, &mut rng);
        let ones: u32 = a.explicit.iter().map(|w| w.count_ones()).sum();
        let expect = 4096.0 * 16.0;
        assert!((f64::from(ones) - expect).abs() < 5.0 * (4096.0f64 * 8.0).sqrt());
        let same = a
            .explicit
            .iter()
            .zip(b.explicit.iter())
            .filter(|(x, y)| x == y);
        assert!(same.count() < 4);
    }
}
