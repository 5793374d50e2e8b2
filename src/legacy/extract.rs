//! Extractors of the legacy routes: the caller (the v1 [`Principal`], whose failures
//! are answered in the legacy error body) and a lenient JSON body. The legacy server
//! (Jackson) ignored unknown fields and coerced `"true"` and `"120"` into booleans
//! and numbers, and its clients rely on it; they also send bodies with any or no
//! content type.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::error::LegacyError;
use crate::http::auth::Principal;
use crate::http::AppState;

/// The registered caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = LegacyError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, LegacyError> {
        Principal::from_request_parts(parts, state)
            .await
            .map(Self)
            .map_err(LegacyError::from)
    }
}

/// A JSON object body read leniently: no body is `{}`, the content type is not
/// checked, unknown fields are ignored, and typed fields accept their text form.
#[derive(Debug, Clone, Default)]
pub struct Body(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = LegacyError;

    async fn from_request(req: Request, state: &S) -> Result<Self, LegacyError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| LegacyError::new(e.status(), format!("cannot read the body: {e}")))?;
        Self::parse(&bytes)
    }
}

impl Body {
    /// Parses a body.
    pub fn parse(bytes: &[u8]) -> Result<Self, LegacyError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(other) => Err(LegacyError::bad_request(format!(
                "the body must be a JSON object, not {}",
                kind(&other)
            ))),
            Err(e) => Err(LegacyError::bad_request(format!(
                "the body is not valid JSON: {e}"
            ))),
        }
    }

    fn present(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    /// A text field (numbers and booleans are taken as their text).
    pub fn text(&self, field: &str) -> Result<Option<String>, LegacyError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
            Some(other) => Err(LegacyError::field(
                field,
                format!("must be a string, not {}", kind(other)),
            )),
        }
    }

    /// An integer field (`120` or `"120"`).
    pub fn int(&self, field: &str) -> Result<Option<i64>, LegacyError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| LegacyError::field(field, format!("must be an integer, got {n}"))),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => {
                s.trim().parse().map(Some).map_err(|_| {
                    LegacyError::field(field, format!("must be an integer, got '{s}'"))
                })
            }
            Some(other) => Err(LegacyError::field(
                field,
                format!("must be an integer, not {}", kind(other)),
            )),
        }
    }

    /// A boolean field (`true`, `"true"`, `1`, `"0"`...).
    pub fn boolean(&self, field: &str) -> Result<Option<bool>, LegacyError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
            Some(Value::String(s)) => parse_bool(s).map(Some).ok_or_else(|| {
                LegacyError::field(field, format!("must be true or false, got '{s}'"))
            }),
            Some(other) => Err(LegacyError::field(
                field,
                format!("must be true or false, got {other}"),
            )),
        }
    }

    /// An object field (`{}` when absent).
    pub fn object(&self, field: &str) -> Result<Map<String, Value>, LegacyError> {
        match self.present(field) {
            None => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(other) => Err(LegacyError::field(
                field,
                format!("must be an object, not {}", kind(other)),
            )),
        }
    }
}

/// A boolean as text, the way Jackson and Spring read it.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A deployment or resource id from the path; the legacy server answered an unknown
/// id (which a malformed one is) with 404.
pub fn path_id(what: &str, raw: &str) -> Result<Uuid, LegacyError> {
    Uuid::parse_str(raw)
        .map_err(|_| LegacyError::not_found(format!("{what} '{raw}' does not exist")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_booleans_sent_as_strings_are_accepted() {
        let body =
            Body::parse(br#"{"timeoutMins": "120", "keepLastAttempt": "true", "x": 1}"#).unwrap();
        assert_eq!(body.int("timeoutMins").unwrap(), Some(120));
        assert_eq!(body.boolean("keepLastAttempt").unwrap(), Some(true));
        assert_eq!(body.int("absent").unwrap(), None);
        let err = Body::parse(br#"{"timeoutMins": "two"}"#)
            .unwrap()
            .int("timeoutMins")
            .unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
        assert!(
            err.message().starts_with("timeoutMins"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn an_empty_body_is_an_empty_object_and_junk_is_a_400() {
        assert!(Body::parse(b"").unwrap().0.is_empty());
        assert_eq!(Body::parse(b"[1]").unwrap_err().status().as_u16(), 400);
        assert_eq!(Body::parse(b"{").unwrap_err().status().as_u16(), 400);
    }
}
