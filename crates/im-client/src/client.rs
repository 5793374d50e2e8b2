//! The [`Im`] trait the engine is written against, and [`ImClient`], its implementation
//! over HTTP.

use std::error::Error as _;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder};
use serde_json::{Map, Value};
use url::Url;

use crate::auth::AuthHeader;
use crate::error::ImError;
use crate::model::{InfraId, StateReport, VmAction, VmInfo};
use crate::parse;

/// The IM operations the orchestrator uses. Every call but `version` carries the
/// credentials, which also decide who owns (and may see) an infrastructure.
#[async_trait::async_trait]
pub trait Im: Send + Sync {
    /// IM's version (`GET /version`, no credentials): also a readiness probe.
    async fn version(&self) -> Result<String, ImError>;

    /// Submits a TOSCA template without waiting for the VMs (`POST
    /// /infrastructures?async=1`); poll [`Im::state`] to follow the launch.
    async fn create(&self, auth: &AuthHeader, tosca: &str) -> Result<InfraId, ImError>;

    /// The aggregate and per-VM states.
    async fn state(&self, auth: &AuthHeader, id: &InfraId) -> Result<StateReport, ImError>;

    /// The ids of the VMs (empty when the launch failed).
    async fn vm_ids(&self, auth: &AuthHeader, id: &InfraId) -> Result<Vec<String>, ImError>;

    /// One VM's RADL, with its TOSCA node name and state.
    async fn vm_info(&self, auth: &AuthHeader, id: &InfraId, vm: &str) -> Result<VmInfo, ImError>;

    /// The TOSCA outputs (`null` where IM could not resolve them).
    async fn outputs(&self, auth: &AuthHeader, id: &InfraId)
        -> Result<Map<String, Value>, ImError>;

    /// The contextualization log, IM's explanation of a failure.
    async fn contmsg(&self, auth: &AuthHeader, id: &InfraId) -> Result<String, ImError>;

    /// Starts, stops or reboots one VM.
    async fn vm_action(
        &self,
        auth: &AuthHeader,
        id: &InfraId,
        vm: &str,
        action: VmAction,
    ) -> Result<(), ImError>;

    /// Sends a new TOSCA for an infrastructure (`POST /infrastructures/{id}`): IM merges
    /// it with the stored one, adds or removes VMs to match each node's count, and
    /// returns the ids of the VMs it added. Waits until the new VMs are launched.
    async fn update(
        &self,
        auth: &AuthHeader,
        id: &InfraId,
        tosca: &str,
    ) -> Result<Vec<String>, ImError>;

    /// Deletes an infrastructure without waiting (`DELETE ?async=1`); `force` makes IM
    /// forget it even if some cloud resources could not be deleted. Poll [`Im::state`]
    /// until [`ImError::NotFound`] to know it is gone. An infrastructure IM does not
    /// know is already deleted: `Ok(())`.
    async fn destroy(&self, auth: &AuthHeader, id: &InfraId, force: bool) -> Result<(), ImError>;

    /// The ids of the infrastructures these credentials own (`GET /infrastructures`),
    /// to find ones created by a call whose answer was lost. Implementations that
    /// cannot list say so with [`ImError::Protocol`].
    async fn list(&self, auth: &AuthHeader) -> Result<Vec<InfraId>, ImError> {
        let _ = auth;
        Err(ImError::Protocol(
            "this IM implementation cannot list infrastructures".to_owned(),
        ))
    }
}

/// [`Im`] over HTTP with reqwest. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct ImClient {
    http: reqwest::Client,
    /// IM's base URL, e.g. `http://im:8800` or `https://host/im/`.
    base: Url,
}

/// The content type IM reads as TOSCA.
const TOSCA: &str = "text/yaml";

impl ImClient {
    /// A client for the IM at `base_url`; `timeout` bounds each whole call (connect,
    /// send, read). Fails if the URL is not an absolute http(s) URL.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, ImError> {
        let base = Url::parse(base_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && !url.cannot_be_a_base())
            .ok_or_else(|| ImError::Protocol(format!("invalid IM URL {base_url:?}")))?;
        let mut headers = HeaderMap::new();
        // Without it IM answers some routes in text/plain or text/uri-list, and state
        // and outputs with 415 for anything but JSON.
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .build()
            .map_err(|e| ImError::Protocol(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, base })
    }

    /// IM's base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// `base/segments...` with each segment percent-encoded, so an id cannot change
    /// the route.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn infra_url(&self, id: &InfraId, rest: &[&str]) -> Url {
        let mut segments = vec!["infrastructures", id.as_str()];
        segments.extend_from_slice(rest);
        self.url(&segments)
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends a request and reads a success with `read`, or returns the typed error.
    /// The credentials never reach an error message (IM's text or a body quoted by a
    /// reader) or a log line.
    async fn call<T>(
        &self,
        op: &'static str,
        request: RequestBuilder,
        auth: Option<&AuthHeader>,
        read: impl FnOnce(&HeaderMap, &[u8]) -> Result<T, ImError>,
    ) -> Result<T, ImError> {
        let result = self
            .exchange(op, request, auth)
            .await
            .and_then(|(headers, body)| read(&headers, &body));
        match auth {
            Some(auth) => result.map_err(|e| e.map_text(|text| auth.redact(text))),
            None => result,
        }
    }

    async fn exchange(
        &self,
        op: &'static str,
        mut request: RequestBuilder,
        auth: Option<&AuthHeader>,
    ) -> Result<(HeaderMap, Vec<u8>), ImError> {
        if let Some(auth) = auth {
            let mut value = HeaderValue::from_str(&auth.to_header_value()).map_err(|_| {
                ImError::Protocol(
                    "the credentials contain characters an HTTP header cannot carry".to_owned(),
                )
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let started = Instant::now();
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport_error)?.to_vec();
        tracing::debug!(
            im.op = op,
            http.status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "IM call answered"
        );
        if status.is_success() {
            Ok((headers, body))
        } else {
            Err(parse::error(status.as_u16(), &body))
        }
    }
}

/// Connection problems and timeouts are worth a retry; a body that cannot be decoded
/// is not.
fn transport_error(e: reqwest::Error) -> ImError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if e.is_timeout() {
        ImError::Unreachable(format!("timed out: {text}"))
    } else if e.is_decode() || e.is_builder() {
        ImError::Protocol(text)
    } else {
        ImError::Unreachable(text)
    }
}

#[async_trait::async_trait]
impl Im for ImClient {
    async fn version(&self) -> Result<String, ImError> {
        let request = self.request(Method::GET, self.url(&["version"]));
        self.call("version", request, None, |_, body| parse::version(body))
            .await
    }

    async fn create(&self, auth: &AuthHeader, tosca: &str) -> Result<InfraId, ImError> {
        let mut url = self.url(&["infrastructures"]);
        url.query_pairs_mut().append_pair("async", "1");
        let request = self
            .request(Method::POST, url)
            .header(CONTENT_TYPE, TOSCA)
            .body(tosca.to_owned());
        self.call("create", request, Some(auth), |headers, body| {
            let infid = headers.get("infid").and_then(|v| v.to_str().ok());
            parse::created_infra_id(infid, body)
        })
        .await
    }

    async fn state(&self, auth: &AuthHeader, id: &InfraId) -> Result<StateReport, ImError> {
        let request = self.request(Method::GET, self.infra_url(id, &["state"]));
        self.call("state", request, Some(auth), |_, body| {
            parse::state_report(body)
        })
        .await
    }

    async fn vm_ids(&self, auth: &AuthHeader, id: &InfraId) -> Result<Vec<String>, ImError> {
        let request = self.request(Method::GET, self.infra_url(id, &[]));
        self.call("vm_list", request, Some(auth), |_, body| {
            parse::uri_list_ids(body)
        })
        .await
    }

    async fn vm_info(&self, auth: &AuthHeader, id: &InfraId, vm: &str) -> Result<VmInfo, ImError> {
        let request = self.request(Method::GET, self.infra_url(id, &["vms", vm]));
        self.call("vm_info", request, Some(auth), |_, body| {
            parse::vm_info(vm, body)
        })
        .await
    }

    async fn outputs(
        &self,
        auth: &AuthHeader,
        id: &InfraId,
    ) -> Result<Map<String, Value>, ImError> {
        let request = self.request(Method::GET, self.infra_url(id, &["outputs"]));
        self.call("outputs", request, Some(auth), |_, body| {
            parse::outputs(body)
        })
        .await
    }

    async fn contmsg(&self, auth: &AuthHeader, id: &InfraId) -> Result<String, ImError> {
        let request = self.request(Method::GET, self.infra_url(id, &["contmsg"]));
        self.call("contmsg", request, Some(auth), |_, body| {
            parse::contmsg(body)
        })
        .await
    }

    async fn vm_action(
        &self,
        auth: &AuthHeader,
        id: &InfraId,
        vm: &str,
        action: VmAction,
    ) -> Result<(), ImError> {
        let url = self.infra_url(id, &["vms", vm, action.as_str()]);
        // The answer is an empty 200 body, whatever the Accept header says.
        let request = self.request(Method::PUT, url);
        self.call("vm_action", request, Some(auth), |_, _| Ok(()))
            .await
    }

    async fn update(
        &self,
        auth: &AuthHeader,
        id: &InfraId,
        tosca: &str,
    ) -> Result<Vec<String>, ImError> {
        let request = self
            .request(Method::POST, self.infra_url(id, &[]))
            .header(CONTENT_TYPE, TOSCA)
            .body(tosca.to_owned());
        self.call("update", request, Some(auth), |_, body| {
            parse::uri_list_ids(body)
        })
        .await
    }

    async fn destroy(&self, auth: &AuthHeader, id: &InfraId, force: bool) -> Result<(), ImError> {
        let mut url = self.infra_url(id, &[]);
        url.query_pairs_mut().append_pair("async", "1");
        if force {
            url.query_pairs_mut().append_pair("force", "1");
        }
        let request = self.request(Method::DELETE, url);
        match self
            .call("destroy", request, Some(auth), |_, _| Ok(()))
            .await
        {
            Ok(_) | Err(ImError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, auth: &AuthHeader) -> Result<Vec<InfraId>, ImError> {
        let request = self.request(Method::GET, self.url(&["infrastructures"]));
        self.call("list", request, Some(auth), |_, body| {
            Ok(parse::uri_list_ids(body)?
                .into_iter()
                .map(InfraId)
                .collect())
        })
        .await
    }
}
