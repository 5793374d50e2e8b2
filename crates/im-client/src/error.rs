//! Errors of IM calls, typed by what the caller does next: retry later (`Unreachable`,
//! `Server`), fix the credentials (`Unauthorized`, `Forbidden`), treat the
//! infrastructure as gone (`NotFound`), or give up on this request (`Rejected`,
//! `Conflict`, `Protocol`).

/// The text IM puts in its `400` when the `InfrastructureManager` line is missing or
/// unusable. On every route but create and list this is a `400`, not a `401`.
pub(crate) const NO_IM_CREDENTIALS: &str = "No credentials provided for the InfrastructureManager";

/// Why an IM call failed. Messages are IM's own (prefix included, e.g.
/// `Error Getting Inf. prop: ...`) with any credential of the call blanked out.
#[derive(Debug, thiserror::Error)]
pub enum ImError {
    /// IM could not be reached or did not answer in time: retry later.
    #[error("IM unreachable: {0}")]
    Unreachable(String),
    /// IM failed (5xx, or 504 when IM's own blocking-call timeout fired): retry later.
    #[error("IM server error {status}: {message}")]
    Server { status: u16, message: String },
    /// IM did not accept the credentials: 401, and the 400 `No credentials provided for
    /// the InfrastructureManager.` that IM sends on routes other than create.
    #[error("IM refused the credentials: {message}")]
    Unauthorized { message: String },
    /// The credentials are valid but do not own the infrastructure (or the operation is
    /// disabled): 403.
    #[error("IM denied access: {message}")]
    Forbidden { message: String },
    /// No such infrastructure (never existed, or deleted) or VM: 404 with IM's error
    /// body.
    #[error("IM found no such infrastructure or VM: {message}")]
    NotFound { message: String },
    /// IM is busy with the infrastructure (e.g. deleting while VMs are being added): 409.
    #[error("IM conflict: {message}")]
    Conflict { message: String },
    /// IM refused the request itself (invalid TOSCA, unsupported media type, a bad
    /// parameter): do not retry the same request.
    #[error("IM rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// The answer was not what IM sends (unparseable body, unexpected status, a 404
    /// without IM's error body, which means the URL does not point at IM).
    #[error("unexpected IM response: {0}")]
    Protocol(String),
}

impl ImError {
    /// Whether trying the same call again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ImError::Unreachable(_) | ImError::Server { .. })
    }

    /// The error for a non-success status whose message has been read.
    pub(crate) fn from_status(status: u16, message: String) -> ImError {
        match status {
            401 => ImError::Unauthorized { message },
            400 if message.contains(NO_IM_CREDENTIALS) => ImError::Unauthorized { message },
            403 => ImError::Forbidden { message },
            404 => ImError::NotFound { message },
            409 => ImError::Conflict { message },
            500..=599 => ImError::Server { status, message },
            400..=499 => ImError::Rejected { status, message },
            _ => ImError::Protocol(format!("unexpected HTTP status {status}: {message}")),
        }
    }

    /// The same error with its text passed through `f` (to blank out secrets).
    pub(crate) fn map_text(self, f: impl Fn(&str) -> String) -> ImError {
        match self {
            ImError::Unreachable(m) => ImError::Unreachable(f(&m)),
            ImError::Server { status, message } => ImError::Server {
                status,
                message: f(&message),
            },
            ImError::Unauthorized { message } => ImError::Unauthorized {
                message: f(&message),
            },
            ImError::Forbidden { message } => ImError::Forbidden {
                message: f(&message),
            },
            ImError::NotFound { message } => ImError::NotFound {
                message: f(&message),
            },
            ImError::Conflict { message } => ImError::Conflict {
                message: f(&message),
            },
            ImError::Rejected { status, message } => ImError::Rejected {
                status,
                message: f(&message),
            },
            ImError::Protocol(m) => ImError::Protocol(f(&m)),
        }
    }
}
