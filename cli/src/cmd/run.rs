//! `veil run`: run a program JSON on a cluster with inputs from files.

use anyhow::{Context, Result, bail};

/// `veil run`: share the inputs, run the program on the cluster, print the outputs.
pub async fn run_program(
    program: &std::path::Path,
    inputs: &[String],
    cluster: &std::path::Path,
) -> Result<()> {
    use veil_circuits::{ElemType, Program, Recipient, fixed};
    let json = std::fs::read_to_string(program)
        .with_context(|| format!("reading {}", program.display()))?;
    let mut client = veil_client::Client::connect(cluster).await?;
    let p = Program::from_json(&json)
        .context("parsing the program")?
        .validate()
        .and_then(|p| p.with_outputs_to(&Recipient::Client(client.name().to_string())))
        .context("validating the program")?;
    let files: std::collections::HashMap<&str, &str> = inputs
        .iter()
        .map(|s| {
            s.split_once('=')
                .with_context(|| format!("--input {s}: expected NAME=FILE"))
        })
        .collect::<Result<_>>()?;
    let tag: u32 = rand::random();
    let mut bindings = Vec::new();
    for decl in &p.program().inputs {
        let file = files
            .get(decl.name.as_str())
            .with_context(|| format!("input '{}' needs --input {}=FILE", decl.name, decl.name))?;
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
        let words = text
            .split_whitespace()
            .map(|t| match decl.ty.elem {
                ElemType::Fixed(f) => t
                    .parse::<f64>()
                    .map_err(anyhow::Error::from)
                    .and_then(|x| Ok(fixed::encode(x, f)?)),
                _ => t
                    .parse::<i64>()
                    .map(|x| x as u64)
                    .map_err(anyhow::Error::from),
            })
            .collect::<Result<Vec<u64>>>()
            .with_context(|| format!("parsing {file}"))?;
        if words.len() != decl.ty.shape.len() {
            bail!(
                "{file} has {} numbers, input '{}' expects {}",
                words.len(),
                decl.name,
                decl.ty.shape.len()
            );
        }
        let id = format!("run-{tag:08x}-{}", decl.name);
        client.store_secret(&id, &words, &[], &[]).await?;
        bindings.push((decl.name.clone(), id));
    }
    let program_id = client.store_program(&p).await?;
    let binding: Vec<(&str, &str)> = bindings
        .iter()
        .map(|(n, i)| (n.as_str(), i.as_str()))
        .collect();
    let result_id = format!("run-{tag:08x}-result");
    let summary = client.invoke(&program_id, &binding, &result_id).await?;
    let outputs = client.fetch_verified(&result_id, &summary.receipt).await?;
    for out in &p.program().outputs {
        let words = &outputs[&out.name];
        let text: Vec<String> = match p.types()[out.value.index()].elem {
            ElemType::Fixed(f) => words
                .iter()
                .map(|w| fixed::decode(*w, f).to_string())
                .collect(),
            _ => words.iter().map(|w| (*w as i64).to_string()).collect(),
        };
        println!("{} = [{}]", out.name, text.join(", "));
    }
    eprintln!(
        "veil run: {} rounds, bytes sent per node {:?}",
        summary.rounds, summary.bytes_sent
    );
    eprint!(
        "veil run: receipts of program {program_id}, verified against cluster.toml's keys:\n{}",
        summary.receipt
    );
    Ok(())
}
