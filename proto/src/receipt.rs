//! Signed receipts: each node's Ed25519 signature over a session's binding and the output
//! components it returned, so a client can show which program ran on which stored values.
//!
//! A node signs (Ed25519, RFC 8032, `ed25519-dalek`)
//!
//! ```text
//! "veil/receipt/v1" || party:u8 || binding (32 bytes) || outputs_sha256 (32 bytes)
//! ```
//!
//! where `binding` is the session binding hash ([`crate::binding`]) and `outputs_sha256` is
//! [`outputs_digest`] of the components it returned (inline) or stored (result id). The client
//! recomputes the binding from its own request and the digest from the components it received,
//! and verifies the three signatures against the node keys pinned in `cluster.toml`. Each
//! receipt also states the security mode the session ran in ([`stated_security`]); the binding
//! covers the mode, so the client takes the mode all three state, binds it and verifies. A receipt
//! proves what each node signed; it does not make a deviating node's components correct (that
//! is the client's consistency check on reconstruction).

use std::fmt;
use std::path::Path;

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use rand::{RngCore as _, TryRngCore as _};
use sha2::{Digest, Sha256};
use zeroize::Zeroize as _;

use crate::convert::{security_mode, security_to_wire};
use crate::pb;
use veil_runtime::SecurityMode;

/// Domain label of receipt signatures.
const LABEL: &[u8] = b"veil/receipt/v1";

/// A receipt could not be made or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The key file could not be read or written.
    #[error("receipt key {path}: {message}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong (never key material).
        message: String,
    },
    /// A public key in `cluster.toml` is not 64 hex digits of a valid Ed25519 point.
    #[error("receipt key of node {party}: {message}")]
    PublicKey {
        /// Which node.
        party: usize,
        /// What is wrong.
        message: String,
    },
    /// A node's receipt is missing, for another party, or for another session binding.
    #[error("node {party}'s receipt: {what}")]
    Mismatch {
        /// Which node.
        party: usize,
        /// What differs.
        what: &'static str,
    },
    /// A node's signature does not verify under its pinned key.
    #[error("node {party}'s receipt signature does not verify under its pinned key")]
    BadSignature {
        /// Which node.
        party: usize,
    },
}

/// SHA-256 over output components as a node hands them out: the output count, then per output
/// its length-prefixed name, own bytes and next bytes (words little-endian), in the given order.
pub fn outputs_digest(outputs: &[pb::OutputShares]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((outputs.len() as u64).to_le_bytes());
    for o in outputs {
        for part in [o.name.as_bytes(), &o.own, &o.next] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
    }
    h.finalize().into()
}

/// [`outputs_digest`] of components still held as words `(name, own, next)`, without
/// encoding them first (a stored result is hashed in place).
pub fn words_digest(outputs: &[(String, Vec<u64>, Vec<u64>)]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((outputs.len() as u64).to_le_bytes());
    let mut buf = [0u8; 8 * 512];
    for (name, own, next) in outputs {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        for words in [own, next] {
            h.update((8 * words.len() as u64).to_le_bytes());
            for chunk in words.chunks(512) {
                for (b, w) in buf.chunks_exact_mut(8).zip(chunk) {
                    b.copy_from_slice(&w.to_le_bytes());
                }
                h.update(&buf[..8 * chunk.len()]);
            }
        }
    }
    h.finalize().into()
}

fn message(party: u8, binding: &[u8; 32], outputs: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(LABEL.len() + 65);
    m.extend_from_slice(LABEL);
    m.push(party);
    m.extend_from_slice(binding);
    m.extend_from_slice(outputs);
    m
}

/// A node's receipt signing key. `Debug` prints no key material.
pub struct ReceiptSigner {
    party: u8,
    key: SigningKey,
}

impl fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiptSigner")
            .field("party", &self.party)
            .finish_non_exhaustive()
    }
}

impl ReceiptSigner {
    /// A fresh key for `party` from the OS RNG.
    pub fn generate(party: usize) -> Self {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.unwrap_err().fill_bytes(&mut seed);
        let key = SigningKey::from_bytes(&seed);
        seed.zeroize();
        ReceiptSigner {
            party: party as u8,
            key,
        }
    }

    /// Loads the key of `party` from a file holding its 32-byte seed as 64 hex digits.
    pub fn load(party: usize, path: &Path) -> Result<Self, ReceiptError> {
        let err = |message: String| ReceiptError::KeyFile {
            path: path.display().to_string(),
            message,
        };
        let mut text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let decoded = hex::decode(text.trim());
        text.zeroize();
        let mut seed: Vec<u8> = decoded.map_err(|_| err("not hex".into()))?;
        let key = <[u8; 32]>::try_from(seed.as_slice())
            .map(|s| SigningKey::from_bytes(&s))
            .map_err(|_| err(format!("{} bytes, expected 32", seed.len())));
        seed.zeroize();
        Ok(ReceiptSigner {
            party: party as u8,
            key: key?,
        })
    }

    /// Writes the seed as hex to `path`, readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), ReceiptError> {
        let mut text = hex::encode(self.key.to_bytes());
        text.push('\n');
        let r = crate::tls::write_private(path, &text).map_err(|e| ReceiptError::KeyFile {
            path: path.display().to_string(),
            message: e.to_string(),
        });
        text.zeroize();
        r
    }

    /// The public key as clients pin it in `cluster.toml` (64 hex digits).
    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// The receipt for a session run in `security` mode with this binding (which covers the
    /// mode) and output components of this digest ([`outputs_digest`] / [`words_digest`]).
    pub fn sign(
        &self,
        binding: &[u8; 32],
        digest: &[u8; 32],
        security: SecurityMode,
    ) -> pb::Receipt {
        let sig = self.key.sign(&message(self.party, binding, digest));
        pb::Receipt {
            party: u32::from(self.party),
            binding: binding.to_vec().into(),
            outputs_sha256: digest.to_vec().into(),
            signature: sig.to_bytes().to_vec().into(),
            security: security_to_wire(security) as i32,
        }
    }
}

/// Parses a node's pinned public key (64 hex digits).
pub fn parse_public(party: usize, hex_key: &str) -> Result<VerifyingKey, ReceiptError> {
    let err = |message: &str| ReceiptError::PublicKey {
        party,
        message: message.to_string(),
    };
    let bytes = hex::decode(hex_key).map_err(|_| err("not hex"))?;
    let bytes = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| err("expected 32 bytes"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| err("not a valid Ed25519 public key"))
}

/// The security mode all three receipts state (by party; a receipt from before the field
/// existed states semi-honest). Verify each receipt ([`verify`]) against the binding of this
/// mode: the binding covers the mode, so a node cannot claim a mode it did not sign.
pub fn stated_security(receipts: [Option<&pb::Receipt>; 3]) -> Result<SecurityMode, ReceiptError> {
    let mut common = None;
    for (party, r) in receipts.into_iter().enumerate() {
        let mismatch = |what| ReceiptError::Mismatch { party, what };
        let r = r.ok_or(mismatch("missing"))?;
        let mode = security_mode("receipt", r.security)
            .map_err(|_| mismatch("states an unknown security mode"))?;
        if common.is_some_and(|c| c != mode) {
            return Err(mismatch("states another security mode than node 0"));
        }
        common = Some(mode);
    }
    Ok(common.unwrap_or_default())
}

/// Checks node `party`'s receipt: for that party, over `binding`, over exactly the components
/// the client received (`outputs`, or `None` for a stored result, whose digest is taken as
/// signed), with a valid signature under `key`.
pub fn verify(
    key: &VerifyingKey,
    party: usize,
    binding: &[u8; 32],
    outputs: Option<&[pb::OutputShares]>,
    receipt: Option<&pb::Receipt>,
) -> Result<(), ReceiptError> {
    let mismatch = |what| ReceiptError::Mismatch { party, what };
    let r = receipt.ok_or(mismatch("missing"))?;
    if r.party as usize != party {
        return Err(mismatch("signed for another party"));
    }
    if r.binding.as_ref() != binding {
        return Err(mismatch(
            "binds another session (program, inputs, caller or delivery)",
        ));
    }
    let digest: [u8; 32] = r
        .outputs_sha256
        .as_ref()
        .try_into()
        .map_err(|_| mismatch("malformed output digest"))?;
    if let Some(outputs) = outputs
        && outputs_digest(outputs) != digest
    {
        return Err(mismatch("covers other output components"));
    }
    let sig = Signature::from_slice(&r.signature).map_err(|_| mismatch("malformed signature"))?;
    key.verify(&message(party as u8, binding, &digest), &sig)
        .map_err(|_| ReceiptError::BadSignature { party })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outs() -> Vec<pb::OutputShares> {
        vec![pb::OutputShares {
            name: "y".into(),
            own: vec![1u8; 16].into(),
            next: vec![2u8; 16].into(),
        }]
    }

    #[test]
    fn a_receipt_verifies_and_every_tampering_is_caught() {
        let signer = ReceiptSigner::generate(1);
        let key = parse_public(1, &signer.public_hex()).unwrap();
        let binding = [7u8; 32];
        let o = outs();
        let r = signer.sign(&binding, &outputs_digest(&o), SecurityMode::SemiHonest);
        verify(&key, 1, &binding, Some(&o), Some(&r)).unwrap();
        verify(&key, 1, &binding, None, Some(&r)).unwrap();

        let mut other = o.clone();
        other[0].own = vec![9u8; 16].into();
        assert!(matches!(
            verify(&key, 1, &binding, Some(&other), Some(&r)),
            Err(ReceiptError::Mismatch {
                what: "covers other output components",
                ..
            })
        ));
        assert!(matches!(
            verify(&key, 1, &[8u8; 32], Some(&o), Some(&r)),
            Err(ReceiptError::Mismatch { .. })
        ));
        assert!(matches!(
            verify(&key, 2, &binding, Some(&o), Some(&r)),
            Err(ReceiptError::Mismatch { .. })
        ));
        let mut forged = r.clone();
        forged.outputs_sha256 = outputs_digest(&other).to_vec().into();
        assert!(matches!(
            verify(&key, 1, &binding, Some(&other), Some(&forged)),
            Err(ReceiptError::BadSignature { party: 1 })
        ));
        let stranger = parse_public(1, &ReceiptSigner::generate(1).public_hex()).unwrap();
        assert!(matches!(
            verify(&stranger, 1, &binding, Some(&o), Some(&r)),
            Err(ReceiptError::BadSignature { party: 1 })
        ));
        assert!(matches!(
            verify(&key, 1, &binding, Some(&o), None),
            Err(ReceiptError::Mismatch {
                what: "missing",
                ..
            })
        ));
    }

    #[test]
    fn receipts_state_one_security_mode() {
        let signers: Vec<_> = (0..3).map(ReceiptSigner::generate).collect();
        let sign = |p: usize, mode| signers[p].sign(&[1; 32], &[2; 32], mode);
        let m = SecurityMode::Malicious;
        let all = [sign(0, m), sign(1, m), sign(2, m)];
        assert_eq!(stated_security(all.each_ref().map(Some)).unwrap(), m);
        // Receipts from nodes before the field existed: semi-honest.
        let old = pb::Receipt::default();
        assert_eq!(
            stated_security([Some(&old), Some(&old), Some(&old)]).unwrap(),
            SecurityMode::SemiHonest
        );
        let mixed = [sign(0, m), sign(1, SecurityMode::SemiHonest), sign(2, m)];
        assert!(matches!(
            stated_security(mixed.each_ref().map(Some)),
            Err(ReceiptError::Mismatch { party: 1, .. })
        ));
        assert!(matches!(
            stated_security([Some(&all[0]), None, Some(&all[2])]),
            Err(ReceiptError::Mismatch {
                party: 1,
                what: "missing"
            })
        ));
        let mut odd = all[2].clone();
        odd.security = 9;
        assert!(matches!(
            stated_security([Some(&all[0]), Some(&all[1]), Some(&odd)]),
            Err(ReceiptError::Mismatch { party: 2, .. })
        ));
    }

    #[test]
    fn words_and_encoded_components_hash_alike() {
        let words = vec![
            (
                "a".to_string(),
                (0..1500u64).collect::<Vec<_>>(),
                vec![u64::MAX; 3],
            ),
            ("b".to_string(), vec![], vec![]),
        ];
        let encoded: Vec<pb::OutputShares> = words
            .iter()
            .map(|(n, a, b)| pb::OutputShares {
                name: n.clone(),
                own: veil_runtime::kernels::words_to_le_bytes(a).into(),
                next: veil_runtime::kernels::words_to_le_bytes(b).into(),
            })
            .collect();
        assert_eq!(words_digest(&words), outputs_digest(&encoded));
    }

    #[test]
    fn keys_round_trip_through_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receipt.key");
        let signer = ReceiptSigner::generate(0);
        signer.save(&path).unwrap();
        let loaded = ReceiptSigner::load(0, &path).unwrap();
        assert_eq!(loaded.public_hex(), signer.public_hex());
        assert!(!format!("{loaded:?}").contains(&loaded.public_hex()));
        std::fs::write(&path, "zz").unwrap();
        assert!(ReceiptSigner::load(0, &path).is_err());
        assert!(parse_public(0, "00").is_err());
    }
}
