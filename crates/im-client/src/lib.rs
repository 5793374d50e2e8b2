//! TEMPORARY interface stub: replaced by the real client from branch `im-client`.
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct InfraId(pub String);
impl std::fmt::Display for InfraId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InfraState {
    Pending,
    Running,
    Configured,
    Unconfigured,
    Stopped,
    Off,
    Failed,
    Unknown,
    Deleting,
}
impl InfraState {
    pub fn parse(s: &str) -> InfraState {
        match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "configured" => Self::Configured,
            "unconfigured" => Self::Unconfigured,
            "stopped" => Self::Stopped,
            "off" => Self::Off,
            "failed" => Self::Failed,
            "deleting" => Self::Deleting,
            _ => Self::Unknown,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Configured => "configured",
            Self::Unconfigured => "unconfigured",
            Self::Stopped => "stopped",
            Self::Off => "off",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
            Self::Deleting => "deleting",
        }
    }
}
#[derive(Debug, Clone)]
pub struct StateReport {
    pub state: InfraState,
    pub vm_states: BTreeMap<String, InfraState>,
}
#[derive(Debug, Clone)]
pub struct VmInfo {
    pub vm_id: String,
    pub node_name: Option<String>,
    pub state: InfraState,
    pub properties: Vec<serde_json::Value>,
}
#[derive(Debug, Clone, Copy)]
pub enum VmAction {
    Start,
    Stop,
    Reboot,
}
#[derive(Clone, Debug)]
pub struct AuthHeader {
    lines: Vec<String>,
}
impl AuthHeader {
    pub fn with_token(t: &str) -> Self {
        Self {
            lines: vec![format!(
                "id = im; type = InfrastructureManager; token = {t}"
            )],
        }
    }
    pub fn with_password(u: &str, p: &str) -> Self {
        Self {
            lines: vec![format!(
                "id = im; type = InfrastructureManager; username = {u}; password = {p}"
            )],
        }
    }
    pub fn cloud(mut self, line: &str) -> Self {
        self.lines.push(line.to_string());
        self
    }
    pub fn to_header_value(&self) -> String {
        self.lines.join("\\n")
    }
}
#[derive(Debug, thiserror::Error)]
pub enum ImError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("server error {status}: {message}")]
    Server { status: u16, message: String },
    #[error("unauthorized: {message}")]
    Unauthorized { message: String },
    #[error("forbidden: {message}")]
    Forbidden { message: String },
    #[error("not found: {message}")]
    NotFound { message: String },
    #[error("conflict: {message}")]
    Conflict { message: String },
    #[error("rejected {status}: {message}")]
    Rejected { status: u16, message: String },
    #[error("protocol: {0}")]
    Protocol(String),
}
impl ImError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::Server { .. })
    }
}
#[async_trait::async_trait]
pub trait Im: Send + Sync {
    async fn version(&self) -> Result<String, ImError>;
    async fn create(&self, auth: &AuthHeader, tosca: &str) -> Result<InfraId, ImError>;
    async fn state(&self, auth: &AuthHeader, id: &InfraId) -> Result<StateReport, ImError>;
    async fn vm_ids(&self, auth: &AuthHeader, id: &InfraId) -> Result<Vec<String>, ImError>;
    async fn vm_info(&self, auth: &AuthHeader, id: &InfraId, vm: &str) -> Result<VmInfo, ImError>;
    async fn outputs(
        &self,
        auth: &AuthHeader,
        id: &InfraId,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ImError>;
    async fn contmsg(&self, auth: &AuthHeader, id: &InfraId) -> Result<String, ImError>;
    async fn vm_action(
        &self,
        auth: &AuthHeader,
        id: &InfraId,
        vm: &str,
        action: VmAction,
    ) -> Result<(), ImError>;
    async fn update(
        &self,
        auth: &AuthHeader,
        id: &InfraId,
        tosca: &str,
    ) -> Result<Vec<String>, ImError>;
    async fn destroy(&self, auth: &AuthHeader, id: &InfraId, force: bool) -> Result<(), ImError>;
}
#[derive(Clone)]
pub struct ImClient;
impl ImClient {
    pub fn new(_base_url: &str, _timeout: std::time::Duration) -> Result<Self, ImError> {
        Err(ImError::Protocol("stub".into()))
    }
}
#[async_trait::async_trait]
impl Im for ImClient {
    async fn version(&self) -> Result<String, ImError> {
        todo!()
    }
    async fn create(&self, _: &AuthHeader, _: &str) -> Result<InfraId, ImError> {
        todo!()
    }
    async fn state(&self, _: &AuthHeader, _: &InfraId) -> Result<StateReport, ImError> {
        todo!()
    }
    async fn vm_ids(&self, _: &AuthHeader, _: &InfraId) -> Result<Vec<String>, ImError> {
        todo!()
    }
    async fn vm_info(&self, _: &AuthHeader, _: &InfraId, _: &str) -> Result<VmInfo, ImError> {
        todo!()
    }
    async fn outputs(
        &self,
        _: &AuthHeader,
        _: &InfraId,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ImError> {
        todo!()
    }
    async fn contmsg(&self, _: &AuthHeader, _: &InfraId) -> Result<String, ImError> {
        todo!()
    }
    async fn vm_action(
        &self,
        _: &AuthHeader,
        _: &InfraId,
        _: &str,
        _: VmAction,
    ) -> Result<(), ImError> {
        todo!()
    }
    async fn update(&self, _: &AuthHeader, _: &InfraId, _: &str) -> Result<Vec<String>, ImError> {
        todo!()
    }
    async fn destroy(&self, _: &AuthHeader, _: &InfraId, _: bool) -> Result<(), ImError> {
        todo!()
    }
}
