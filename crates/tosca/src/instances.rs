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

fn resolve_count(value: &Value, inputs: &ResolvedInputs) -> Option<u32> {
    let value = match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("get_input") => {
            let name = match &map["get_input"] {
                Value::String(s) => s.clone(),
                Value::Array(items) => items.first()?.as_str()?.to_string(),
                _ => return None,
            };
            inputs.0.get(&name)?.clone()
        }
        other => other.clone(),
    };
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Template {
    /// How many instances a node template has for these inputs.
    pub fn instance_count(&self, node_name: &str, inputs: &ResolvedInputs) -> u32 {
        let Some(node) = self.node_template(node_name) else {
            return 0;
        };
        let props = node
            .capabilities
            .get("scalable")
            .and_then(|c| c.get("properties"));
        let Some(props) = props else { return 1 };
        ["count", "default_instances"]
            .iter()
            .find_map(|key| props.get(*key).and_then(|v| resolve_count(v, inputs)))
            .unwrap_or(1)
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
