//! `veil program`: write an example program JSON (`example`) or check one before running it
//! (`check`: validation, content-hash id, inputs, outputs, cost).
//!
//! A program is the JSON of `veil_circuits::Program` (`Program::to_json`): a version, the typed
//! inputs with their owners, the ops in SSA order (each op names earlier values by index) and
//! the outputs with their recipients. `docs/programs.md` documents the format;
//! `examples/programs/` holds the examples this command writes, with input files for
//! `veil run`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use veil_circuits::cost::program_cost;
use veil_circuits::{Builder, Fixed, Program, Ring, ValidatedProgram, Visibility};

/// The example programs `veil program example` writes: (name, what it computes).
pub const EXAMPLES: [(&str, &str); 4] = [
    (
        "mul",
        "z = x ⊙ y over the ring (integers mod 2^64), elementwise",
    ),
    (
        "dot",
        "z = Σ x_i·y_i in fixed point (16 fractional bits): one secret dot product",
    ),
    (
        "compare",
        "gt = (x > y) as 0/1 and m = max(x, y), elementwise, over the ring",
    ),
    (
        "mean",
        "m = (Σ x_i) / n in fixed point: a sum (local) and a public scaling (one truncation)",
    ),
];

/// The example program `name` over inputs of `size` elements, all outputs to `client`.
pub fn example(name: &str, size: usize, client: &str) -> Result<ValidatedProgram> {
    if size == 0 {
        bail!("--size must be at least 1");
    }
    let fx = Fixed::default();
    let mut b = Builder::new();
    let to = |b: &mut Builder, out: &str, v| {
        b.output(out, v, veil_circuits::Recipient::Client(client.to_string()))
    };
    match name {
        "mul" => {
            let x = b.secret_vector("x", size, Ring);
            let y = b.secret_vector("y", size, Ring);
            let z = b.mul(x, y);
            to(&mut b, "z", z);
        }
        "dot" => {
            let x = b.secret_vector("x", size, fx);
            let y = b.secret_vector("y", size, fx);
            let z = b.fixdot(x, y);
            to(&mut b, "z", z);
        }
        "compare" => {
            let x = b.secret_vector("x", size, Ring);
            let y = b.secret_vector("y", size, Ring);
            let gt = b.gt(x, y);
            let m = b.max(x, y);
            to(&mut b, "gt", gt);
            to(&mut b, "m", m);
        }
        "mean" => {
            let x = b.secret_vector("x", size, fx);
            let s = b.sum(x);
            let inv = b.const_fixed(1.0 / size as f64, fx);
            let m = b.fixmul(s, inv);
            to(&mut b, "m", m);
        }
        other => {
            let names: Vec<&str> = EXAMPLES.iter().map(|(n, _)| *n).collect();
            bail!("unknown example '{other}'; known: {}", names.join(", "));
        }
    }
    Ok(b.finish()?)
}

/// `veil program example`: writes the program to `out` (or stdout).
pub fn write_example(name: &str, size: usize, client: &str, out: Option<&Path>) -> Result<()> {
    let p = example(name, size, client)?;
    let json = p.program().to_json();
    match out {
        Some(path) => {
            std::fs::write(path, format!("{json}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "veil program: wrote '{name}' ({size} elements, outputs to '{client}') to {}; \
                 id {}",
                path.display(),
                p.id()
            );
        }
        None => println!("{json}"),
    }
    Ok(())
}

/// `veil program check`: parses and validates `path` and prints what a node will see.
pub fn check(path: &Path) -> Result<()> {
    let json =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let p = Program::from_json(&json)
        .and_then(|p| p.validate())
        .with_context(|| format!("{} is not a valid program", path.display()))?;
    print!("{}", describe(&p));
    Ok(())
}

/// A human-readable summary: id, inputs, outputs, ops and cost.
fn describe(p: &ValidatedProgram) -> String {
    let prog = p.program();
    let cost = program_cost(p);
    let mut s = format!("program {}\n", p.id());
    s += &format!("inputs ({}):\n", prog.inputs.len());
    for i in &prog.inputs {
        let vis = match i.ty.vis {
            Visibility::Secret => "secret",
            Visibility::Public => "public",
        };
        s += &format!(
            "  {:<12} {vis} {:?} {:?}, {} elements, owner {:?}\n",
            i.name,
            i.ty.elem,
            i.ty.shape,
            i.ty.shape.len(),
            i.owner
        );
    }
    s += &format!("outputs ({}):\n", prog.outputs.len());
    for o in &prog.outputs {
        let ty = &p.types()[o.value.index()];
        s += &format!(
            "  {:<12} {:?} {:?} → {:?}\n",
            o.name, ty.elem, ty.shape, o.recipient
        );
    }
    s += &format!(
        "{} ops; {} rounds; bytes sent by P0, P1, P2: {:?}\n",
        prog.ops.len(),
        cost.rounds,
        cost.bytes_sent
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_validates_and_round_trips_through_json() {
        for (name, _) in EXAMPLES {
            for size in [1, 4, 100] {
                let p = example(name, size, "alice").unwrap();
                let back = Program::from_json(&p.program().to_json())
                    .unwrap()
                    .validate()
                    .unwrap();
                assert_eq!(back.id(), p.id(), "{name} {size}");
                assert!(describe(&p).contains(&p.id().to_string()));
            }
        }
        assert!(example("nope", 4, "alice").is_err());
        assert!(example("mul", 0, "alice").is_err());
    }

    #[test]
    fn the_committed_examples_are_what_the_command_writes() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/programs");
        for (name, _) in EXAMPLES {
            let committed = std::fs::read_to_string(dir.join(format!("{name}.json")))
                .unwrap_or_else(|e| panic!("examples/programs/{name}.json: {e}"));
            let p = example(name, 4, "alice").unwrap();
            assert_eq!(committed.trim_end(), p.program().to_json(), "{name}");
        }
    }

    #[test]
    fn the_examples_compute_what_they_say_in_the_clear() {
        use std::collections::HashMap;
        use veil_circuits::eval::evaluate;
        use veil_circuits::fixed;
        let f = Fixed::default().0;
        let enc = |v: &[f64]| fixed::encode_slice(v, f).unwrap();
        let ring = |v: &[i64]| v.iter().map(|x| *x as u64).collect::<Vec<u64>>();
        let run = |name: &str, inputs: &[(&str, Vec<u64>)]| {
            let p = example(name, 4, "alice").unwrap();
            let inputs: HashMap<String, Vec<u64>> = inputs
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect();
            evaluate(&p, &inputs).unwrap()
        };
        let out = run(
            "mul",
            &[("x", ring(&[1, -2, 3, 4])), ("y", ring(&[5, 6, -7, 8]))],
        );
        assert_eq!(out["z"], ring(&[5, -12, -21, 32]));
        let out = run(
            "compare",
            &[("x", ring(&[1, -2, 3, 4])), ("y", ring(&[5, -6, 3, -8]))],
        );
        assert_eq!(out["gt"], vec![0, 1, 0, 1]);
        assert_eq!(out["m"], ring(&[5, -2, 3, 4]));
        let out = run(
            "dot",
            &[
                ("x", enc(&[1.0, 2.0, 0.5, -1.0])),
                ("y", enc(&[2.0, 0.25, 4.0, 3.0])),
            ],
        );
        assert!((fixed::decode(out["z"][0], f) - 1.5).abs() < 1e-3);
        let out = run("mean", &[("x", enc(&[1.0, 2.0, 3.5, -0.5]))]);
        assert!((fixed::decode(out["m"][0], f) - 1.5).abs() < 1e-3);
    }
}
