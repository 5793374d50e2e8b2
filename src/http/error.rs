//! The one error type of the HTTP API. Every failure becomes
//! `{"status": <code>, "detail": "<one readable sentence>"}` (plus `errors` with JSON
//! pointers on 422), as DESIGN.md §3 requires. Internal errors are logged once, here,
//! inside the request's span (which carries the request id), and their text never
//! reaches the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// One problem in a request, located by a JSON pointer (`/template_inputs/cpus`) or,
/// for query parameters, `/query/<name>`.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// Where the problem is.
    pub loc: String,
    /// What the problem is.
    pub msg: String,
}

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status code, repeated.
    pub status: u16,
    /// One readable sentence.
    pub detail: String,
    /// Each validation problem (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    errors: Vec<FieldError>,
    /// `error="..."` for the `WWW-Authenticate: Bearer` challenge of a 401.
    bearer_error: Option<&'static str>,
    /// What went wrong inside, logged and never sent.
    internal: Option<String>,
}

impl ApiError {
    /// An error with a status and a detail sentence.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            errors: Vec::new(),
            bearer_error: None,
            internal: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 401 with a `WWW-Authenticate: Bearer` challenge. `invalid_token` says the
    /// token was present but unusable.
    pub fn unauthorized(detail: impl Into<String>, invalid_token: bool) -> Self {
        let mut err = Self::new(StatusCode::UNAUTHORIZED, detail);
        err.bearer_error = Some(if invalid_token { "invalid_token" } else { "" });
        err
    }

    /// 403: the caller may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// 404 for an entity (also used for entities the caller may not see).
    pub fn not_found(entity: &str, id: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("{entity} '{id}' does not exist"),
        )
    }

    /// 409: the entity's state or existing data forbids the operation.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// 412: `If-Match` no longer matches.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, detail)
    }

    /// 422 with every problem found.
    pub fn unprocessable(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        let mut err = Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail);
        err.errors = errors;
        err
    }

    /// 422 for one field.
    pub fn invalid_field(loc: impl Into<String>, msg: impl Into<String>) -> Self {
        let msg = msg.into();
        let loc = loc.into();
        Self::unprocessable(
            format!("{}: {msg}", loc.trim_start_matches('/')),
            vec![FieldError { loc, msg }],
        )
    }

    /// 503: a component we depend on is unavailable; `what` is said to the client,
    /// `internal` only logged.
    pub fn unavailable(what: impl Into<String>, internal: impl std::fmt::Display) -> Self {
        let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, what);
        err.internal = Some(internal.to_string());
        err
    }

    /// 500: a bug or an unexpected failure. Logged with its cause; the client only
    /// learns that something failed and the request id to report.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut err = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error; report the X-Request-Id of this response",
        );
        err.internal = Some(cause.to_string());
        err
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The detail sentence.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The field errors (422).
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// What went wrong inside (logged, never sent), for surfaces with their own
    /// error body (the legacy API).
    pub fn internal_cause(&self) -> Option<&str> {
        self.internal.as_deref()
    }
}

impl From<crate::service::Error> for ApiError {
    fn from(err: crate::service::Error) -> Self {
        use crate::service::Error as E;
        match err {
            E::BadRequest(d) => Self::bad_request(d),
            E::Forbidden(d) => Self::forbidden(d),
            e @ E::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, e.to_string()),
            E::Conflict(d) => Self::conflict(d),
            E::PreconditionFailed(d) => Self::precondition_failed(d),
            E::Invalid { detail, violations } => Self::unprocessable(
                detail,
                violations
                    .into_iter()
                    .map(|v| FieldError {
                        loc: v.loc,
                        msg: v.msg,
                    })
                    .collect(),
            ),
            E::Unavailable { public, internal } => Self::unavailable(public, internal),
            E::Store(e) => e.into(),
            E::Internal(e) => Self::internal(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => {
                Self::unavailable("the database is unavailable; try again later", err)
            }
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(internal) = &self.internal {
            if self.status.is_server_error() {
                tracing::error!(http.status = self.status.as_u16(), error = %internal, "request failed");
            }
        }
        let body = ErrorBody {
            status: self.status.as_u16(),
            detail: self.detail,
            errors: self.errors,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(code) = self.bearer_error {
            let value = if code.is_empty() {
                "Bearer".to_string()
            } else {
                format!("Bearer error=\"{code}\"")
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
