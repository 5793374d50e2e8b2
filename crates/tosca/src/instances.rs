//! Node instances: what the orchestrator tracks as resources. One per node template,
//! or `count` of them for a scalable node (INDIGO's
//! `capabilities.scalable.properties.count` or the standard `default_instances`,
//! literal or `get_input`), each knowing which nodes require it.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::template::{ResolvedInputs, Template};

/// One instance of a node template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInstance {
    /// The node template's name.
    pub node_name: String,
    /// Its type.
    pub node_type: String,
    /// 0-based index among the node's instances.
    pub index: u32,
    /// Names of the nodes whose requirements point at this node, sorted.
    pub required_by: Vec<String>,
}

/// The most instances one node template may have. Each instance is a resource
/// (usually a virtual machine) that the orchestrator records; an unconstrained count
/// input set to 4 000 000 000 would otherwise make it allocate that many records and
/// exhaust its memory. Larger counts are refused by [`Template::parse`] (literal) and
/// [`Template::validate_inputs`] (from an input).
pub const MAX_INSTANCES: u32 = 1000;

/// The input named by a `get_input` (`{get_input: name}` or `{get_input: [name, ...]}`).
pub(crate) fn get_input_name(value: &Value) -> Option<&str> {
    match value {
        Value::Object(map) if map.len() == 1 => match map.get("get_input")? {
            Value::String(s) => Some(s),
            Value::Array(items) => items.first()?.as_str(),
            _ => None,
        },
        _ => None,
    }
}

/// A count as written (a number or its text), if it is one.
pub(crate) fn literal_count(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn resolve_count(value: &Value, inputs: &ResolvedInputs) -> Option<u64> {
    match get_input_name(value) {
        Some(name) => literal_count(inputs.0.get(name)?),
        None => literal_count(value),
    }
}

/// The properties of a node's `scalable` capability that give its count, in order.
pub(crate) const COUNT_PROPERTIES: [&str; 2] = ["count", "default_instances"];

impl Template {
    /// How many instances a node template has for these inputs (not limited), and
    /// the input the number came from, if any; `None` for an unknown node.
    pub(crate) fn count_and_source(
        &self,
        node_name: &str,
        inputs: &ResolvedInputs,
    ) -> Option<(u64, Option<String>)> {
        let node = self.node_template(node_name)?;
        let props = node
            .capabilities
            .get("scalable")
            .and_then(|c| c.get("properties"));
        let Some(props) = props else {
            return Some((1, None));
        };
        Some(
            COUNT_PROPERTIES
                .iter()
                .find_map(|key| {
                    let value = props.get(*key)?;
                    let count = resolve_count(value, inputs)?;
                    Some((count, get_input_name(value).map(str::to_string)))
                })
                .unwrap_or((1, None)),
        )
    }

    /// How many instances a node template has for these inputs (0 for an unknown
    /// node), never more than [`MAX_INSTANCES`].
    pub fn instance_count(&self, node_name: &str, inputs: &ResolvedInputs) -> u32 {
        self.count_and_source(node_name, inputs)
            .map_or(0, |(count, _)| {
                u32::try_from(count.min(u64::from(MAX_INSTANCES))).unwrap_or(MAX_INSTANCES)
            })
    }

    /// Every node instance, in document order.
    pub fn node_instances(&self, inputs: &ResolvedInputs) -> Vec<NodeInstance> {
        let mut out = Vec::new();
        for node in self.node_templates() {
            let required_by: BTreeSet<String> = self
                .node_templates()
                .iter()
                .filter(|other| {
                    other
                        .requirements
                        .iter()
                        .any(|r| r.node.as_deref() == Some(node.name.as_str()))
                })
                .map(|other| other.name.clone())
                .collect();
            let required_by: Vec<String> = required_by.into_iter().collect();
            for index in 0..self.instance_count(&node.name, inputs) {
                out.push(NodeInstance {
                    node_name: node.name.clone(),
                    node_type: node.node_type.clone(),
                    index,
                    required_by: required_by.clone(),
                });
            }
        }
        out
    }
}
