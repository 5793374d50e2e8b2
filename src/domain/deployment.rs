//! Deployments, their resources (one per TOSCA node instance), provider attempts and
//! log lines, as stored.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{DeploymentStatus, ResourceStatus, Task, Timestamp};

/// Default of `per_provider_max_retries` (spec).
pub const DEFAULT_RETRIES: i64 = 3;
/// Default and largest `tot_timeout_mins` (spec: 14400 minutes, ten days).
pub const MAX_TOTAL_TIMEOUT_MINS: i64 = 14_400;
/// Default `per_provider_timeout_mins` (spec).
pub const DEFAULT_PROVIDER_TIMEOUT_MINS: i64 = 1_440;

/// A deployment as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// Our id.
    pub id: Uuid,
    /// The template deployed.
    pub template_id: Uuid,
    /// Inputs as given (merged over time by updates), validated.
    pub template_inputs: Map<String, Value>,
    /// Outputs read from IM when the deployment completed.
    pub template_outputs: Map<String, Value>,
    /// The group the deployment is for.
    pub user_group: String,
    /// Attempts per provider.
    pub per_provider_max_retries: i64,
    /// How many providers may be tried (`None`: all candidates).
    pub max_providers: Option<i64>,
    /// Overall deadline in minutes.
    pub tot_timeout_mins: i64,
    /// Deadline per provider in minutes.
    pub per_provider_timeout_mins: i64,
    /// Keep the last failed attempt's infrastructure.
    pub keep_last_attempt: bool,
    /// Provider asked for, then the one chosen.
    pub target_provider: Option<String>,
    /// Region asked for, then the one chosen.
    pub target_region: Option<String>,
    /// IaaS project chosen.
    pub target_iaas_project: Option<String>,
    /// IM infrastructure id once created.
    pub im_infra_id: Option<String>,
    /// Current status.
    pub status: DeploymentStatus,
    /// Why the status is what it is (errors).
    pub status_reason: Option<String>,
    /// Current step.
    pub task: Task,
    /// Legacy clients' callback URL.
    pub callback: Option<String>,
    /// Optimistic-concurrency version, bumped by every change (the ETag).
    pub version: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Creator.
    pub created_by: Uuid,
    /// Last change.
    pub updated_at: Timestamp,
    /// Who changed it last.
    pub updated_by: Uuid,
    /// Owners (at least one).
    pub owned_by: Vec<Uuid>,
}

/// A resource: one instance of a TOSCA node template.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Our id.
    pub id: Uuid,
    /// Its deployment.
    pub deployment_id: Uuid,
    /// The node template's name.
    pub tosca_node_name: String,
    /// The node template's type.
    pub tosca_node_type: String,
    /// Index among the instances of a scalable node.
    pub instance_index: i64,
    /// The IM VM id bound to it (compute nodes).
    pub im_vm_idx: Option<String>,
    /// Current status.
    pub status: ResourceStatus,
    /// Why (errors).
    pub status_reason: Option<String>,
    /// `{"VirtualMachineInfo": {"vmProperties": [...]}}` from IM.
    pub metadata: Option<Value>,
    /// Names of the nodes that require this one.
    pub required_by: Vec<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Creator.
    pub created_by: Uuid,
    /// Last change.
    pub updated_at: Timestamp,
    /// Who changed it last.
    pub updated_by: Uuid,
}

/// One try on one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// Our id.
    pub id: Uuid,
    /// Its deployment.
    pub deployment_id: Uuid,
    /// 1-based order among the deployment's attempts.
    pub number: i64,
    /// Provider name.
    pub provider: String,
    /// Region, if the provider has regions.
    pub region: Option<String>,
    /// IaaS project used.
    pub iaas_project: Option<String>,
    /// Start.
    pub started_at: Timestamp,
    /// When the attempt gives up (per-provider deadline, capped by the total).
    pub deadline_at: Timestamp,
    /// End, when over.
    pub ended_at: Option<Timestamp>,
    /// `running`, `succeeded`, `failed`, `timed_out`, `cancelled`.
    pub outcome: String,
    /// IM infrastructure id, once IM answered.
    pub im_infra_id: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
    /// Its infrastructure was destroyed.
    pub destroyed: bool,
}

/// A line of the orchestrator's log of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// When.
    pub created_at: Timestamp,
    /// `api`, `engine`, `kafka`...
    pub source: String,
    /// The line.
    pub message: String,
}
