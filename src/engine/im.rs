//! IM clients of the engine: one per IM endpoint, all behind one request budget
//! (`IM_MAX_REQUESTS_PER_SECOND`) so thousands of deployments in flight poll IM at a
//! bounded rate instead of all at once.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use im_client::{AuthHeader, Im, ImClient, ImError, InfraId, StateReport, VmAction, VmInfo};
use serde_json::{Map, Value};

/// Builds and keeps the IM clients.
pub struct Connector {
    timeout: Duration,
    budget: Arc<DefaultDirectRateLimiter>,
    clients: Mutex<HashMap<String, Arc<Limited>>>,
}

impl Connector {
    /// Clients with this request timeout, sharing `per_second` requests.
    pub fn new(timeout: Duration, per_second: u32) -> Self {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        Self {
            timeout,
            budget: Arc::new(RateLimiter::direct(Quota::per_second(rate))),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client of an IM endpoint.
    pub fn client(&self, url: &str) -> Result<Arc<Limited>, ImError> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| ImError::Protocol("IM client table poisoned".into()))?;
        if let Some(c) = clients.get(url) {
            return Ok(c.clone());
        }
        let client = Arc::new(Limited {
            inner: ImClient::new(url, self.timeout)?,
            budget: self.budget.clone(),
        });
        clients.insert(url.to_string(), client.clone());
        Ok(client)
    }
}

/// An IM client that waits for the budget before each request.
pub struct Limited {
    inner: ImClient,
    budget: Arc<DefaultDirectRateLimiter>,
}

#[async_trait]
impl Im for Limited {
    async fn version(&self) -> Result<String, ImError> {
        self.budget.until_ready().await;
        self.inner.version().await
    }
    async fn create(&self, auth: &AuthHeader, tosca: &str) -> Result<InfraId, ImError> {
        self.budget.until_ready().await;
        self.inner.create(auth, tosca).await
    }
    async fn state(&self, auth: &AuthHeader, id: &InfraId) -> Result<StateReport, ImError> {
        self.budget.until_ready().await;
        self.inner.state(auth, id).await
    }
    async fn vm_ids(&self, auth: &AuthHeader, id: &InfraId) -> Result<Vec<String>, ImError> {
        self.budget.until_ready().await;
        self.inner.vm_ids(auth, id).await
    }
    async fn vm_info(&self, auth: &AuthHeader, id: &InfraId, vm: &str) -> Result<VmInfo, ImError> {
        self.budget.until_ready().await;
        self.inner.vm_info(auth, id, vm).await
    }
    async fn outputs(
        &self,
        auth: &AuthHeader,
        id: &InfraId,
    ) -> Result<Map<String, Value>, ImError> {
        self.budget.until_ready().await;
        self.inner.outputs(auth, id).await
    }
    async fn contmsg(&self, auth: &AuthHeader, id: &InfraId) -> Result<String, ImError> {
        self.budget.until_ready().await;
        self.inner.contmsg(auth, id).await
    }
    async fn vm_action(
        &self,
        auth: &AuthHeader,
        id: &InfraId,
        vm: &str,
        action: VmAction,
    ) -> Result<(), ImError> {
        self.budget.until_ready().await;
        self.inner.vm_action(auth, id, vm, action).await
    }
    async fn update(
        &self,
        auth: &AuthHeader,
        id: &InfraId,
        tosca: &str,
    ) -> Result<Vec<String>, ImError> {
        self.budget.until_ready().await;
        self.inner.update(auth, id, tosca).await
    }
    async fn destroy(&self, auth: &AuthHeader, id: &InfraId, force: bool) -> Result<(), ImError> {
        self.budget.until_ready().await;
        self.inner.destroy(auth, id, force).await
    }
}
