//! Rendering for IM: the template with the user's inputs written as the input
//! defaults, everything else kept, so IM receives a self-contained template.

use crate::error::Pos;
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
