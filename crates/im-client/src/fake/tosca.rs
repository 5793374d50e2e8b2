//! The TOSCA, read only as far as the Dummy IM acts on it: Compute nodes, their
//! instance counts, and outputs that name an address.

use saphyr::{LoadableYamlNode, Yaml};
use serde_json::Value;

use super::{Infra, DUMMY_IP};

pub(super) struct Template {
    /// Compute node names and how many VMs each wants, in template order.
    pub(super) computes: Vec<(String, usize)>,
    pub(super) outputs: Vec<(String, Output)>,
}

pub(super) enum Output {
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
    pub(super) fn resolve(&self, infra: &Infra) -> Value {
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

pub(super) fn read_template(text: &str, compute_types: &[String]) -> Result<Template, String> {
    let docs = Yaml::load_from_str(text).map_err(|e| e.to_string())?;
    let doc = docs.first().ok_or("empty template")?;
    if doc.as_mapping_get("tosca_definitions_version").is_none() {
        return Err("missing tosca_definitions_version".to_owned());
    }
    let topology = doc.as_mapping_get("topology_template");
    let inputs = topology.and_then(|t| t.as_mapping_get("inputs"));
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
                computes.push((name.to_owned(), instance_count(node, inputs)?));
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
            let value = output
                .as_mapping_get("value")
                .map(|v| input_value(v, inputs));
            outputs.push((name.to_owned(), read_output(value)));
        }
    }
    Ok(Template { computes, outputs })
}

/// `{ get_input: name }` read as the input's `default` (how the orchestrator passes
/// input values to IM); any other value as it is.
fn input_value<'a>(value: &'a Yaml<'a>, inputs: Option<&'a Yaml<'a>>) -> &'a Yaml<'a> {
    value
        .as_mapping_get("get_input")
        .and_then(Yaml::as_str)
        .and_then(|name| inputs?.as_mapping_get(name)?.as_mapping_get("default"))
        .unwrap_or(value)
}

/// `capabilities.scalable.properties.count` (INDIGO types, `get_input` resolved) or
/// `default_instances` (standard), else one. tosca-parser checks `min_instances <=
/// default_instances <= max_instances` before resolving any function, so a
/// `get_input` there fails the whole template, as in IM.
fn instance_count<'a>(node: &'a Yaml<'a>, inputs: Option<&'a Yaml<'a>>) -> Result<usize, String> {
    let Some(scalable) = node
        .as_mapping_get("capabilities")
        .and_then(|c| c.as_mapping_get("scalable"))
        .and_then(|s| s.as_mapping_get("properties"))
    else {
        return Ok(1);
    };
    let count = if let Some(count) = scalable.as_mapping_get("count") {
        input_value(count, inputs).as_integer()
    } else if let Some(default) = scalable.as_mapping_get("default_instances") {
        if default.is_mapping() {
            let min = scalable.as_mapping_get("min_instances");
            let min = if min.is_some_and(Yaml::is_integer) {
                "int"
            } else {
                "NoneType"
            };
            return Err(format!(
                "'<=' not supported between instances of '{min}' and 'dict'"
            ));
        }
        default.as_integer()
    } else {
        None
    };
    Ok(count.map_or(1, |n| usize::try_from(n).unwrap_or(0)))
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
