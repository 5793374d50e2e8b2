//! Validating a whole set of inputs: required inputs without a default, undeclared
//! inputs, defaults applied, and every violation reported at once, each with a
//! JSON pointer into the submitted inputs object (the API prefixes it with
//! `/template_inputs`).

mod common;

use common::{obj, one_input, parse, parse_fixture, pointers, validate_x, with_inputs};
use serde_json::json;

#[test]
fn defaults_fill_in_what_is_not_given_and_given_values_replace_them() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let resolved = t
        .validate_inputs(&obj(json!({"admin_token": "s3cr3t-token", "wn_num": "5"})))
        .unwrap();
    assert_eq!(
        resolved.values(),
        &obj(json!({
            "wn_num": 5,
            "fe_cpus": 2,
            "fe_mem": "4 GB",
            "wn_cpus": 4,
            "wn_mem": "8 GB",
            "admin_token": "s3cr3t-token",
            "kube_version": "1.28.2",
        })),
        "every declared input, in declaration order, normalised"
    );
}

#[test]
fn a_required_input_without_a_default_must_be_given() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let violations = t.validate_inputs(&obj(json!({}))).unwrap_err();
    assert_eq!(pointers(&violations), ["/admin_token"]);
    assert_eq!(
        violations[0].message,
        "input 'admin_token' is required and has no default"
    );
}

#[test]
fn an_optional_input_without_a_default_may_be_left_out_and_stays_out() {
    let t = parse_fixture("versions/tosca_1_3.yaml");
    let resolved = t.validate_inputs(&obj(json!({}))).unwrap();
    assert!(!resolved.values().contains_key("maintenance_start"));
    assert_eq!(resolved.values()["workers"], json!(4));
    let resolved = t
        .validate_inputs(&obj(json!({"maintenance_start": "2030-06-01T22:00:00Z"})))
        .unwrap();
    assert_eq!(
        resolved.values()["maintenance_start"],
        json!("2030-06-01T22:00:00Z")
    );
}

#[test]
fn required_defaults_to_true_and_a_default_satisfies_it() {
    let t = one_input("type: integer\n");
    assert!(t.inputs()[0].required);
    assert_eq!(
        pointers(&t.validate_inputs(&obj(json!({}))).unwrap_err()),
        ["/x"]
    );
    let t = one_input("type: integer\ndefault: 3\n");
    assert_eq!(
        t.validate_inputs(&obj(json!({}))).unwrap().values()["x"],
        json!(3)
    );
    let t = one_input("type: integer\nrequired: false\ndefault: 3\n");
    assert!(!t.inputs()[0].required);
    assert_eq!(
        t.validate_inputs(&obj(json!({}))).unwrap().values()["x"],
        json!(3)
    );
}

#[test]
fn a_null_default_is_no_default() {
    let t = one_input("type: integer\ndefault: ~\n");
    assert_eq!(t.inputs()[0].default, None);
    assert!(t.validate_inputs(&obj(json!({}))).is_err());
}

#[test]
fn an_undeclared_input_is_a_violation_at_its_own_pointer() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let violations = t
        .validate_inputs(&obj(json!({"admin_token": "s3cr3t-token", "wn_nmu": 3})))
        .unwrap_err();
    assert_eq!(pointers(&violations), ["/wn_nmu"]);
    assert_eq!(
        violations[0].message,
        "input 'wn_nmu' is not declared by the template"
    );
}

#[test]
fn pointers_escape_slashes_and_tildes_in_input_names() {
    let t = parse(&with_inputs(
        "\"a/b\":\n  type: integer\n\"c~d\":\n  type: integer\n",
    ));
    let violations = t
        .validate_inputs(&obj(json!({"a/b": "x", "c~d": "y", "e/~f": 1})))
        .unwrap_err();
    assert_eq!(pointers(&violations), ["/e~1~0f", "/a~1b", "/c~0d"]);
}

#[test]
fn every_violation_is_reported_at_once_in_a_stable_order() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let violations = t
        .validate_inputs(&obj(json!({
            "kube_version": "1.20",
            "bogus": 1,
            "wn_num": 50,
            "fe_cpus": "two",
            "wn_mem": "8 GiBs",
        })))
        .unwrap_err();
    // Undeclared inputs first, then the declared ones in declaration order.
    assert_eq!(
        pointers(&violations),
        [
            "/bogus",
            "/wn_num",
            "/fe_cpus",
            "/wn_mem",
            "/admin_token",
            "/kube_version"
        ]
    );
    let messages: Vec<&str> = violations.iter().map(|v| v.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "input 'bogus' is not declared by the template",
            "input 'wn_num' must be in the range [0, 20], got 50",
            "input 'fe_cpus' must be an integer, got \"two\"",
            "input 'wn_mem' 'GiBs' is not a unit of size (known: b, kb, kib, mb, mib, gb, gib, tb, tib)",
            "input 'admin_token' is required and has no default",
            "input 'kube_version' must be greater than or equal to 1.26, got 1.20",
        ]
    );
}

#[test]
fn several_violations_of_one_value_and_its_entries_are_all_reported() {
    let t = one_input(
        "type: list\nentry_schema:\n  type: integer\n  constraints:\n    - less_than: 10\nconstraints:\n  - max_length: 2\n",
    );
    let violations = validate_x(&t, json!([1, 20, "x", 30])).unwrap_err();
    assert_eq!(pointers(&violations), ["/x", "/x/1", "/x/2", "/x/3"]);
    assert!(violations[0].message.contains("at most 2"));
}

#[test]
fn a_template_without_inputs_accepts_only_no_inputs() {
    let t = parse_fixture("versions/tosca_1_0.yaml");
    assert!(t.validate_inputs(&obj(json!({}))).is_ok());
    let t = parse("tosca_definitions_version: tosca_simple_yaml_1_3\n");
    assert!(t
        .validate_inputs(&obj(json!({})))
        .unwrap()
        .values()
        .is_empty());
    assert_eq!(
        pointers(
            &t.validate_inputs(&obj(json!({"a": 1, "b": 2})))
                .unwrap_err()
        ),
        ["/a", "/b"]
    );
}

#[test]
fn defaults_are_normalised_like_given_values() {
    let t = one_input("type: version\ndefault: 1.2\n");
    assert_eq!(
        t.validate_inputs(&obj(json!({}))).unwrap().values()["x"],
        json!("1.2")
    );
    let t = one_input("type: float\ndefault: 2\n");
    let v = t.validate_inputs(&obj(json!({}))).unwrap().values()["x"].clone();
    assert!(v.is_f64(), "{v}");
}

#[test]
fn input_definitions_keep_their_description_and_position() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let wn_num = &t.inputs()[0];
    assert_eq!(wn_num.name, "wn_num");
    assert_eq!(
        wn_num.description.as_deref(),
        Some("Number of worker nodes")
    );
    assert_eq!((wn_num.pos.line, wn_num.pos.column), (29, 5));
    assert_eq!(wn_num.schema.type_name, "integer");
    assert_eq!(wn_num.default, Some(json!(2)));
    let names: Vec<&str> = t.inputs().iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "wn_num",
            "fe_cpus",
            "fe_mem",
            "wn_cpus",
            "wn_mem",
            "admin_token",
            "kube_version"
        ]
    );
}

#[test]
fn the_single_vm_fixture_validates_realistic_dashboard_inputs() {
    let t = parse_fixture("single_vm.yaml");
    let resolved = t
        .validate_inputs(&obj(json!({
            "num_cpus": "4",
            "mem_size": "8 GB",
            "os_distribution": "centos",
            "storage_size": "100 GB",
            "mount_path": "/mnt/data",
            "ssh_public_key": "ssh-ed25519 AAAA user@host",
            "ports": {"http": {"protocol": "tcp", "source": 80}},
        })))
        .unwrap();
    assert_eq!(resolved.values()["num_cpus"], json!(4));
    assert_eq!(resolved.values()["os_version"], json!("22.04"));
    let violations = t
        .validate_inputs(&obj(json!({
            "num_cpus": 3,
            "mem_size": "3 GB",
            "storage_size": "2 TB",
            "mount_path": "relative/path",
        })))
        .unwrap_err();
    assert_eq!(
        pointers(&violations),
        [
            "/num_cpus",
            "/mem_size",
            "/storage_size",
            "/mount_path",
            "/ssh_public_key"
        ]
    );
}
