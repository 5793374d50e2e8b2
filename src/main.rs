//! The `orchestrator` binary: parses the command line and configuration, then hands
//! over to the library.

use clap::Parser;
use orchestrator::cli::{Cli, Command};
use orchestrator::config::Config;
use orchestrator::{app, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("orchestrator: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(&config);
    let result = match cli.command {
        Command::Serve { listen } => {
            if let Some(addr) = listen {
                config.listen_addr = addr;
            }
            serve(config).await
        }
        Command::Api { listen } => {
            if let Some(addr) = listen {
                config.listen_addr = addr;
            }
            api(config).await
        }
        Command::Worker => app::worker(config).await,
        Command::Migrate => app::open_store(&config).await.map(|_| {
            tracing::info!("database migrations applied");
        }),
        Command::Dev { listen } => {
            if let Some(addr) = listen {
                config.listen_addr = addr;
            }
            app::dev(config).await
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "orchestrator stopped");
            eprintln!("orchestrator: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    app::Server::build(config).await?.run().await
}

async fn api(config: Config) -> anyhow::Result<()> {
    app::Server::build(config)
        .await?
        .without_engine()
        .run()
        .await
}
