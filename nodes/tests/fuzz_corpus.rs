//! The fuzz targets (`fuzz/`, `cargo +nightly fuzz run <target>`) on stable: every committed
//! seed and regression input goes through the same function the target calls, so a crash a
//! campaign found stays fixed. `cargo test --test fuzz_corpus -- --ignored` rewrites the seed
//! corpus from the project's own encoders.

use std::path::{Path, PathBuf};

type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 8] = [
    ("program_json", veil_circuits::fuzzing::program_json),
    ("program_ops", veil_circuits::fuzzing::program_ops),
    ("onnx_model", veil_circuits::fuzzing::onnx_model),
    ("fhe_format", veil_runtime::fuzzing::fhe_format),
    ("compute_request", veil_node::fuzzing::compute_request),
    ("peer_frames", veil_node::fuzzing::peer_frames),
    ("store_record", veil_node::fuzzing::store_record),
    ("config_toml", veil_node::fuzzing::config_toml),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn every_seed_and_regression_input_passes_its_target() {
    for (name, target) in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(name));
        assert!(!seeds.is_empty(), "no seed corpus for {name}");
        let regressions = files(&fuzz_dir().join("regressions").join(name));
        for path in seeds.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            target(&data);
        }
    }
}

#[test]
fn targets_survive_truncated_and_flipped_seeds() {
    // A cheap stand-in for a campaign on stable: every prefix of every seed and one bit flip at
    // each of its first 64 bytes.
    for (name, target) in TARGETS {
        for path in files(&fuzz_dir().join("corpus").join(name)) {
            let data = std::fs::read(&path).unwrap();
            for cut in (0..data.len()).step_by((data.len() / 64).max(1)) {
                target(&data[..cut]);
            }
            for i in 0..data.len().min(64) {
                let mut d = data.clone();
                d[i] ^= 1 << (i % 8);
                target(&d);
            }
        }
    }
}

/// Writes the seed corpus (`fuzz/corpus/<target>/seed-<k>`) from the project's encoders.
#[test]
#[ignore = "rewrites fuzz/corpus; run by hand"]
fn write_seed_corpus() {
    use veil_circuits::{Builder, Fixed, Recipient, Ring};
    let mut seeds: Vec<(&str, Vec<u8>)> = veil_node::fuzzing::seeds();
    // Op streams: every op once on the first inputs, then a mixed chain.
    seeds.push(("program_ops", (0..32u8).flat_map(|op| [op, 0]).collect()));
    seeds.push((
        "program_ops",
        (0..96u8).map(|i| i.wrapping_mul(37)).collect(),
    ));
    // Programs: ring and fixed-point arithmetic, comparisons, selection, a small model.
    let mut b = Builder::new();
    let x = b.secret_vector("x", 4, Ring);
    let y = b.secret_vector("y", 4, Ring);
    let z = b.mul(x, y);
    let l = b.ltz(z);
    let m = b.max(x, y);
    b.output("z", z, Recipient::Client("alice".into()));
    b.output("l", l, Recipient::Client("alice".into()));
    b.output("m", m, Recipient::Client("alice".into()));
    seeds.push((
        "program_json",
        b.finish().unwrap().program().to_json().into_bytes(),
    ));
    let mut b = Builder::new();
    let t = Fixed::with_frac_bits(16);
    let x = b.secret_vector("x", 3, t);
    let s = b.sigmoid(x);
    let k = b.argmax(s);
    b.output("k", k, Recipient::Client("bob".into()));
    seeds.push((
        "program_json",
        b.finish().unwrap().program().to_json().into_bytes(),
    ));
    let shape = veil_circuits::retrieval::RetrievalShape {
        dim: 4,
        width: 2,
        blocks: vec![3, 2],
    };
    let p = veil_circuits::retrieval::retrieval_program(&shape, 2, "owner", "asker").unwrap();
    seeds.push(("program_json", p.program().to_json().into_bytes()));
    // ONNX: the bundled digits models, and their compiled programs.
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/assets/digits");
    for f in files(&assets) {
        if f.extension().is_some_and(|e| e == "onnx") {
            let bytes = std::fs::read(&f).unwrap();
            let model = veil_circuits::onnx::OnnxModel::from_bytes(&bytes).unwrap();
            let c = veil_circuits::onnx::compile(&model, &Default::default()).unwrap();
            seeds.push(("program_json", c.program.program().to_json().into_bytes()));
            seeds.push(("onnx_model", bytes));
        }
    }
    // TFHE objects of a tiny corpus.
    let emb: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin()).collect();
    let clustering = veil_runtime::fhe::Clustering::KMeans {
        clusters: 1,
        iterations: 1,
        seed: 0,
    };
    let corpus = veil_runtime::fhe::ScoringCorpus::prepare(&emb, 4, clustering).unwrap();
    seeds.push(("fhe_format", corpus.info.to_bytes()));
    seeds.push(("fhe_format", corpus.to_bytes()));
    seeds.push(("fhe_format", corpus.db.hint().to_bytes()));
    let passages = veil_runtime::fhe::PassageDb::new(&[b"veil".to_vec(), Vec::new()]).unwrap();
    seeds.push(("fhe_format", passages.to_bytes()));
    // Configs as `veil devnet` writes them.
    let dir = tempfile::tempdir().unwrap();
    let layout = veil_node::devnet::write_devnet(dir.path(), 7300, &["alice"]).unwrap();
    seeds.push((
        "config_toml",
        std::fs::read(&layout.node_configs[0]).unwrap(),
    ));
    seeds.push((
        "config_toml",
        std::fs::read(&layout.cluster_configs[0].1).unwrap(),
    ));

    let root = fuzz_dir().join("corpus");
    for (name, _) in TARGETS {
        let dir = root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut count = std::collections::HashMap::new();
    for (name, bytes) in seeds {
        let k = count.entry(name).or_insert(0);
        *k += 1;
        std::fs::write(root.join(name).join(format!("seed-{k}")), bytes).unwrap();
    }
}
