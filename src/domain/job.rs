//! Work that must happen in the cloud after an API answer: a row written in the same
//! transaction as the status change, claimed by a worker with a lease (DESIGN.md §4).

use serde_json::Value;
use uuid::Uuid;

use super::Timestamp;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Create the infrastructure.
    Create,
    /// Update it with new inputs (IM add/alter).
    Update,
    /// Destroy it.
    Delete,
    /// Start, stop or reboot a VM.
    ResourceAction,
    /// Push owners' keys after an ownership change.
    OwnerChange,
}

impl JobKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::ResourceAction => "resource_action",
            Self::OwnerChange => "owner_change",
        }
    }

    /// From the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "create" => Self::Create,
            "update" => Self::Update,
            "delete" => Self::Delete,
            "resource_action" => Self::ResourceAction,
            "owner_change" => Self::OwnerChange,
            _ => return None,
        })
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for `run_after`.
    Pending,
    /// A worker holds its lease.
    Running,
    /// Finished.
    Done,
    /// Gave up.
    Failed,
    /// Cancelled by the API (delete, reset).
    Cancelled,
}

impl JobState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// From the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// A job row.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Our id.
    pub id: Uuid,
    /// The deployment it works on.
    pub deployment_id: Uuid,
    /// What it does.
    pub kind: JobKind,
    /// Its parameters (e.g. the resource and action).
    pub payload: Value,
    /// Its state.
    pub state: JobState,
    /// What the steps done so far recorded (resumable).
    pub progress: Value,
    /// Not before this time.
    pub run_after: Timestamp,
    /// The worker claim holding the lease.
    pub lease_owner: Option<String>,
    /// The lease's end.
    pub lease_until: Option<Timestamp>,
    /// Steps run so far.
    pub attempts: i64,
    /// Last error seen.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl Job {
    /// A new pending job to run now.
    pub fn new(deployment_id: Uuid, kind: JobKind, payload: Value) -> Self {
        let now = Timestamp::now();
        Self {
            id: Uuid::new_v4(),
            deployment_id,
            kind,
            payload,
            state: JobState::Pending,
            progress: Value::Object(Default::default()),
            run_after: now,
            lease_owner: None,
            lease_until: None,
            attempts: 0,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }
}
