//! The session binding: one hash of everything that defines a client's run, which all three
//! nodes compare before they compute and sign after.
//!
//! A session's PRF keys come from the peer links and the client-chosen session id, so without a
//! binding a client with compute rights could start one program on two nodes and a different
//! program with the same communication pattern on the third under one id, and solve the mixed
//! outputs for the third node's components. Each node therefore hashes the request it received
//!
//! ```text
//! SHA-256( "veil/session-binding/v1"
//!          || session:u64le || program_id || caller
//!          || stored inputs, sorted by name: (name, value id)*
//!          || inline inputs, sorted by name: (name, len:u64le)*
//!          || delivery: 0 (inline outputs) | 1 || result id
//!          [|| "security" || mode name]          (only when the mode is not semi-honest) )
//! ```
//!
//! (every string as len:u64le bytes, every list prefixed by its count). The security mode the
//! node runs sessions in (its config's `security`) is bound too, so nodes configured with
//! different modes never run a session together, and a receipt says which mode ran; it is
//! appended only for modes other than semi-honest, so semi-honest bindings (and the receipts
//! clients verify against them) are those of the nodes before the mode existed. The encoding
//! stays unambiguous: the delivery field ends a semi-honest binding. Each node sends the hash
//! to both peers
//! in round 0 of the session (the round `Session::establish` would use; keyed sessions never
//! use it) and runs the program only if both peers' hashes equal its own. The program id is a
//! content hash of the ops, shapes and output recipients, so the recipients are bound too. The
//! client computes the same hash and checks it in the nodes' signed receipts.

use crate::pb;
use sha2::{Digest, Sha256};
use veil_runtime::SecurityMode;

/// Domain label of the binding hash.
const LABEL: &[u8] = b"veil/session-binding/v1";
/// Label of the security-mode field (see the module docs).
const SECURITY: &[u8] = b"security";

/// Where a session's outputs go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// Returned in the invoke responses.
    Inline,
    /// Stored under this result id.
    Stored(&'a str),
}

/// Everything that defines a run, as a node received it (see the module docs).
#[derive(Clone, Debug)]
pub struct SessionBinding<'a> {
    /// The client-chosen session id.
    pub session: u64,
    /// Content-hash id of the program.
    pub program: &'a str,
    /// The invoking client's name.
    pub caller: &'a str,
    /// Program input name → stored value id.
    pub stored: Vec<(&'a str, &'a str)>,
    /// Program input name → element count of an input sent with the request.
    pub inline: Vec<(&'a str, u64)>,
    /// Where the outputs go.
    pub delivery: Delivery<'a>,
    /// The security mode the session runs in.
    pub security: SecurityMode,
}

impl<'a> SessionBinding<'a> {
    /// The binding of an invoke request as a node received it from `caller`, for the program
    /// whose id is `program`, run in `security` mode.
    pub fn of_request(
        r: &'a pb::InvokeRequest,
        program: &'a str,
        caller: &'a str,
        security: SecurityMode,
    ) -> Self {
        SessionBinding {
            session: r.session,
            program,
            caller,
            stored: r
                .inputs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            inline: r
                .inline_inputs
                .iter()
                .map(|(k, s)| (k.as_str(), s.len))
                .collect(),
            delivery: if r.inline_outputs {
                Delivery::Inline
            } else {
                Delivery::Stored(&r.result_id)
            },
            security,
        }
    }
}

fn put(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

impl SessionBinding<'_> {
    /// The binding hash (input lists are sorted here, so their order does not matter).
    pub fn hash(&self) -> [u8; 32] {
        let mut stored = self.stored.clone();
        stored.sort_unstable();
        let mut inline = self.inline.clone();
        inline.sort_unstable();
        let mut h = Sha256::new();
        h.update(LABEL);
        h.update(self.session.to_le_bytes());
        put(&mut h, self.program.as_bytes());
        put(&mut h, self.caller.as_bytes());
        h.update((stored.len() as u64).to_le_bytes());
        for (name, value) in stored {
            put(&mut h, name.as_bytes());
            put(&mut h, value.as_bytes());
        }
        h.update((inline.len() as u64).to_le_bytes());
        for (name, len) in inline {
            put(&mut h, name.as_bytes());
            h.update(len.to_le_bytes());
        }
        match self.delivery {
            Delivery::Inline => h.update([0]),
            Delivery::Stored(id) => {
                h.update([1]);
                put(&mut h, id.as_bytes());
            }
        }
        if self.security != SecurityMode::SemiHonest {
            put(&mut h, SECURITY);
            put(&mut h, self.security.as_str().as_bytes());
        }
        h.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SessionBinding<'static> {
        SessionBinding {
            session: 7,
            program: "p",
            caller: "alice",
            stored: vec![("x", "vx"), ("y", "vy")],
            inline: vec![("q", 3)],
            delivery: Delivery::Inline,
            security: SecurityMode::SemiHonest,
        }
    }

    #[test]
    fn every_field_changes_the_hash_and_input_order_does_not() {
        let h = base().hash();
        let mut swapped = base();
        swapped.stored.reverse();
        assert_eq!(swapped.hash(), h);
        type Change = fn(&mut SessionBinding<'static>);
        let variants: [Change; 9] = [
            |b| b.session = 8,
            |b| b.program = "p2",
            |b| b.caller = "bob",
            |b| b.stored[0].1 = "vz",
            |b| b.stored = vec![("x", "vy"), ("y", "vx")],
            |b| b.inline[0].1 = 4,
            |b| b.inline.clear(),
            |b| b.delivery = Delivery::Stored("r"),
            |b| b.security = SecurityMode::Malicious,
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut b = base();
            change(&mut b);
            assert_ne!(b.hash(), h, "variant {i} did not change the hash");
        }
    }

    #[test]
    fn a_semi_honest_binding_is_the_one_before_modes_existed() {
        // The v1 hash of `base()`, computed by the code before the security mode was bound.
        let b = base();
        let mut h = Sha256::new();
        h.update(LABEL);
        h.update(7u64.to_le_bytes());
        for s in ["p", "alice"] {
            put(&mut h, s.as_bytes());
        }
        h.update(2u64.to_le_bytes());
        for s in ["x", "vx", "y", "vy"] {
            put(&mut h, s.as_bytes());
        }
        h.update(1u64.to_le_bytes());
        put(&mut h, b"q");
        h.update(3u64.to_le_bytes());
        h.update([0]);
        let v1: [u8; 32] = h.finalize().into();
        assert_eq!(b.hash(), v1);
    }

    #[test]
    fn fields_are_length_prefixed() {
        // ("ab", "c") and ("a", "bc") concatenate alike; prefixes keep them apart.
        let mut a = base();
        a.stored = vec![("ab", "c")];
        let mut b = base();
        b.stored = vec![("a", "bc")];
        assert_ne!(a.hash(), b.hash());
    }
}
