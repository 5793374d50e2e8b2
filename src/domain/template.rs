//! A registered TOSCA template.

use uuid::Uuid;

use super::Timestamp;

/// A template as stored. `content` is kept verbatim; `checksum` is its SHA-256.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Our id.
    pub id: Uuid,
    /// Name (from `metadata.template_name` or given at registration).
    pub name: String,
    /// `metadata.template_version`.
    pub version: Option<String>,
    /// `metadata.target_provider_type`.
    pub target_provider_type: Option<String>,
    /// `tosca_definitions_version`.
    pub tosca_definition_version: String,
    /// The YAML, verbatim.
    pub content: String,
    /// SHA-256 hex of `content`.
    pub checksum: String,
    /// Registration time.
    pub created_at: Timestamp,
    /// Who registered it.
    pub created_by: Uuid,
    /// Last change.
    pub updated_at: Timestamp,
    /// Who changed it last.
    pub updated_by: Uuid,
}
