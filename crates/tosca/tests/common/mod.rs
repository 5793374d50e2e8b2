//! Helpers shared by the test binaries: fixtures by name, the INDIGO-style imports
//! keyed by the URLs the fixtures write, and short ways to build JSON inputs.

#![allow(dead_code)] // Each test binary uses a different subset of the helpers.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Map, Value};
use tosca::{Template, Violation};

/// URL under which `single_vm.yaml` and `kubernetes_cluster.yaml` import the custom types.
pub const CUSTOM_TYPES_URL: &str =
    "https://raw.githubusercontent.com/indigo-dc/tosca-types/master/custom_types.yaml";
/// URL under which the custom types import the base types.
pub const BASE_TYPES_URL: &str =
    "https://raw.githubusercontent.com/indigo-dc/tosca-types/master/base_types.yaml";
/// URL under which the TOSCA 1.2 fixture imports its gateway type.
pub const GATEWAY_TYPES_URL: &str = "https://example.org/tosca/gateway_types.yaml";

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The text of a fixture, e.g. `fixture("versions/tosca_1_3.yaml")`.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Every import a fixture may ask for, by URL.
pub fn imports() -> HashMap<String, String> {
    HashMap::from([
        (
            CUSTOM_TYPES_URL.to_string(),
            fixture("imports/indigo_custom_types.yaml"),
        ),
        (
            BASE_TYPES_URL.to_string(),
            fixture("imports/indigo_base_types.yaml"),
        ),
        (
            GATEWAY_TYPES_URL.to_string(),
            fixture("imports/gateway_types.yaml"),
        ),
    ])
}

/// Parses a fixture with every import available; panics with the error otherwise.
pub fn parse_fixture(name: &str) -> Template {
    Template::parse_with_imports(&fixture(name), &imports())
        .unwrap_or_else(|e| panic!("fixture {name} does not parse: {e}"))
}

/// Parses a template text; panics with the error otherwise.
pub fn parse(src: &str) -> Template {
    Template::parse(src).unwrap_or_else(|e| panic!("template does not parse: {e}\n{src}"))
}

/// A JSON object from a `json!` value.
pub fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// A template whose only content is the given `inputs:` body (indented by 4).
pub fn with_inputs(inputs_yaml: &str) -> String {
    let body: String = inputs_yaml
        .lines()
        .map(|l| {
            if l.trim().is_empty() {
                "\n".to_string()
            } else {
                format!("    {l}\n")
            }
        })
        .collect();
    format!(
        "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  inputs:\n{body}"
    )
}

/// A template with one input named `x`, defined by `definition` (YAML lines).
pub fn one_input(definition: &str) -> Template {
    let indented: String = definition.lines().map(|l| format!("  {l}\n")).collect();
    parse(&with_inputs(&format!("x:\n{indented}")))
}

/// Validates `{"x": value}` against a one-input template.
pub fn validate_x(template: &Template, value: Value) -> Result<Value, Vec<Violation>> {
    let mut given = Map::new();
    given.insert("x".into(), value);
    template
        .validate_inputs(&given)
        .map(|r| r.values().get("x").cloned().unwrap_or(Value::Null))
}

/// The pointers of violations, in order.
pub fn pointers(violations: &[Violation]) -> Vec<&str> {
    violations.iter().map(|v| v.pointer.as_str()).collect()
}

/// `doc` (a whole template as JSON) as rendering leaves it besides the input
/// defaults: every scalable count that is a `get_input` of a resolved input replaced
/// by that input's value.
pub fn with_counts_resolved(mut doc: Value, inputs: &tosca::ResolvedInputs) -> Value {
    if let Some(nodes) = doc["topology_template"]["node_templates"].as_object_mut() {
        for caps in nodes.values_mut().filter_map(|n| n.get_mut("capabilities")) {
            resolve_capability_counts(caps, inputs);
        }
    }
    doc
}

/// The same on one node's `capabilities`.
pub fn resolve_capability_counts(capabilities: &mut Value, inputs: &tosca::ResolvedInputs) {
    let Some(props) = capabilities
        .get_mut("scalable")
        .and_then(|s| s.get_mut("properties"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for key in ["count", "default_instances"] {
        let name = props
            .get(key)
            .and_then(|v| v.get("get_input"))
            .and_then(|n| n.as_str().or_else(|| n.get(0).and_then(Value::as_str)))
            .map(str::to_string);
        if let Some(value) = name.and_then(|n| inputs.values().get(&n)) {
            props.insert(key.to_string(), value.clone());
        }
    }
}
