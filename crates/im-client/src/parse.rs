//! Readers of IM's response bodies (as sent with `Accept: application/json`), apart from
//! the HTTP calls so they can be tested on bodies recorded from a real IM.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ImError;
use crate::model::{system_entry, InfraId, InfraState, StateReport, VmInfo};

/// Longer IM messages are cut: invalid TOSCA brings a tosca-parser traceback of 5-12 KB,
/// and nothing downstream needs more than its start.
const MAX_MESSAGE_CHARS: usize = 16 * 1024;

/// The id of a created infrastructure: the `InfID` header, else the last segment of the
/// body's `uri`.
pub fn created_infra_id(infid_header: Option<&str>, body: &[u8]) -> Result<InfraId, ImError> {
    if let Some(id) = infid_header.map(str::trim).filter(|id| !id.is_empty()) {
        return Ok(InfraId(id.to_owned()));
    }
    #[derive(Deserialize)]
    struct Created {
        uri: String,
    }
    let created: Created = json(body, "create")?;
    last_segment(&created.uri).map(InfraId)
}

/// `{"state": {"state": "configured", "vm_states": {"0": "configured"}}}`: IM nests the
/// report under a second `state`.
pub fn state_report(body: &[u8]) -> Result<StateReport, ImError> {
    #[derive(Deserialize)]
    struct Outer {
        state: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        state: String,
        #[serde(default)]
        vm_states: BTreeMap<String, String>,
    }
    let outer: Outer = json(body, "state")?;
    Ok(StateReport {
        state: InfraState::parse(&outer.state.state),
        vm_states: outer
            .state
            .vm_states
            .into_iter()
            .map(|(vm, state)| (vm, InfraState::parse(&state)))
            .collect(),
    })
}

/// `{"uri-list": [{"uri": ".../vms/0"}]}` read as the last segment of each URI: the VM
/// ids of a VM list or an update, the infrastructure ids of a list.
pub fn uri_list_ids(body: &[u8]) -> Result<Vec<String>, ImError> {
    #[derive(Deserialize)]
    struct UriList {
        #[serde(rename = "uri-list")]
        uri_list: Vec<Uri>,
    }
    #[derive(Deserialize)]
    struct Uri {
        uri: String,
    }
    let list: UriList = json(body, "uri-list")?;
    list.uri_list
        .iter()
        .map(|entry| last_segment(&entry.uri))
        .collect()
}

/// `{"radl": [{"class": "network", ...}, {"class": "system", "id": "<node>", "state":
/// "configured", ...}]}`: the system entry names the TOSCA node and the VM's state.
pub fn vm_info(vm_id: &str, body: &[u8]) -> Result<VmInfo, ImError> {
    #[derive(Deserialize)]
    struct Radl {
        radl: Vec<Value>,
    }
    let radl: Radl = json(body, "VM info")?;
    let system = system_entry(&radl.radl);
    let text = |key: &str| system.and_then(|s| s.get(key)).and_then(Value::as_str);
    Ok(VmInfo {
        vm_id: vm_id.to_owned(),
        node_name: text("id").map(str::to_owned),
        state: text("state").map_or(InfraState::Unknown, InfraState::parse),
        properties: radl.radl,
    })
}

/// `{"outputs": {"node_ip": "10.0.0.1", "node_public_ip": null}}`; outputs IM cannot
/// resolve are `null`.
pub fn outputs(body: &[u8]) -> Result<Map<String, Value>, ImError> {
    #[derive(Deserialize)]
    struct Outputs {
        #[serde(default)]
        outputs: Option<Map<String, Value>>,
    }
    let outputs: Outputs = json(body, "outputs")?;
    Ok(outputs.outputs.unwrap_or_default())
}

/// `{"contmsg": "..."}`: the contextualization log.
pub fn contmsg(body: &[u8]) -> Result<String, ImError> {
    #[derive(Deserialize)]
    struct Contmsg {
        contmsg: String,
    }
    Ok(json::<Contmsg>(body, "contmsg")?.contmsg)
}

/// `{"version": "2.0.0"}`, or the bare version when IM answers in plain text.
pub fn version(body: &[u8]) -> Result<String, ImError> {
    #[derive(Deserialize)]
    struct Version {
        version: String,
    }
    if let Ok(version) = serde_json::from_slice::<Version>(body) {
        return Ok(version.version);
    }
    let text = String::from_utf8_lossy(body).trim().to_owned();
    if text.is_empty() || text.contains(char::is_whitespace) {
        return Err(ImError::Protocol(format!(
            "unreadable IM version: {}",
            truncate(&text)
        )));
    }
    Ok(text)
}

/// The error for a non-success answer. IM's body is `{"message", "code"}`; FastAPI's
/// validation errors are `{"detail": [...]}` (or `{"detail": "Not Found"}` for an
/// unknown route); proxies send plain text. A 404 without IM's own body is a
/// [`ImError::Protocol`] error, not [`ImError::NotFound`]: it means the URL does not
/// lead to IM, and reading it as "infrastructure gone" would lose infrastructures.
pub fn error(status: u16, body: &[u8]) -> ImError {
    let text = String::from_utf8_lossy(body);
    let json = serde_json::from_slice::<Value>(body).ok();
    let im_message = json
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str);
    if status == 404 && im_message.is_none() {
        return ImError::Protocol(format!(
            "HTTP 404 without IM's error body (is the IM URL right?): {}",
            truncate(text.trim())
        ));
    }
    let message = match (im_message, json.as_ref().and_then(|v| v.get("detail"))) {
        (Some(message), _) => message.to_owned(),
        (None, Some(Value::String(detail))) => detail.clone(),
        (None, Some(Value::Array(items))) => {
            items.iter().map(detail_item).collect::<Vec<_>>().join("; ")
        }
        _ => text.trim().to_owned(),
    };
    let message = if message.is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        truncate(&message)
    };
    ImError::from_status(status, message)
}

/// One FastAPI validation error, `{"loc": ["query", "async"], "msg": "..."}`, as
/// `query.async: ...`.
fn detail_item(item: &Value) -> String {
    let msg = item
        .get("msg")
        .and_then(Value::as_str)
        .map_or_else(|| item.to_string(), str::to_owned);
    let loc = item
        .get("loc")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(".")
        })
        .unwrap_or_default();
    if loc.is_empty() {
        msg
    } else {
        format!("{loc}: {msg}")
    }
}

fn json<'a, T: Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T, ImError> {
    serde_json::from_slice(body).map_err(|e| {
        ImError::Protocol(format!(
            "unreadable IM {what} response ({e}): {}",
            truncate(String::from_utf8_lossy(body).trim())
        ))
    })
}

fn last_segment(uri: &str) -> Result<String, ImError> {
    uri.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|segment| !segment.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ImError::Protocol(format!("IM sent a URI without an id: {uri:?}")))
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
