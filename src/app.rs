//! Assembles the running service from a [`Config`]: connects and migrates the
//! database, builds the shared state and binds the listener. `main` and the
//! integration tests start the service the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::{self, AppInner, AppState};
use crate::store::Store;

/// A service ready to run: state built, port bound.
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

/// Connects to the database named by the configuration and applies migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.db_url, config.db_max_connections)
        .await
        .with_context(|| {
            format!(
                "cannot connect to the database at DB_URL ({})",
                redact_url(&config.db_url)
            )
        })?;
    store
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    Ok(store)
}

/// Hides the password of a database URL for messages.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => raw.to_string(),
    }
}

impl Server {
    /// Builds the service and binds `config.listen_addr`.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = open_store(&config).await?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("cannot listen on LISTEN_ADDR {}", config.listen_addr))?;
        let state = AppState(Arc::new(AppInner { config, store }));
        Ok(Self { listener, state })
    }

    /// The bound address (tests bind port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.config.listen_addr)
    }

    /// The shared state, for tests that look behind the API.
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until the process receives Ctrl-C or SIGTERM.
    pub async fn run(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(listen.addr = %self.local_addr(), "serving the HTTP API");
        axum::serve(self.listener, http::router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .context("the HTTP server failed")
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
