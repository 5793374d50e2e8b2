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
//! times `capabilities.scalable.properties.count` or `default_instances`; `get_input`
//! reads an input's `default`, except in `default_instances`, where IM rejects it with
//! a 400; outputs of `get_attribute: [node, private_address]` resolve to the Dummy
//! VM's `10.0.0.1`, `public_address` to `null`. Credentials without a cloud line make
//! the launch fail, as in IM.

mod http;
mod tosca;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::model::InfraState;
use tosca::Output;

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
            // The handler names the action: "Error in stop op in VM".
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

/// The address the Dummy connector gives every VM.
const DUMMY_IP: &str = "10.0.0.1";

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
        let app = http::router(Arc::clone(&world));
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
    /// `{"message","code"}` shape, or FastAPI's `{"detail": [...]}` for a 422). A 2xx
    /// status makes a success whose body the client cannot read.
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

    /// The access tokens the IM line carried, in the order they were first seen
    /// (a token seen again after another one is listed again).
    pub fn tokens_seen(&self) -> Vec<String> {
        self.world().tokens.clone()
    }

    /// How many infrastructures were created.
    pub fn created_count(&self) -> usize {
        self.world().created
    }

    /// How many calls of `op` arrived (failed ones included).
    pub fn count(&self, op: Op) -> usize {
        self.world().counts.get(&op).copied().unwrap_or(0)
    }

    /// The ids of the infrastructures not deleted yet, in creation order.
    pub fn infra_ids(&self) -> Vec<String> {
        self.world()
            .infras
            .values()
            .filter(|infra| !matches!(infra.phase, Phase::Deleted { .. }))
            .map(|infra| infra.id.clone())
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
    /// The IM line's `token` of every authenticated call, in order (no repeats in a row).
    tokens: Vec<String>,
    /// By id, which sorts in creation order; deleted ones stay, to answer 404 the way
    /// IM does.
    infras: BTreeMap<String, Infra>,
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
            tokens: Vec::new(),
            infras: BTreeMap::new(),
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
