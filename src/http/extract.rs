//! Request extractors that fail with [`ApiError`] instead of axum's plain-text
//! rejections: a JSON body (bad JSON is 400, a wrong shape is 422 with a JSON pointer
//! to the field, another content type is 415), raw query pairs (lists accept repeated
//! parameters, which serde's query parsing cannot), and the public base URL for links.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::{ApiError, FieldError};
use super::AppState;

/// A JSON request body.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            ApiError::new(
                rejection.status(),
                format!("cannot read the body: {rejection}"),
            )
        })?;
        if bytes.is_empty() && content_type.is_empty() {
            // An absent body is the same as `{}` for endpoints whose fields are all
            // optional; required fields are then reported by name.
            return parse_json(b"{}").map(Json);
        }
        if !is_json(&content_type) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "expected Content-Type: application/json, got '{}'",
                    if content_type.is_empty() {
                        "none"
                    } else {
                        &content_type
                    }
                ),
            ));
        }
        parse_json(&bytes).map(Json)
    }
}

fn is_json(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Parses JSON, locating shape errors with a JSON pointer.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => {
            de.end()
                .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
            Ok(value)
        }
        Err(err) => {
            let inner = err.inner();
            if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                return Err(ApiError::bad_request(format!(
                    "the body is not valid JSON: {inner}"
                )));
            }
            let mut loc = pointer(err.path());
            let msg = strip_position(&inner.to_string());
            // serde reports a missing field at its parent; point at the field.
            if let Some(rest) = msg.strip_prefix("missing field `") {
                if let Some(name) = rest.split('`').next() {
                    loc = format!("{loc}/{}", escape(name));
                }
            }
            let loc = if loc.is_empty() { "/".to_string() } else { loc };
            Err(ApiError::unprocessable(
                format!("invalid request body at {loc}: {msg}"),
                vec![FieldError { loc, msg }],
            ))
        }
    }
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{}", escape(key))),
            Segment::Enum { variant } => out.push_str(&format!("/{}", escape(variant))),
            Segment::Unknown => {}
        }
    }
    out
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// The query string as ordered pairs, percent-decoded.
#[derive(Debug, Default, Clone)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let pairs = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self(pairs))
    }
}

impl QueryPairs {
    /// The last value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (`true`/`false`/`1`/`0`), `false` when absent.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(other) => Err(ApiError::invalid_field(
                format!("/query/{name}"),
                format!("must be true or false, got '{other}'"),
            )),
        }
    }
}

/// The public URL of the service (`BASE_URL`, else the request's scheme and host,
/// honouring `X-Forwarded-Proto` and `X-Forwarded-Host`) and the request path, for
/// absolute links.
#[derive(Debug, Clone)]
pub struct RequestUrl {
    /// `scheme://host[:port][/prefix]`, no trailing slash.
    pub base: String,
    /// The request path (already without a trailing slash).
    pub path: String,
}

impl RequestUrl {
    /// An absolute URL for a path under the base.
    pub fn absolute(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// This request's URL with the given query pairs.
    pub fn with_query(&self, pairs: &[(String, String)]) -> String {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("{}{}?{query}", self.base, self.path)
    }
}

impl FromRequestParts<AppState> for RequestUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Nested routers see their path without the nest prefix; links need all of it.
        let full = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map(|u| u.0.path().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());
        let path = match full.trim_end_matches('/') {
            "" => "/".to_string(),
            trimmed => trimmed.to_string(),
        };
        if let Some(base) = &state.config.base_url {
            return Ok(Self {
                base: base.clone(),
                path,
            });
        }
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let scheme = header("x-forwarded-proto").unwrap_or_else(|| "http".into());
        let host = header("x-forwarded-host")
            .or_else(|| header("host"))
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| state.config.listen_addr.to_string());
        let port = header("x-forwarded-port")
            .filter(|_| !host.contains(':') && parts.headers.contains_key("x-forwarded-host"))
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        let prefix = header("x-forwarded-prefix")
            .map(|p| format!("/{}", p.trim_matches('/')))
            .filter(|p| p != "/")
            .unwrap_or_default();
        Ok(Self {
            base: format!("{scheme}://{host}{port}{prefix}"),
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code)]
    struct Body {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[expect(dead_code)]
    struct Item {
        count: u32,
    }

    #[test]
    fn a_wrong_type_is_located_with_a_json_pointer() {
        let err = parse_json::<Body>(br#"{"name": "a", "items": [{"count": 1}, {"count": "x"}]}"#)
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.errors()[0].loc, "/items/1/count");
    }

    #[test]
    fn missing_and_unknown_fields_point_at_the_field() {
        let err = parse_json::<Body>(br#"{"items": []}"#).unwrap_err();
        assert_eq!(err.errors()[0].loc, "/name");
        let err = parse_json::<Body>(br#"{"name": "a", "items": [], "colour": 1}"#).unwrap_err();
        assert_eq!(err.errors()[0].loc, "/colour");
    }

    #[test]
    fn broken_json_is_a_bad_request() {
        let err = parse_json::<Body>(br#"{"name": "#).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let err = parse_json::<Body>(br#"{"name": "a", "items": []} trailing"#).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn json_media_types_are_recognised() {
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
    }
}

/// The deployment version a state-changing request expects (`If-Match: "<version>"`);
/// `None` without the header or with `*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let text = value.to_str().unwrap_or("").trim();
        if text == "*" {
            return Ok(Self(None));
        }
        let tag = text.trim_start_matches("W/").trim_matches('"');
        tag.parse::<i64>().map(|v| Self(Some(v))).map_err(|_| {
            ApiError::precondition_failed(format!(
                "If-Match '{text}' is not an ETag of this service (a quoted version number)"
            ))
        })
    }
}

/// The ETag of a deployment version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Parses a UUID path segment, naming it when malformed.
pub fn path_uuid(name: &str, raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| {
        ApiError::invalid_field(
            format!("/path/{name}"),
            format!("must be a UUID, got '{raw}'"),
        )
    })
}
