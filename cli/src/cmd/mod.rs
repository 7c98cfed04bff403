//! One module per `veil` subcommand (argument parsing stays in `main.rs`).

pub mod bench;
pub mod device;
pub mod devnet;
pub mod health;
pub mod node;
pub mod prepare;
pub mod program;
pub mod run;
