//! The messages, versioned as docs/messages.md describes them: builders for the four
//! produced topics (and the helpers the services call to write them to the outbox in
//! their transaction), and the readers of the two consumed topics.
//!
//! Outbox rows name the *logical* topic (`create-deployment`...); the relay maps it to
//! the configured topic name when it publishes, so renaming a topic needs no data
//! change. Payloads are JSON objects stored once and published as they are: encoded
//! once (orchestrator-python encoded its message twice, a JSON string holding JSON).

use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::config::{KafkaConfig, KafkaTopics, Secret};
use crate::domain::{
    Deployment, DeploymentStatus, Resource, ResourceStatus, Task, Template, Timestamp, User,
};
use crate::store::{outbox, templates, users, Conn, StoreError, StoreResult};

/// Logical topic of new deployments.
pub const CREATE_DEPLOYMENT: &str = "create-deployment";
/// Logical topic of updates (new inputs, owner changes).
pub const UPDATE_DEPLOYMENT: &str = "update-deployment";
/// Logical topic of deletions.
pub const DELETE_DEPLOYMENT: &str = "delete-deployment";
/// Logical topic of VM actions (start, stop, reboot).
pub const DEPLOYMENT_ACTION: &str = "deployment-action";
/// Logical topic of status reports from an external engine (consumed).
pub const DEPLOYMENT_STATUS: &str = "deployment-status";
/// Logical topic of operational log lines (consumed).
pub const DEPLOYMENT_LOGS: &str = "deployment-logs";

/// The schema version of the messages this code writes and the major version it
/// reads.
pub const MSG_VERSION: &str = "1.0.0";

/// The configured topic name of a logical topic; an unknown name is used as it is.
pub fn topic_name<'a>(topics: &'a KafkaTopics, logical: &'a str) -> &'a str {
    match logical {
        CREATE_DEPLOYMENT => &topics.create,
        UPDATE_DEPLOYMENT => &topics.update,
        DELETE_DEPLOYMENT => &topics.delete,
        DEPLOYMENT_ACTION => &topics.action,
        DEPLOYMENT_STATUS => &topics.status,
        DEPLOYMENT_LOGS => &topics.logs,
        other => other,
    }
}

/// A message ready for the outbox.
#[derive(Clone, PartialEq)]
pub struct Outgoing {
    /// Unique id, also in the payload (`msg_id`) and in the `message-id` header.
    pub id: Uuid,
    /// Logical topic.
    pub topic: &'static str,
    /// The deployment id: Kafka keeps one key's messages in order.
    pub key: String,
    /// The JSON object published.
    pub payload: Value,
}

impl std::fmt::Debug for Outgoing {
    // The payload may hold an access token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("id", &self.id)
            .field("topic", &self.topic)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Whether a payload carries an access token (such rows are deleted once published).
pub fn carries_token(payload: &Value) -> bool {
    payload.get("access_token").is_some_and(|t| !t.is_null())
}

/// What every produced message shares: the settings, its id and time, and who
/// asked (with their token).
#[derive(Clone, Copy)]
pub struct Origin<'a> {
    /// `KAFKA_*` settings (versions, whether the token travels).
    pub kafka: &'a KafkaConfig,
    /// The message id.
    pub id: Uuid,
    /// When the change was made.
    pub now: Timestamp,
    /// The user who asked.
    pub by: Uuid,
    /// Their access token.
    pub token: &'a Secret,
}

impl<'a> Origin<'a> {
    /// A new message id, now, on behalf of `by`.
    pub fn new(kafka: &'a KafkaConfig, by: Uuid, token: &'a Secret) -> Self {
        Self {
            kafka,
            id: Uuid::new_v4(),
            now: Timestamp::now(),
            by,
            token,
        }
    }

    /// The fields every produced message starts with.
    fn envelope(&self, version: &str, d: &Deployment) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("msg_version".into(), json!(version));
        m.insert("msg_id".into(), json!(self.id));
        m.insert("deployment_id".into(), json!(d.id));
        m.insert("timestamp".into(), json!(self.now.to_rfc3339()));
        m
    }

    /// Adds the caller's access token when `KAFKA_INCLUDE_ACCESS_TOKEN` asks for it.
    fn add_token(&self, m: &mut Map<String, Value>) {
        if self.kafka.include_access_token && !self.token.expose().is_empty() {
            m.insert("access_token".into(), json!(self.token.expose()));
        }
    }

    fn message(&self, topic: &'static str, d: &Deployment, m: Map<String, Value>) -> Outgoing {
        Outgoing {
            id: self.id,
            topic,
            key: d.id.to_string(),
            payload: Value::Object(m),
        }
    }
}

/// Where the deployment is (or was asked to go), for the messages after creation.
fn placement(m: &mut Map<String, Value>, d: &Deployment) {
    m.insert("im_infra_id".into(), json!(d.im_infra_id));
    m.insert("target_provider_name".into(), json!(d.target_provider));
    m.insert("target_region_name".into(), json!(d.target_region));
}

/// `create-deployment`: orchestrator-python's `CreateDepMessage` fields, plus
/// `msg_id` and `template_id`.
pub fn create_deployment(
    o: &Origin,
    d: &Deployment,
    template: &Template,
    owner: &User,
) -> Outgoing {
    let mut m = o.envelope(&o.kafka.create_dep_msg_version, d);
    m.insert("template_id".into(), json!(template.id));
    m.insert("template".into(), json!(template.content));
    m.insert("template_name".into(), json!(template.name));
    m.insert(
        "template_inputs".into(),
        Value::Object(d.template_inputs.clone()),
    );
    m.insert("user_group".into(), json!(d.user_group));
    m.insert("user_group_issuer".into(), json!(owner.issuer));
    m.insert(
        "per_provider_max_retries".into(),
        json!(d.per_provider_max_retries),
    );
    m.insert("max_providers".into(), json!(d.max_providers));
    m.insert("timeout".into(), json!(d.tot_timeout_mins));
    m.insert(
        "per_provider_timeout".into(),
        json!(d.per_provider_timeout_mins),
    );
    m.insert("keep_last_attempt".into(), json!(d.keep_last_attempt));
    m.insert("target_provider_name".into(), json!(d.target_provider));
    m.insert(
        "target_provider_type".into(),
        json!(template.target_provider_type),
    );
    m.insert("target_region_name".into(), json!(d.target_region));
    m.insert("owner_username".into(), json!(owner.username));
    m.insert("owner_ssh_public_key".into(), json!(owner.public_ssh_key));
    o.add_token(&mut m);
    o.message(CREATE_DEPLOYMENT, d, m)
}

/// What an `update-deployment` message announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// New inputs: redeploy.
    Inputs {
        /// The status before the update.
        previous: DeploymentStatus,
    },
    /// An owner was added or removed; the VMs need the owners' keys.
    Owner {
        /// The user.
        user: Uuid,
        /// Added (else removed).
        added: bool,
        /// The status to return to when done.
        previous: DeploymentStatus,
    },
}

/// `update-deployment`.
pub fn update_deployment(
    o: &Origin,
    d: &Deployment,
    template: &Template,
    change: Change,
) -> Outgoing {
    let mut m = o.envelope(MSG_VERSION, d);
    let (kind, previous) = match change {
        Change::Inputs { previous } => ("inputs", previous),
        Change::Owner {
            added: true,
            previous,
            ..
        } => ("owner_added", previous),
        Change::Owner {
            added: false,
            previous,
            ..
        } => ("owner_removed", previous),
    };
    m.insert("change".into(), json!(kind));
    m.insert("previous_status".into(), json!(previous.name()));
    if let Change::Owner { user, .. } = change {
        m.insert("user_id".into(), json!(user));
    }
    m.insert("owners".into(), json!(d.owned_by));
    m.insert("template_id".into(), json!(template.id));
    m.insert("template".into(), json!(template.content));
    m.insert("template_name".into(), json!(template.name));
    m.insert(
        "template_inputs".into(),
        Value::Object(d.template_inputs.clone()),
    );
    m.insert("user_group".into(), json!(d.user_group));
    placement(&mut m, d);
    m.insert("requested_by".into(), json!(o.by));
    o.add_token(&mut m);
    o.message(UPDATE_DEPLOYMENT, d, m)
}

/// `delete-deployment`.
pub fn delete_deployment(o: &Origin, d: &Deployment, force: bool, unsecure: bool) -> Outgoing {
    let mut m = o.envelope(MSG_VERSION, d);
    placement(&mut m, d);
    m.insert("force".into(), json!(force));
    m.insert("unsecure".into(), json!(unsecure));
    m.insert("requested_by".into(), json!(o.by));
    o.add_token(&mut m);
    o.message(DELETE_DEPLOYMENT, d, m)
}

/// `deployment-action`: start, stop or reboot one VM.
pub fn deployment_action(o: &Origin, d: &Deployment, r: &Resource, action: &str) -> Outgoing {
    let mut m = o.envelope(MSG_VERSION, d);
    m.insert("action".into(), json!(action));
    m.insert("resource_id".into(), json!(r.id));
    m.insert("tosca_node_name".into(), json!(r.tosca_node_name));
    m.insert("tosca_node_type".into(), json!(r.tosca_node_type));
    m.insert("im_vm_idx".into(), json!(r.im_vm_idx));
    placement(&mut m, d);
    m.insert("requested_by".into(), json!(o.by));
    o.add_token(&mut m);
    o.message(DEPLOYMENT_ACTION, d, m)
}

async fn template_of(conn: &mut Conn, d: &Deployment) -> StoreResult<Template> {
    templates::get(conn, d.template_id).await?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "template {} of deployment {} is missing",
            d.template_id, d.id
        ))
    })
}

async fn write(conn: &mut Conn, message: &Outgoing) -> StoreResult<Uuid> {
    outbox::push_with_id(
        conn,
        message.id,
        message.topic,
        &message.key,
        &message.payload,
    )
    .await?;
    Ok(message.id)
}

/// Writes `create-deployment` for a new deployment (in the caller's transaction).
pub async fn push_created(
    conn: &mut Conn,
    kafka: &KafkaConfig,
    d: &Deployment,
    token: &Secret,
) -> StoreResult<Uuid> {
    let template = template_of(conn, d).await?;
    let owner = users::get(conn, d.created_by).await?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "creator {} of deployment {} is missing",
            d.created_by, d.id
        ))
    })?;
    let message = create_deployment(
        &Origin::new(kafka, d.created_by, token),
        d,
        &template,
        &owner,
    );
    write(conn, &message).await
}

/// Writes `update-deployment` (in the caller's transaction).
pub async fn push_updated(
    conn: &mut Conn,
    kafka: &KafkaConfig,
    d: &Deployment,
    change: Change,
    by: Uuid,
    token: &Secret,
) -> StoreResult<Uuid> {
    let template = template_of(conn, d).await?;
    let message = update_deployment(&Origin::new(kafka, by, token), d, &template, change);
    write(conn, &message).await
}

/// Writes `delete-deployment` (in the caller's transaction).
pub async fn push_deleted(
    conn: &mut Conn,
    kafka: &KafkaConfig,
    d: &Deployment,
    (force, unsecure): (bool, bool),
    by: Uuid,
    token: &Secret,
) -> StoreResult<Uuid> {
    let message = delete_deployment(&Origin::new(kafka, by, token), d, force, unsecure);
    write(conn, &message).await
}

/// Writes `deployment-action` (in the caller's transaction).
pub async fn push_action(
    conn: &mut Conn,
    kafka: &KafkaConfig,
    d: &Deployment,
    r: &Resource,
    action: &str,
    by: Uuid,
    token: &Secret,
) -> StoreResult<Uuid> {
    let message = deployment_action(&Origin::new(kafka, by, token), d, r, action);
    write(conn, &message).await
}

// ---------------------------------------------------------------------------------
// Consumed messages.

/// An enum value given by its code or its name (`0` or `"CREATE_COMPLETE"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum CodeOrName {
    Code(i64),
    Name(String),
}

impl CodeOrName {
    fn resolve<T>(
        &self,
        from_code: fn(i64) -> Option<T>,
        parse: fn(&str) -> Option<T>,
    ) -> Option<T> {
        match self {
            Self::Code(c) => from_code(*c),
            Self::Name(n) => parse(n.trim()),
        }
    }
}

#[derive(Deserialize)]
struct RawStatus {
    msg_version: Option<String>,
    msg_id: String,
    deployment_id: Uuid,
    status: Option<CodeOrName>,
    #[serde(alias = "reason")]
    status_reason: Option<String>,
    task: Option<CodeOrName>,
    #[serde(alias = "template_outputs")]
    outputs: Option<Map<String, Value>>,
    im_infra_id: Option<String>,
    #[serde(alias = "target_provider_name")]
    target_provider: Option<String>,
    #[serde(alias = "target_region_name")]
    target_region: Option<String>,
    target_iaas_project: Option<String>,
    im_logs: Option<String>,
    #[serde(default)]
    resources: Vec<RawResourceState>,
}

#[derive(Deserialize)]
struct RawResourceState {
    id: Option<Uuid>,
    tosca_node_name: Option<String>,
    instance_index: Option<i64>,
    status: CodeOrName,
    status_reason: Option<String>,
    im_vm_idx: Option<String>,
    metadata: Option<Value>,
}

/// Which resources a reported state is for.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceSelector {
    /// One resource by our id.
    Id(Uuid),
    /// The instances of a node (one instance when `index` is given).
    Node {
        /// The TOSCA node name.
        name: String,
        /// The instance index.
        index: Option<i64>,
    },
}

/// A resource state reported by an external engine.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceState {
    /// Which resources.
    pub selector: ResourceSelector,
    /// Their new status.
    pub status: ResourceStatus,
    /// Why.
    pub status_reason: Option<String>,
    /// The VM id.
    pub im_vm_idx: Option<String>,
    /// `{"VirtualMachineInfo": ...}` or whatever the engine reports.
    pub metadata: Option<Value>,
}

/// A `deployment-status` message, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusMessage {
    /// Unique id: a message applied once is not applied again.
    pub msg_id: String,
    /// The deployment.
    pub deployment_id: Uuid,
    /// The new status.
    pub status: Option<DeploymentStatus>,
    /// Why (failures).
    pub status_reason: Option<String>,
    /// The current step.
    pub task: Option<Task>,
    /// Outputs (replace the stored ones).
    pub outputs: Option<Map<String, Value>>,
    /// Where the deployment went.
    pub im_infra_id: Option<String>,
    /// Provider chosen.
    pub target_provider: Option<String>,
    /// Region chosen.
    pub target_region: Option<String>,
    /// IaaS project used.
    pub target_iaas_project: Option<String>,
    /// IM's contextualization log.
    pub im_logs: Option<String>,
    /// Resource states.
    pub resources: Vec<ResourceState>,
}

/// A `deployment-logs` message, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct LogMessage {
    /// Unique id.
    pub msg_id: String,
    /// The deployment.
    pub deployment_id: Uuid,
    /// The lines, in order.
    pub lines: Vec<String>,
}

#[derive(Deserialize)]
struct RawLog {
    msg_version: Option<String>,
    msg_id: String,
    deployment_id: Uuid,
    message: Option<String>,
    #[serde(default)]
    lines: Vec<String>,
}

/// Why a consumed message cannot be read: it is logged and skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn check_version(version: Option<&str>) -> Result<(), Malformed> {
    match version {
        None => Ok(()),
        Some(v) if v.split('.').next() == Some("1") => Ok(()),
        Some(v) => Err(Malformed(format!(
            "msg_version {v} is not supported (1.x is)"
        ))),
    }
}

fn check_id(id: &str) -> Result<(), Malformed> {
    // consumed_messages keeps ids of up to 36 characters (a UUID).
    if id.trim().is_empty() || id.len() > 36 {
        return Err(Malformed(
            "msg_id must be a non-empty id of at most 36 characters (a UUID)".into(),
        ));
    }
    Ok(())
}

fn parse_json<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, Malformed> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| Malformed(format!("the message is not JSON: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Malformed(format!("field '{path}': {}", e.into_inner()))
    })
}

/// Reads a `deployment-status` message.
pub fn read_status(payload: &[u8]) -> Result<StatusMessage, Malformed> {
    let raw: RawStatus = parse_json(payload)?;
    check_version(raw.msg_version.as_deref())?;
    check_id(&raw.msg_id)?;
    let status = match &raw.status {
        None => None,
        Some(s) => Some(
            s.resolve(DeploymentStatus::from_code, DeploymentStatus::parse)
                .ok_or_else(|| Malformed(format!("status {s:?} is not a deployment status")))?,
        ),
    };
    let task = match &raw.task {
        None => None,
        Some(t) => Some(
            t.resolve(Task::from_code, Task::parse)
                .ok_or_else(|| Malformed(format!("task {t:?} is not a task")))?,
        ),
    };
    let mut resources = Vec::with_capacity(raw.resources.len());
    for (i, r) in raw.resources.into_iter().enumerate() {
        let selector = match (r.id, r.tosca_node_name) {
            (Some(id), _) => ResourceSelector::Id(id),
            (None, Some(name)) if !name.trim().is_empty() => ResourceSelector::Node {
                name,
                index: r.instance_index,
            },
            _ => {
                return Err(Malformed(format!(
                    "resources[{i}] has neither id nor tosca_node_name"
                )))
            }
        };
        let status = r
            .status
            .resolve(ResourceStatus::from_code, ResourceStatus::parse)
            .ok_or_else(|| {
                Malformed(format!(
                    "resources[{i}].status {:?} is not a resource status",
                    r.status
                ))
            })?;
        resources.push(ResourceState {
            selector,
            status,
            status_reason: r.status_reason,
            im_vm_idx: r.im_vm_idx,
            metadata: r.metadata,
        });
    }
    if status.is_none() && raw.outputs.is_none() && resources.is_empty() {
        return Err(Malformed(
            "the message carries no status, outputs or resources".into(),
        ));
    }
    Ok(StatusMessage {
        msg_id: raw.msg_id,
        deployment_id: raw.deployment_id,
        status,
        status_reason: raw.status_reason,
        task,
        outputs: raw.outputs,
        im_infra_id: raw.im_infra_id,
        target_provider: raw.target_provider,
        target_region: raw.target_region,
        target_iaas_project: raw.target_iaas_project,
        im_logs: raw.im_logs,
        resources,
    })
}

/// Reads a `deployment-logs` message.
pub fn read_log(payload: &[u8]) -> Result<LogMessage, Malformed> {
    let raw: RawLog = parse_json(payload)?;
    check_version(raw.msg_version.as_deref())?;
    check_id(&raw.msg_id)?;
    let mut lines: Vec<String> = raw.message.into_iter().chain(raw.lines).collect();
    lines.retain(|l| !l.trim().is_empty());
    if lines.is_empty() {
        return Err(Malformed("the message has no log line".into()));
    }
    Ok(LogMessage {
        msg_id: raw.msg_id,
        deployment_id: raw.deployment_id,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(include_token: bool) -> KafkaConfig {
        let mut vars = vec![("KAFKA_CREATE_DEP_MSG_VERSION", "1.0.0")];
        if include_token {
            vars.push(("KAFKA_INCLUDE_ACCESS_TOKEN", "true"));
        }
        crate::config::Config::from_sources(
            vars.into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
            None,
        )
        .unwrap()
        .kafka
    }

    fn deployment() -> Deployment {
        let now = Timestamp::now();
        let user = Uuid::new_v4();
        let mut inputs = Map::new();
        inputs.insert("num_cpus".into(), json!(2));
        Deployment {
            id: Uuid::new_v4(),
            template_id: Uuid::new_v4(),
            template_inputs: inputs,
            template_outputs: Map::new(),
            user_group: "beta-testers".into(),
            per_provider_max_retries: 3,
            max_providers: None,
            tot_timeout_mins: 600,
            per_provider_timeout_mins: 60,
            keep_last_attempt: true,
            target_provider: Some("backbone".into()),
            target_region: None,
            target_iaas_project: None,
            im_infra_id: None,
            status: DeploymentStatus::CreateInProgress,
            status_reason: None,
            task: Task::Submitted,
            callback: None,
            version: 1,
            created_at: now,
            created_by: user,
            updated_at: now,
            updated_by: user,
            owned_by: vec![user],
        }
    }

    fn template(d: &Deployment) -> Template {
        let now = Timestamp::now();
        Template {
            id: d.template_id,
            name: "single_vm".into(),
            version: Some("1.0.0".into()),
            target_provider_type: Some("openstack".into()),
            tosca_definition_version: "tosca_simple_yaml_1_0".into(),
            content: "tosca_definitions_version: tosca_simple_yaml_1_0\n".into(),
            checksum: "x".into(),
            created_at: now,
            created_by: d.created_by,
            updated_at: now,
            updated_by: d.created_by,
        }
    }

    fn owner(d: &Deployment) -> User {
        let now = Timestamp::now();
        User {
            id: d.created_by,
            sub: "alice".into(),
            issuer: "https://iam.example.org/".into(),
            name: "Alice".into(),
            username: "alice".into(),
            email: "alice@example.org".into(),
            picture: None,
            public_ssh_key: Some("ssh-ed25519 AAAA alice".into()),
            refresh_token: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn create_deployment_has_the_fields_of_create_dep_message_encoded_once() {
        let d = deployment();
        let (k, token) = (kafka(false), Secret::new("tok-123"));
        let o = Origin::new(&k, d.created_by, &token);
        let id = o.id;
        let m = create_deployment(&o, &d, &template(&d), &owner(&d));
        assert_eq!(m.topic, CREATE_DEPLOYMENT);
        assert_eq!(m.key, d.id.to_string());
        let p = m.payload.as_object().unwrap();
        for field in [
            "msg_version",
            "msg_id",
            "deployment_id",
            "timestamp",
            "template",
            "template_name",
            "template_inputs",
            "user_group",
            "user_group_issuer",
            "per_provider_max_retries",
            "max_providers",
            "timeout",
            "per_provider_timeout",
            "keep_last_attempt",
            "target_provider_name",
            "target_provider_type",
            "target_region_name",
            "owner_username",
            "owner_ssh_public_key",
        ] {
            assert!(p.contains_key(field), "{field} missing");
        }
        assert_eq!(p["msg_id"], json!(id.to_string()));
        assert_eq!(p["msg_version"], "1.0.0");
        assert_eq!(p["timeout"], 600);
        assert_eq!(p["per_provider_timeout"], 60);
        assert_eq!(p["template_inputs"], json!({"num_cpus": 2}));
        assert_eq!(p["target_provider_type"], "openstack");
        assert_eq!(p["user_group_issuer"], "https://iam.example.org/");
        assert!(Timestamp::parse(p["timestamp"].as_str().unwrap()).is_some());
        // Encoded once: the stored text parses straight into the object.
        let text = m.payload.to_string();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert!(back.is_object());
        assert!(!p.contains_key("access_token"));
        assert!(!carries_token(&m.payload));
    }

    #[test]
    fn the_access_token_travels_only_when_asked_and_never_in_debug() {
        let d = deployment();
        let (with, without, token) = (kafka(true), kafka(false), Secret::new("tok-123"));
        let m = create_deployment(
            &Origin::new(&with, d.created_by, &token),
            &d,
            &template(&d),
            &owner(&d),
        );
        assert_eq!(m.payload["access_token"], "tok-123");
        assert!(carries_token(&m.payload));
        assert!(!format!("{m:?}").contains("tok-123"));
        let m = delete_deployment(
            &Origin::new(&without, d.created_by, &token),
            &d,
            false,
            true,
        );
        assert!(m.payload.get("access_token").is_none());
        assert_eq!(m.payload["unsecure"], true);
        assert_eq!(m.topic, DELETE_DEPLOYMENT);
    }

    #[test]
    fn update_and_action_messages_say_what_changed() {
        let d = deployment();
        let user = Uuid::new_v4();
        let (k, none) = (kafka(false), Secret::default());
        let o = Origin::new(&k, d.created_by, &none);
        let change = Change::Owner {
            user,
            added: true,
            previous: DeploymentStatus::CreateComplete,
        };
        let m = update_deployment(&o, &d, &template(&d), change);
        assert_eq!(m.payload["change"], "owner_added");
        assert_eq!(m.payload["user_id"], json!(user));
        assert_eq!(m.payload["previous_status"], "CREATE_COMPLETE");
        assert_eq!(m.payload["msg_version"], MSG_VERSION);
        let now = Timestamp::now();
        let r = Resource {
            id: Uuid::new_v4(),
            deployment_id: d.id,
            tosca_node_name: "vm".into(),
            tosca_node_type: "tosca.nodes.Compute".into(),
            instance_index: 0,
            im_vm_idx: Some("0".into()),
            status: ResourceStatus::Stopping,
            status_reason: None,
            metadata: None,
            required_by: vec![],
            created_at: now,
            created_by: d.created_by,
            updated_at: now,
            updated_by: d.created_by,
        };
        let m = deployment_action(&Origin::new(&k, d.created_by, &none), &d, &r, "stop");
        assert_eq!(m.topic, DEPLOYMENT_ACTION);
        assert_eq!(m.payload["action"], "stop");
        assert_eq!(m.payload["resource_id"], json!(r.id));
        assert_eq!(m.payload["im_vm_idx"], "0");
    }

    #[test]
    fn logical_topics_map_to_the_configured_names() {
        let topics = KafkaTopics {
            create: "c".into(),
            ..KafkaTopics::default()
        };
        assert_eq!(topic_name(&topics, CREATE_DEPLOYMENT), "c");
        assert_eq!(topic_name(&topics, DELETE_DEPLOYMENT), "delete-deployment");
        assert_eq!(topic_name(&topics, "something-else"), "something-else");
    }

    #[test]
    fn a_status_message_takes_codes_or_names() {
        let d = Uuid::new_v4();
        let r = Uuid::new_v4();
        let m = read_status(
            json!({"msg_version": "1.0.0", "msg_id": "m1", "deployment_id": d, "status": 0,
                   "reason": "ok", "outputs": {"ip": "10.0.0.1"}, "task": "none",
                   "resources": [{"id": r, "status": "STARTED"},
                                 {"tosca_node_name": "vm", "instance_index": 1, "status": 10}]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(m.status, Some(DeploymentStatus::CreateComplete));
        assert_eq!(m.status_reason.as_deref(), Some("ok"));
        assert_eq!(m.task, Some(Task::None));
        assert_eq!(m.resources[0].selector, ResourceSelector::Id(r));
        assert_eq!(m.resources[0].status, ResourceStatus::Started);
        assert_eq!(m.resources[1].status, ResourceStatus::Stopped);
        let m = read_status(
            json!({"msg_id": "m2", "deployment_id": d, "status": "CREATE_FAILED"})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(m.status, Some(DeploymentStatus::CreateFailed));
    }

    #[test]
    fn malformed_status_messages_say_why() {
        let d = Uuid::new_v4();
        for (payload, needle) in [
            (b"not json".to_vec(), "not JSON"),
            (
                json!({"deployment_id": d, "status": 0})
                    .to_string()
                    .into_bytes(),
                "msg_id",
            ),
            (
                json!({"msg_id": "x", "deployment_id": "nope", "status": 0})
                    .to_string()
                    .into_bytes(),
                "deployment_id",
            ),
            (
                json!({"msg_id": "x", "deployment_id": d, "status": "DONE"})
                    .to_string()
                    .into_bytes(),
                "not a deployment status",
            ),
            (
                json!({"msg_id": "x", "deployment_id": d})
                    .to_string()
                    .into_bytes(),
                "no status",
            ),
            (
                json!({"msg_version": "2.0.0", "msg_id": "x", "deployment_id": d, "status": 0})
                    .to_string()
                    .into_bytes(),
                "not supported",
            ),
            (
                json!({"msg_id": "x", "deployment_id": d, "resources": [{"status": 2}]})
                    .to_string()
                    .into_bytes(),
                "neither id",
            ),
            (
                json!({"msg_id": "", "deployment_id": d, "status": 0})
                    .to_string()
                    .into_bytes(),
                "msg_id",
            ),
        ] {
            let err = read_status(&payload).unwrap_err();
            assert!(
                err.0.contains(needle),
                "{} does not mention {needle}",
                err.0
            );
        }
    }

    #[test]
    fn a_log_message_has_lines() {
        let d = Uuid::new_v4();
        let m = read_log(
            json!({"msg_id": "l1", "deployment_id": d, "message": "one", "lines": ["two", " "]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(m.lines, ["one", "two"]);
        assert!(read_log(
            json!({"msg_id": "l1", "deployment_id": d})
                .to_string()
                .as_bytes()
        )
        .is_err());
    }
}
