//! modelrunner: the command-line client. Parses arguments and calls the daemon.

mod client;
mod engines;
mod logs;
mod models;
mod package;
mod run;
mod transfer;
mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Run open LLMs locally: package, pull and serve models through modelrunnerd.
#[derive(Debug, Parser)]
#[command(name = "modelrunner", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Package a GGUF file (with license, chat template, projector) and load it
    Package {
        #[command(flatten)]
        args: package::PackageArgs,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// List local models
    #[command(alias = "ls")]
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// Only print model IDs
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show a model's details as JSON
    Inspect {
        /// Model name, tag or ID
        model: String,
        /// Read the manifest and config from the registry instead (nothing is pulled)
        #[arg(short, long)]
        remote: bool,
    },
    /// Pull a model from a registry
    Pull {
        /// Model reference, e.g. ai/smollm2 or ghcr.io/org/model:tag
        model: String,
        /// Print the daemon's progress lines as JSON
        #[arg(long)]
        json: bool,
    },
    /// Push a model to its registry (the model's name says where)
    Push {
        /// Model reference, e.g. registry.example.com/org/model:tag
        model: String,
        /// Print the daemon's progress lines as JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove models (a tag, or a model by ID)
    #[command(alias = "remove")]
    Rm {
        /// Models to remove
        #[arg(required = true)]
        models: Vec<String>,
        /// Remove a model by ID even if it has several tags
        #[arg(short, long)]
        force: bool,
    },
    /// Tag a model
    Tag {
        /// Existing model
        source: String,
        /// New tag
        target: String,
    },
    /// Show disk usage
    Df {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Export a model as a tar archive
    #[command(alias = "save")]
    Export {
        /// Model name, tag or ID
        model: String,
        /// Output file (stdout when omitted and not a terminal)
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Load a model from a tar archive
    Load {
        /// Archive to read
        #[arg(short, long)]
        input: PathBuf,
        /// Tag to give the loaded model
        #[arg(short, long)]
        tag: Option<String>,
    },
    /// Remove every model from the store
    Purge {
        /// Do not ask for confirmation
        #[arg(short, long)]
        force: bool,
    },
    /// Chat with a model: one answer for a prompt, or an interactive chat
    Run {
        #[command(flatten)]
        args: run::RunArgs,
    },
    /// List running models
    Ps {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Unload running models (idle ones; busy ones finish first)
    Unload {
        /// Unload every model
        #[arg(long)]
        all: bool,
        /// Models to unload
        models: Vec<String>,
    },
    /// Show the daemon's log (runner output included, tagged by model)
    Logs {
        /// Keep printing new lines
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines
        #[arg(short = 'n', long)]
        tail: Option<usize>,
    },
    /// Check that the daemon is running
    Status {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show the daemon's version
    Version,
}

async fn dispatch(cmd: Command) -> anyhow::Result<()> {
    let c = client::Client::from_env()?;
    match cmd {
        Command::Package { args, json } => package::run(&c, args, json).await,
        Command::List { json, quiet } => models::list(&c, json, quiet).await,
        Command::Inspect { model, remote } => models::inspect(&c, &model, remote).await,
        Command::Pull { model, json } => transfer::pull(&c, &model, json).await,
        Command::Push { model, json } => transfer::push(&c, &model, json).await,
        Command::Rm { models, force } => models::rm(&c, &models, force).await,
        Command::Tag { source, target } => models::tag(&c, &source, &target).await,
        Command::Df { json } => models::df(&c, json).await,
        Command::Export { model, output } => models::export(&c, &model, output).await,
        Command::Load { input, tag } => models::load(&c, input, tag).await,
        Command::Purge { force } => models::purge(&c, force).await,
        Command::Run { args } => run::run(&c, args).await,
        Command::Ps { json } => engines::ps(&c, json).await,
        Command::Unload { all, models } => engines::unload(&c, all, &models).await,
        Command::Status { json } => models::status(&c, json).await,
        Command::Logs { follow, tail } => logs::logs(&c, follow, tail).await,
        Command::Version => {
            let v = c.get_json("/version").await?;
            println!(
                "Client: {}\nServer: {}",
                env!("CARGO_PKG_VERSION"),
                v["version"].as_str().unwrap_or("?")
            );
            Ok(())
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(dispatch(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
