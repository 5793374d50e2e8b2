//! The fake's HTTP side: IM's routes, content negotiation, credentials and error
//! shapes, each handler a few lines over the world of `super`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::tosca::{read_template, Template};
use super::{aggregate, lock, Infra, Op, Phase, World, DUMMY_IP, JSON};
use crate::auth::parse_auth_header;
use crate::model::InfraState;

const CONTEXTUALIZATION_DISABLED: &str =
    "Contextualization disabled by the RADL/TOSCA template.\n\n";
const INVALID_INFRA: &str = "Invalid infrastructure ID or access not granted.";
const NO_CREDENTIALS: &str = "No credentials provided for the InfrastructureManager.";

type Shared = Arc<Mutex<World>>;
type Reply = Result<Response, Refusal>;

pub(super) fn router(world: Shared) -> Router {
    Router::new()
        .route("/version", get(get_version))
        .route(
            "/infrastructures",
            get(get_infrastructures).post(post_infrastructures),
        )
        .route(
            "/infrastructures/{id}",
            get(get_infrastructure)
                .post(post_infrastructure)
                .delete(delete_infrastructure),
        )
        .route("/infrastructures/{id}/{prop}", get(get_infrastructure_prop))
        .route("/infrastructures/{id}/vms/{vm}", get(get_vm))
        .route("/infrastructures/{id}/vms/{vm}/{op}", put(put_vm_op))
        .layer(axum::middleware::from_fn(detached))
        .with_state(world)
}

/// Runs each call in a task of its own: IM finishes a call whose client has gone (a
/// create that timed out on the client's side still creates), and so must the fake.
async fn detached(request: Request, next: Next) -> Response {
    tokio::spawn(next.run(request))
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// What the start of every call settled: the answer format, the caller, its clouds.
struct Call {
    /// Answer in JSON (else text).
    json: bool,
    /// Errors in JSON: only when `Accept` names `application/json` (IM's
    /// `return_error`); plain text otherwise, even for `*/*`.
    json_errors: bool,
    prefix: String,
    owner: BTreeMap<String, String>,
    cloud_lines: usize,
}

impl Call {
    fn error(&self, status: u16, message: &str) -> Refusal {
        error_reply(
            self.json_errors,
            status,
            &format!("{}: {message}", self.prefix),
        )
    }
}

/// Counts the call, waits the scripted delay, answers a scripted failure, then checks
/// `Accept` and the credentials as IM does.
async fn begin(world: &Shared, op: Op, headers: &HeaderMap) -> Result<Call, Refusal> {
    begin_as(world, op, op.prefix().to_owned(), headers).await
}

/// [`begin`] with the prefix of IM's error messages given.
async fn begin_as(
    world: &Shared,
    op: Op,
    prefix: String,
    headers: &HeaderMap,
) -> Result<Call, Refusal> {
    let (delay, failure) = {
        let mut world = lock(world);
        *world.counts.entry(op).or_default() += 1;
        let delay = world.delays.get(&op).copied();
        let failure = match world.failures.get_mut(&op) {
            Some(f) if f.times > 0 => {
                f.times -= 1;
                Some((f.status, f.message.clone()))
            }
            _ => None,
        };
        (delay, failure)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let accept = accepted(headers);
    let json = match op.default_type() {
        Some(default_type) => negotiate(&accept, default_type)?,
        None => false,
    };
    let json_errors = accept.iter().any(|m| m == "application/json");
    if let Some((status, message)) = failure {
        return Err(error_reply(json_errors, status, &message));
    }
    let Some(header) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(error_reply(
            json_errors,
            401,
            "No authentication data provided",
        ));
    };
    let lines = parse_auth_header(header);
    let is_im = |line: &&BTreeMap<String, String>| {
        line.get("type").map(String::as_str) == Some("InfrastructureManager")
    };
    let owner = lines.iter().find(is_im).map(|line| {
        line.iter()
            .filter(|(key, _)| matches!(key.as_str(), "username" | "password" | "token"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    });
    let usable = |o: &BTreeMap<String, String>| {
        o.contains_key("token") || (o.contains_key("username") && o.contains_key("password"))
    };
    let Some(owner) = owner.filter(usable) else {
        let status = if matches!(op, Op::Create | Op::List) {
            401
        } else {
            400
        };
        return Err(error_reply(
            json_errors,
            status,
            &format!("{prefix}: {NO_CREDENTIALS}"),
        ));
    };
    if let Some(token) = owner.get("token") {
        let mut world = lock(world);
        if world.tokens.last() != Some(token) {
            world.tokens.push(token.clone());
        }
    }
    let cloud_lines = lines.iter().filter(|line| !is_im(line)).count();
    Ok(Call {
        json,
        json_errors,
        prefix,
        owner,
        cloud_lines,
    })
}

/// The media types of `Accept`, lower-cased, without parameters.
fn accepted(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| item.split(';').next())
        .map(|media| media.trim().to_ascii_lowercase())
        .filter(|media| !media.is_empty())
        .collect()
}

/// IM's `format_output`: the first `Accept` item that is JSON, the route's default
/// type, `*/*` or `text/*` decides whether the body is JSON; no `Accept` means the
/// default; no usable item is a 415 (in plain text).
fn negotiate(accept: &[String], default_type: &str) -> Result<bool, Refusal> {
    if accept.is_empty() {
        return Ok(default_type == JSON);
    }
    for media in accept {
        if media == JSON || media == "application/*" {
            return Ok(true);
        }
        if media == default_type || media == "*/*" || media == "text/*" {
            return Ok(default_type == JSON);
        }
    }
    let listed: Vec<String> = accept.iter().map(|m| format!("'{m}'")).collect();
    Err(Refusal::Text(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("Unsupported Accept Media Types: [{}]", listed.join(", ")),
    ))
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A non-success answer, kept as data until it is sent (which keeps the helpers'
/// `Result`s small).
enum Refusal {
    /// IM's own error: `{"message", "code"}` in JSON, the bare message otherwise.
    Im {
        json: bool,
        status: u16,
        message: String,
    },
    /// FastAPI's 422 `{"detail": [...]}` for a parameter it cannot read.
    Validation(Box<Value>),
    /// A plain-text answer, as IM's 415 for an `Accept` it cannot serve.
    Text(StatusCode, String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Im {
                json: true,
                status: code,
                message,
            } => (
                status(code),
                Json(json!({"message": message, "code": code})),
            )
                .into_response(),
            Refusal::Im {
                json: false,
                status: code,
                message,
            } => text_reply(status(code), &message),
            Refusal::Validation(detail) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "detail": [detail] })),
            )
                .into_response(),
            Refusal::Text(code, text) => text_reply(code, &text),
        }
    }
}

fn error_reply(json: bool, code: u16, message: &str) -> Refusal {
    if code == 422 {
        return validation_error(json!({"type": "value_error", "loc": ["query"], "msg": message}));
    }
    Refusal::Im {
        json,
        status: code,
        message: message.to_owned(),
    }
}

fn validation_error(detail: Value) -> Refusal {
    Refusal::Validation(Box::new(detail))
}

fn text_reply(code: StatusCode, text: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_owned(),
    )
        .into_response()
}

/// IM's answer to start/stop/reboot/delete: 200 with an empty text body.
fn empty_ok() -> Response {
    text_reply(StatusCode::OK, "")
}

fn uri_list(json: bool, uris: Vec<String>) -> Response {
    if json {
        let list: Vec<Value> = uris.into_iter().map(|uri| json!({ "uri": uri })).collect();
        Json(json!({ "uri-list": list })).into_response()
    } else {
        ([(header::CONTENT_TYPE, "text/uri-list")], uris.join("\n")).into_response()
    }
}

/// FastAPI's (pydantic's) reading of a boolean query parameter.
fn bool_params(query: &[(String, String)], names: &[&str]) -> Result<(), Refusal> {
    for (name, value) in query {
        let known = [
            "0", "1", "true", "false", "yes", "no", "on", "off", "t", "f", "y", "n",
        ];
        if names.contains(&name.as_str()) && !known.contains(&value.to_ascii_lowercase().as_str()) {
            return Err(validation_error(json!({
                "type": "bool_parsing",
                "loc": ["query", name],
                "msg": "Input should be a valid boolean, unable to interpret input",
                "input": value,
            })));
        }
    }
    Ok(())
}

/// Checks the content type and reads the TOSCA, as IM does before creating or updating.
fn read_body(
    call: &Call,
    headers: &HeaderMap,
    body: &str,
    compute_types: &[String],
) -> Result<Template, Refusal> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match content_type.as_str() {
        "text/yaml" | "text/x-yaml" | "application/yaml" => {}
        "text/plain" | "application/json" => {
            return Err(error_reply(
                call.json_errors,
                400,
                "Error parsing request body: the fake IM reads TOSCA only, not RADL",
            ))
        }
        other => {
            return Err(error_reply(
                call.json_errors,
                415,
                &format!("Unsupported Media Type ['{other}']"),
            ))
        }
    }
    read_template(body, compute_types).map_err(|e| {
        error_reply(
            call.json_errors,
            400,
            &format!("Error parsing request body: Error parsing TOSCA template: {e}"),
        )
    })
}

/// Finds a caller's infrastructure, answering 404/403 the way IM does.
fn find<'w>(world: &'w mut World, call: &Call, id: &str) -> Result<&'w mut Infra, Refusal> {
    let Some(infra) = world.infras.get_mut(id) else {
        return Err(call.error(404, INVALID_INFRA));
    };
    if let Phase::Deleted { told: true } = infra.phase {
        return Err(call.error(404, INVALID_INFRA));
    }
    if infra.owner != call.owner {
        return Err(call.error(403, "Access to this infrastructure not granted."));
    }
    if let Phase::Deleted { told } = &mut infra.phase {
        *told = true;
        return Err(call.error(404, "Deleted infrastructure."));
    }
    Ok(infra)
}

async fn get_version(headers: HeaderMap) -> Response {
    if negotiate(&accepted(&headers), "text/plain").unwrap_or(false) {
        Json(json!({"version": "2.0.0"})).into_response()
    } else {
        text_reply(StatusCode::OK, "2.0.0")
    }
}

async fn get_infrastructures(State(world): State<Shared>, headers: HeaderMap) -> Reply {
    let call = begin(&world, Op::List, &headers).await?;
    let world = lock(&world);
    let uris = world
        .infras
        .values()
        .filter(|infra| infra.owner == call.owner && !matches!(infra.phase, Phase::Deleted { .. }))
        .map(|infra| world.infra_uri(&infra.id))
        .collect();
    Ok(uri_list(call.json, uris))
}

async fn post_infrastructures(
    State(world): State<Shared>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: String,
) -> Reply {
    bool_params(&query, &["async", "dry_run"])?;
    let call = begin(&world, Op::Create, &headers).await?;
    let mut world = lock(&world);
    let template = read_body(&call, &headers, &body, &world.compute_types)?;
    world.created += 1;
    let id = format!("00000000-0000-4000-8000-{:012x}", world.created);
    let mut infra = Infra {
        id: id.clone(),
        owner: call.owner.clone(),
        vms: BTreeMap::new(),
        next_vm: 0,
        polls: 0,
        adding_polls_left: world.adding_polls,
        launch_error: None,
        outputs: template.outputs,
        phase: Phase::Live,
    };
    if call.cloud_lines == 0 {
        let node = template
            .computes
            .first()
            .map_or("", |(node, _)| node.as_str());
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        infra.launch_error = Some(format!(
            "{seconds}: Error getting VM images: No VMI obtained from Sites to system '{node}'\n"
        ));
    } else {
        infra.scale(&template.computes);
    }
    world.infras.insert(id.clone(), infra);
    let uri = world.infra_uri(&id);
    let body = if call.json {
        Json(json!({ "uri": uri })).into_response()
    } else {
        ([(header::CONTENT_TYPE, "text/uri-list")], uri).into_response()
    };
    Ok(([("InfID", id)], body).into_response())
}

async fn get_infrastructure(
    State(world): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let call = begin(&world, Op::VmList, &headers).await?;
    let mut world = lock(&world);
    let uri = world.infra_uri(&id);
    let infra = find(&mut world, &call, &id)?;
    let uris = infra
        .vms
        .keys()
        .map(|vm| format!("{uri}/vms/{vm}"))
        .collect();
    Ok(uri_list(call.json, uris))
}

async fn post_infrastructure(
    State(world): State<Shared>,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: String,
) -> Reply {
    bool_params(&query, &["context"])?;
    let call = begin(&world, Op::Update, &headers).await?;
    let mut world = lock(&world);
    let template = read_body(&call, &headers, &body, &world.compute_types)?;
    let adding_polls = world.adding_polls;
    let uri = world.infra_uri(&id);
    let infra = find(&mut world, &call, &id)?;
    let added = infra.scale(&template.computes);
    if !template.outputs.is_empty() {
        infra.outputs = template.outputs;
    }
    // IM reconfigures the infrastructure after an update: the sequence starts again.
    infra.polls = 0;
    infra.adding_polls_left = adding_polls;
    let uris = added.iter().map(|vm| format!("{uri}/vms/{vm}")).collect();
    Ok(uri_list(call.json, uris))
}

async fn delete_infrastructure(
    State(world): State<Shared>,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Reply {
    bool_params(&query, &["async", "force"])?;
    let call = begin(&world, Op::Destroy, &headers).await?;
    let mut world = lock(&world);
    let live = {
        let infra = find(&mut world, &call, &id)?;
        if infra.adding_polls_left > 0 {
            return Err(call.error(409, "Invalid State to perform this operation."));
        }
        matches!(infra.phase, Phase::Live)
    };
    if !live {
        // Already being deleted.
        return Ok(empty_ok());
    }
    if world.lost_destroys > 0 {
        world.lost_destroys -= 1;
        return Ok(empty_ok());
    }
    let deleting_polls = world.deleting_polls;
    let infra = find(&mut world, &call, &id)?;
    infra.phase = if deleting_polls > 0 {
        Phase::Deleting {
            polls_left: deleting_polls,
        }
    } else {
        Phase::Deleted { told: false }
    };
    Ok(empty_ok())
}

async fn get_infrastructure_prop(
    State(world): State<Shared>,
    Path((id, prop)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    match prop.as_str() {
        "state" => get_state(&world, &id, &headers).await,
        "outputs" => get_outputs(&world, &id, &headers).await,
        "contmsg" => get_contmsg(&world, &id, &headers).await,
        "radl" | "tosca" | "authorization" | "data" => Ok(text_reply(
            StatusCode::NOT_IMPLEMENTED,
            "not emulated by the fake IM",
        )),
        _ => Err(validation_error(json!({
            "type": "literal_error",
            "loc": ["path", "prop"],
            "msg": "Input should be 'contmsg', 'radl', 'tosca', 'state', 'outputs', 'data' or 'authorization'",
            "input": prop,
        }))),
    }
}

async fn get_state(world: &Shared, id: &str, headers: &HeaderMap) -> Reply {
    let call = begin(world, Op::State, headers).await?;
    let mut world = lock(world);
    let sequence = world.sequence.clone();
    let infra = find(&mut world, &call, id)?;
    let deleting = match &mut infra.phase {
        Phase::Deleting { polls_left } => {
            *polls_left -= 1;
            if *polls_left == 0 {
                infra.phase = Phase::Deleted { told: false };
            }
            true
        }
        _ => {
            infra.polls += 1;
            infra.adding_polls_left = infra.adding_polls_left.saturating_sub(1);
            false
        }
    };
    let vm_states: Vec<(String, InfraState)> = infra
        .vms
        .iter()
        .map(|(vm_id, vm)| (vm_id.to_string(), infra.vm_state(vm, &sequence)))
        .collect();
    let state = if deleting {
        InfraState::Deleting
    } else if let Some(state) = aggregate(vm_states.iter().map(|(_, s)| *s)) {
        state
    } else if infra.launch_error.is_some() {
        InfraState::Failed
    } else if infra.next_vm > 0 {
        // Every VM was removed.
        InfraState::Unknown
    } else {
        infra.scripted_state(&sequence)
    };
    let vm_states: Map<String, Value> = vm_states
        .into_iter()
        .map(|(vm, s)| (vm, Value::from(s.as_str())))
        .collect();
    Ok(Json(json!({"state": {"state": state.as_str(), "vm_states": vm_states}})).into_response())
}

async fn get_outputs(world: &Shared, id: &str, headers: &HeaderMap) -> Reply {
    let call = begin(world, Op::Outputs, headers).await?;
    let mut world = lock(world);
    let scripted = world.outputs.clone();
    let infra = find(&mut world, &call, id)?;
    let outputs = scripted.unwrap_or_else(|| {
        infra
            .outputs
            .iter()
            .map(|(name, output)| (name.clone(), output.resolve(infra)))
            .collect()
    });
    Ok(Json(json!({ "outputs": outputs })).into_response())
}

async fn get_contmsg(world: &Shared, id: &str, headers: &HeaderMap) -> Reply {
    let call = begin(world, Op::Contmsg, headers).await?;
    let mut world = lock(world);
    let scripted = world.contmsg.clone();
    let infra = find(&mut world, &call, id)?;
    let message = scripted
        .or_else(|| infra.launch_error.clone())
        .unwrap_or_else(|| CONTEXTUALIZATION_DISABLED.to_owned());
    Ok(if call.json {
        Json(json!({ "contmsg": message })).into_response()
    } else {
        text_reply(StatusCode::OK, &message)
    })
}

async fn get_vm(
    State(world): State<Shared>,
    Path((id, vm_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let call = begin(&world, Op::VmInfo, &headers).await?;
    let mut world = lock(&world);
    let sequence = world.sequence.clone();
    let infra = find(&mut world, &call, &id)?;
    let Some(vm) = vm_id.parse().ok().and_then(|n: u32| infra.vms.get(&n)) else {
        return Err(call.error(404, "Invalid VM ID"));
    };
    let state = infra.vm_state(vm, &sequence).as_str();
    let node = vm.node.as_str();
    Ok(if call.json {
        Json(json!({"radl": [
            {"class": "network", "id": "private_net", "outbound": "no"},
            {
                "class": "system",
                "id": node,
                "instance_name": node,
                "net_interface.0.connection": "private_net",
                "state": state,
                "provider.type": "Dummy",
                "net_interface.0.ip": DUMMY_IP,
                "disk.0.os.credentials.username": "username",
                "net_interface.0.dns_name": format!("vnode-{vm_id}"),
            },
        ]}))
        .into_response()
    } else {
        text_reply(
            StatusCode::OK,
            &format!(
                "network private_net ( outbound = 'no' )\nsystem {node} (\nstate = '{state}' and\nprovider.type = 'Dummy' and\nnet_interface.0.ip = '{DUMMY_IP}'\n)\n"
            ),
        )
    })
}

async fn put_vm_op(
    State(world): State<Shared>,
    Path((id, vm_id, op)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Reply {
    let forced = match op.as_str() {
        "stop" => InfraState::Stopped,
        "start" | "reboot" => InfraState::Configured,
        _ => {
            return Err(validation_error(json!({
                "type": "literal_error",
                "loc": ["path", "op"],
                "msg": "Input should be 'start', 'stop' or 'reboot'",
                "input": op,
            })))
        }
    };
    let prefix = format!("Error in {op} op in VM");
    let call = begin_as(&world, Op::VmAction, prefix, &headers).await?;
    let mut world = lock(&world);
    let infra = find(&mut world, &call, &id)?;
    let Some(vm) = vm_id.parse().ok().and_then(|n: u32| infra.vms.get_mut(&n)) else {
        return Err(call.error(404, "Invalid VM ID"));
    };
    vm.forced = Some(forced);
    Ok(empty_ok())
}
