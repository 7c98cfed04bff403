//! Session setup: pairwise PRF keys agreed with X25519 over the authenticated links.
//!
//! Construction: each party P_i samples an ephemeral X25519 secret (RFC 7748, curve25519-dalek)
//! and sends its public key to both peers over the mutually authenticated link. For the pair
//! {P_a, P_b} with a < b, both ends compute
//!
//! k_{a,b} = SHA-256("veil/v1/pairwise-key" ‖ session (u64 LE) ‖ a ‖ b ‖ pk_a ‖ pk_b ‖ DH)[..16]
//!
//! (party indices as one byte each), so P_i's `with_next` equals P_{i+1}'s `with_prev`, including
//! for the wrap-around pair (P2, P0). These keys seed the AES-CTR PRF ([`crate::prf`]) that
//! produces the correlated randomness (zero-sharings) of Araki et al., CCS 2016, §2.2.
//!
//! **Link secrets (no setup round).** A long-lived link between two nodes can run the same
//! agreement once per connection instead of once per session: the two ends exchange
//! ephemeral X25519 public keys when the link comes up and derive
//!
//! s_{a,b} = SHA-256("veil/v1/link-secret" ‖ a ‖ b ‖ pk_a ‖ pk_b ‖ DH)
//!
//! ([`KeyExchange::link_secret`]); a session's key is then
//! k_{a,b} = SHA-256("veil/v1/session-key" ‖ session (u64 LE) ‖ a ‖ b ‖ s_{a,b})[..16]
//! ([`LinkSecret::session_key`], [`PairwiseKeys::from_links`]), which costs no round. SHA-256
//! as a random oracle keyed by the uniform s_{a,b} makes keys of distinct sessions independent
//! and uniform to the third party, **provided a session id is used at most once per link
//! secret**: a repeated id would repeat the correlated randomness of two computations (the
//! node's peer mux refuses a repeated id). The cost against per-session agreement is forward
//! secrecy between sessions of one link: a node whose memory is later compromised exposes the
//! keys of every earlier session on its links (connection lifetime), not only the current one.
//!
//! Security: semi-honest, honest majority, links authenticated (mTLS). Under CDH on Curve25519
//! with SHA-256 as a random oracle, k_{i,i+1} is uniform to everyone except P_i and P_{i+1}; in
//! particular the third party learns nothing about it, and keys of different sessions or
//! different ephemeral keys are independent. An all-zero shared secret (a low-order public key)
//! is rejected naming the peer. Ephemeral secrets and shared secrets are zeroised after use.

use crate::prf::PrfKey;
use curve25519_dalek::montgomery::MontgomeryPoint;
use sha2::{Digest, Sha256};
use std::fmt;
use veil_circuits::PartyId;
use zeroize::Zeroize;

/// The two pairwise keys of one party: k_{i,i+1} (shared with next) and k_{i-1,i} (with prev).
#[derive(Clone, Debug)]
pub struct PairwiseKeys {
    /// Key shared with P_{i+1}.
    pub with_next: PrfKey,
    /// Key shared with P_{i-1}.
    pub with_prev: PrfKey,
}

/// One party's ephemeral X25519 key pair for a session. Zeroised on drop; `Debug` is redacted.
pub struct KeyExchange {
    secret: [u8; 32],
    public: [u8; 32],
}

/// Key agreement failure (a peer sent a low-order or malformed public key).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The shared secret with this peer is all-zero (low-order public key).
    #[error("{peer} sent a low-order X25519 public key")]
    LowOrderKey {
        /// The peer at fault.
        peer: PartyId,
    },
}

/// Domain-separation prefix of the pairwise key derivation.
const PAIRWISE_LABEL: &[u8] = b"veil/v1/pairwise-key";
/// Domain-separation prefix of a link secret.
const LINK_LABEL: &[u8] = b"veil/v1/link-secret";
/// Domain-separation prefix of a session key derived from a link secret.
const SESSION_LABEL: &[u8] = b"veil/v1/session-key";

/// The secret of one authenticated link between two parties, agreed once per connection;
/// session keys are derived from it without a round. Zeroised on drop; `Debug` is redacted.
pub struct LinkSecret([u8; 32]);

impl LinkSecret {
    /// k_{me,peer} for `session`: both ends derive the same key (parties ordered by index).
    pub fn session_key(&self, me: PartyId, peer: PartyId, session: u64) -> PrfKey {
        let (lo, hi) = ordered(me, peer);
        let mut digest = Sha256::new()
            .chain_update(SESSION_LABEL)
            .chain_update(session.to_le_bytes())
            .chain_update([lo.index() as u8, hi.index() as u8])
            .chain_update(self.0)
            .finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        digest.as_mut_slice().zeroize();
        PrfKey::from_bytes(key)
    }
}

impl Drop for LinkSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkSecret { .. }")
    }
}

impl PairwiseKeys {
    /// Party `me`'s keys for `session` from the secrets of its links to P_{i+1} and P_{i−1}.
    pub fn from_links(
        me: PartyId,
        session: u64,
        next: &LinkSecret,
        prev: &LinkSecret,
    ) -> PairwiseKeys {
        PairwiseKeys {
            with_next: next.session_key(me, me.next(), session),
            with_prev: prev.session_key(me, me.prev(), session),
        }
    }
}

/// The two parties of a pair, lower index first.
fn ordered(a: PartyId, b: PartyId) -> (PartyId, PartyId) {
    if a.index() < b.index() {
        (a, b)
    } else {
        (b, a)
    }
}

impl KeyExchange {
    /// Fresh ephemeral secret from `rng` (use `rand::rngs::OsRng` outside tests).
    pub fn new<R: rand::CryptoRng + rand::RngCore>(rng: &mut R) -> Self {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let public = MontgomeryPoint::mul_base_clamped(secret).to_bytes();
        KeyExchange { secret, public }
    }

    /// Public key to send to both peers.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// Derive both pairwise keys for party `me` in `session` from the peers' public keys.
    pub fn agree(
        self,
        me: PartyId,
        session: u64,
        next_public: &[u8; 32],
        prev_public: &[u8; 32],
    ) -> Result<PairwiseKeys, SetupError> {
        let with_next = self.pair_key(me, me.next(), session, next_public)?;
        let with_prev = self.pair_key(me, me.prev(), session, prev_public)?;
        Ok(PairwiseKeys {
            with_next,
            with_prev,
        })
    }

    /// The secret of this party's link to `peer`, from the public key `peer` sent when the
    /// link came up (use a fresh `KeyExchange` per connection).
    pub fn link_secret(
        self,
        me: PartyId,
        peer: PartyId,
        peer_public: &[u8; 32],
    ) -> Result<LinkSecret, SetupError> {
        let mut digest = self.derive(LINK_LABEL, &[], me, peer, peer_public)?;
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&digest);
        digest.as_mut_slice().zeroize();
        Ok(LinkSecret(secret))
    }

    /// k_{me,peer}, computed identically by both ends (parties ordered by index).
    fn pair_key(
        &self,
        me: PartyId,
        peer: PartyId,
        session: u64,
        peer_public: &[u8; 32],
    ) -> Result<PrfKey, SetupError> {
        let mut digest = self.derive(
            PAIRWISE_LABEL,
            &session.to_le_bytes(),
            me,
            peer,
            peer_public,
        )?;
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        digest.as_mut_slice().zeroize();
        Ok(PrfKey::from_bytes(key))
    }

    /// SHA-256(label ‖ context ‖ lo ‖ hi ‖ pk_lo ‖ pk_hi ‖ DH) for the pair {me, peer}.
    fn derive(
        &self,
        label: &[u8],
        context: &[u8],
        me: PartyId,
        peer: PartyId,
        peer_public: &[u8; 32],
    ) -> Result<sha2::digest::Output<Sha256>, SetupError> {
        let mut shared = MontgomeryPoint(*peer_public)
            .mul_clamped(self.secret)
            .to_bytes();
        // Constant-time all-zero test: no early exit on secret-dependent bytes.
        if shared.iter().fold(0u8, |acc, b| acc | b) == 0 {
            return Err(SetupError::LowOrderKey { peer });
        }
        let ((lo, lo_pk), (hi, hi_pk)) = if me.index() < peer.index() {
            ((me, &self.public), (peer, peer_public))
        } else {
            ((peer, peer_public), (me, &self.public))
        };
        let digest = Sha256::new()
            .chain_update(label)
            .chain_update(context)
            .chain_update([lo.index() as u8, hi.index() as u8])
            .chain_update(lo_pk)
            .chain_update(hi_pk)
            .chain_update(shared)
            .finalize();
        shared.zeroize();
        Ok(digest)
    }
}

impl Drop for KeyExchange {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl fmt::Debug for KeyExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyExchange { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_rng;

    fn three_parties(rng: &mut rand_chacha::ChaCha20Rng, session: u64) -> [PairwiseKeys; 3] {
        let kx: Vec<KeyExchange> = (0..3).map(|_| KeyExchange::new(rng)).collect();
        let pks: Vec<[u8; 32]> = kx.iter().map(KeyExchange::public).collect();
        let mut out = kx.into_iter().zip(PartyId::ALL).map(|(k, me)| {
            k.agree(
                me,
                session,
                &pks[me.next().index()],
                &pks[me.prev().index()],
            )
            .unwrap()
        });
        [
            out.next().unwrap(),
            out.next().unwrap(),
            out.next().unwrap(),
        ]
    }

    #[test]
    fn three_parties_agree_pairwise() {
        let mut rng = test_rng();
        let keys = three_parties(&mut rng, 7);
        for i in 0..3 {
            let j = (i + 1) % 3;
            assert_eq!(
                keys[i].with_next.0, keys[j].with_prev.0,
                "pair (P{i}, P{j})"
            );
        }
        // The three pairwise keys are distinct, and next != prev for each party.
        assert_ne!(keys[0].with_next.0, keys[1].with_next.0);
        assert_ne!(keys[1].with_next.0, keys[2].with_next.0);
        assert_ne!(keys[2].with_next.0, keys[0].with_next.0);
    }

    #[test]
    fn sessions_give_different_keys() {
        // Same ephemeral secrets, different session ids.
        let seeds: Vec<[u8; 32]> = {
            let mut rng = test_rng();
            (0..3).map(|_| rand::Rng::random(&mut rng)).collect()
        };
        let make = || -> Vec<KeyExchange> {
            seeds
                .iter()
                .map(|s| KeyExchange {
                    secret: *s,
                    public: MontgomeryPoint::mul_base_clamped(*s).to_bytes(),
                })
                .collect()
        };
        let keys = |session: u64| -> Vec<PairwiseKeys> {
            let kx = make();
            let pks: Vec<[u8; 32]> = kx.iter().map(KeyExchange::public).collect();
            kx.into_iter()
                .zip(PartyId::ALL)
                .map(|(k, me)| {
                    k.agree(
                        me,
                        session,
                        &pks[me.next().index()],
                        &pks[me.prev().index()],
                    )
                    .unwrap()
                })
                .collect()
        };
        let (a, a2, b) = (keys(1), keys(1), keys(2));
        for i in 0..3 {
            assert_eq!(a[i].with_next.0, a2[i].with_next.0, "deterministic");
            assert_ne!(a[i].with_next.0, b[i].with_next.0);
            assert_ne!(a[i].with_prev.0, b[i].with_prev.0);
        }
    }

    #[test]
    fn low_order_key_is_rejected() {
        let mut rng = test_rng();
        let good = KeyExchange::new(&mut rng).public();
        // u = 0 and u = 1 are low-order points: the shared secret is all zero.
        for bad in [[0u8; 32], {
            let mut u = [0u8; 32];
            u[0] = 1;
            u
        }] {
            let err = KeyExchange::new(&mut rng)
                .agree(PartyId::P1, 1, &bad, &good)
                .unwrap_err();
            assert!(
                matches!(err, SetupError::LowOrderKey { peer: PartyId::P2 }),
                "{err}"
            );
            let err = KeyExchange::new(&mut rng)
                .agree(PartyId::P1, 1, &good, &bad)
                .unwrap_err();
            assert!(
                matches!(err, SetupError::LowOrderKey { peer: PartyId::P0 }),
                "{err}"
            );
            assert_eq!(err.to_string(), "P0 sent a low-order X25519 public key");
        }
    }

    /// Each link's two ends (fresh key pairs per link) and the sessions' keys from them.
    fn link_secrets(rng: &mut rand_chacha::ChaCha20Rng) -> [[Option<LinkSecret>; 3]; 3] {
        let mut out: [[Option<LinkSecret>; 3]; 3] = Default::default();
        for (a, b) in [(0, 1), (1, 2), (0, 2)] {
            let (ka, kb) = (KeyExchange::new(rng), KeyExchange::new(rng));
            let (pa, pb) = (ka.public(), kb.public());
            let (pa_id, pb_id) = (PartyId::from_index(a), PartyId::from_index(b));
            out[a][b] = Some(ka.link_secret(pa_id, pb_id, &pb).unwrap());
            out[b][a] = Some(kb.link_secret(pb_id, pa_id, &pa).unwrap());
        }
        out
    }

    #[test]
    fn link_secrets_give_pairwise_session_keys_without_a_round() {
        let mut rng = test_rng();
        let links = link_secrets(&mut rng);
        let keys = |session: u64| -> Vec<PairwiseKeys> {
            PartyId::ALL
                .iter()
                .map(|&me| {
                    let l = &links[me.index()];
                    PairwiseKeys::from_links(
                        me,
                        session,
                        l[me.next().index()].as_ref().unwrap(),
                        l[me.prev().index()].as_ref().unwrap(),
                    )
                })
                .collect()
        };
        let (k7, k8) = (keys(7), keys(8));
        for i in 0..3 {
            let j = (i + 1) % 3;
            assert_eq!(k7[i].with_next.0, k7[j].with_prev.0, "pair (P{i}, P{j})");
            assert_ne!(k7[i].with_next.0, k7[j].with_next.0);
            // Another session id gives another key on every link.
            assert_ne!(k7[i].with_next.0, k8[i].with_next.0);
            assert_ne!(k7[i].with_prev.0, k8[i].with_prev.0);
        }
        // A new connection (fresh key pairs) gives other secrets for the same session id.
        let again = link_secrets(&mut rng);
        let a = again[0][1].as_ref().unwrap();
        let b = links[0][1].as_ref().unwrap();
        assert_ne!(
            a.session_key(PartyId::P0, PartyId::P1, 7).0,
            b.session_key(PartyId::P0, PartyId::P1, 7).0
        );
        assert_eq!(format!("{b:?}"), "LinkSecret { .. }");
    }

    #[test]
    fn link_secret_rejects_a_low_order_key() {
        let mut rng = test_rng();
        let err = KeyExchange::new(&mut rng)
            .link_secret(PartyId::P0, PartyId::P2, &[0u8; 32])
            .unwrap_err();
        assert!(matches!(err, SetupError::LowOrderKey { peer: PartyId::P2 }));
    }

    #[test]
    fn debug_is_redacted() {
        let mut rng = test_rng();
        let kx = KeyExchange::new(&mut rng);
        assert_eq!(format!("{kx:?}"), "KeyExchange { .. }");
        let pk = kx.public();
        let keys = kx.agree(PartyId::P0, 0, &pk, &pk).unwrap();
        assert_eq!(
            format!("{keys:?}"),
            "PairwiseKeys { with_next: PrfKey(..), with_prev: PrfKey(..) }"
        );
    }
}
