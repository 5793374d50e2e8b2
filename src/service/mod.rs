//! The operations of the orchestrator, independent of how they are asked for: the v1
//! API and the legacy API both call these, so no rule exists twice. Each operation
//! checks who may do it, validates, and writes its changes (status, job, outbox
//! message, log line) in one transaction.

pub mod deployments;
pub mod imports;
pub mod resources;
pub mod submit;
pub mod templates;

use crate::store::StoreError;

/// One problem in a request, located by a JSON pointer.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Where (`/template_inputs/cpus`).
    pub loc: String,
    /// What.
    pub msg: String,
}

/// Why an operation was refused, typed by what the client should do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The entity does not exist or is not visible to the caller (404).
    #[error("{entity} '{id}' does not exist")]
    NotFound {
        /// Entity kind.
        entity: &'static str,
        /// Its id as given.
        id: String,
    },
    /// The entity's state forbids the operation (409).
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` no longer matches (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// Validation failed (422), with every problem.
    #[error("{detail}")]
    Invalid {
        /// Summary sentence.
        detail: String,
        /// Each problem.
        violations: Vec<Violation>,
    },
    /// A dependency is unavailable (503); `internal` is logged only.
    #[error("{public}")]
    Unavailable {
        /// What the client is told.
        public: String,
        /// What is logged.
        internal: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or unexpected failure (500, logged).
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// 404 for an entity.
    pub fn not_found(entity: &'static str, id: impl std::fmt::Display) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// 422 for one field.
    pub fn invalid(loc: impl Into<String>, msg: impl Into<String>) -> Self {
        let (loc, msg) = (loc.into(), msg.into());
        Self::Invalid {
            detail: format!("{}: {msg}", loc.trim_start_matches('/')),
            violations: vec![Violation { loc, msg }],
        }
    }
}

/// Result of operations.
pub type Result<T> = std::result::Result<T, Error>;

/// Who performs an operation.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The caller's user id.
    pub user_id: uuid::Uuid,
    /// Administrators see and repair everything.
    pub is_admin: bool,
    /// The caller's groups.
    pub groups: Vec<String>,
    /// The caller's name for log lines.
    pub name: String,
    /// The caller's access token (kept for jobs that act on the user's behalf).
    pub token: crate::config::Secret,
}

impl Actor {
    /// The words log lines use for the caller.
    pub fn describe(&self) -> String {
        if self.is_admin {
            format!("administrator {} ({})", self.name, self.user_id)
        } else {
            format!("{} ({})", self.name, self.user_id)
        }
    }
}
