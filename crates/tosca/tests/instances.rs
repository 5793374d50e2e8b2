//! Node instances: one per node template, or `count` / `default_instances` of them
//! for scalable nodes (literal or `get_input`), each knowing which nodes require it.

mod common;

use common::{obj, parse, parse_fixture};
use serde_json::json;
use tosca::{NodeInstance, ResolvedInputs, Template};

fn resolved(t: &Template, given: serde_json::Value) -> ResolvedInputs {
    t.validate_inputs(&obj(given)).unwrap()
}

fn summary(instances: &[NodeInstance]) -> Vec<(String, u32, Vec<String>)> {
    instances
        .iter()
        .map(|i| (i.node_name.clone(), i.index, i.required_by.clone()))
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_kubernetes_cluster_has_one_instance_per_node_and_count_workers() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let inputs = resolved(&t, json!({"admin_token": "s3cr3t-token"}));
    assert_eq!(
        summary(&t.node_instances(&inputs)),
        [
            ("k8s_master".into(), 0, names(&["jupyterhub", "k8s_wn"])),
            ("k8s_wn".into(), 0, names(&[])),
            ("k8s_master_server".into(), 0, names(&["k8s_master"])),
            ("k8s_wn_server".into(), 0, names(&["k8s_wn"])),
            ("k8s_wn_server".into(), 1, names(&["k8s_wn"])),
            ("jupyterhub".into(), 0, names(&[])),
        ]
    );
}

#[test]
fn the_worker_count_follows_the_given_input() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    for (wn_num, expected) in [
        (json!(5), 5),
        (json!("7"), 7),
        (json!(0), 0),
        (json!(20), 20),
    ] {
        let inputs = resolved(&t, json!({"admin_token": "s3cr3t-token", "wn_num": wn_num}));
        assert_eq!(
            t.instance_count("k8s_wn_server", &inputs),
            expected,
            "{wn_num}"
        );
        let workers: Vec<u32> = t
            .node_instances(&inputs)
            .iter()
            .filter(|i| i.node_name == "k8s_wn_server")
            .map(|i| i.index)
            .collect();
        assert_eq!(workers, (0..expected).collect::<Vec<_>>());
    }
}

#[test]
fn instances_carry_the_resolved_node_type() {
    let t = parse_fixture("versions/tosca_1_1.yaml");
    let inputs = resolved(&t, json!({"db_name": "orders"}));
    let types: Vec<(String, String)> = t
        .node_instances(&inputs)
        .into_iter()
        .map(|i| (i.node_name, i.node_type))
        .collect();
    assert_eq!(
        types,
        [
            ("database".to_string(), "tosca.nodes.Database".to_string()),
            ("dbms".to_string(), "tosca.nodes.DBMS".to_string()),
            ("db_server".to_string(), "tosca.nodes.Compute".to_string()),
        ]
    );
}

#[test]
fn default_instances_counts_when_there_is_no_count() {
    let t = parse_fixture("versions/tosca_1_3.yaml");
    assert_eq!(t.instance_count("worker", &resolved(&t, json!({}))), 4);
    assert_eq!(
        t.instance_count("worker", &resolved(&t, json!({"workers": 1}))),
        1
    );
    let t = parse_fixture("versions/tosca_1_2.yaml");
    assert_eq!(t.instance_count("gateway", &resolved(&t, json!({}))), 3);
    assert_eq!(t.instance_count("balancer", &resolved(&t, json!({}))), 1);
}

fn scalable(properties: &str) -> Template {
    parse(&format!(
        "tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    n: {{type: integer, default: 3}}
    optional: {{type: integer, required: false}}
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {properties}
"
    ))
}

#[test]
fn count_takes_precedence_over_default_instances() {
    let t = scalable("{count: 2, default_instances: 5}");
    assert_eq!(t.instance_count("vm", &resolved(&t, json!({}))), 2);
}

#[test]
fn an_unresolvable_count_falls_back_to_default_instances_then_one() {
    let t = scalable("{count: {get_input: optional}, default_instances: 5}");
    assert_eq!(t.instance_count("vm", &resolved(&t, json!({}))), 5);
    assert_eq!(
        t.instance_count("vm", &resolved(&t, json!({"optional": 2}))),
        2
    );
    let t = scalable("{count: {get_input: optional}}");
    assert_eq!(t.instance_count("vm", &resolved(&t, json!({}))), 1);
}

#[test]
fn count_may_be_literal_text_or_get_input_in_list_form() {
    let t = scalable("{count: \"4\"}");
    assert_eq!(t.instance_count("vm", &resolved(&t, json!({}))), 4);
    let t = scalable("{count: {get_input: [n]}}");
    assert_eq!(t.instance_count("vm", &resolved(&t, json!({}))), 3);
    assert_eq!(t.instance_count("vm", &resolved(&t, json!({"n": 6}))), 6);
}

#[test]
fn a_scalable_capability_without_a_count_means_one_instance() {
    let t = scalable("{min_instances: 2, max_instances: 5}");
    assert_eq!(t.instance_count("vm", &resolved(&t, json!({}))), 1);
}

#[test]
fn a_count_of_zero_means_no_instances() {
    let t = scalable("{count: 0}");
    let inputs = resolved(&t, json!({}));
    assert_eq!(t.instance_count("vm", &inputs), 0);
    assert!(t.node_instances(&inputs).is_empty());
}

#[test]
fn an_unknown_node_has_no_instances() {
    let t = scalable("{count: 2}");
    assert_eq!(t.instance_count("nope", &resolved(&t, json!({}))), 0);
}

#[test]
fn required_by_comes_from_requirements_in_short_and_long_form() {
    let t = parse_fixture("single_vm.yaml");
    let inputs = resolved(&t, json!({"ssh_public_key": "ssh-ed25519 AAAA"}));
    assert_eq!(
        summary(&t.node_instances(&inputs)),
        [
            ("simple_node".into(), 0, names(&[])),
            ("my_block_storage".into(), 0, names(&["simple_node"])),
        ]
    );
}

#[test]
fn required_by_is_sorted_without_duplicates_and_ignores_requirements_on_types() {
    let t = parse(
        "tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    zeta:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: server
        - dependency: server
    alpha:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host:
            node: server
            relationship: HostedOn
        - dependency:
            node: tosca.nodes.Compute
    server:
      type: tosca.nodes.Compute
",
    );
    let inputs = resolved(&t, json!({}));
    let server = t
        .node_instances(&inputs)
        .into_iter()
        .find(|i| i.node_name == "server")
        .unwrap();
    assert_eq!(server.required_by, names(&["alpha", "zeta"]));
}

#[test]
fn every_instance_of_a_scaled_node_is_required_by_the_same_nodes() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let inputs = resolved(&t, json!({"admin_token": "s3cr3t-token", "wn_num": 3}));
    let workers: Vec<NodeInstance> = t
        .node_instances(&inputs)
        .into_iter()
        .filter(|i| i.node_name == "k8s_wn_server")
        .collect();
    assert_eq!(workers.len(), 3);
    assert!(workers.iter().all(|w| w.required_by == names(&["k8s_wn"])));
    assert!(workers
        .iter()
        .all(|w| w.node_type == "tosca.nodes.indigo.Compute"));
}

#[test]
fn a_count_input_above_the_limit_is_a_violation_at_that_input() {
    let t = scalable("{count: {get_input: n}}");
    let max = tosca::instances::MAX_INSTANCES;
    assert_eq!(max, 1000);
    let inputs = resolved(&t, json!({ "n": max }));
    assert_eq!(t.node_instances(&inputs).len(), 1000);
    for n in [
        json!(max + 1),
        json!(4_000_000_000_u64),
        json!("99999999999"),
    ] {
        let violations = t.validate_inputs(&obj(json!({ "n": n }))).unwrap_err();
        assert_eq!(common::pointers(&violations), ["/n"], "{n}");
        assert!(
            violations[0]
                .message
                .starts_with("input 'n' would give node 'vm' ")
                && violations[0].message.ends_with("instances, more than 1000"),
            "{}",
            violations[0].message
        );
    }
}

#[test]
fn a_literal_count_above_the_limit_is_refused_where_it_is_written() {
    for properties in ["{count: 1001}", "{default_instances: \"5000\"}"] {
        let src = format!(
            "tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {properties}
"
        );
        let err = Template::parse(&src).unwrap_err();
        assert_eq!(err.line, Some(8), "{err}");
        assert!(err.message.contains("more than 1000"), "{err}");
    }
}

#[test]
fn instances_are_never_more_than_the_limit_even_without_validation() {
    let t = scalable("{count: {get_input: n}}");
    let unchecked = ResolvedInputs(obj(json!({"n": 5_000_000_000_u64})));
    assert_eq!(t.instance_count("vm", &unchecked), 1000);
    assert_eq!(t.node_instances(&unchecked).len(), 1000);
}
