//! The command line: `orchestrator [--config FILE] <command>`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// PaaS Orchestrator of the INFN DataCloud.
#[derive(Debug, Parser)]
#[command(name = "orchestrator", version, about)]
pub struct Cli {
    /// A TOML file with settings (keys are the environment variable names);
    /// environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The roles of the binary (DESIGN.md §1).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API and run the deployment engine (unless ENGINE=external).
    Serve {
        /// Address to listen on (overrides LISTEN_ADDR).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Serve the HTTP API alone (run `worker`s beside it).
    Api {
        /// Address to listen on (overrides LISTEN_ADDR).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Run the deployment engine alone.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// `serve` on loopback with a development identity provider; prints tokens.
    Dev {
        /// Address to listen on (overrides LISTEN_ADDR); must be a loopback address.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
}
