//! The legacy error body, `{"code": 404, "title": "Not Found", "message": "..."}`
//! (LEG `dto/common/Error.java`). Every failure of the legacy routes, including the
//! v1 extractors' and services' errors, is answered in this shape; field names in
//! messages are the legacy ones (`parameters`, `userGroup`...), and a validation
//! failure, which v1 answers 422, is the legacy 400. A 401 also carries the OAuth
//! pair `error`/`error_description` the legacy server sent, which orchent reads.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::http::error::ApiError;

/// An error answered on a legacy route.
#[derive(Debug)]
pub struct LegacyError {
    status: StatusCode,
    message: String,
    /// Logged for 5xx, never sent.
    internal: Option<String>,
}

/// The body.
#[derive(Debug, Serialize)]
struct Body<'a> {
    code: u16,
    title: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
}

impl LegacyError {
    /// An error with a status and a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            internal: None,
        }
    }

    /// 400 naming the field (legacy name) that is wrong.
    pub fn field(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, format!("{field}: {problem}"))
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 500, logged with its cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal server error; report the X-Request-Id of this response".into(),
            internal: Some(cause.to_string()),
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// v1 names in messages → the legacy names the client sent.
const NAMES: &[(&str, &str)] = &[
    ("/template_inputs/", "parameters."),
    ("template_inputs/", "parameters."),
    ("template_inputs", "parameters"),
    ("/template_id", "template"),
    ("template_id", "template"),
    ("/content", "template"),
    ("per_provider_timeout_mins", "providerTimeoutMins"),
    ("tot_timeout_mins", "timeoutMins"),
    ("max_providers", "maxProvidersRetry"),
    ("keep_last_attempt", "keepLastAttempt"),
    ("/user_group", "userGroup"),
    ("user_group", "userGroup"),
    ("/callback", "callback"),
    ("/query/", ""),
    ("/path/", ""),
];

/// Rewrites v1 field names and pointers into the legacy names.
pub fn legacy_names(text: &str) -> String {
    NAMES
        .iter()
        .fold(text.to_string(), |t, (v1, legacy)| t.replace(v1, legacy))
}

impl From<ApiError> for LegacyError {
    fn from(err: ApiError) -> Self {
        let status = match err.status() {
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            other => other,
        };
        let mut message = err.detail().to_string();
        if !err.errors().is_empty()
            && err
                .errors()
                .iter()
                .any(|e| !message.contains(e.loc.trim_start_matches('/')))
        {
            let fields: Vec<String> = err
                .errors()
                .iter()
                .map(|e| format!("{}: {}", e.loc.trim_start_matches('/'), e.msg))
                .collect();
            message = format!("{message} ({})", fields.join("; "));
        }
        Self {
            status,
            message: legacy_names(&message),
            internal: err.internal_cause().map(str::to_string),
        }
    }
}

impl From<crate::service::Error> for LegacyError {
    fn from(err: crate::service::Error) -> Self {
        ApiError::from(err).into()
    }
}

impl From<crate::store::StoreError> for LegacyError {
    fn from(err: crate::store::StoreError) -> Self {
        ApiError::from(err).into()
    }
}

impl IntoResponse for LegacyError {
    fn into_response(self) -> Response {
        if let Some(internal) = &self.internal {
            if self.status.is_server_error() {
                tracing::error!(http.status = self.status.as_u16(), error = %internal, "legacy request failed");
            }
        }
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let body = Body {
            code: self.status.as_u16(),
            title: self.status.canonical_reason().unwrap_or("Error"),
            message: &self.message,
            error: unauthorized.then_some("invalid_token"),
            error_description: unauthorized.then_some(self.message.as_str()),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"orchestrator\""),
            );
        }
        response
    }
}

/// Result of legacy handlers.
pub type LegacyResult<T> = Result<T, LegacyError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_validation_errors_become_a_400_with_legacy_field_names() {
        let err: LegacyError =
            ApiError::invalid_field("/template_inputs/cpus", "must be an integer").into();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.message(), "parameters.cpus: must be an integer");
        let err: LegacyError =
            ApiError::invalid_field("/per_provider_timeout_mins", "too long").into();
        assert!(
            err.message().contains("providerTimeoutMins"),
            "{}",
            err.message()
        );
    }
}
