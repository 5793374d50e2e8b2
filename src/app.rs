//! Assembles the running service from a [`Config`]: connects and migrates the
//! database, builds the shared state and binds the listener. `main` and the
//! integration tests start the service the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::auth::oidc::HttpIdentityProvider;
use crate::auth::Authenticator;
use crate::config::{Config, EngineMode};
use crate::engine::Engine;
use crate::http::{self, AppInner, AppState};
use crate::secrets::sealed::SealedStore;
use crate::store::Store;

/// A service ready to run: state built, port bound.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    /// Run the built-in engine (`ENGINE=builtin`, not `orchestrator api`).
    engine: bool,
    /// Run the outbox relay and the consumers (not `orchestrator api`).
    messaging: bool,
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

/// Builds the state shared by the API and the engine: database (migrated),
/// authentication, policy, secrets, caches.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let store = open_store(&config).await?;
    let auth = Authenticator::new(
        config.trusted_idps.clone(),
        Arc::new(HttpIdentityProvider::new(config.idp_timeout)),
    );
    let policy = crate::policy::build(&config)?;
    let secrets: Arc<dyn crate::secrets::SecretStore> = match &config.vault {
        Some(vault) => {
            tracing::info!(vault.url = %vault.url, vault.mount = %vault.mount, "secrets are kept in Vault");
            Arc::new(crate::secrets::vault::VaultStore::new(vault.clone())?)
        }
        None => Arc::new(SealedStore::load_or_create(
            config.secret_key.as_ref().map(|k| k.expose()),
            &config.data_dir,
        )?),
    };
    if config.trusted_idps.is_empty() {
        tracing::warn!("TRUSTED_IDP_LIST is empty: every authenticated request will be refused");
    }
    let messaging = crate::messaging::Messaging::new(&config)?;
    if config.kafka.enabled {
        tracing::info!(kafka.bootstrap = %config.kafka.bootstrap_servers, "the outbox is relayed to Kafka");
    }
    if config.engine.mode == EngineMode::External && !config.kafka.enabled {
        tracing::warn!("ENGINE=external without KAFKA_ENABLE: jobs are written but no external engine hears of them, and no status comes back");
    }
    Ok(AppState(Arc::new(AppInner {
        store,
        auth,
        policy,
        user_ids: moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(std::time::Duration::from_secs(300))
            .build(),
        imports: crate::service::imports::ImportFetcher::new(
            config.tosca_import_timeout,
            config.tosca_import_cache.clone(),
        ),
        models: moka::sync::Cache::builder().max_capacity(1_000).build(),
        secrets,
        messaging,
        config,
    })))
}

/// Runs the deployment engine (with `ENGINE=builtin`), the outbox relay and the
/// consumers until `shutdown` completes (`orchestrator worker`).
pub async fn run_worker(
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let engine = match state.config.engine.mode {
        EngineMode::Builtin => Some(tokio::spawn(
            Arc::new(Engine::new(state.clone())).run(rx.clone()),
        )),
        EngineMode::External => {
            tracing::info!("ENGINE=external: this worker relays the outbox and applies status messages; no built-in engine");
            None
        }
    };
    let callbacks = crate::legacy::callbacks::spawn(state.clone(), rx.clone());
    let messaging = crate::messaging::spawn(state, rx);
    shutdown.await;
    let _ = tx.send(true);
    if let Some(callbacks) = callbacks {
        let _ = callbacks.await;
    }
    if let Some(engine) = engine {
        engine.await.context("the engine stopped abnormally")?;
    }
    messaging
        .await
        .context("the outbox relay stopped abnormally")?;
    Ok(())
}

/// Runs the engine until the process receives Ctrl-C or SIGTERM.
pub async fn worker(config: Config) -> anyhow::Result<()> {
    let state = build_state(config).await?;
    run_worker(state, shutdown_signal()).await
}

impl Server {
    /// Builds the service (API, outbox relay, consumers and, with `ENGINE=builtin`,
    /// the engine) and binds `config.listen_addr`.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let engine = config.engine.mode == EngineMode::Builtin;
        let listen = config.listen_addr;
        let state = build_state(config).await?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on LISTEN_ADDR {listen}"))?;
        Ok(Self {
            listener,
            state,
            engine,
            messaging: true,
        })
    }

    /// The API alone (`orchestrator api`), for replicas beside separate workers: no
    /// engine, no relay, no consumers.
    pub fn without_engine(mut self) -> Self {
        self.engine = false;
        self.messaging = false;
        self
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
        let (stop_engine, stopped) = tokio::sync::watch::channel(false);
        let engine = self
            .engine
            .then(|| tokio::spawn(Arc::new(Engine::new(self.state.clone())).run(stopped.clone())));
        let callbacks = self
            .messaging
            .then(|| crate::legacy::callbacks::spawn(self.state.clone(), stopped.clone()))
            .flatten();
        let messaging = self
            .messaging
            .then(|| crate::messaging::spawn(self.state.clone(), stopped));
        let served = axum::serve(self.listener, http::router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .context("the HTTP server failed");
        let _ = stop_engine.send(true);
        if let Some(engine) = engine {
            let _ = engine.await;
        }
        if let Some(messaging) = messaging {
            let _ = messaging.await;
        }
        if let Some(callbacks) = callbacks {
            let _ = callbacks.await;
        }
        served
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

/// `orchestrator dev`: the service on loopback with a development issuer whose
/// tokens it prints. Refuses any address but loopback: the issuer signs for anyone.
pub async fn dev(mut config: Config) -> anyhow::Result<()> {
    use crate::auth::dev_issuer::{DevIssuer, DevUser, TokenOptions};
    if !config.listen_addr.ip().is_loopback() {
        anyhow::bail!(
            "orchestrator dev only listens on loopback (LISTEN_ADDR or --listen), not {}",
            config.listen_addr
        );
    }
    let issuer = DevIssuer::start(0).await?;
    for (sub, groups) in [
        ("dev-admin", vec!["admins", "users"]),
        ("dev-user", vec!["users"]),
    ] {
        issuer.add_user(DevUser {
            sub: sub.into(),
            name: sub.replace('-', " "),
            username: sub.into(),
            email: format!("{sub}@localhost"),
            groups: groups.into_iter().map(String::from).collect(),
        });
    }
    config.trusted_idps.insert(
        0,
        crate::config::TrustedIdp {
            issuer: issuer.issuer().to_string(),
            client_id: Some("orchestrator-dev".into()),
            client_secret: Some(crate::config::Secret::new("dev")),
            group_claim: "groups".into(),
            audience: None,
        },
    );
    if !config.admin_groups.iter().any(|g| g == "admins") {
        config.admin_groups.push("admins".into());
    }
    let options = TokenOptions {
        lifetime_secs: 12 * 3600,
        ..Default::default()
    };
    let admin = issuer.token("dev-admin", &options);
    let user = issuer.token("dev-user", &options);
    let server = Server::build(config).await?;
    let addr = server.local_addr();
    println!("orchestrator dev: API on http://{addr}/api/v1, docs on http://{addr}/docs/");
    println!(
        "development issuer: {} (tokens valid 12 hours)",
        issuer.issuer()
    );
    println!("\nADMIN_TOKEN={admin}\n\nUSER_TOKEN={user}\n");
    println!("try: curl -H \"Authorization: Bearer $USER_TOKEN\" http://{addr}/api/v1/users/me\n");
    server.run().await
}
