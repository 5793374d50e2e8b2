//! Rendering for IM: the template with the user's inputs written as the input
//! defaults, everything else kept, so IM receives a self-contained template.
//!
//! One exception to "everything else kept": a scalable node's instance count
//! (`count` or `default_instances`) given as `get_input` is written as the number.
//! IM's tosca-parser checks `min_instances <= default_instances <= max_instances`
//! before it resolves functions and refuses the template otherwise ("'<=' not
//! supported between instances of 'int' and 'dict'"), and IM compares the literal
//! count with the VMs it has when it scales on an update.

use crate::error::Pos;
use crate::instances::{get_input_name, COUNT_PROPERTIES};
use crate::template::{ResolvedInputs, Template};
use crate::yaml::{emit, Key, Node, Yaml};

fn key(text: &str) -> Key {
    Key {
        text: text.to_string(),
        pos: Pos::default(),
    }
}

fn entry<'a>(entries: &'a mut Vec<(Key, Node)>, name: &str) -> &'a mut Node {
    let index = match entries.iter().position(|(k, _)| k.text == name) {
        Some(i) => i,
        None => {
            entries.push((key(name), Node::synthetic(Yaml::Map(vec![]))));
            entries.len() - 1
        }
    };
    &mut entries[index].1
}

fn as_map_mut(node: &mut Node) -> &mut Vec<(Key, Node)> {
    if !matches!(node.value, Yaml::Map(_)) {
        node.value = Yaml::Map(vec![]);
    }
    match &mut node.value {
        Yaml::Map(entries) => entries,
        _ => unreachable!("just made a map"),
    }
}

impl Template {
    /// The template text with `inputs` written as defaults.
    pub fn render(&self, inputs: &ResolvedInputs) -> String {
        let mut root = self.root.clone();
        resolve_counts(&mut root, inputs);
        if inputs.0.is_empty() {
            // Nothing to write: no `topology_template.inputs` is added.
            return emit(&root);
        }
        let top = as_map_mut(&mut root);
        let topology = as_map_mut(entry(top, "topology_template"));
        let input_defs = as_map_mut(entry(topology, "inputs"));
        for (name, value) in &inputs.0 {
            let def = as_map_mut(entry(input_defs, name));
            *entry(def, "default") = Node::from_json(value);
        }
        emit(&root)
    }
}

/// Writes every scalable count that is a `get_input` of a resolved input as its value.
fn resolve_counts(root: &mut Node, inputs: &ResolvedInputs) {
    let Yaml::Map(top) = &mut root.value else {
        return;
    };
    let Some(nodes) =
        map_entry(top, "topology_template").and_then(|t| map_entry(t, "node_templates"))
    else {
        return;
    };
    for (_, node) in nodes.iter_mut() {
        let Yaml::Map(node) = &mut node.value else {
            continue;
        };
        let props = map_entry(node, "capabilities")
            .and_then(|c| map_entry(c, "scalable"))
            .and_then(|s| map_entry(s, "properties"));
        let Some(props) = props else { continue };
        for (key, value) in props.iter_mut() {
            if !COUNT_PROPERTIES.contains(&key.text.as_str()) {
                continue;
            }
            let resolved = get_input_name(&value.to_json()).and_then(|name| inputs.0.get(name));
            if let Some(resolved) = resolved {
                *value = Node::from_json(resolved);
            }
        }
    }
}

/// The entries of the mapping under `name` in `entries`, if there is one.
fn map_entry<'a>(entries: &'a mut [(Key, Node)], name: &str) -> Option<&'a mut Vec<(Key, Node)>> {
    match &mut entries.iter_mut().find(|(k, _)| k.text == name)?.1.value {
        Yaml::Map(inner) => Some(inner),
        _ => None,
    }
}
