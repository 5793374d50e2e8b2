//! The three enumerations the API shows as an integer code plus a `*_name`
//! (DESIGN.md §3), and the state rules that depend on them, written once here so the
//! API, the engine and the legacy layer cannot disagree.

use serde::{Serialize, Serializer};

/// Declares an enum whose variants have a fixed wire code and name.
macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant,)+ }

        impl $name {
            /// Every variant, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The integer code shown on the wire and stored in the database.
            pub fn code(self) -> i64 {
                match self { $($name::$variant => $code,)+ }
            }

            /// The name shown in `*_name` fields.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// The variant with this code.
            pub fn from_code(code: i64) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }

            /// Parses a filter value: the code or the name (case-insensitive).
            pub fn parse(text: &str) -> Option<Self> {
                let text = text.trim();
                if let Ok(code) = text.parse::<i64>() {
                    return Self::from_code(code);
                }
                Self::ALL.iter().copied().find(|v| v.name().eq_ignore_ascii_case(text))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_i64(self.code())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

coded_enum! {
    /// Status of a deployment.
    DeploymentStatus {
        CreateComplete = 0 => "CREATE_COMPLETE",
        CreateFailed = 1 => "CREATE_FAILED",
        CreateInProgress = 2 => "CREATE_IN_PROGRESS",
        DeleteComplete = 3 => "DELETE_COMPLETE",
        DeleteFailed = 4 => "DELETE_FAILED",
        DeleteInProgress = 5 => "DELETE_IN_PROGRESS",
        Unknown = 6 => "UNKNOWN",
        UpdateComplete = 7 => "UPDATE_COMPLETE",
        UpdateFailed = 8 => "UPDATE_FAILED",
        UpdateInProgress = 9 => "UPDATE_IN_PROGRESS",
    }
}

coded_enum! {
    /// Status of a resource (a TOSCA node instance).
    ResourceStatus {
        Configured = 0 => "CONFIGURED",
        Configuring = 1 => "CONFIGURING",
        Created = 2 => "CREATED",
        Creating = 3 => "CREATING",
        Deleted = 4 => "DELETED",
        Deleting = 5 => "DELETING",
        Error = 6 => "ERROR",
        Initial = 7 => "INITIAL",
        Started = 8 => "STARTED",
        Starting = 9 => "STARTING",
        Stopped = 10 => "STOPPED",
        Stopping = 11 => "STOPPING",
    }
}

coded_enum! {
    /// The step a deployment's current operation is at.
    Task {
        Submitted = 0 => "submitted",
        ProviderSelection = 1 => "provider_selection",
        InfrastructureCreation = 2 => "infrastructure_creation",
        InfrastructureConfiguration = 3 => "infrastructure_configuration",
        InfrastructureUpdate = 4 => "infrastructure_update",
        InfrastructureDeletion = 5 => "infrastructure_deletion",
        None = 6 => "none",
    }
}

impl DeploymentStatus {
    /// An operation is running: create, update or delete.
    pub fn is_in_progress(self) -> bool {
        matches!(
            self,
            Self::CreateInProgress | Self::UpdateInProgress | Self::DeleteInProgress
        )
    }

    /// The failure an in-progress status ends in (reset, deadline); `None` otherwise.
    pub fn failed_counterpart(self) -> Option<Self> {
        match self {
            Self::CreateInProgress => Some(Self::CreateFailed),
            Self::UpdateInProgress => Some(Self::UpdateFailed),
            Self::DeleteInProgress => Some(Self::DeleteFailed),
            _ => None,
        }
    }

    /// Whether an update-and-redeploy may start from this status (DESIGN.md §3).
    pub fn allows_redeploy(self) -> bool {
        !matches!(
            self,
            Self::CreateInProgress
                | Self::UpdateInProgress
                | Self::DeleteInProgress
                | Self::DeleteComplete
        )
    }

    /// No operation will move this deployment by itself any more.
    pub fn is_final(self) -> bool {
        !self.is_in_progress()
    }
}

impl ResourceStatus {
    /// Start and stop are accepted from these states (spec, "Start a resource").
    pub fn allows_start_or_stop(self) -> bool {
        matches!(self, Self::Configured | Self::Stopped | Self::Started)
    }

    /// Reboot is accepted only from STARTED.
    pub fn allows_reboot(self) -> bool {
        self == Self::Started
    }

    /// The resource status for an IM VM state (DESIGN.md §4).
    pub fn from_im_state(state: &str) -> Self {
        match state {
            "pending" => Self::Creating,
            "running" => Self::Configuring,
            "configured" => Self::Started,
            "stopped" => Self::Stopped,
            "off" => Self::Deleted,
            "deleting" => Self::Deleting,
            _ => Self::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_from_code_or_name() {
        assert_eq!(
            DeploymentStatus::parse("1"),
            Some(DeploymentStatus::CreateFailed)
        );
        assert_eq!(
            DeploymentStatus::parse("create_failed"),
            Some(DeploymentStatus::CreateFailed)
        );
        assert_eq!(DeploymentStatus::parse("10"), None);
        assert_eq!(Task::parse("none"), Some(Task::None));
        assert_eq!(
            ResourceStatus::parse("STOPPING"),
            Some(ResourceStatus::Stopping)
        );
    }

    #[test]
    fn codes_match_the_spec() {
        let names: Vec<_> = DeploymentStatus::ALL
            .iter()
            .map(|s| (s.code(), s.name()))
            .collect();
        assert_eq!(names[9], (9, "UPDATE_IN_PROGRESS"));
        assert_eq!(ResourceStatus::Initial.code(), 7);
        assert_eq!(Task::InfrastructureDeletion.code(), 5);
    }

    #[test]
    fn every_in_progress_status_has_a_failure_edge() {
        for status in DeploymentStatus::ALL {
            assert_eq!(
                status.is_in_progress(),
                status.failed_counterpart().is_some()
            );
        }
    }

    #[test]
    fn redeploy_is_refused_while_busy_or_deleted() {
        assert!(!DeploymentStatus::CreateInProgress.allows_redeploy());
        assert!(!DeploymentStatus::DeleteComplete.allows_redeploy());
        assert!(DeploymentStatus::CreateFailed.allows_redeploy());
        assert!(DeploymentStatus::UpdateComplete.allows_redeploy());
    }

    #[test]
    fn im_vm_states_map_to_resource_statuses() {
        assert_eq!(
            ResourceStatus::from_im_state("configured"),
            ResourceStatus::Started
        );
        assert_eq!(
            ResourceStatus::from_im_state("unconfigured"),
            ResourceStatus::Error
        );
        assert_eq!(
            ResourceStatus::from_im_state("off"),
            ResourceStatus::Deleted
        );
    }
}
