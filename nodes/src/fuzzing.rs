//! Bodies of the fuzz targets for what a node reads from outside (`fuzz/fuzz_targets/*.rs` call
//! them; `tests/fuzz_corpus.rs` replays the committed corpus through them on stable). Each
//! takes arbitrary bytes and must return without panicking, looping or allocating beyond the
//! node's limits.

use crate::config::NodeConfig;
use crate::limits::Limits;
use crate::peer::frames::{Event, Reassembler};
use crate::store::{
    decode_result, decode_result_recipient, decode_value, decode_value_owner, encode_result,
    encode_value,
};
use prost::Message as _;
use std::sync::Arc;
use veil_proto::binding::SessionBinding;
use veil_proto::config::ClusterConfig;
use veil_proto::convert::{check_id, grants, node_shares};
use veil_proto::pb;
use veil_runtime::sharing::{Comp32, PartyShares, Shares, Shares32};

/// The limits the request targets apply: small, so that a fuzzer's declared lengths are
/// expanded only up to what a node with tight limits would accept.
pub fn fuzz_limits() -> Limits {
    Limits {
        max_value_elements: 1 << 16,
        max_program_elements: 1 << 18,
        max_session_bytes: 1 << 24,
    }
}

/// A Compute request as a node validates it before touching its store: the first byte picks
/// `StoreValue` (even) or `Invoke` (odd), the rest is the protobuf message.
pub fn compute_request(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let limits = fuzz_limits();
    if kind % 2 == 0 {
        let Ok(r) = pb::StoreValueRequest::decode(body) else {
            return;
        };
        let _ = check_id("value", &r.value_id);
        let _ = grants(r.grants);
        let shares = r.shares.unwrap_or_default();
        if limits.check_value("value", shares.len).is_ok()
            && let Ok(parsed) = node_shares("", &shares, shares.len as usize)
        {
            assert_eq!(parsed.len(), shares.len as usize);
        }
    } else {
        let Ok(r) = pb::InvokeRequest::decode(body) else {
            return;
        };
        let _ = check_id("result", &r.result_id);
        for (name, s) in &r.inline_inputs {
            if limits.check_value(name.as_str(), s.len).is_ok() {
                let _ = node_shares(name, s, s.len as usize);
            }
        }
        let binding =
            |caller, mode| SessionBinding::of_request(&r, &r.program_id, caller, mode).hash();
        let semi = veil_runtime::SecurityMode::SemiHonest;
        assert_ne!(
            binding("a", semi),
            binding("b", semi),
            "the caller is bound"
        );
        let malicious = veil_runtime::SecurityMode::Malicious;
        assert_ne!(
            binding("a", semi),
            binding("a", malicious),
            "the mode is bound"
        );
    }
}

/// A link's inbound frames: `data` is a sequence of `len:u16le frame` records, each a
/// protobuf `Frame`, fed to the reassembler (limits scaled down to 64 KiB per message and
/// 256 KiB of partial messages) until it ends or the reassembler breaks the link.
pub fn peer_frames(data: &[u8]) {
    let mut r = Reassembler::new(1 << 16, 1 << 18);
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (frame, tail) = rest[2..].split_at(len);
        rest = tail;
        let Ok(frame) = pb::Frame::decode(frame) else {
            continue;
        };
        match r.push(frame) {
            Ok(Some(Event::Message { payload, .. })) => assert!(payload.len() <= 1 << 16),
            Ok(_) => {}
            Err(_) => return,
        }
        assert!(r.partial_bytes() <= 1 << 18);
    }
}

/// A store record (value or result): decoding never panics; what decodes re-encodes to the
/// same bytes, and the owner/recipient-only readers agree with the full decoders.
pub fn store_record(data: &[u8]) {
    if let Ok(v) = decode_value(data) {
        assert_eq!(decode_value_owner(data).ok(), Some(v.access.owner.clone()));
        // Version-1 and -2 records re-encode as version 3; re-decoding gives the same value.
        let again = decode_value(&encode_value(&v)).expect("re-encoded value decodes");
        assert_eq!(again, v);
    }
    if let Ok(r) = decode_result(data) {
        assert_eq!(
            decode_result_recipient(data).ok(),
            Some(r.recipient.clone())
        );
        // Version-1 records (no security byte) re-encode as version 2, semi-honest; a
        // version-2 record re-encodes byte for byte.
        let again = encode_result(&r);
        assert_eq!(decode_result(&again).ok(), Some(r), "result round trip");
        if data.get(1) == Some(&2) {
            assert_eq!(again, data, "result round trip");
        }
    }
}

/// A node or cluster configuration file: parsing never panics, and what parses serialises and
/// parses back to the same configuration. (Validation reads the files a config names and is
/// not fuzzed: configs are the operator's, and the paths it opens are theirs to choose.)
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = toml::from_str::<NodeConfig>(text) {
        let back = toml::to_string(&cfg).expect("a parsed node config serialises");
        assert_eq!(toml::from_str::<NodeConfig>(&back).ok(), Some(cfg));
    }
    if let Ok(cfg) = toml::from_str::<ClusterConfig>(text) {
        let back = toml::to_string(&cfg).expect("a parsed cluster config serialises");
        assert_eq!(toml::from_str::<ClusterConfig>(&back).ok(), Some(cfg));
    }
}

/// Valid inputs for the node targets, made by the node's own encoders: the seed corpus
/// (`(target, bytes)`; `nodes/tests/fuzz_corpus.rs` writes them under `fuzz/corpus/`).
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use crate::policy::{Access, Grant};
    use crate::store::{StoredResult, StoredValue};
    use bytes::Bytes;
    let mut out = Vec::new();
    let store = pb::StoreValueRequest {
        value_id: "corpus.emb.0".into(),
        receive: vec!["auditor".into()],
        shares: Some(pb::NodeShares {
            own_seed: vec![1; 32].into(),
            next: vec![2; 24].into(),
            len: 3,
            ring_bits: 0,
            ..Default::default()
        }),
        grants: vec![pb::Grant {
            client: "bob".into(),
            program_id: "ab".repeat(32),
        }],
    };
    out.push((
        "compute_request",
        [&[0u8][..], &store.encode_to_vec()].concat(),
    ));
    let invoke = pb::InvokeRequest {
        program_id: "cd".repeat(32),
        session: 42,
        inputs: [("emb_0".to_string(), "corpus.emb.0".to_string())].into(),
        result_id: String::new(),
        inline_inputs: [(
            "query".to_string(),
            pb::NodeShares {
                own: vec![3; 16].into(),
                next_seed: vec![4; 32].into(),
                len: 2,
                ring_bits: 0,
                ..Default::default()
            },
        )]
        .into(),
        inline_outputs: true,
    };
    out.push((
        "compute_request",
        [&[1u8][..], &invoke.encode_to_vec()].concat(),
    ));
    let frame = |f: pb::Frame| {
        let b = f.encode_to_vec();
        [&(b.len() as u16).to_le_bytes()[..], &b].concat()
    };
    let hello = pb::Frame {
        hello: Bytes::from(vec![9u8; 32]),
        ..Default::default()
    };
    let part = |session, round, payload: &[u8], last| pb::Frame {
        session,
        round,
        payload: Bytes::copy_from_slice(payload),
        last,
        ..Default::default()
    };
    out.push((
        "peer_frames",
        [
            frame(hello),
            frame(part(7, 1, &[1; 16], false)),
            frame(part(8, 1, &[2; 8], true)),
            frame(part(7, 1, &[3; 16], true)),
            frame(part(7, 2, &[], true)),
        ]
        .concat(),
    ));
    let value = StoredValue {
        access: Access {
            owner: "alice".into(),
            grants: vec![Grant::new("bob", "ef".repeat(32))],
            receive: vec!["carol".into()],
        },
        shares: PartyShares::Ring64(Arc::new(Shares {
            own: vec![1, 2, 3],
            next: vec![4, 5, 6],
        })),
    };
    out.push(("store_record", encode_value(&value)));
    let compact = StoredValue {
        shares: PartyShares::Ring32(Arc::new(Shares32 {
            own: Comp32::seeded([7; 32], 5, 3).expect("in range"),
            next: Comp32::words(vec![1u32, 2, 3]),
        })),
        ..value
    };
    out.push(("store_record", encode_value(&compact)));
    let result = StoredResult {
        recipient: "bob".into(),
        outputs: vec![("keys".into(), vec![1, u64::MAX], vec![0, 7])],
        rounds: 220,
        bytes_sent: 4096,
        security: veil_runtime::SecurityMode::Malicious,
    };
    out.push(("store_record", encode_result(&result)));
    out
}
