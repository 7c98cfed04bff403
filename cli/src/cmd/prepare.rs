//! `veil retrieval-prepare`: turn embeddings (and passages) into a corpus directory a node's
//! Retrieval service serves.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// `veil retrieval-prepare`: embeddings (+ passages) → a corpus directory.
pub fn retrieval_prepare(
    out: &std::path::Path,
    (synthetic, embeddings, dim): (Option<usize>, Option<PathBuf>, Option<usize>),
    (clusters, iterations, seed): (Option<usize>, usize, u64),
    (passages_dir, synthetic_passages): (Option<PathBuf>, bool),
) -> Result<()> {
    use std::time::Instant;
    use veil_node::retrieval_files as files;
    use veil_runtime::fhe::{Clustering, PassageDb, ScoringCorpus};
    let (emb, dim, synthetic) = match (synthetic, embeddings, dim) {
        (Some(n), None, dim) => {
            let dim = dim.unwrap_or(384);
            eprintln!("retrieval-prepare: generating {n} synthetic embeddings of dimension {dim}…");
            (files::synthetic_embeddings(n, dim, seed), dim, true)
        }
        (None, Some(path), Some(dim)) => (files::read_embeddings_f32(&path, dim)?, dim, false),
        (None, Some(_), None) => bail!("--embeddings needs --dim"),
        _ => bail!("give --synthetic N or --embeddings FILE --dim D"),
    };
    let n = emb.len() / dim.max(1);
    let c = clusters.unwrap_or_else(|| Clustering::default_clusters(n, dim));
    let clustering = if synthetic || iterations == 0 {
        Clustering::RandomBalanced { clusters: c, seed }
    } else {
        Clustering::KMeans {
            clusters: c,
            iterations,
            seed,
        }
    };
    eprintln!("retrieval-prepare: {n} documents × {dim}, {c} clusters ({clustering:?})…");
    let t = Instant::now();
    let corpus = ScoringCorpus::prepare(&emb, dim, clustering).context("preparing the corpus")?;
    drop(emb);
    let prepare_s = t.elapsed().as_secs_f64();
    let passages = match (passages_dir, synthetic_passages) {
        (Some(dir), _) => Some(files::read_passages_dir(&dir)?),
        (None, true) => Some(files::synthetic_passages(n, seed)),
        (None, false) => None,
    };
    let passage_db = match &passages {
        Some(p) => {
            if p.len() != n {
                eprintln!(
                    "retrieval-prepare: warning: {} passages for {n} documents",
                    p.len()
                );
            }
            eprintln!("retrieval-prepare: laying out {} passages…", p.len());
            Some(PassageDb::new(p).context("preparing the passages")?)
        }
        None => None,
    };
    eprintln!(
        "retrieval-prepare: computing hints and writing {}…",
        out.display()
    );
    let w = files::write_corpus_dir(out, &corpus, passage_db.as_ref())?;
    let s = &w.score_shape;
    println!(
        "scoring matrix: {} rows × {} cols, db {} (prepared in {prepare_s:.2} s, hint in {:.2} s)",
        s.rows,
        s.cols,
        hex::encode(s.id.0),
        w.score_hint_time.as_secs_f64()
    );
    if let (Some(p), Some(t)) = (&w.passage_shape, w.passage_hint_time) {
        println!(
            "passage matrix: {} rows × {} passages, db {} (hint in {:.2} s)",
            p.rows,
            p.cols,
            hex::encode(p.id.0),
            t.as_secs_f64()
        );
    }
    for (path, bytes) in &w.files {
        println!("wrote {} ({:.2} MB)", path.display(), *bytes as f64 / 1e6);
    }
    Ok(())
}
