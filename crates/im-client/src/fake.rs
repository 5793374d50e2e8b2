//! An in-process IM for tests (feature `fake`): an axum server on `127.0.0.1:0` that
//! answers like IM 2.0 with the Dummy connector, quirks included, and can be scripted
//! per test with what a Dummy IM cannot show: intermediate states, failures, slowness,
//! a `deleting` phase.
//!
//! The quirks it keeps, because the client must cope with them: the doubly nested
//! `state`; the `InfID` header on create; empty `200` bodies on VM actions and delete;
//! `415` on `state`/`outputs` for an `Accept` other than JSON; `401` without an
//! `Authorization` header; `400 No credentials provided for the InfrastructureManager.`
//! without an IM line (except on create and list, where it is a `401`); `403` for
//! another owner; `404 Deleted infrastructure.` on the first call after a delete, then
//! `404 Invalid infrastructure ID or access not granted.`; IM's `{"message", "code"}`
//! errors with IM's message prefixes and FastAPI's `{"detail": [...]}` for bad
//! parameters. The client test-suite runs against this fake and a real IM alike, which
//! keeps the two from drifting apart.
//!
//! The TOSCA is read only as far as the Dummy IM would act on it: one VM per Compute
//! node (a type ending in `Compute`, or one given to [`FakeIm::set_compute_types`]),
//! times `capabilities.scalable.properties.count` or `default_instances`; outputs of
//! `get_attribute: [node, private_address]` resolve to the Dummy VM's `10.0.0.1`,
//! `public_address` to `null`. Credentials without a cloud line make the launch fail,
//! as in IM.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use saphyr::{LoadableYamlNode, Yaml};
use serde_json::{json, Map, Value};

use crate::auth::parse_auth_header;
use crate::model::{InfraId, InfraState};

/// The IM operations the fake counts, fails and delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `POST /infrastructures`
    Create,
    /// `GET /infrastructures/{id}/state`
    State,
    /// `GET /infrastructures/{id}`
    VmList,
    /// `GET /infrastructures/{id}/vms/{vm}`
    VmInfo,
    /// `GET /infrastructures/{id}/outputs`
    Outputs,
    /// `GET /infrastructures/{id}/contmsg`
    Contmsg,
    /// `PUT /infrastructures/{id}/vms/{vm}/{start,stop,reboot}`
    VmAction,
    /// `POST /infrastructures/{id}`
    Update,
    /// `DELETE /infrastructures/{id}`
    Destroy,
    /// `GET /infrastructures`
    List,
}

const JSON: &str = "application/json";

impl Op {
    /// The type IM answers in without `Accept`; `None` for the empty answers.
    fn default_type(self) -> Option<&'static str> {
        match self {
            Op::Create | Op::List | Op::VmList | Op::Update => Some("text/uri-list"),
            Op::VmInfo | Op::Contmsg => Some("text/plain"),
            Op::State | Op::Outputs => Some(JSON),
            Op::VmAction | Op::Destroy => None,
        }
    }

    /// The prefix IM puts before its error messages on this route.
    fn prefix(self) -> &'static str {
        match self {
            Op::Create => "Error Creating Inf.",
            Op::State | Op::Outputs | Op::Contmsg => "Error Getting Inf. prop",
            Op::VmList => "Error Getting Inf. info",
            Op::VmInfo => "Error Getting VM. info",
            Op::VmAction => "Error in op in VM",
            Op::Update => "Error Adding resources",
            Op::Destroy => "Error Destroying Inf",
            Op::List => "Error Getting Inf. List",
        }
    }
}

/// A running fake IM; the server stops when this is dropped.
pub struct FakeIm {
    url: String,
    world: Arc<Mutex<World>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeIm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

const CONTEXTUALIZATION_DISABLED: &str =
    "Contextualization disabled by the RADL/TOSCA template.\n\n";
const DUMMY_IP: &str = "10.0.0.1";
const INVALID_INFRA: &str = "Invalid infrastructure ID or access not granted.";
const NO_CREDENTIALS: &str = "No credentials provided for the InfrastructureManager.";

impl FakeIm {
    /// Starts a fake IM on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// If no local port can be bound: the test cannot run anyway.
    pub async fn start() -> FakeIm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("the fake IM cannot listen on 127.0.0.1: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the fake IM has no local address: {e}"))
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let world = Arc::new(Mutex::new(World::new(url.clone())));
        let app = router(Arc::clone(&world));
        let server = tokio::spawn(async move {
            // Ends only when aborted; an accept error would end the test's server, and
            // the test then fails on its own with a connection error.
            let _ = axum::serve(listener, app).await;
        });
        FakeIm { url, world, server }
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// The states that successive state polls of an infrastructure go through, the last
    /// one repeating (default `[Configured]`). An update starts the sequence again.
    pub fn set_state_sequence(&self, states: Vec<InfraState>) {
        self.world().sequence = if states.is_empty() {
            vec![InfraState::Configured]
        } else {
            states
        };
    }

    /// The contextualization message of every infrastructure.
    pub fn set_contmsg(&self, message: &str) {
        self.world().contmsg = Some(message.to_owned());
    }

    /// The outputs of every infrastructure, instead of those resolved from its TOSCA.
    pub fn set_outputs(&self, outputs: Map<String, Value>) {
        self.world().outputs = Some(outputs);
    }

    /// The next `times` calls of `op` answer `status` with `message` (in IM's
    /// `{"message","code"}` shape, or FastAPI's `{"detail": [...]}` for a 422).
    pub fn fail_next(&self, op: Op, times: usize, status: u16, message: &str) {
        self.world().failures.insert(
            op,
            Failure {
                times,
                status,
                message: message.to_owned(),
            },
        );
    }

    /// Every call of `op` waits `delay` before answering.
    pub fn set_delay(&self, op: Op, delay: Duration) {
        self.world().delays.insert(op, delay);
    }

    /// After a destroy, `polls` state polls answer `deleting` before the infrastructure
    /// is gone (default 0: gone at once, like the Dummy IM).
    pub fn set_deleting_polls(&self, polls: usize) {
        self.world().deleting_polls = polls;
    }

    /// After a create or an update, IM is still adding VMs during the first `polls`
    /// state polls; a destroy meanwhile answers 409 `Invalid State to perform this
    /// operation.` (default 0; a real IM is in that state for the few milliseconds the
    /// Dummy connector takes to launch).
    pub fn set_adding_polls(&self, polls: usize) {
        self.world().adding_polls = polls;
    }

    /// The next `destroys` destroys answer 200 but leave the infrastructure as it was,
    /// as a real IM does when a state poll races its asynchronous delete.
    pub fn set_lost_destroys(&self, destroys: usize) {
        self.world().lost_destroys = destroys;
    }

    /// Node types that make VMs besides those whose name ends in `Compute`.
    pub fn set_compute_types(&self, types: &[&str]) {
        self.world().compute_types = types.iter().map(|t| (*t).to_owned()).collect();
    }

    /// How many infrastructures were created.
    pub fn created_count(&self) -> usize {
        self.world().created
    }

    /// How many calls of `op` arrived (failed ones included).
    pub fn count(&self, op: Op) -> usize {
        self.world().counts.get(&op).copied().unwrap_or(0)
    }

    /// The infrastructures not deleted yet, in creation order.
    pub fn infra_ids(&self) -> Vec<InfraId> {
        self.world()
            .infras
            .iter()
            .filter(|infra| !matches!(infra.phase, Phase::Deleted { .. }))
            .map(|infra| InfraId(infra.id.clone()))
            .collect()
    }
}

fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    // A test that panicked while holding the lock leaves consistent data behind.
    world.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything the fake knows: the script set by the test and the infrastructures.
struct World {
    base_url: String,
    sequence: Vec<InfraState>,
    contmsg: Option<String>,
    outputs: Option<Map<String, Value>>,
    failures: HashMap<Op, Failure>,
    delays: HashMap<Op, Duration>,
    deleting_polls: usize,
    adding_polls: usize,
    lost_destroys: usize,
    compute_types: Vec<String>,
    counts: HashMap<Op, usize>,
    created: usize,
    /// In creation order; deleted ones stay, to answer 404 the way IM does.
    infras: Vec<Infra>,
}

struct Failure {
    times: usize,
    status: u16,
    message: String,
}

struct Infra {
    id: String,
    /// The IM line's credentials (user name and password, or token): the owner.
    owner: BTreeMap<String, String>,
    /// By VM id, in creation order (IM's "first VM" rules depend on it).
    vms: BTreeMap<u32, Vm>,
    next_vm: u32,
    /// State polls since creation or the last update: the position in the sequence.
    polls: usize,
    /// State polls left until IM has finished adding VMs (destroy is refused before).
    adding_polls_left: usize,
    /// Why the launch failed (no cloud line), IM's contmsg for it.
    launch_error: Option<String>,
    outputs: Vec<(String, Output)>,
    phase: Phase,
}

struct Vm {
    node: String,
    /// The state a VM action left, which wins over the scripted sequence.
    forced: Option<InfraState>,
}

enum Phase {
    Live,
    Deleting {
        polls_left: usize,
    },
    /// `told`: the one "Deleted infrastructure." answer has been given.
    Deleted {
        told: bool,
    },
}

impl World {
    fn new(base_url: String) -> Self {
        World {
            base_url,
            sequence: vec![InfraState::Configured],
            contmsg: None,
            outputs: None,
            failures: HashMap::new(),
            delays: HashMap::new(),
            deleting_polls: 0,
            adding_polls: 0,
            lost_destroys: 0,
            compute_types: Vec::new(),
            counts: HashMap::new(),
            created: 0,
            infras: Vec::new(),
        }
    }

    fn infra_uri(&self, id: &str) -> String {
        format!("{}/infrastructures/{id}", self.base_url)
    }
}

impl Infra {
    /// Where the sequence stands (without moving it).
    fn scripted_state(&self, sequence: &[InfraState]) -> InfraState {
        let last = sequence.len().saturating_sub(1);
        sequence
            .get(self.polls.saturating_sub(1).min(last))
            .copied()
            .unwrap_or(InfraState::Configured)
    }

    fn vm_state(&self, vm: &Vm, sequence: &[InfraState]) -> InfraState {
        vm.forced.unwrap_or_else(|| self.scripted_state(sequence))
    }

    /// Adds or removes VMs so each Compute node has its count; returns the new VM ids.
    /// Removal takes the oldest VMs first, as IM does without a `removal_list`.
    fn scale(&mut self, computes: &[(String, usize)]) -> Vec<u32> {
        let mut added = Vec::new();
        for (node, wanted) in computes {
            let existing: Vec<u32> = self
                .vms
                .iter()
                .filter(|(_, vm)| &vm.node == node)
                .map(|(id, _)| *id)
                .collect();
            for id in existing.iter().take(existing.len().saturating_sub(*wanted)) {
                self.vms.remove(id);
            }
            for _ in existing.len()..*wanted {
                let id = self.next_vm;
                self.next_vm += 1;
                self.vms.insert(
                    id,
                    Vm {
                        node: node.clone(),
                        forced: None,
                    },
                );
                added.push(id);
            }
        }
        added
    }
}

/// IM's aggregate of VM states (`InfrastructureManager.GetInfrastructureState`): failed
/// or unknown anywhere decide; then pending, then running; otherwise the first VM's
/// state, where unconfigured beats configured.
fn aggregate(states: impl IntoIterator<Item = InfraState>) -> Option<InfraState> {
    use InfraState::*;
    let mut state = None;
    for vm in states {
        match vm {
            Failed | Unknown => return Some(vm),
            Pending => state = Some(Pending),
            Running if state != Some(Pending) => state = Some(Running),
            Stopped | Off | Configured if state.is_none() => state = Some(vm),
            Unconfigured if state.is_none() || state == Some(Configured) => {
                state = Some(Unconfigured)
            }
            _ => {}
        }
    }
    state
}

// ---------------------------------------------------------------------------------
// HTTP

type Shared = Arc<Mutex<World>>;
type Reply = Result<Response, Refusal>;

fn router(world: Shared) -> Router {
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
    let prefix = op.prefix().to_owned();
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
    let Some(infra) = world.infras.iter_mut().find(|infra| infra.id == id) else {
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
        .iter()
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
    world.infras.push(infra);
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
    let mut call = begin(&world, Op::VmAction, &headers).await?;
    call.prefix = format!("Error in {op} op in VM");
    let mut world = lock(&world);
    let infra = find(&mut world, &call, &id)?;
    let Some(vm) = vm_id.parse().ok().and_then(|n: u32| infra.vms.get_mut(&n)) else {
        return Err(call.error(404, "Invalid VM ID"));
    };
    vm.forced = Some(forced);
    Ok(empty_ok())
}

// ---------------------------------------------------------------------------------
// TOSCA, as far as the Dummy IM acts on it

struct Template {
    /// Compute node names and how many VMs each wants, in template order.
    computes: Vec<(String, usize)>,
    outputs: Vec<(String, Output)>,
}

enum Output {
    /// `get_attribute: [node, private_address | public_address]`
    Address {
        node: String,
        public: bool,
    },
    Literal(Value),
    /// Anything else: IM could not resolve it on a Dummy VM either.
    Unresolved,
}

impl Output {
    fn resolve(&self, infra: &Infra) -> Value {
        match self {
            Output::Address { node, public } => {
                let has_vm = infra.vms.values().any(|vm| &vm.node == node);
                if has_vm && !public {
                    Value::from(DUMMY_IP)
                } else {
                    Value::Null
                }
            }
            Output::Literal(value) => value.clone(),
            Output::Unresolved => Value::Null,
        }
    }
}

fn read_template(text: &str, compute_types: &[String]) -> Result<Template, String> {
    let docs = Yaml::load_from_str(text).map_err(|e| e.to_string())?;
    let doc = docs.first().ok_or("empty template")?;
    if doc.as_mapping_get("tosca_definitions_version").is_none() {
        return Err("missing tosca_definitions_version".to_owned());
    }
    let topology = doc.as_mapping_get("topology_template");
    let mut computes = Vec::new();
    if let Some(nodes) = topology
        .and_then(|t| t.as_mapping_get("node_templates"))
        .and_then(Yaml::as_mapping)
    {
        for (name, node) in nodes {
            let name = name.as_str().ok_or("a node template name is not text")?;
            let node_type = node
                .as_mapping_get("type")
                .and_then(Yaml::as_str)
                .ok_or_else(|| format!("node template {name} has no type"))?;
            if node_type.ends_with("Compute") || compute_types.iter().any(|t| t == node_type) {
                computes.push((name.to_owned(), instance_count(node)));
            }
        }
    }
    let mut outputs = Vec::new();
    if let Some(entries) = topology
        .and_then(|t| t.as_mapping_get("outputs"))
        .and_then(Yaml::as_mapping)
    {
        for (name, output) in entries {
            let name = name.as_str().ok_or("an output name is not text")?;
            outputs.push((name.to_owned(), read_output(output.as_mapping_get("value"))));
        }
    }
    Ok(Template { computes, outputs })
}

/// `capabilities.scalable.properties.count` (INDIGO) or `default_instances` (standard),
/// else one.
fn instance_count(node: &Yaml) -> usize {
    let scalable = node
        .as_mapping_get("capabilities")
        .and_then(|c| c.as_mapping_get("scalable"))
        .and_then(|s| s.as_mapping_get("properties"));
    ["count", "default_instances"]
        .iter()
        .find_map(|key| {
            scalable
                .and_then(|p| p.as_mapping_get(key))
                .and_then(Yaml::as_integer)
        })
        .map_or(1, |n| usize::try_from(n).unwrap_or(0))
}

fn read_output(value: Option<&Yaml>) -> Output {
    let Some(value) = value else {
        return Output::Unresolved;
    };
    if let Some(args) = value
        .as_mapping_get("get_attribute")
        .and_then(Yaml::as_sequence)
    {
        let text = |i: usize| args.get(i).and_then(Yaml::as_str);
        return match (text(0), text(1)) {
            (Some(node), Some(attr @ ("private_address" | "public_address"))) => Output::Address {
                node: node.to_owned(),
                public: attr == "public_address",
            },
            _ => Output::Unresolved,
        };
    }
    if let Some(text) = value.as_str() {
        Output::Literal(Value::from(text))
    } else if let Some(n) = value.as_integer() {
        Output::Literal(Value::from(n))
    } else if let Some(b) = value.as_bool() {
        Output::Literal(Value::from(b))
    } else if let Some(f) = value.as_floating_point() {
        Output::Literal(Value::from(f))
    } else {
        Output::Unresolved
    }
}
