//! Wire validation: protobuf fields turned into checked values (ids, share components, grants,
//! encrypted queries), with errors that name the field and never carry share words. Every
//! length is checked against the node's limits by the caller before it gets here (a seed
//! expands to whatever length is declared).

use crate::Grant;
use crate::pb;
use std::sync::Arc;
use veil_runtime::SecurityMode;
use veil_runtime::fhe::{DbId, EncryptedQuery};
use veil_runtime::sharing::{Comp32, PartyShares, SEED_BYTES, Shares, Shares32, expand};

/// A field that failed wire validation; the message names the field (answered as
/// `InvalidArgument`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

/// Longest accepted id (value, result).
pub const MAX_ID_LEN: usize = 128;
/// Most grants one stored value may carry.
pub const MAX_GRANTS: usize = 4096;

/// Checks a client-chosen id (value, result): 1..=[`MAX_ID_LEN`] characters of `[A-Za-z0-9._-]`.
///
/// ```
/// use veil_proto::convert::check_id;
/// assert!(check_id("value", "emb_0").is_ok());
/// let e = check_id("value", "../etc").unwrap_err();
/// assert_eq!(e.to_string(), "value id must be 1..=128 characters of [A-Za-z0-9._-]");
/// ```
pub fn check_id(kind: &str, id: &str) -> Result<(), WireError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(WireError(format!(
            "{kind} id must be 1..={MAX_ID_LEN} characters of [A-Za-z0-9._-]"
        )))
    }
}

/// `len` little-endian words from exactly `8·len` bytes.
pub fn words(field: &str, bytes: &[u8], len: usize) -> Result<Vec<u64>, WireError> {
    if bytes.len() != len * 8 {
        return Err(WireError(format!(
            "{field} has {} bytes, expected {} for {len} elements",
            bytes.len(),
            len * 8
        )));
    }
    Ok(veil_runtime::kernels::le_bytes_to_words(bytes))
}

/// One share component of `len` elements: little-endian `words`, or a 32-byte `seed` expanded
/// with ChaCha20 (`veil_runtime::sharing::seeded`), not both. `len` must already be within the
/// node's limits.
pub fn component(
    field: &str,
    words_le: &[u8],
    seed: &[u8],
    len: usize,
) -> Result<Vec<u64>, WireError> {
    if seed.is_empty() {
        return words(field, words_le, len);
    }
    if !words_le.is_empty() {
        return Err(WireError(format!(
            "{field}: give words or a seed, not both"
        )));
    }
    let seed: &[u8; SEED_BYTES] = seed.try_into().map_err(|_| {
        WireError(format!(
            "{field}_seed has {} bytes, expected {SEED_BYTES}",
            seed.len()
        ))
    })?;
    Ok(expand(seed, len))
}

/// One compact (Z_2^32) component of `len` elements: little-endian u32 `words` (4 bytes
/// each), or a 32-byte `seed` kept as a seed (`veil_runtime::sharing::compact`), not both.
pub fn component32(
    field: &str,
    words_le: &[u8],
    seed: &[u8],
    len: usize,
) -> Result<Comp32, WireError> {
    if seed.is_empty() {
        if words_le.len() != len * 4 {
            return Err(WireError(format!(
                "{field} has {} bytes, expected {} for {len} Z_2^32 elements",
                words_le.len(),
                len * 4
            )));
        }
        let words: Vec<u32> = words_le
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        return Ok(Comp32::words(words));
    }
    if !words_le.is_empty() {
        return Err(WireError(format!(
            "{field}: give words or a seed, not both"
        )));
    }
    let seed: [u8; SEED_BYTES] = seed.try_into().map_err(|_| {
        WireError(format!(
            "{field}_seed has {} bytes, expected {SEED_BYTES}",
            seed.len()
        ))
    })?;
    Comp32::seeded(seed, 0, len).map_err(|e| WireError(format!("{field}: {e}")))
}

/// A node's two components (own, next) of `len` elements in the ring the message names
/// (`ring_bits` 0 or 64: Z_2^64 words, seeds expanded; 32: compact Z_2^32, seeds kept);
/// `field` prefixes error messages.
pub fn node_shares(field: &str, s: &pb::NodeShares, len: usize) -> Result<PartyShares, WireError> {
    match s.ring_bits {
        0 | 64 => Ok(PartyShares::Ring64(Arc::new(Shares {
            own: component(&format!("{field}own"), &s.own, &s.own_seed, len)?,
            next: component(&format!("{field}next"), &s.next, &s.next_seed, len)?,
        }))),
        32 => Ok(PartyShares::Ring32(Arc::new(Shares32 {
            own: component32(&format!("{field}own"), &s.own, &s.own_seed, len)?,
            next: component32(&format!("{field}next"), &s.next, &s.next_seed, len)?,
        }))),
        bits => Err(WireError(format!(
            "{field}ring_bits = {bits}: expected 64 (or 0) or 32"
        ))),
    }
}

/// Parses a StoreValue request's grants.
pub fn grants(list: Vec<pb::Grant>) -> Result<Vec<Grant>, WireError> {
    if list.len() > MAX_GRANTS {
        return Err(WireError(format!(
            "{} grants; at most {MAX_GRANTS} per value",
            list.len()
        )));
    }
    list.into_iter()
        .map(|g| {
            if g.client.is_empty() || g.program_id.parse::<veil_circuits::ProgramId>().is_err() {
                return Err(WireError(
                    "a grant needs a client name and a program id (64 hex digits)".into(),
                ));
            }
            Ok(Grant::new(g.client, g.program_id))
        })
        .collect()
}

/// A `SecurityMode` field off the wire (`what` names it in errors); 0, the value of messages
/// written before the field existed, is semi-honest.
pub fn security_mode(what: &str, value: i32) -> Result<SecurityMode, WireError> {
    match pb::SecurityMode::try_from(value) {
        Ok(pb::SecurityMode::SemiHonest) => Ok(SecurityMode::SemiHonest),
        Ok(pb::SecurityMode::Malicious) => Ok(SecurityMode::Malicious),
        Err(_) => Err(WireError(format!("{what}: unknown security mode {value}"))),
    }
}

/// A security mode as the wire spells it (the `security` fields of receipts and results).
pub fn security_to_wire(mode: SecurityMode) -> pb::SecurityMode {
    match mode {
        SecurityMode::SemiHonest => pb::SecurityMode::SemiHonest,
        SecurityMode::Malicious => pb::SecurityMode::Malicious,
    }
}

/// One encrypted query off the wire (`what` names it in errors): a 32-byte database id and
/// whole little-endian u64 words of ciphertext bodies.
pub fn encrypted_query(
    what: &str,
    db_id: &[u8],
    bodies: &[u8],
) -> Result<EncryptedQuery, WireError> {
    let id: [u8; 32] = db_id.try_into().map_err(|_| {
        WireError(format!(
            "{what}: db_id has {} bytes, expected 32",
            db_id.len()
        ))
    })?;
    if !bodies.len().is_multiple_of(8) {
        return Err(WireError(format!(
            "{what}: bodies have {} bytes, not a whole number of u64 words",
            bodies.len()
        )));
    }
    Ok(EncryptedQuery {
        db: DbId(id),
        bodies: veil_runtime::kernels::le_bytes_to_words(bodies),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_come_as_words_or_a_seed() {
        let w: Vec<u8> = [1u64, 2, 3].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(component("own", &w, &[], 3).unwrap(), vec![1, 2, 3]);
        let seed = [9u8; SEED_BYTES];
        assert_eq!(component("own", &[], &seed, 5).unwrap(), expand(&seed, 5));
        let bad = |r: Result<Vec<u64>, WireError>| r.unwrap_err().to_string();
        assert_eq!(
            bad(component("own", &w, &seed, 3)),
            "own: give words or a seed, not both"
        );
        assert_eq!(
            bad(component("next", &[], &seed[..31], 3)),
            "next_seed has 31 bytes, expected 32"
        );
        assert_eq!(
            bad(component("own", &w, &[], 4)),
            "own has 24 bytes, expected 32 for 4 elements"
        );
    }

    #[test]
    fn security_modes_round_trip_and_old_messages_are_semi_honest() {
        for mode in [SecurityMode::SemiHonest, SecurityMode::Malicious] {
            let wire = security_to_wire(mode) as i32;
            assert_eq!(security_mode("receipt", wire).unwrap(), mode);
        }
        // A receipt written before the field existed carries 0.
        let old = pb::Receipt::default();
        assert_eq!(
            security_mode("receipt", old.security).unwrap(),
            SecurityMode::SemiHonest
        );
        let e = security_mode("receipt", 7).unwrap_err();
        assert_eq!(e.to_string(), "receipt: unknown security mode 7");
    }

    #[test]
    fn malformed_queries_name_the_field() {
        let e = encrypted_query("query", &[0; 31], &[0; 16]).unwrap_err();
        assert!(e.0.contains("db_id has 31 bytes"), "{e}");
        let e = encrypted_query("query", &[0; 32], &[0; 17]).unwrap_err();
        assert!(e.0.contains("17 bytes"), "{e}");
        let q = encrypted_query("query", &[7; 32], &[1, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((q.db, q.bodies), (DbId([7; 32]), vec![1]));
    }
}
