//! The type hierarchy: the normative TOSCA 1.3 types (and the 1.0 names still found
//! in INDIGO templates) are built in; types defined by a template or its imports
//! extend them with `derived_from`. Short names (`Compute`, `tosca:Compute`) resolve
//! to the normative ones, as the specification allows.

use std::collections::HashMap;

use crate::error::{Error, Pos};
use crate::yaml::Node;

/// The family of a type (each has its own namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `node_types`.
    Node,
    /// `capability_types`.
    Capability,
    /// `relationship_types`.
    Relationship,
    /// `data_types`.
    Data,
    /// `policy_types`.
    Policy,
    /// `artifact_types`.
    Artifact,
    /// `interface_types`.
    Interface,
    /// `group_types`.
    Group,
}

impl Family {
    /// The section of a template defining this family.
    pub fn section(self) -> &'static str {
        match self {
            Self::Node => "node_types",
            Self::Capability => "capability_types",
            Self::Relationship => "relationship_types",
            Self::Data => "data_types",
            Self::Policy => "policy_types",
            Self::Artifact => "artifact_types",
            Self::Interface => "interface_types",
            Self::Group => "group_types",
        }
    }

    /// Every family.
    pub const ALL: [Family; 8] = [
        Self::Node,
        Self::Capability,
        Self::Relationship,
        Self::Data,
        Self::Policy,
        Self::Artifact,
        Self::Interface,
        Self::Group,
    ];

    fn prefix(self) -> &'static str {
        match self {
            Self::Node => "tosca.nodes.",
            Self::Capability => "tosca.capabilities.",
            Self::Relationship => "tosca.relationships.",
            Self::Data => "tosca.datatypes.",
            Self::Policy => "tosca.policies.",
            Self::Artifact => "tosca.artifacts.",
            Self::Interface => "tosca.interfaces.",
            Self::Group => "tosca.groups.",
        }
    }
}

/// A type definition.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeDef {
    /// Full name.
    pub name: String,
    /// Parent, if any.
    pub derived_from: Option<String>,
    /// The definition as written (absent for built-in types).
    pub definition: Option<Node>,
}

const NORMATIVE: &[(Family, &str, Option<&str>)] = &[
    (Family::Node, "tosca.nodes.Root", None),
    (
        Family::Node,
        "tosca.nodes.Abstract.Compute",
        Some("tosca.nodes.Root"),
    ),
    (
        Family::Node,
        "tosca.nodes.Compute",
        Some("tosca.nodes.Abstract.Compute"),
    ),
    (
        Family::Node,
        "tosca.nodes.SoftwareComponent",
        Some("tosca.nodes.Root"),
    ),
    (
        Family::Node,
        "tosca.nodes.WebServer",
        Some("tosca.nodes.SoftwareComponent"),
    ),
    (
        Family::Node,
        "tosca.nodes.WebApplication",
        Some("tosca.nodes.Root"),
    ),
    (
        Family::Node,
        "tosca.nodes.DBMS",
        Some("tosca.nodes.SoftwareComponent"),
    ),
    (
        Family::Node,
        "tosca.nodes.Database",
        Some("tosca.nodes.Root"),
    ),
    (
        Family::Node,
        "tosca.nodes.Abstract.Storage",
        Some("tosca.nodes.Root"),
    ),
    (
        Family::Node,
        "tosca.nodes.Storage.ObjectStorage",
        Some("tosca.nodes.Abstract.Storage"),
    ),
    (
        Family::Node,
        "tosca.nodes.Storage.BlockStorage",
        Some("tosca.nodes.Abstract.Storage"),
    ),
    (
        Family::Node,
        "tosca.nodes.ObjectStorage",
        Some("tosca.nodes.Root"),
    ),
    (
        Family::Node,
        "tosca.nodes.BlockStorage",
        Some("tosca.nodes.Root"),
    ),
    (
        Family::Node,
        "tosca.nodes.Container.Runtime",
        Some("tosca.nodes.SoftwareComponent"),
    ),
    (
        Family::Node,
        "tosca.nodes.Container.Application",
        Some("tosca.nodes.Root"),
    ),
    (
        Family::Node,
        "tosca.nodes.LoadBalancer",
        Some("tosca.nodes.Root"),
    ),
    (
        Family::Node,
        "tosca.nodes.network.Network",
        Some("tosca.nodes.Root"),
    ),
    (
        Family::Node,
        "tosca.nodes.network.Port",
        Some("tosca.nodes.Root"),
    ),
    (Family::Capability, "tosca.capabilities.Root", None),
    (
        Family::Capability,
        "tosca.capabilities.Node",
        Some("tosca.capabilities.Root"),
    ),
    (
        Family::Capability,
        "tosca.capabilities.Compute",
        Some("tosca.capabilities.Container"),
    ),
    (
        Family::Capability,
        "tosca.capabilities.Container",
        Some("tosca.capabilities.Root"),
    ),
    (
        Family::Capability,
        "tosca.capabilities.Network",
        Some("tosca.capabilities.Root"),
    ),
    (
        Family::Capability,
        "tosca.capabilities.Storage",
        Some("tosca.capabilities.Root"),
    ),
    (
        Family::Capability,
        "tosca.capabilities.Endpoint",
        Some("tosca.capabilities.Root"),
    ),
    (
        Family::Capability,
        "tosca.capabilities.Endpoint.Public",
        Some("tosca.capabilities.Endpoint"),
    ),
    (
        Family::Capability,
        "tosca.capabilities.Endpoint.Admin",
        Some("tosca.capabilities.Endpoint"),
    ),
    (
        Family::Capability,
        "tosca.capabilities.Endpoint.Database",
        Some("tosca.capabilities.Endpoint"),
    ),
    (
        Family::Capability,
        "tosca.capabilities.Attachment",
        Some("tosca.capabilities.Root"),
    ),
    (
        Family::Capability,
        "tosca.capabilities.OperatingSystem",
        Some("tosca.capabilities.Root"),
    ),
    (
        Family::Capability,
        "tosca.capabilities.Scalable",
        Some("tosca.capabilities.Root"),
    ),
    (
        Family::Capability,
        "tosca.capabilities.network.Bindable",
        Some("tosca.capabilities.Node"),
    ),
    (
        Family::Capability,
        "tosca.capabilities.network.Linkable",
        Some("tosca.capabilities.Node"),
    ),
    (Family::Relationship, "tosca.relationships.Root", None),
    (
        Family::Relationship,
        "tosca.relationships.DependsOn",
        Some("tosca.relationships.Root"),
    ),
    (
        Family::Relationship,
        "tosca.relationships.HostedOn",
        Some("tosca.relationships.Root"),
    ),
    (
        Family::Relationship,
        "tosca.relationships.ConnectsTo",
        Some("tosca.relationships.Root"),
    ),
    (
        Family::Relationship,
        "tosca.relationships.AttachesTo",
        Some("tosca.relationships.Root"),
    ),
    (
        Family::Relationship,
        "tosca.relationships.RoutesTo",
        Some("tosca.relationships.ConnectsTo"),
    ),
    (
        Family::Relationship,
        "tosca.relationships.network.LinksTo",
        Some("tosca.relationships.DependsOn"),
    ),
    (
        Family::Relationship,
        "tosca.relationships.network.BindsTo",
        Some("tosca.relationships.DependsOn"),
    ),
    (Family::Data, "tosca.datatypes.Root", None),
    (Family::Data, "tosca.datatypes.json", Some("string")),
    (Family::Data, "tosca.datatypes.xml", Some("string")),
    (
        Family::Data,
        "tosca.datatypes.Credential",
        Some("tosca.datatypes.Root"),
    ),
    (
        Family::Data,
        "tosca.datatypes.TimeInterval",
        Some("tosca.datatypes.Root"),
    ),
    (
        Family::Data,
        "tosca.datatypes.network.NetworkInfo",
        Some("tosca.datatypes.Root"),
    ),
    (
        Family::Data,
        "tosca.datatypes.network.PortInfo",
        Some("tosca.datatypes.Root"),
    ),
    (
        Family::Data,
        "tosca.datatypes.network.PortDef",
        Some("integer"),
    ),
    (
        Family::Data,
        "tosca.datatypes.network.PortSpec",
        Some("tosca.datatypes.Root"),
    ),
    (Family::Policy, "tosca.policies.Root", None),
    (
        Family::Policy,
        "tosca.policies.Placement",
        Some("tosca.policies.Root"),
    ),
    (
        Family::Policy,
        "tosca.policies.Scaling",
        Some("tosca.policies.Root"),
    ),
    (
        Family::Policy,
        "tosca.policies.Update",
        Some("tosca.policies.Root"),
    ),
    (
        Family::Policy,
        "tosca.policies.Performance",
        Some("tosca.policies.Root"),
    ),
    (Family::Artifact, "tosca.artifacts.Root", None),
    (
        Family::Artifact,
        "tosca.artifacts.File",
        Some("tosca.artifacts.Root"),
    ),
    (
        Family::Artifact,
        "tosca.artifacts.Deployment",
        Some("tosca.artifacts.Root"),
    ),
    (
        Family::Artifact,
        "tosca.artifacts.Deployment.Image",
        Some("tosca.artifacts.Deployment"),
    ),
    (
        Family::Artifact,
        "tosca.artifacts.Deployment.Image.VM",
        Some("tosca.artifacts.Deployment.Image"),
    ),
    (
        Family::Artifact,
        "tosca.artifacts.Implementation",
        Some("tosca.artifacts.Root"),
    ),
    (
        Family::Artifact,
        "tosca.artifacts.Implementation.Bash",
        Some("tosca.artifacts.Implementation"),
    ),
    (
        Family::Artifact,
        "tosca.artifacts.Implementation.Python",
        Some("tosca.artifacts.Implementation"),
    ),
    (
        Family::Artifact,
        "tosca.artifacts.AnsiblePlaybook",
        Some("tosca.artifacts.Implementation"),
    ),
    (Family::Interface, "tosca.interfaces.Root", None),
    (
        Family::Interface,
        "tosca.interfaces.node.lifecycle.Standard",
        Some("tosca.interfaces.Root"),
    ),
    (
        Family::Interface,
        "tosca.interfaces.relationship.Configure",
        Some("tosca.interfaces.Root"),
    ),
    (Family::Group, "tosca.groups.Root", None),
];

/// The primitive data types of input and property definitions.
pub const PRIMITIVES: &[&str] = &[
    "string",
    "integer",
    "float",
    "boolean",
    "timestamp",
    "null",
    "version",
    "range",
    "list",
    "map",
    "scalar-unit.size",
    "scalar-unit.time",
    "scalar-unit.frequency",
    "scalar-unit.bitrate",
];

/// All known types of one template.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: HashMap<(Family, String), TypeDef>,
}

impl Registry {
    /// The normative types.
    pub fn normative() -> Self {
        let mut types = HashMap::new();
        for (family, name, parent) in NORMATIVE {
            types.insert(
                (*family, (*name).to_string()),
                TypeDef {
                    name: (*name).to_string(),
                    derived_from: parent.map(str::to_string),
                    definition: None,
                },
            );
        }
        Self { types }
    }

    /// Resolves short names (`Compute`, `tosca:Compute`) to the full normative name;
    /// any other name is returned as is.
    pub fn resolve(&self, family: Family, name: &str) -> String {
        if self.types.contains_key(&(family, name.to_string()))
            || (family == Family::Data && PRIMITIVES.contains(&name))
        {
            return name.to_string();
        }
        let short = name.strip_prefix("tosca:").unwrap_or(name);
        let full = format!("{}{short}", family.prefix());
        if self.types.contains_key(&(family, full.clone())) {
            full
        } else {
            name.to_string()
        }
    }

    /// Whether a type exists (primitives count as data types).
    pub fn contains(&self, family: Family, name: &str) -> bool {
        let name = self.resolve(family, name);
        (family == Family::Data && PRIMITIVES.contains(&name.as_str()))
            || self.types.contains_key(&(family, name))
    }

    /// A type's definition.
    pub fn get(&self, family: Family, name: &str) -> Option<&TypeDef> {
        self.types.get(&(family, self.resolve(family, name)))
    }

    /// Adds a type defined by a template or an import; the first definition wins
    /// over later duplicates from imports, a duplicate in one document is refused by
    /// the caller.
    pub fn define(&mut self, family: Family, def: TypeDef) {
        self.types.entry((family, def.name.clone())).or_insert(def);
    }

    /// Whether a type is defined in a template or import (not built in).
    pub fn is_custom(&self, family: Family, name: &str) -> bool {
        self.get(family, name)
            .is_some_and(|t| t.definition.is_some())
    }

    /// The type and its ancestors, nearest first.
    pub fn ancestors(&self, family: Family, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut current = Some(self.resolve(family, name));
        while let Some(name) = current {
            if out.contains(&name) {
                break;
            }
            current = self
                .types
                .get(&(family, name.clone()))
                .and_then(|t| t.derived_from.clone())
                .map(|p| self.resolve(family, &p));
            out.push(name);
        }
        out
    }

    /// Whether `name` is `ancestor` or derives from it.
    pub fn is_derived_from(&self, family: Family, name: &str, ancestor: &str) -> bool {
        let ancestor = self.resolve(family, ancestor);
        self.ancestors(family, name).contains(&ancestor)
    }

    /// Checks every type's parent chain: the parent must exist and the chain must not
    /// loop. Types are checked in a fixed order (by family, then name), so the same
    /// registry always reports the same problem.
    pub fn check(&self) -> Result<(), Error> {
        let mut keys: Vec<&(Family, String)> = self.types.keys().collect();
        keys.sort_by(|a, b| {
            let family = |f: Family| Family::ALL.iter().position(|x| *x == f);
            family(a.0).cmp(&family(b.0)).then_with(|| a.1.cmp(&b.1))
        });
        keys.into_iter()
            .try_for_each(|(family, name)| self.check_type(*family, name))
    }

    /// Checks one type's parent chain: its parent must exist and the chain must not
    /// loop. The error is located at the type's `derived_from`.
    pub fn check_type(&self, family: Family, name: &str) -> Result<(), Error> {
        let name = self.resolve(family, name);
        let Some(def) = self.types.get(&(family, name.clone())) else {
            return Ok(());
        };
        let Some(parent) = &def.derived_from else {
            return Ok(());
        };
        let pos = def
            .definition
            .as_ref()
            .and_then(|d| d.get("derived_from"))
            .map(|n| n.pos)
            .unwrap_or_default();
        if !self.contains(family, parent) {
            return Err(Error::at(
                pos,
                format!("type '{name}' is derived from unknown type '{parent}'"),
            ));
        }
        let chain = self.ancestors(family, &name);
        let parent_of_last = chain
            .last()
            .and_then(|last| self.types.get(&(family, last.clone())))
            .and_then(|t| t.derived_from.as_deref())
            .map(|p| self.resolve(family, p));
        if let Some(repeated) = parent_of_last {
            if let Some(start) = chain.iter().position(|t| *t == repeated) {
                let mut cycle = chain[start..].to_vec();
                cycle.push(repeated);
                let cycle = cycle.join(" -> ");
                return Err(Error::at(
                    pos,
                    if start == 0 {
                        format!("type '{name}' is part of a derived_from cycle ({cycle})")
                    } else {
                        format!("type '{name}' is derived from a derived_from cycle ({cycle})")
                    },
                ));
            }
        }
        Ok(())
    }

    /// Every node type name known (for diagnostics).
    pub fn node_types(&self) -> impl Iterator<Item = &str> {
        self.types
            .iter()
            .filter(|((f, _), _)| *f == Family::Node)
            .map(|((_, n), _)| n.as_str())
    }

    /// The `Pos` of a custom definition.
    pub fn position(&self, family: Family, name: &str) -> Pos {
        self.get(family, name)
            .and_then(|t| t.definition.as_ref())
            .map(|d| d.pos)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_resolve_to_normative_types() {
        let r = Registry::normative();
        assert_eq!(r.resolve(Family::Node, "Compute"), "tosca.nodes.Compute");
        assert_eq!(
            r.resolve(Family::Node, "tosca:Compute"),
            "tosca.nodes.Compute"
        );
        assert!(r.is_derived_from(Family::Node, "Compute", "tosca.nodes.Root"));
        assert!(r.is_derived_from(
            Family::Node,
            "tosca.nodes.WebServer",
            "tosca.nodes.SoftwareComponent"
        ));
        assert!(!r.is_derived_from(
            Family::Node,
            "tosca.nodes.Database",
            "tosca.nodes.SoftwareComponent"
        ));
    }

    #[test]
    fn custom_types_extend_the_normative_ones() {
        let mut r = Registry::normative();
        r.define(
            Family::Node,
            TypeDef {
                name: "my.Vm".into(),
                derived_from: Some("tosca.nodes.Compute".into()),
                definition: None,
            },
        );
        r.define(
            Family::Node,
            TypeDef {
                name: "my.GpuVm".into(),
                derived_from: Some("my.Vm".into()),
                definition: None,
            },
        );
        assert_eq!(
            r.ancestors(Family::Node, "my.GpuVm"),
            [
                "my.GpuVm",
                "my.Vm",
                "tosca.nodes.Compute",
                "tosca.nodes.Abstract.Compute",
                "tosca.nodes.Root"
            ]
        );
        assert!(r.check().is_ok());
    }

    #[test]
    fn cycles_and_unknown_parents_are_errors() {
        let mut r = Registry::normative();
        r.define(
            Family::Node,
            TypeDef {
                name: "a".into(),
                derived_from: Some("b".into()),
                definition: None,
            },
        );
        r.define(
            Family::Node,
            TypeDef {
                name: "b".into(),
                derived_from: Some("a".into()),
                definition: None,
            },
        );
        assert!(r.check().unwrap_err().message.contains("cycle"));
        let mut r = Registry::normative();
        r.define(
            Family::Node,
            TypeDef {
                name: "a".into(),
                derived_from: Some("nowhere".into()),
                definition: None,
            },
        );
        assert!(r
            .check()
            .unwrap_err()
            .message
            .contains("unknown type 'nowhere'"));
    }
}
