//! Typed configuration, read once at start from environment variables (names as in
//! orchestrator-python where one exists, DESIGN.md §1) and an optional TOML file given
//! with `--config`. Environment variables win over the file, the file over defaults.
//! Every value is validated here, so a bad setting stops the process with a message
//! naming the variable instead of failing later in a request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A configuration value that is wrong, named after its variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration {var}: {message}")]
pub struct ConfigError {
    /// The environment variable (or TOML key, upper-cased).
    pub var: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(var: &str, message: impl Into<String>) -> Self {
        Self {
            var: var.to_string(),
            message: message.into(),
        }
    }
}

/// A value that must never be printed: `Debug` shows `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where authorization decisions are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthzMode {
    /// The Rego policy evaluated in-process.
    Embedded,
    /// A remote OPA server.
    Opa,
}

/// Whether this process runs the built-in deployment engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineMode {
    /// Workers in this process drive IM.
    Builtin,
    /// Another system deploys; jobs are only published (Kafka).
    External,
}

/// Settings of the deployment engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `ENGINE`: `builtin` or `external`.
    pub mode: EngineMode,
    /// `PROVIDERS_FILE`: where deployments may go.
    pub providers_file: Option<PathBuf>,
    /// The validated providers.
    pub providers: std::sync::Arc<crate::engine::providers::Providers>,
    /// `ENGINE_CONCURRENCY`: job steps one worker process runs at once.
    pub concurrency: usize,
    /// `ENGINE_LEASE` (seconds): how long a claim holds a job without renewal.
    pub lease: Duration,
    /// `IM_TIMEOUT` (seconds): timeout of one IM request.
    pub im_timeout: Duration,
    /// `IM_POLL_MIN` (seconds): first delay between polls of an IM operation.
    pub poll_min: Duration,
    /// `IM_POLL_MAX` (seconds): the delay doubles up to this.
    pub poll_max: Duration,
    /// `IM_MAX_REQUESTS_PER_SECOND`: the polling budget of one worker process.
    pub im_max_rps: u32,
    /// `DELETE_TIMEOUT_MINS`: deadline of a deletion.
    pub delete_timeout: Duration,
    /// `ACTION_TIMEOUT_MINS`: deadline of a VM start, stop or reboot.
    pub action_timeout: Duration,
}

/// One trusted OIDC issuer (`TRUSTED_IDP_LIST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIdp {
    /// Issuer URL as it appears in `iss` (trailing slashes ignored when comparing).
    pub issuer: String,
    /// Client id for refreshing tokens at the issuer's token endpoint.
    pub client_id: Option<String>,
    /// Client secret for the same.
    pub client_secret: Option<Secret>,
    /// The claim holding the user's groups.
    pub group_claim: String,
    /// When set, tokens must carry this audience.
    pub audience: Option<String>,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `LISTEN_ADDR`: where the HTTP API listens.
    pub listen_addr: SocketAddr,
    /// `DB_URL`, normalised to `sqlite://`, `postgres://` or `mysql://`.
    pub db_url: String,
    /// `DB_MAX_CONNECTIONS`: connection pool size (default: twice the cores, 4 to 32).
    pub db_max_connections: u32,
    /// `LOG_LEVEL`: a tracing filter (`info`, `debug`, `orchestrator=debug,info`).
    pub log_level: String,
    /// `LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
    /// `BASE_URL`: public URL of the service, for absolute links; when unset, links
    /// are built from the request's `Host` and `X-Forwarded-*` headers.
    pub base_url: Option<String>,
    /// `TRUSTED_IDP_LIST`: issuers whose tokens are accepted.
    pub trusted_idps: Vec<TrustedIdp>,
    /// `ADMIN_GROUPS`: groups whose members are administrators.
    pub admin_groups: Vec<String>,
    /// `IDP_TIMEOUT` (seconds): timeout of calls to issuers.
    pub idp_timeout: Duration,
    /// `AUTHZ_MODE`: `embedded` or `opa`.
    pub authz_mode: AuthzMode,
    /// `OPA_AUTHZ_URL`: the OPA data path queried in `opa` mode.
    pub opa_authz_url: String,
    /// `OPA_TIMEOUT` (seconds).
    pub opa_timeout: Duration,
    /// `POLICY_FILE`: a Rego policy replacing the shipped one.
    pub policy_file: Option<PathBuf>,
    /// `POLICY_DATA_FILE`: a JSON data document replacing the one built from settings.
    pub policy_data_file: Option<PathBuf>,
    /// `DATA_DIR`: where generated files (the secret key) live.
    pub data_dir: PathBuf,
    /// `SECRET_KEY`: 32 bytes (base64 or hex) sealing stored secrets; generated into
    /// `DATA_DIR/secret.key` when unset.
    pub secret_key: Option<Secret>,
    /// `TOSCA_IMPORT_CACHE`: a directory keeping fetched TOSCA imports across
    /// restarts (memory only when unset).
    pub tosca_import_cache: Option<PathBuf>,
    /// `TOSCA_IMPORT_TIMEOUT` (seconds): timeout of one import fetch.
    pub tosca_import_timeout: Duration,
    /// The deployment engine.
    pub engine: EngineConfig,
    /// `VAULT_ENABLE` and the `VAULT_*` settings: secrets in Vault instead of sealed
    /// columns.
    pub vault: Option<crate::secrets::vault::VaultConfig>,
    /// `KAFKA_ENABLE` and the `KAFKA_*` settings: the outbox relayed to Kafka, and the
    /// status and log consumers (docs/messages.md).
    pub kafka: KafkaConfig,
    /// How the relay reads the outbox, with or without Kafka.
    pub outbox: OutboxConfig,
    /// The legacy API (`LEGACY_*`, docs/legacy.md).
    pub legacy: LegacyConfig,
}

/// The legacy INDIGO PaaS Orchestrator API (docs/legacy.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyConfig {
    /// `LEGACY_PREFIX`: where the legacy routes are mounted (`/orchestrator`; an
    /// empty string or `/` mounts them at the root).
    pub prefix: String,
    /// `LEGACY_CALLBACK_POLL` (seconds): how often the notifier looks for deployments
    /// that reached a final status; also the first retry delay (doubled per failure).
    pub callback_poll: Duration,
    /// `LEGACY_CALLBACK_TIMEOUT` (seconds): timeout of one callback POST.
    pub callback_timeout: Duration,
    /// `LEGACY_CALLBACK_RETRIES`: attempts per announcement before giving up.
    pub callback_retries: u32,
}

/// The Kafka side of messaging (DESIGN.md §6, docs/messages.md). Everything but
/// `enabled` has a default, so only `KAFKA_ENABLE` and `KAFKA_BOOTSTRAP_SERVERS` are
/// needed to start.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `KAFKA_ENABLE`: relay the outbox to Kafka and run the consumers; without it the
    /// outbox is delivered in-process.
    pub enabled: bool,
    /// `KAFKA_BOOTSTRAP_SERVERS`: comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// `KAFKA_CLIENT_NAME`: the client id the brokers see.
    pub client_name: String,
    /// `KAFKA_GROUP_ID`: the consumer group of the status and log consumers (all
    /// replicas share it, so each message is handled by one of them).
    pub group_id: String,
    /// Topic names (`KAFKA_*_TOPIC`).
    pub topics: KafkaTopics,
    /// `KAFKA_CREATE_DEP_MSG_VERSION`: the `msg_version` of `create-deployment`
    /// messages (orchestrator-python's setting; the schema is the one documented for
    /// 1.0.0 whatever the value).
    pub create_dep_msg_version: String,
    /// `KAFKA_INCLUDE_ACCESS_TOKEN`: put the caller's access token in the messages
    /// that start work (an external engine acting on the user's behalf needs it).
    pub include_access_token: bool,
    /// `KAFKA_MAX_REQUEST_SIZE` (bytes): the largest message produced.
    pub max_request_size: u64,
    /// `KAFKA_MESSAGE_TIMEOUT` (seconds): how long the producer tries to deliver a
    /// message before the relay records a failure and backs off.
    pub message_timeout: Duration,
    /// `KAFKA_SESSION_TIMEOUT` (seconds): how soon the group notices a consumer
    /// that is gone.
    pub session_timeout: Duration,
    /// `KAFKA_RETRY_BACKOFF_MIN` (seconds): the relay's first delay after a failed
    /// publication; it doubles per failure of the same message.
    pub retry_backoff_min: Duration,
    /// `KAFKA_RETRY_BACKOFF_MAX` (seconds): the delay stops doubling here.
    pub retry_backoff_max: Duration,
    /// `KAFKA_ALLOW_AUTO_CREATE_TOPICS`: create missing topics at start (one
    /// partition; production clusters usually create them by hand).
    pub allow_auto_create_topics: bool,
    /// `KAFKA_SSL_ENABLE` and the `KAFKA_SSL_*` files.
    pub ssl: Option<KafkaSsl>,
    /// `KAFKA_SASL_MECHANISM` and credentials.
    pub sasl: Option<KafkaSasl>,
}

/// Topic names, each with its own variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTopics {
    /// `KAFKA_CREATE_DEP_TOPIC` (`create-deployment`).
    pub create: String,
    /// `KAFKA_UPDATE_DEP_TOPIC` (`update-deployment`).
    pub update: String,
    /// `KAFKA_DELETE_DEP_TOPIC` (`delete-deployment`).
    pub delete: String,
    /// `KAFKA_DEP_ACTION_TOPIC` (`deployment-action`).
    pub action: String,
    /// `KAFKA_DEP_STATUS_TOPIC` (`deployment-status`), consumed.
    pub status: String,
    /// `KAFKA_DEP_LOGS_TOPIC` (`deployment-logs`), consumed.
    pub logs: String,
}

impl Default for KafkaTopics {
    fn default() -> Self {
        Self {
            create: "create-deployment".into(),
            update: "update-deployment".into(),
            delete: "delete-deployment".into(),
            action: "deployment-action".into(),
            status: "deployment-status".into(),
            logs: "deployment-logs".into(),
        }
    }
}

/// TLS towards the brokers (orchestrator-python's `KAFKA_SSL_*`).
#[derive(Debug, Clone)]
pub struct KafkaSsl {
    /// `KAFKA_SSL_CACERT_PATH`: CA bundle (the system's when unset).
    pub cacert: Option<PathBuf>,
    /// `KAFKA_SSL_CERT_PATH`: client certificate, for brokers that want one.
    pub cert: Option<PathBuf>,
    /// `KAFKA_SSL_KEY_PATH`: its private key.
    pub key: Option<PathBuf>,
    /// `KAFKA_SSL_PASSWORD`: the private key's password.
    pub password: Option<Secret>,
    /// `KAFKA_SSL_CHECK_HOSTNAME`: verify the broker's name against its certificate.
    pub check_hostname: bool,
}

/// SASL authentication towards the brokers.
#[derive(Debug, Clone)]
pub struct KafkaSasl {
    /// `KAFKA_SASL_MECHANISM`: `SCRAM-SHA-512`, `SCRAM-SHA-256` or `PLAIN`.
    pub mechanism: String,
    /// `KAFKA_SASL_USERNAME`.
    pub username: String,
    /// `KAFKA_SASL_PASSWORD`.
    pub password: Secret,
}

/// The outbox relay's pace, the same with or without Kafka.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// `OUTBOX_POLL_INTERVAL` (seconds): how often an idle relay looks for new rows
    /// (the floor of the delay between a commit and its publication).
    pub poll_interval: Duration,
    /// `OUTBOX_RETENTION` (seconds): how long published rows are kept before pruning.
    pub retention: Duration,
}

/// Raw settings from the environment and the file, looked up by variable name.
struct Settings {
    values: HashMap<String, String>,
}

impl Settings {
    fn get(&self, var: &str) -> Option<&str> {
        self.values
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn string(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or(default).trim().to_string()
    }

    fn parse<T: std::str::FromStr>(
        &self,
        var: &str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|_| ConfigError::new(var, format!("expected {what}, got '{raw}'"))),
        }
    }

    fn seconds(&self, var: &str, default: u64) -> Result<Duration, ConfigError> {
        self.fractional_seconds(var, default as f64)
    }

    fn fractional_seconds(&self, var: &str, default: f64) -> Result<Duration, ConfigError> {
        let secs: f64 = self.parse(var, default, "a number of seconds")?;
        if !(secs > 0.0 && secs.is_finite()) {
            return Err(ConfigError::new(
                var,
                "must be a positive number of seconds",
            ));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    fn path(&self, var: &str) -> Option<PathBuf> {
        self.get(var).map(|p| PathBuf::from(p.trim()))
    }
}

impl Config {
    /// Reads the configuration from the process environment and an optional file.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(std::env::vars(), file)
    }

    /// Reads the configuration from the given variables and an optional TOML file
    /// (keys are the variable names, case-insensitive).
    pub fn from_sources(
        env: impl IntoIterator<Item = (String, String)>,
        file: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        let mut values = HashMap::new();
        if let Some(path) = file {
            values = read_toml(path)?;
        }
        values.extend(env);
        Self::from_settings(&Settings { values })
    }

    fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        let listen_addr = s.parse(
            "LISTEN_ADDR",
            SocketAddr::from(([127, 0, 0, 1], 8000)),
            "an address like 127.0.0.1:8000",
        )?;
        let db_url = normalize_db_url(&s.string("DB_URL", "sqlite://orchestrator.db"))
            .map_err(|m| ConfigError::new("DB_URL", m))?;
        let db_max_connections: u32 = s.parse(
            "DB_MAX_CONNECTIONS",
            default_pool_size(),
            "a positive integer",
        )?;
        if db_max_connections == 0 {
            return Err(ConfigError::new("DB_MAX_CONNECTIONS", "must be at least 1"));
        }
        let log_format = match s.string("LOG_FORMAT", "text").to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("expected 'text' or 'json', got '{other}'"),
                ))
            }
        };
        let base_url = match s.get("BASE_URL") {
            None => None,
            Some(raw) => {
                let url = url::Url::parse(raw.trim())
                    .map_err(|e| ConfigError::new("BASE_URL", format!("not a URL: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(ConfigError::new("BASE_URL", "must be an http(s) URL"));
                }
                Some(url.as_str().trim_end_matches('/').to_string())
            }
        };
        match s
            .string("AUTHN_MODE", "local")
            .to_ascii_lowercase()
            .as_str()
        {
            "local" | "oidc" => {}
            other => {
                return Err(ConfigError::new(
                    "AUTHN_MODE",
                    format!("expected 'local' (OIDC bearer tokens), got '{other}'"),
                ))
            }
        }
        let authz_mode = match s
            .string("AUTHZ_MODE", "embedded")
            .to_ascii_lowercase()
            .as_str()
        {
            "embedded" => AuthzMode::Embedded,
            "opa" => AuthzMode::Opa,
            other => {
                return Err(ConfigError::new(
                    "AUTHZ_MODE",
                    format!("expected 'embedded' or 'opa', got '{other}'"),
                ))
            }
        };
        let opa_authz_url = s.string(
            "OPA_AUTHZ_URL",
            "http://localhost:8181/v1/data/orchestrator",
        );
        url::Url::parse(&opa_authz_url)
            .map_err(|e| ConfigError::new("OPA_AUTHZ_URL", format!("not a URL: {e}")))?;
        let admin_groups: Vec<String> = s
            .string("ADMIN_GROUPS", "admins")
            .split(',')
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty())
            .collect();
        let trusted_idps = parse_trusted_idps(s.get("TRUSTED_IDP_LIST"))?;
        Ok(Self {
            listen_addr,
            db_url,
            db_max_connections,
            log_level: log_level(s)?,
            log_format,
            base_url,
            admin_groups,
            idp_timeout: s.seconds("IDP_TIMEOUT", 5)?,
            authz_mode,
            opa_authz_url,
            opa_timeout: s.seconds("OPA_TIMEOUT", 5)?,
            policy_file: existing_file(s, "POLICY_FILE")?,
            policy_data_file: existing_file(s, "POLICY_DATA_FILE")?,
            data_dir: s.path("DATA_DIR").unwrap_or_else(|| PathBuf::from(".")),
            secret_key: s.get("SECRET_KEY").map(|k| Secret::new(k.trim())),
            tosca_import_cache: s.path("TOSCA_IMPORT_CACHE"),
            tosca_import_timeout: s.seconds("TOSCA_IMPORT_TIMEOUT", 10)?,
            engine: engine_config(s)?,
            vault: vault_config(s, &trusted_idps)?,
            trusted_idps,
            kafka: kafka_config(s)?,
            outbox: OutboxConfig {
                poll_interval: s.fractional_seconds("OUTBOX_POLL_INTERVAL", 0.1)?,
                retention: s.seconds("OUTBOX_RETENTION", 3600)?,
            },
            legacy: legacy_config(s)?,
        })
    }
}

/// `LOG_LEVEL` in `RUST_LOG` syntax, checked here so that a typo stops the start
/// instead of silently logging at another level.
fn log_level(s: &Settings) -> Result<String, ConfigError> {
    let raw = s.string("LOG_LEVEL", "info");
    tracing_subscriber::EnvFilter::try_new(&raw)
        .map_err(|e| ConfigError::new("LOG_LEVEL", format!("not a log filter '{raw}': {e}")))?;
    // The filter syntax reads a bare word as a target enabled at every level, so a
    // misspelt level (`debgu`) would parse and switch off all other logs. A bare
    // directive must therefore be a level; a target is written `target=level`.
    if let Some(bad) = raw.split(',').find(|d| {
        !d.is_empty()
            && !d.contains(['=', '['])
            && d.parse::<tracing::level_filters::LevelFilter>().is_err()
    }) {
        return Err(ConfigError::new(
            "LOG_LEVEL",
            format!(
                "'{bad}' is not a level (trace, debug, info, warn, error, off); \
                 write a target as '{bad}=debug'"
            ),
        ));
    }
    Ok(raw)
}

fn flag(s: &Settings, var: &str) -> Result<bool, ConfigError> {
    match s.string(var, "false").to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(ConfigError::new(
            var,
            format!("expected true or false, got '{other}'"),
        )),
    }
}

fn legacy_config(s: &Settings) -> Result<LegacyConfig, ConfigError> {
    // An empty LEGACY_PREFIX is meaningful (the root), so it is read raw.
    let raw = s
        .values
        .get("LEGACY_PREFIX")
        .map_or("/orchestrator", String::as_str)
        .trim();
    let prefix = format!("/{}", raw.trim_matches('/'));
    let prefix = if prefix == "/" { String::new() } else { prefix };
    if prefix.contains(|c: char| c.is_whitespace() || c == '?' || c == '#' || c == '{') {
        return Err(ConfigError::new(
            "LEGACY_PREFIX",
            format!("expected a path like /orchestrator, got '{raw}'"),
        ));
    }
    if prefix == "/api/v1" || prefix.starts_with("/api/v1/") || prefix == "/docs" {
        return Err(ConfigError::new(
            "LEGACY_PREFIX",
            format!("'{prefix}' is taken by the v1 API"),
        ));
    }
    let callback_retries: u32 = s.parse("LEGACY_CALLBACK_RETRIES", 5, "a positive integer")?;
    if callback_retries == 0 {
        return Err(ConfigError::new(
            "LEGACY_CALLBACK_RETRIES",
            "must be at least 1",
        ));
    }
    Ok(LegacyConfig {
        prefix,
        callback_poll: s.fractional_seconds("LEGACY_CALLBACK_POLL", 5.0)?,
        callback_timeout: s.fractional_seconds("LEGACY_CALLBACK_TIMEOUT", 10.0)?,
        callback_retries,
    })
}

fn vault_config(
    s: &Settings,
    idps: &[TrustedIdp],
) -> Result<Option<crate::secrets::vault::VaultConfig>, ConfigError> {
    use crate::secrets::vault::{VaultConfig, VaultLogin};
    if !flag(s, "VAULT_ENABLE")? {
        return Ok(None);
    }
    let url = s.string("VAULT_URL", "");
    match url::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        _ => {
            return Err(ConfigError::new(
                "VAULT_URL",
                format!("VAULT_ENABLE is set, so an http(s) URL is needed, got '{url}'"),
            ))
        }
    }
    let login = match s.get("VAULT_TOKEN") {
        Some(token) => VaultLogin::Token(Secret::new(token.trim())),
        None => {
            let issuer = idps
                .iter()
                .find(|i| i.client_id.is_some() && i.client_secret.is_some())
                .ok_or_else(|| {
                    ConfigError::new(
                        "VAULT_TOKEN",
                        "VAULT_ENABLE is set without VAULT_TOKEN, and no TRUSTED_IDP_LIST entry has the client_id and client_secret needed to log in to Vault with JWT",
                    )
                })?;
            VaultLogin::Jwt {
                mount: s.string("VAULT_AUTH_PATH", "jwt"),
                role: s.string("VAULT_ROLE", "orchestrator"),
                audience: s.get("VAULT_BOUND_AUDIENCE").map(|a| a.trim().to_string()),
                issuer: issuer.clone(),
            }
        }
    };
    Ok(Some(VaultConfig {
        url,
        mount: s.string("VAULT_SECRETS_PATH", "secrets"),
        login,
        timeout: s.seconds("VAULT_TIMEOUT", 5)?,
    }))
}

fn engine_config(s: &Settings) -> Result<EngineConfig, ConfigError> {
    let mode = match s.string("ENGINE", "builtin").to_ascii_lowercase().as_str() {
        "builtin" => EngineMode::Builtin,
        "external" => EngineMode::External,
        other => {
            return Err(ConfigError::new(
                "ENGINE",
                format!("expected 'builtin' or 'external', got '{other}'"),
            ))
        }
    };
    let providers_file = existing_file(s, "PROVIDERS_FILE")?;
    let providers = match &providers_file {
        Some(path) => crate::engine::providers::Providers::load(path)
            .map_err(|e| ConfigError::new("PROVIDERS_FILE", e.to_string()))?,
        None => Default::default(),
    };
    let concurrency: usize = s.parse("ENGINE_CONCURRENCY", 8, "a positive integer")?;
    if concurrency == 0 {
        return Err(ConfigError::new("ENGINE_CONCURRENCY", "must be at least 1"));
    }
    let im_max_rps: u32 = s.parse("IM_MAX_REQUESTS_PER_SECOND", 20, "a positive integer")?;
    if im_max_rps == 0 {
        return Err(ConfigError::new(
            "IM_MAX_REQUESTS_PER_SECOND",
            "must be at least 1",
        ));
    }
    let poll_min = s.seconds("IM_POLL_MIN", 2)?;
    let poll_max = s.seconds("IM_POLL_MAX", 30)?;
    if poll_max < poll_min {
        return Err(ConfigError::new(
            "IM_POLL_MAX",
            "must not be less than IM_POLL_MIN",
        ));
    }
    let minutes = |var: &str, default: u64| -> Result<Duration, ConfigError> {
        let m: u64 = s.parse(var, default, "a positive number of minutes")?;
        if m == 0 {
            return Err(ConfigError::new(var, "must be at least 1 minute"));
        }
        Ok(Duration::from_secs(m * 60))
    };
    Ok(EngineConfig {
        mode,
        providers_file,
        providers: std::sync::Arc::new(providers),
        concurrency,
        lease: s.seconds("ENGINE_LEASE", 60)?,
        im_timeout: s.seconds("IM_TIMEOUT", 60)?,
        poll_min,
        poll_max,
        im_max_rps,
        delete_timeout: minutes("DELETE_TIMEOUT_MINS", 60)?,
        action_timeout: minutes("ACTION_TIMEOUT_MINS", 15)?,
    })
}

fn kafka_config(s: &Settings) -> Result<KafkaConfig, ConfigError> {
    let enabled = flag(s, "KAFKA_ENABLE")?;
    let bootstrap_servers = s.string("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092");
    for server in bootstrap_servers.split(',') {
        let server = server.trim();
        let port = server
            .rsplit_once(':')
            .map(|(host, port)| (host, port.parse::<u16>()));
        if !matches!(port, Some((host, Ok(_))) if !host.is_empty()) {
            return Err(ConfigError::new(
                "KAFKA_BOOTSTRAP_SERVERS",
                format!("expected a comma-separated list of host:port, got '{server}'"),
            ));
        }
    }
    let topic = |var: &str, default: &str| -> Result<String, ConfigError> {
        let name = s.string(var, default);
        let legal = name.len() <= 249
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !legal {
            return Err(ConfigError::new(
                var,
                format!("'{name}' is not a Kafka topic name (letters, digits, '.', '_', '-', at most 249)"),
            ));
        }
        Ok(name)
    };
    let defaults = KafkaTopics::default();
    let topics = KafkaTopics {
        create: topic("KAFKA_CREATE_DEP_TOPIC", &defaults.create)?,
        update: topic("KAFKA_UPDATE_DEP_TOPIC", &defaults.update)?,
        delete: topic("KAFKA_DELETE_DEP_TOPIC", &defaults.delete)?,
        action: topic("KAFKA_DEP_ACTION_TOPIC", &defaults.action)?,
        status: topic("KAFKA_DEP_STATUS_TOPIC", &defaults.status)?,
        logs: topic("KAFKA_DEP_LOGS_TOPIC", &defaults.logs)?,
    };
    let max_request_size: u64 =
        s.parse("KAFKA_MAX_REQUEST_SIZE", 104_857_600, "a number of bytes")?;
    if !(1_000..=1_000_000_000).contains(&max_request_size) {
        return Err(ConfigError::new(
            "KAFKA_MAX_REQUEST_SIZE",
            "must be between 1000 and 1000000000 bytes",
        ));
    }
    let retry_backoff_min = s.fractional_seconds("KAFKA_RETRY_BACKOFF_MIN", 0.5)?;
    let retry_backoff_max = s.seconds("KAFKA_RETRY_BACKOFF_MAX", 30)?;
    if retry_backoff_max < retry_backoff_min {
        return Err(ConfigError::new(
            "KAFKA_RETRY_BACKOFF_MAX",
            "must not be less than KAFKA_RETRY_BACKOFF_MIN",
        ));
    }
    let ssl = if flag(s, "KAFKA_SSL_ENABLE")? {
        // Files are checked only when they will be used, so a disabled Kafka with
        // leftover paths does not stop the service.
        let file = |var: &str| -> Result<Option<PathBuf>, ConfigError> {
            if enabled {
                existing_file(s, var)
            } else {
                Ok(s.path(var))
            }
        };
        let cert = file("KAFKA_SSL_CERT_PATH")?;
        let key = file("KAFKA_SSL_KEY_PATH")?;
        if cert.is_some() != key.is_some() {
            return Err(ConfigError::new(
                if cert.is_some() {
                    "KAFKA_SSL_KEY_PATH"
                } else {
                    "KAFKA_SSL_CERT_PATH"
                },
                "a client certificate needs both KAFKA_SSL_CERT_PATH and KAFKA_SSL_KEY_PATH",
            ));
        }
        Some(KafkaSsl {
            cacert: file("KAFKA_SSL_CACERT_PATH")?,
            cert,
            key,
            password: s.get("KAFKA_SSL_PASSWORD").map(Secret::new),
            check_hostname: match s.get("KAFKA_SSL_CHECK_HOSTNAME") {
                None => true,
                Some(_) => flag(s, "KAFKA_SSL_CHECK_HOSTNAME")?,
            },
        })
    } else {
        None
    };
    let sasl = match s.get("KAFKA_SASL_MECHANISM") {
        None => None,
        Some(raw) => {
            let mechanism = raw.trim().to_ascii_uppercase();
            if !matches!(
                mechanism.as_str(),
                "SCRAM-SHA-512" | "SCRAM-SHA-256" | "PLAIN"
            ) {
                return Err(ConfigError::new(
                    "KAFKA_SASL_MECHANISM",
                    format!("expected SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN, got '{raw}'"),
                ));
            }
            let username = s.get("KAFKA_SASL_USERNAME").ok_or_else(|| {
                ConfigError::new(
                    "KAFKA_SASL_USERNAME",
                    "KAFKA_SASL_MECHANISM is set, so a user name is needed",
                )
            })?;
            let password = s.get("KAFKA_SASL_PASSWORD").ok_or_else(|| {
                ConfigError::new(
                    "KAFKA_SASL_PASSWORD",
                    "KAFKA_SASL_MECHANISM is set, so a password is needed",
                )
            })?;
            Some(KafkaSasl {
                mechanism,
                username: username.trim().to_string(),
                password: Secret::new(password),
            })
        }
    };
    let group_id = s.string("KAFKA_GROUP_ID", "orchestrator");
    Ok(KafkaConfig {
        enabled,
        bootstrap_servers,
        client_name: s.string("KAFKA_CLIENT_NAME", "orchestrator"),
        group_id,
        topics,
        create_dep_msg_version: s.string("KAFKA_CREATE_DEP_MSG_VERSION", "1.0.0"),
        include_access_token: flag(s, "KAFKA_INCLUDE_ACCESS_TOKEN")?,
        max_request_size,
        message_timeout: s.seconds("KAFKA_MESSAGE_TIMEOUT", 30)?,
        session_timeout: s.seconds("KAFKA_SESSION_TIMEOUT", 10)?,
        retry_backoff_min,
        retry_backoff_max,
        allow_auto_create_topics: flag(s, "KAFKA_ALLOW_AUTO_CREATE_TOPICS")?,
        ssl,
        sasl,
    })
}

fn existing_file(s: &Settings, var: &str) -> Result<Option<PathBuf>, ConfigError> {
    match s.path(var) {
        Some(path) if !path.is_file() => Err(ConfigError::new(
            var,
            format!("'{}' is not a readable file", path.display()),
        )),
        other => Ok(other),
    }
}

fn read_toml(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new("--config", format!("cannot read '{}': {e}", path.display()))
    })?;
    let table: toml::Table = text.parse().map_err(|e| {
        ConfigError::new("--config", format!("'{}' is not TOML: {e}", path.display()))
    })?;
    Ok(table
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                toml::Value::String(s) => s,
                // Lists and tables (TRUSTED_IDP_LIST) are handed on as JSON, the form the
                // environment variable takes.
                other => serde_json::to_string(&other).unwrap_or_default(),
            };
            (key.to_ascii_uppercase(), text)
        })
        .collect())
}

/// The default pool size: twice the cores, at least 4 and at most 32. More
/// connections than the database server can run at once only queue inside it: on 2
/// cores, 16 concurrent list requests answer at p99 16 ms with 4 connections and
/// 20 ms with 10 (benches/api_load.rs).
fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    u32::try_from(cores * 2).unwrap_or(32).clamp(4, 32)
}

/// Accepts the URL forms of DESIGN.md §1, including orchestrator-python's SQLAlchemy
/// spellings, and returns the one sqlx understands.
pub fn normalize_db_url(raw: &str) -> Result<String, String> {
    let (scheme, rest) = raw
        .split_once("://")
        .or_else(|| raw.split_once(':'))
        .ok_or_else(|| {
            format!("'{raw}' is not a database URL (sqlite://, postgres://, mysql://)")
        })?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "sqlite" | "sqlite+pysqlite" | "sqlite+aiosqlite" => "sqlite",
        "postgres"
        | "postgresql"
        | "postgresql+psycopg"
        | "postgresql+psycopg2"
        | "postgresql+asyncpg" => "postgres",
        "mysql" | "mariadb" | "mysql+pymysql" | "mysql+mysqldb" | "mysql+aiomysql" => "mysql",
        other => return Err(format!("unsupported database scheme '{other}'")),
    };
    if rest.is_empty() || (scheme == "sqlite" && rest == "/") {
        return Err("the database location is missing".into());
    }
    if scheme == "sqlite" && rest.starts_with("/:memory:") {
        return Ok("sqlite::memory:".into());
    }
    Ok(format!("{scheme}://{rest}"))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdpEntry {
    Url(String),
    Full {
        issuer: String,
        client_id: Option<String>,
        client_secret: Option<String>,
        group_claim: Option<String>,
        audience: Option<String>,
    },
}

fn parse_trusted_idps(raw: Option<&str>) -> Result<Vec<TrustedIdp>, ConfigError> {
    const VAR: &str = "TRUSTED_IDP_LIST";
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let entries: Vec<IdpEntry> = serde_json::from_str(raw).map_err(|e| {
        ConfigError::new(
            VAR,
            format!("expected a JSON list of issuer URLs or of {{\"issuer\", ...}} objects: {e}"),
        )
    })?;
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let idp = match entry {
                IdpEntry::Url(issuer) => TrustedIdp {
                    issuer,
                    client_id: None,
                    client_secret: None,
                    group_claim: "groups".into(),
                    audience: None,
                },
                IdpEntry::Full {
                    issuer,
                    client_id,
                    client_secret,
                    group_claim,
                    audience,
                } => TrustedIdp {
                    issuer,
                    client_id,
                    client_secret: client_secret.map(Secret::new),
                    group_claim: group_claim.unwrap_or_else(|| "groups".into()),
                    audience,
                },
            };
            match url::Url::parse(&idp.issuer) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(idp),
                _ => Err(ConfigError::new(
                    VAR,
                    format!("entry {i}: issuer '{}' is not an http(s) URL", idp.issuer),
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_sources(
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            None,
        )
    }

    #[test]
    fn defaults_need_nothing() {
        let c = load(&[]).unwrap();
        assert_eq!(c.listen_addr.to_string(), "127.0.0.1:8000");
        assert_eq!(c.db_url, "sqlite://orchestrator.db");
        assert_eq!(c.authz_mode, AuthzMode::Embedded);
        assert_eq!(c.admin_groups, ["admins"]);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (var, value) in [
            ("LISTEN_ADDR", "nowhere"),
            ("DB_URL", "oracle://x"),
            ("LOG_FORMAT", "xml"),
            ("AUTHZ_MODE", "maybe"),
            ("IDP_TIMEOUT", "-1"),
            ("TRUSTED_IDP_LIST", "not json"),
            ("DB_MAX_CONNECTIONS", "0"),
            ("LOG_LEVEL", "loud"),
            ("LOG_LEVEL", "orchestrator=loud"),
            ("LOG_LEVEL", "info,[{"),
        ] {
            let err = load(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn log_level_accepts_tracing_filters() {
        for value in [
            "debug",
            "WARN",
            "orchestrator=debug,info",
            "3,tower_http=trace",
        ] {
            let config = load(&[("LOG_LEVEL", value)]).unwrap();
            assert_eq!(config.log_level, value.trim());
        }
    }

    #[test]
    fn sqlalchemy_urls_mean_the_same_database() {
        assert_eq!(
            normalize_db_url("postgresql+psycopg://u:p@h/db").unwrap(),
            "postgres://u:p@h/db"
        );
        assert_eq!(
            normalize_db_url("mysql+pymysql://u@h/db").unwrap(),
            "mysql://u@h/db"
        );
        assert_eq!(
            normalize_db_url("sqlite+pysqlite:///abs/x.db").unwrap(),
            "sqlite:///abs/x.db"
        );
        assert_eq!(
            normalize_db_url("sqlite://rel.db").unwrap(),
            "sqlite://rel.db"
        );
    }

    #[test]
    fn trusted_issuers_come_as_urls_or_objects_and_secrets_stay_hidden() {
        let c = load(&[(
            "TRUSTED_IDP_LIST",
            r#"["https://a.example/", {"issuer": "https://b.example", "client_id": "c", "client_secret": "s3cr3t", "audience": "orch"}]"#,
        )])
        .unwrap();
        assert_eq!(c.trusted_idps.len(), 2);
        assert_eq!(c.trusted_idps[0].group_claim, "groups");
        assert_eq!(c.trusted_idps[1].audience.as_deref(), Some("orch"));
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen_addr = \"127.0.0.1:9000\"\nlog_level = \"debug\"\n",
        )
        .unwrap();
        let c = Config::from_sources([("LOG_LEVEL".to_string(), "warn".to_string())], Some(&path))
            .unwrap();
        assert_eq!(c.listen_addr.port(), 9000);
        assert_eq!(c.log_level, "warn");
    }

    #[test]
    fn kafka_settings_have_defaults_and_bad_ones_name_their_variable() {
        let c = load(&[]).unwrap();
        assert!(!c.kafka.enabled);
        assert_eq!(c.kafka.topics.create, "create-deployment");
        assert_eq!(c.kafka.bootstrap_servers, "localhost:9092");
        assert!(!c.kafka.include_access_token);
        for (var, value) in [
            ("KAFKA_ENABLE", "perhaps"),
            ("KAFKA_BOOTSTRAP_SERVERS", "no-port"),
            ("KAFKA_CREATE_DEP_TOPIC", "bad topic"),
            ("KAFKA_DEP_STATUS_TOPIC", "a/b"),
            ("KAFKA_SASL_MECHANISM", "GSSAPI"),
            ("KAFKA_MESSAGE_TIMEOUT", "0"),
            ("KAFKA_MAX_REQUEST_SIZE", "12"),
            ("OUTBOX_POLL_INTERVAL", "never"),
        ] {
            let err = load(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
        let err = load(&[
            ("KAFKA_SASL_MECHANISM", "scram-sha-512"),
            ("KAFKA_SASL_USERNAME", "u"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "KAFKA_SASL_PASSWORD");
        let err = load(&[
            ("KAFKA_ENABLE", "true"),
            ("KAFKA_SSL_ENABLE", "true"),
            ("KAFKA_SSL_CACERT_PATH", "/nonexistent/ca.pem"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "KAFKA_SSL_CACERT_PATH");
    }

    #[test]
    fn kafka_secrets_stay_hidden() {
        let c = load(&[
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"),
            ("KAFKA_SASL_USERNAME", "orchestrator"),
            ("KAFKA_SASL_PASSWORD", "k4fk4-s3cr3t"),
            ("KAFKA_SSL_ENABLE", "true"),
            ("KAFKA_SSL_PASSWORD", "k3y-s3cr3t"),
        ])
        .unwrap();
        let sasl = c.kafka.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanism, "SCRAM-SHA-256");
        assert_eq!(sasl.password.expose(), "k4fk4-s3cr3t");
        let shown = format!("{c:?}");
        assert!(!shown.contains("k4fk4-s3cr3t") && !shown.contains("k3y-s3cr3t"));
    }

    #[test]
    fn a_file_that_is_not_toml_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "this is = = not toml").unwrap();
        let err = Config::from_sources(Vec::new(), Some(&path)).unwrap_err();
        assert_eq!(err.var, "--config");
    }
}
