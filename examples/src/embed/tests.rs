//! Tests for the embedder and its table loader (they use the compiled-in table).

use std::time::Instant;

use super::*;

/// (text, ids) from the Hugging Face tokenizer of all-MiniLM-L6-v2 (normalizer →
/// pre-tokenizer → WordPiece), printed by `distill_embedder.py --print-fixture`.
const HF_CASES: &[(&str, &[u32])] = &[
    (
        "How do I start a local cluster?",
        &[2129, 2079, 1045, 2707, 1037, 2334, 9324, 1029],
    ),
    (
        "Run `veil devnet` to launch THREE nodes on 127.0.0.1:7000!",
        &[
            2448, 1036, 15562, 16475, 7159, 1036, 2000, 4888, 2093, 14164, 2006, 13029, 1012, 1014,
            1012, 1014, 1012, 1015, 1024, 6352, 2692, 999,
        ],
    ),
    (
        "Caf\u{e9} na\u{ef}ve r\u{e9}sum\u{e9} \u{dc}berm\u{e4}\u{df}ig co\u{f6}perate",
        &[7668, 15743, 13746, 19169, 2863, 19310, 8004, 17654],
    ),
    (
        "\u{4e2d}\u{6587}\u{5b57}\u{7b26} and \u{65e5}\u{672c}\u{8a9e}\u{30c6}\u{30ad}\u{30b9}\u{30c8} mixed with English.",
        &[
            1746, 1861, 100, 100, 1998, 1864, 1876, 1950, 1713, 30227, 30233, 30240, 3816, 2007,
            2394, 1012,
        ],
    ),
    (
        "unaffable tokenization of supercalifragilisticexpialidocious words",
        &[
            14477, 20961, 3468, 19204, 3989, 1997, 3565, 9289, 10128, 29181, 24411, 4588, 10288,
            19312, 21273, 10085, 6313, 2616,
        ],
    ),
    (
        "e-mail: alice@example.com; cost $12.50 (approx.) \u{2014} 3\u{d7}faster\u{2026}",
        &[
            1041, 1011, 5653, 1024, 5650, 1030, 2742, 1012, 4012, 1025, 3465, 1002, 2260, 1012,
            2753, 1006, 22480, 1012, 1007, 1517, 1017, 26306, 24333, 2121, 1529,
        ],
    ),
    (
        "tabs\u{9}and\u{a}newlines\u{d}\u{a}and\u{a0}nbsp\u{3000}ideographic space",
        &[
            21628, 2015, 1998, 2047, 12735, 1998, 1050, 5910, 2361, 8909, 8780, 14773, 2686,
        ],
    ),
    (
        "zero\u{200b}width soft\u{ad}hyphen and control\u{7}bell",
        &[
            5717, 9148, 11927, 2232, 3730, 10536, 8458, 2368, 1998, 2491, 17327,
        ],
    ),
    (
        "\u{395}\u{3bb}\u{3bb}\u{3b7}\u{3bd}\u{3b9}\u{3ba}\u{3ac} \u{438} \u{440}\u{443}\u{441}\u{441}\u{43a}\u{438}\u{439} \u{442}\u{435}\u{43a}\u{441}\u{442}, \u{bd} \u{2103} \u{2122} \u{1f642} emoji",
        &[
            1159, 29727, 29727, 24824, 16177, 18199, 29726, 14608, 1188, 1195, 29748, 29747, 29747,
            23925, 15414, 1197, 15290, 23925, 29747, 22919, 1010, 1092, 100, 1580, 100, 7861,
            29147, 2072,
        ],
    ),
    (
        "[CLS] isn't special here ##piece",
        &[
            1031, 18856, 2015, 1033, 3475, 1005, 1056, 2569, 2182, 1001, 1001, 3538,
        ],
    ),
    ("", &[]),
];

fn builtin() -> &'static Embedder {
    Embedder::builtin().expect("the compiled-in table loads")
}

fn table() -> Vec<u8> {
    BUILTIN_TABLE.to_vec()
}

#[test]
fn embed_tokenize_matches_hf_tokenizer() {
    let e = builtin();
    for (text, ids) in HF_CASES {
        assert_eq!(e.tokenize(text), *ids, "text {text:?}");
    }
    // Over-long words (> 100 chars) become [UNK]; 100 chars is still pieced.
    let long = format!("{} short {}", "a".repeat(101), "b".repeat(100));
    let mut expected = vec![100, 2460, 22861];
    expected.extend([10322; 49]);
    assert_eq!(e.tokenize(&long), expected);
}

#[test]
fn embed_builtin_table_shape() {
    let e = builtin();
    assert_eq!(e.dim(), 256);
    assert_eq!(e.vocab_size(), 30522);
    assert!(BUILTIN_TABLE.len() <= 8_000_000);
}

#[test]
fn embed_unit_length_and_deterministic() {
    let e = builtin();
    for text in [
        "How do I start a local cluster?",
        "x",
        "Übermäßig 中文 naïve",
        HF_CASES[4].0,
    ] {
        let a = e.embed(text).expect("embeds");
        assert_eq!(a.len(), e.dim());
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{text:?}: norm {norm}");
        assert_eq!(
            a,
            e.embed(text).expect("embeds"),
            "{text:?} not deterministic"
        );
    }
    // A second, independently parsed table gives bit-identical vectors.
    let other = Embedder::from_bytes(BUILTIN_TABLE).expect("parses");
    assert_eq!(
        other.embed("private RAG").ok(),
        builtin().embed("private RAG").ok()
    );
}

#[test]
fn embed_no_tokens_is_an_error() {
    let e = builtin();
    for text in [
        "",
        "   \n\t",
        "?!... ,;",
        "\u{1f642}\u{1f642}",
        "\u{7}\u{200b}",
    ] {
        assert!(
            matches!(e.embed(text), Err(EmbedError::NoTokens)),
            "{text:?}"
        );
    }
}

#[test]
fn embed_paraphrase_beats_unrelated() {
    let e = builtin();
    let triples = [
        (
            "private retrieval of passages",
            "secret-shared search over documents",
            "chocolate cake recipe",
        ),
        (
            "How do I start a local cluster?",
            "Run veil devnet to launch three nodes on loopback",
            "The weather is nice today",
        ),
        (
            "The server ran out of memory",
            "the node crashed with an OOM error",
            "a cat sleeping on the sofa",
        ),
        (
            "Encrypt the data before upload",
            "ciphertext is sent to the cloud",
            "the football match was a draw",
        ),
    ];
    for (a, b, c) in triples {
        let (va, vb, vc) = (
            e.embed(a).unwrap(),
            e.embed(b).unwrap(),
            e.embed(c).unwrap(),
        );
        let (near, far) = (cosine(&va, &vb), cosine(&va, &vc));
        assert!(near > far, "{a:?}: paraphrase {near} <= unrelated {far}");
    }
}

#[test]
fn embed_speed_1kb_text() {
    let e = builtin();
    let text: String = "Secret-shared retrieval keeps the query private while three nodes score \
                        every passage; only the client learns the top results. "
        .repeat(8)
        .chars()
        .take(1024)
        .collect();
    e.embed(&text).expect("warm up");
    let runs = 50;
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(e.embed(std::hint::black_box(&text)).expect("embeds"));
    }
    let per = start.elapsed() / runs;
    // Debug builds are slower; the release figure is in the assets README.
    assert!(per.as_millis() < 20, "1 KB embed took {per:?}");
    eprintln!("1 KB embed: {per:?}");
}

#[test]
fn embed_loader_rejects_wrong_magic() {
    let mut t = table();
    t[0] = b'X';
    assert!(matches!(
        Embedder::from_bytes(&t),
        Err(EmbedError::BadMagic)
    ));
    assert!(matches!(
        Embedder::from_bytes(b"nope"),
        Err(EmbedError::BadMagic)
    ));
    assert!(matches!(
        Embedder::from_bytes(b""),
        Err(EmbedError::Truncated { .. })
    ));
}

#[test]
fn embed_loader_rejects_truncated_and_trailing() {
    let t = table();
    for len in [t.len() - 1, t.len() - 33, t.len() / 2, 40, 12] {
        let r = Embedder::from_bytes(&t[..len]);
        assert!(
            matches!(r, Err(EmbedError::Truncated { .. })),
            "len {len}: {r:?}"
        );
    }
    let mut longer = t.clone();
    longer.push(0);
    assert!(matches!(
        Embedder::from_bytes(&longer),
        Err(EmbedError::TrailingBytes(1))
    ));
}

#[test]
fn embed_loader_rejects_flipped_bytes() {
    let t = table();
    // A byte in the vocab, the bitmap/scales region, the int8 rows, and the digest itself.
    for pos in [
        HEADER_LEN + 10,
        HEADER_LEN + 240_000,
        t.len() / 2,
        t.len() - 33,
        t.len() - 1,
    ] {
        let mut c = t.clone();
        c[pos] ^= 0x40;
        let r = Embedder::from_bytes(&c);
        assert!(
            matches!(r, Err(EmbedError::ChecksumMismatch)),
            "pos {pos}: {r:?}"
        );
    }
}

#[test]
fn embed_loader_rejects_bad_header() {
    let t = table();
    let patch = |field: usize, value: u32| {
        let mut c = t.clone();
        let at = 8 + 4 * field;
        c[at..at + 4].copy_from_slice(&value.to_le_bytes());
        Embedder::from_bytes(&c)
    };
    assert!(matches!(
        patch(0, 2),
        Err(EmbedError::UnsupportedVersion(2))
    ));
    assert!(matches!(
        patch(3, 0x100),
        Err(EmbedError::UnsupportedFlags(0x100))
    ));
    assert!(matches!(patch(2, 0), Err(EmbedError::Malformed(_))));
    assert!(matches!(patch(1, u32::MAX), Err(EmbedError::Malformed(_))));
    // Sizes that would need huge allocations are refused by the length check, not allocated.
    assert!(matches!(patch(2, 4096), Err(EmbedError::Truncated { .. })));
    assert!(matches!(
        patch(6, u32::MAX),
        Err(EmbedError::Truncated { .. })
    ));
    // A consistent header with a stale digest fails the checksum.
    assert!(matches!(patch(5, 0), Err(EmbedError::ChecksumMismatch)));
}

#[test]
fn embed_from_file_roundtrip_and_missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("table.bin");
    std::fs::write(&path, BUILTIN_TABLE).expect("write");
    let e = Embedder::from_file(&path).expect("loads");
    assert_eq!(
        e.embed("hello world").ok(),
        builtin().embed("hello world").ok()
    );
    let missing = Embedder::from_file(&dir.path().join("missing.bin"));
    assert!(matches!(missing, Err(EmbedError::Io { .. })));
}
