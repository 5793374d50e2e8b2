//! What IM tells about an infrastructure and its VMs, in Rust types.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The id IM gives an infrastructure (a UUID in practice, but IM does not promise it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InfraId(pub String);

impl InfraId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InfraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The state of an infrastructure or of one VM, as IM names it (`IM/rest/models.py`).
///
/// IM may add states; anything it sends that is not listed here reads as [`Unknown`],
/// which callers already have to handle (IM itself reports it when a cloud does not
/// answer).
///
/// [`Unknown`]: InfraState::Unknown
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InfraState {
    /// Launched, still initialising.
    Pending,
    /// Up, being contextualized.
    Running,
    /// Up and contextualized: done.
    Configured,
    /// Up, but contextualization failed.
    Unconfigured,
    /// Stopped (can be started again).
    Stopped,
    /// Shut down or removed.
    Off,
    /// Could not be launched.
    Failed,
    /// IM cannot tell (cloud not answering, every VM removed, or a state this client
    /// does not know).
    Unknown,
    /// Being deleted.
    Deleting,
}

impl InfraState {
    /// Every state, in IM's order.
    pub const ALL: [InfraState; 9] = [
        InfraState::Pending,
        InfraState::Running,
        InfraState::Configured,
        InfraState::Unconfigured,
        InfraState::Stopped,
        InfraState::Off,
        InfraState::Failed,
        InfraState::Unknown,
        InfraState::Deleting,
    ];

    /// Reads IM's name of a state; an unrecognised name is [`InfraState::Unknown`].
    pub fn parse(s: &str) -> InfraState {
        InfraState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .unwrap_or(InfraState::Unknown)
    }

    /// IM's name of the state.
    pub fn as_str(&self) -> &'static str {
        match self {
            InfraState::Pending => "pending",
            InfraState::Running => "running",
            InfraState::Configured => "configured",
            InfraState::Unconfigured => "unconfigured",
            InfraState::Stopped => "stopped",
            InfraState::Off => "off",
            InfraState::Failed => "failed",
            InfraState::Unknown => "unknown",
            InfraState::Deleting => "deleting",
        }
    }
}

impl fmt::Display for InfraState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer of `GET /infrastructures/{id}/state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateReport {
    /// IM's aggregate of the VM states (any failed VM makes it `failed`, and so on).
    pub state: InfraState,
    /// Each VM's state, by VM id (`"0"`, `"1"`, ...).
    pub vm_states: BTreeMap<String, InfraState>,
}

/// The answer of `GET /infrastructures/{id}/vms/{vm}`.
#[derive(Debug, Clone, PartialEq)]
pub struct VmInfo {
    /// The VM id within its infrastructure.
    pub vm_id: String,
    /// The TOSCA node template this VM was made for: the `id` of the RADL `system`
    /// entry. This is how VMs are bound to nodes.
    pub node_name: Option<String>,
    /// The VM's state from the `system` entry ([`InfraState::Unknown`] if absent).
    pub state: InfraState,
    /// The whole `radl` list (network and system entries), kept as IM sent it: it is
    /// what the API shows as the VM's properties.
    pub properties: Vec<Value>,
}

impl VmInfo {
    /// The RADL `system` entry (`"class": "system"`), which describes the VM itself.
    pub fn system(&self) -> Option<&Map<String, Value>> {
        system_entry(&self.properties)
    }

    /// One property of the `system` entry, e.g. `net_interface.0.ip`.
    pub fn system_property(&self, key: &str) -> Option<&Value> {
        self.system()?.get(key)
    }
}

/// The RADL `system` entry of a VM-info `radl` list.
pub(crate) fn system_entry(radl: &[Value]) -> Option<&Map<String, Value>> {
    radl.iter()
        .filter_map(Value::as_object)
        .find(|entry| entry.get("class").and_then(Value::as_str) == Some("system"))
}

/// What can be done to one VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VmAction {
    /// Start a stopped VM.
    Start,
    /// Stop a VM, keeping its disk.
    Stop,
    /// Reboot a VM.
    Reboot,
}

impl VmAction {
    /// The last path segment of the IM route.
    pub fn as_str(&self) -> &'static str {
        match self {
            VmAction::Start => "start",
            VmAction::Stop => "stop",
            VmAction::Reboot => "reboot",
        }
    }
}

impl fmt::Display for VmAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
