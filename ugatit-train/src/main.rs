//! `ugatit-train`: train U-GAT-IT and manage its run folders.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod inspect;

#[derive(Parser)]
#[command(
    name = "ugatit-train",
    version,
    about = "Train U-GAT-IT and manage its runs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print what a run folder, checkpoint or weights file holds.
    Inspect {
        /// A run folder, checkpoint folder, our safetensors file or an official .pt.
        path: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Inspect { path } => inspect::run(&path),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
