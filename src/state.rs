//! The state shared by every request and background task: configuration, database,
//! authentication, policy, secrets. Built once by [`crate::app`].

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::policy::Authorizer;
use crate::secrets::SecretStore;
use crate::service::imports::ImportFetcher;
use crate::store::Store;

/// Everything handlers need, shared by all requests.
pub struct AppInner {
    /// Validated configuration.
    pub config: Config,
    /// The database.
    pub store: Store,
    /// Checks bearer tokens.
    pub auth: Authenticator,
    /// Takes authorization decisions.
    pub policy: Arc<dyn Authorizer>,
    /// Registered user ids by issuer and subject, so a known caller costs no query.
    pub user_ids: moka::sync::Cache<String, uuid::Uuid>,
    /// Where refresh tokens and private keys are kept.
    pub secrets: Arc<dyn SecretStore>,
    /// Fetches TOSCA imports.
    pub imports: ImportFetcher,
    /// Parsed templates by id (content never changes, so entries never go stale).
    pub models: moka::sync::Cache<uuid::Uuid, Arc<tosca::Template>>,
    /// The Kafka producer, the in-process bus and the messaging counters.
    pub messaging: crate::messaging::Messaging,
}

/// Cheap-to-clone handle on the shared state.
#[derive(Clone)]
pub struct AppState(pub Arc<AppInner>);

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}
