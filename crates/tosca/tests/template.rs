//! The template model: versions, metadata, imports, node templates, requirements,
//! outputs and policies, read from realistic fixtures.

mod common;

use std::collections::HashMap;

use common::{fixture, imports, parse, parse_fixture, CUSTOM_TYPES_URL, GATEWAY_TYPES_URL};
use serde_json::json;
use tosca::{imports_of, ErrorKind, Requirement, Template};

const VERSIONS: [(&str, &str); 4] = [
    ("versions/tosca_1_0.yaml", "tosca_simple_yaml_1_0"),
    ("versions/tosca_1_1.yaml", "tosca_simple_yaml_1_1"),
    ("versions/tosca_1_2.yaml", "tosca_simple_yaml_1_2"),
    ("versions/tosca_1_3.yaml", "tosca_simple_yaml_1_3"),
];

#[test]
fn a_template_of_each_tosca_version_from_1_0_to_1_3_is_accepted() {
    for (file, version) in VERSIONS {
        let t = parse_fixture(file);
        assert_eq!(t.tosca_definitions_version(), version, "{file}");
    }
}

#[test]
fn the_supported_versions_are_exactly_1_0_to_1_3() {
    assert_eq!(
        tosca::template::SUPPORTED_VERSIONS,
        [
            "tosca_simple_yaml_1_0",
            "tosca_simple_yaml_1_1",
            "tosca_simple_yaml_1_2",
            "tosca_simple_yaml_1_3"
        ]
    );
}

#[test]
fn unknown_versions_are_rejected_at_the_version_value() {
    for bad in [
        "tosca_simple_yaml_1_4",
        "tosca_simple_yaml_2_0",
        "tosca_2_0",
        "tosca_simple_yaml_1_0 ",
        "TOSCA_SIMPLE_YAML_1_0",
        "",
    ] {
        let src = format!("description: x\ntosca_definitions_version: \"{bad}\"\n");
        let err = Template::parse(&src).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Tosca, "{bad:?}");
        assert_eq!((err.line, err.column), (Some(2), Some(28)), "{bad:?}");
        assert!(
            err.message
                .contains("unsupported tosca_definitions_version"),
            "{err}"
        );
        assert!(err.message.contains("tosca_simple_yaml_1_3"), "{err}");
    }
}

#[test]
fn a_version_that_is_not_a_string_is_rejected() {
    let err = Template::parse("tosca_definitions_version: 1.3\n").unwrap_err();
    assert_eq!((err.line, err.column), (Some(1), Some(28)));
    assert!(err.message.contains("must be a string"), "{err}");
}

#[test]
fn a_template_without_a_version_is_rejected() {
    let err = Template::parse("description: nothing else\n").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Tosca);
    assert!(err
        .message
        .contains("'tosca_definitions_version' is missing"));
    assert_eq!((err.line, err.column), (Some(1), Some(1)));
}

#[test]
fn metadata_fields_are_read_from_the_metadata_section() {
    let t = parse_fixture("single_vm.yaml");
    assert_eq!(t.template_name().as_deref(), Some("Virtual machine"));
    assert_eq!(t.template_version().as_deref(), Some("2.1.0"));
    assert_eq!(t.target_provider_type().as_deref(), Some("openstack"));
    assert_eq!(t.metadata()["template_author"], json!("DataCloud team"));
    assert_eq!(t.metadata()["tag_color"], json!("light-blue"));
    let keys: Vec<&str> = t.metadata().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "template_name",
            "template_version",
            "template_author",
            "display_name",
            "icon",
            "tag",
            "tag_color",
            "target_provider_type"
        ],
        "metadata keeps the document order"
    );
}

#[test]
fn tosca_1_0_metadata_at_the_top_level_is_read_too() {
    let t = parse_fixture("versions/tosca_1_0.yaml");
    assert!(t.metadata().is_empty());
    assert_eq!(t.template_name().as_deref(), Some("legacy-web-server"));
    assert_eq!(t.template_version().as_deref(), Some("1.0.0"));
    assert_eq!(t.target_provider_type(), None);
}

#[test]
fn the_metadata_section_wins_over_top_level_keys() {
    let t = parse(
        "tosca_definitions_version: tosca_simple_yaml_1_0\ntemplate_name: top\nmetadata:\n  template_name: meta\n",
    );
    assert_eq!(t.template_name().as_deref(), Some("meta"));
}

#[test]
fn numeric_metadata_values_are_read_as_text_and_blank_ones_as_absent() {
    let t = parse(
        "tosca_definitions_version: tosca_simple_yaml_1_3\nmetadata:\n  template_version: 2\n  template_name: \"  \"\n",
    );
    assert_eq!(t.template_version().as_deref(), Some("2"));
    assert_eq!(t.template_name(), None);
}

#[test]
fn metadata_that_is_not_a_mapping_is_rejected_where_it_is() {
    let err =
        Template::parse("tosca_definitions_version: tosca_simple_yaml_1_3\nmetadata: [a, b]\n")
            .unwrap_err();
    assert_eq!((err.line, err.column), (Some(2), Some(11)));
    assert!(
        err.message.contains("'metadata' must be a mapping"),
        "{err}"
    );
}

#[test]
fn an_empty_metadata_section_is_no_metadata() {
    let t = parse("tosca_definitions_version: tosca_simple_yaml_1_3\nmetadata:\n");
    assert!(t.metadata().is_empty());
    assert_eq!(t.template_name(), None);
}

#[test]
fn the_description_is_read_including_folded_text() {
    let t = parse_fixture("single_vm.yaml");
    assert_eq!(
        t.description(),
        Some(
            "Launch a single virtual machine with an attached block storage volume, mounted at a user-chosen path.\n"
        )
    );
}

#[test]
fn imports_are_listed_in_every_form_with_their_positions() {
    let src = "tosca_definitions_version: tosca_simple_yaml_1_3
imports:
  - https://example.org/a.yaml
  - named: https://example.org/b.yaml
  - long:
      file: https://example.org/c.yaml
      repository: r
  - file: https://example.org/d.yaml
    namespace_prefix: d
";
    let list = imports_of(src).unwrap();
    let seen: Vec<(&str, Option<&str>, usize, usize)> = list
        .iter()
        .map(|i| (i.url.as_str(), i.name.as_deref(), i.pos.line, i.pos.column))
        .collect();
    assert_eq!(
        seen,
        [
            ("https://example.org/a.yaml", None, 3, 5),
            ("https://example.org/b.yaml", Some("named"), 4, 5),
            ("https://example.org/c.yaml", Some("long"), 5, 5),
            ("https://example.org/d.yaml", None, 8, 5),
        ]
    );
}

#[test]
fn a_template_lists_only_its_own_imports_not_transitive_ones() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let urls: Vec<&str> = t.imports().iter().map(|i| i.url.as_str()).collect();
    assert_eq!(urls, [CUSTOM_TYPES_URL]);
    assert_eq!(t.imports()[0].name.as_deref(), Some("indigo_custom_types"));
}

#[test]
fn no_imports_and_an_empty_imports_section_are_the_same() {
    let base = "tosca_definitions_version: tosca_simple_yaml_1_3\n";
    assert!(imports_of(base).unwrap().is_empty());
    assert!(imports_of(&format!("{base}imports:\n")).unwrap().is_empty());
    assert!(imports_of(&format!("{base}imports: []\n"))
        .unwrap()
        .is_empty());
}

#[test]
fn malformed_imports_are_rejected_where_they_are() {
    let base = "tosca_definitions_version: tosca_simple_yaml_1_3\n";
    let cases = [
        (
            "imports: https://x/a.yaml\n",
            (2, 10),
            "'imports' must be a list",
        ),
        ("imports:\n  - 42\n", (3, 5), "an import must be"),
        ("imports:\n  - \"  \"\n", (3, 5), "URL is empty"),
        ("imports:\n  - a: 3\n", (3, 8), "must be a URL or a map"),
        (
            "imports:\n  - a: {repository: r}\n",
            (3, 8),
            "has no 'file'",
        ),
        (
            "imports:\n  - file: [x]\n",
            (3, 5),
            "'file' must be a string",
        ),
    ];
    for (body, (line, column), message) in cases {
        let err = imports_of(&format!("{base}{body}")).unwrap_err();
        assert_eq!((err.line, err.column), (Some(line), Some(column)), "{body}");
        assert!(err.message.contains(message), "{body}: {err}");
        let err = Template::parse(&format!("{base}{body}")).unwrap_err();
        assert_eq!((err.line, err.column), (Some(line), Some(column)), "{body}");
    }
}

#[test]
fn an_import_that_was_not_provided_is_a_missing_import_naming_the_url() {
    let err = Template::parse(&fixture("kubernetes_cluster.yaml")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::MissingImport);
    assert_eq!((err.line, err.column), (Some(4), Some(5)));
    assert!(err.message.contains(CUSTOM_TYPES_URL), "{err}");
}

#[test]
fn a_missing_transitive_import_is_reported_at_the_top_level_import() {
    let mut only_custom = HashMap::new();
    only_custom.insert(
        CUSTOM_TYPES_URL.to_string(),
        fixture("imports/indigo_custom_types.yaml"),
    );
    let err = Template::parse_with_imports(&fixture("kubernetes_cluster.yaml"), &only_custom)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::MissingImport);
    // Located at the template's own import, with the inner position in the message.
    assert_eq!((err.line, err.column), (Some(4), Some(5)), "{err}");
    assert!(
        err.message.starts_with(&format!(
            "in import '{CUSTOM_TYPES_URL}': line 6, column 5: import '{}' was not provided",
            common::BASE_TYPES_URL
        )),
        "{err}"
    );
}

#[test]
fn a_problem_in_an_imported_type_is_reported_at_the_import_naming_the_url() {
    let mut broken = imports();
    broken.insert(
        GATEWAY_TYPES_URL.to_string(),
        fixture("imports/gateway_types.yaml")
            .replace("tosca.nodes.Container.Application", "example.nodes.Missing"),
    );
    let err =
        Template::parse_with_imports(&fixture("versions/tosca_1_2.yaml"), &broken).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Tosca);
    assert_eq!((err.line, err.column), (Some(9), Some(5)), "{err}");
    assert_eq!(
        err.message,
        format!(
            "in import '{GATEWAY_TYPES_URL}': line 5, column 19: type 'example.nodes.Gateway' \
             is derived from unknown type 'example.nodes.Missing'"
        )
    );
}

#[test]
fn a_problem_in_a_transitively_imported_type_names_every_import_on_the_way() {
    let mut broken = imports();
    broken.insert(
        common::BASE_TYPES_URL.to_string(),
        fixture("imports/indigo_base_types.yaml").replace(
            "derived_from: tosca.capabilities.Scalable",
            "derived_from: tosca.capabilities.Scalabel",
        ),
    );
    let err =
        Template::parse_with_imports(&fixture("kubernetes_cluster.yaml"), &broken).unwrap_err();
    assert_eq!((err.line, err.column), (Some(4), Some(5)), "{err}");
    assert!(
        err.message.starts_with(&format!(
            "in import '{CUSTOM_TYPES_URL}': line 6, column 5: in import '{}': line 7, column 19: \
             type 'tosca.capabilities.indigo.Scalable' is derived from unknown type",
            common::BASE_TYPES_URL
        )),
        "{err}"
    );
}

#[test]
fn an_import_that_is_not_yaml_is_reported_at_the_import_naming_the_url() {
    let mut broken = imports();
    broken.insert(GATEWAY_TYPES_URL.to_string(), "node_types: [a\n".into());
    let err =
        Template::parse_with_imports(&fixture("versions/tosca_1_2.yaml"), &broken).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Yaml);
    assert_eq!((err.line, err.column), (Some(9), Some(5)));
    assert!(err.message.contains(GATEWAY_TYPES_URL), "{err}");
}

#[test]
fn an_import_with_a_bad_type_section_is_reported_at_the_import() {
    let mut broken = imports();
    broken.insert(
        GATEWAY_TYPES_URL.to_string(),
        "tosca_definitions_version: tosca_simple_yaml_1_2\nnode_types: [a]\n".into(),
    );
    let err =
        Template::parse_with_imports(&fixture("versions/tosca_1_2.yaml"), &broken).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Tosca);
    assert_eq!((err.line, err.column), (Some(9), Some(5)));
    assert!(
        err.message.contains("'node_types' must be a mapping"),
        "{err}"
    );
    assert!(err.message.contains("line 2, column 13"), "{err}");
}

#[test]
fn node_templates_keep_document_order_and_resolve_short_type_names() {
    let t = parse_fixture("versions/tosca_1_1.yaml");
    let nodes: Vec<(&str, &str)> = t
        .node_templates()
        .iter()
        .map(|n| (n.name.as_str(), n.node_type.as_str()))
        .collect();
    assert_eq!(
        nodes,
        [
            ("database", "tosca.nodes.Database"),
            ("dbms", "tosca.nodes.DBMS"),
            ("db_server", "tosca.nodes.Compute"),
        ]
    );
    assert_eq!(t.node_template("dbms").unwrap().pos.line, 28);
    assert!(t.node_template("nope").is_none());
}

#[test]
fn node_properties_and_capabilities_are_kept_as_json_with_functions_unevaluated() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let master = t.node_template("k8s_master").unwrap();
    assert_eq!(master.properties["admin_username"], json!("kubeuser"));
    assert_eq!(
        master.properties["admin_token"],
        json!({"get_input": "admin_token"})
    );
    let wn = t.node_template("k8s_wn_server").unwrap();
    assert_eq!(
        wn.capabilities["scalable"],
        json!({"properties": {"count": {"get_input": "wn_num"}}})
    );
    assert_eq!(
        wn.capabilities["os"]["properties"]["version"],
        json!("22.04")
    );
}

#[test]
fn requirements_in_short_and_long_form_are_read_in_order() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let wn = t.node_template("k8s_wn").unwrap();
    assert_eq!(
        wn.requirements,
        [
            Requirement {
                name: "host".into(),
                node: Some("k8s_wn_server".into()),
                capability: None,
                relationship: None,
            },
            Requirement {
                name: "dependency".into(),
                node: Some("k8s_master".into()),
                capability: None,
                relationship: Some("tosca.relationships.DependsOn".into()),
            },
        ]
    );
    let chart = t.node_template("jupyterhub").unwrap();
    assert_eq!(
        chart.requirements[0].capability.as_deref(),
        Some("tosca.capabilities.Container")
    );
}

#[test]
fn a_relationship_given_as_a_map_is_read_by_its_type() {
    let t = parse_fixture("single_vm.yaml");
    let vm = t.node_template("simple_node").unwrap();
    assert_eq!(
        vm.requirements,
        [Requirement {
            name: "local_storage".into(),
            node: Some("my_block_storage".into()),
            capability: Some("tosca.capabilities.Attachment".into()),
            relationship: Some("tosca.relationships.AttachesTo".into()),
        }]
    );
}

#[test]
fn a_requirement_may_name_a_node_type_instead_of_a_template() {
    let t = parse(
        "tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host:
            node: tosca.nodes.Compute
",
    );
    assert_eq!(
        t.node_template("app").unwrap().requirements[0]
            .node
            .as_deref(),
        Some("tosca.nodes.Compute")
    );
}

#[test]
fn a_requirement_naming_an_unknown_node_is_rejected_at_the_name() {
    let src = "tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: server
        - dependency:
            node: ghost
    server:
      type: Compute
";
    let err = Template::parse(src).unwrap_err();
    assert_eq!((err.line, err.column), (Some(9), Some(19)));
    assert!(err.message.contains("unknown node 'ghost'"), "{err}");
    assert!(err.message.contains("'dependency' of node 'app'"), "{err}");
}

#[test]
fn malformed_node_templates_are_rejected_where_they_are() {
    let head =
        "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n";
    let cases = [
        ("    a: 3\n", (4, 8), "must be a mapping"),
        ("    a:\n      properties: {}\n", (4, 5), "has no 'type'"),
        ("    a:\n      type: [x]\n", (5, 13), "must be a name"),
        (
            "    a:\n      type: my.Unknown\n",
            (5, 13),
            "unknown node type 'my.Unknown'",
        ),
        (
            "    a:\n      type: Compute\n      properties: [1]\n",
            (6, 19),
            "'properties' of node template 'a' must be a mapping",
        ),
        (
            "    a:\n      type: Compute\n      capabilities: 3\n",
            (6, 21),
            "'capabilities' of node template 'a' must be a mapping",
        ),
        (
            "    a:\n      type: Compute\n      requirements: {host: b}\n",
            (6, 21),
            "must be a list",
        ),
        (
            "    a:\n      type: Compute\n      requirements:\n        - {host: a, x: a}\n",
            (7, 11),
            "single 'name: target'",
        ),
        (
            "    a:\n      type: Compute\n      requirements:\n        - host: [a]\n",
            (7, 17),
            "must name a node or be a map",
        ),
    ];
    for (body, (line, column), message) in cases {
        let err = Template::parse(&format!("{head}{body}")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Tosca, "{body}");
        assert_eq!(
            (err.line, err.column),
            (Some(line), Some(column)),
            "{body}: {err}"
        );
        assert!(err.message.contains(message), "{body}: {err}");
    }
}

#[test]
fn outputs_keep_their_description_and_value_expression() {
    let t = parse_fixture("single_vm.yaml");
    let names: Vec<&str> = t.outputs().iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["node_ip", "node_creds"]);
    assert_eq!(
        t.outputs()[0].description.as_deref(),
        Some("Public IP address of the VM")
    );
    assert_eq!(
        t.outputs()[0].value,
        json!({"get_attribute": ["simple_node", "public_address", 0]})
    );
    assert_eq!(t.outputs()[1].description, None);
}

#[test]
fn policies_are_kept_as_written() {
    let t = parse_fixture("single_vm.yaml");
    assert_eq!(
        t.policies(),
        [json!({"deploy_on_cloud": {
            "type": "tosca.policies.indigo.SlaPlacement",
            "properties": {"sla_id": "5e1d5a8e-sla"},
            "targets": ["simple_node"]
        }})]
    );
    let err = Template::parse(
        "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  policies: {a: 1}\n",
    )
    .unwrap_err();
    assert_eq!((err.line, err.column), (Some(3), Some(13)));
}

#[test]
fn get_input_of_an_undeclared_input_is_rejected_wherever_it_is() {
    let head = "tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    known: {type: string, default: a}
";
    let cases = [
        (
            "  node_templates:\n    n:\n      type: Compute\n      properties:\n        a: { get_input: unknown }\n",
            (9, 25),
        ),
        (
            "  node_templates:\n    n:\n      type: Compute\n      requirements:\n        - host:\n            node: m\n            relationship:\n              type: HostedOn\n              properties: {p: {get_input: [unknown, 0]}}\n    m:\n      type: Compute\n",
            (13, 43),
        ),
        (
            "  outputs:\n    o:\n      value: { concat: [a, { get_input: unknown }] }\n",
            (7, 41),
        ),
        (
            "  policies:\n    - p:\n        type: tosca.policies.Scaling\n        properties: {n: {get_input: unknown}}\n",
            (8, 37),
        ),
    ];
    for (body, (line, column)) in cases {
        let err = Template::parse(&format!("{head}{body}")).unwrap_err();
        assert!(
            err.message.contains("undeclared input 'unknown'"),
            "{body}: {err}"
        );
        assert_eq!(
            (err.line, err.column),
            (Some(line), Some(column)),
            "{body}: {err}"
        );
    }
    // A declared one is fine.
    parse(&format!(
        "{head}  node_templates:\n    n:\n      type: Compute\n      properties:\n        a: {{ get_input: known }}\n"
    ));
}

#[test]
fn every_fixture_that_should_parse_does() {
    for name in [
        "single_vm.yaml",
        "kubernetes_cluster.yaml",
        "every_input_type.yaml",
        "every_constraint.yaml",
        "versions/tosca_1_0.yaml",
        "versions/tosca_1_1.yaml",
        "versions/tosca_1_2.yaml",
        "versions/tosca_1_3.yaml",
    ] {
        parse_fixture(name);
    }
}

#[test]
fn sections_of_the_wrong_shape_are_rejected() {
    let head = "tosca_definitions_version: tosca_simple_yaml_1_3\n";
    let cases = [
        (
            "topology_template: [a]\n",
            (2, 20),
            "'topology_template' must be a mapping",
        ),
        (
            "topology_template:\n  inputs: [a]\n",
            (3, 11),
            "'inputs' must be a mapping",
        ),
        (
            "topology_template:\n  node_templates: 3\n",
            (3, 19),
            "'node_templates' must be a mapping",
        ),
        (
            "topology_template:\n  outputs: [a]\n",
            (3, 12),
            "'outputs' must be a mapping",
        ),
        (
            "node_types: [a]\n",
            (2, 13),
            "'node_types' must be a mapping",
        ),
        ("data_types: 3\n", (2, 13), "'data_types' must be a mapping"),
    ];
    for (body, (line, column), message) in cases {
        let err = Template::parse(&format!("{head}{body}")).unwrap_err();
        assert_eq!(
            (err.line, err.column),
            (Some(line), Some(column)),
            "{body}: {err}"
        );
        assert!(err.message.contains(message), "{body}: {err}");
    }
}

#[test]
fn empty_sections_are_accepted_as_empty() {
    let t = parse(
        "tosca_definitions_version: tosca_simple_yaml_1_3\nnode_types:\ntopology_template:\n  inputs:\n  node_templates:\n  outputs:\n  policies:\n",
    );
    assert!(t.inputs().is_empty());
    assert!(t.node_templates().is_empty());
    assert!(t.outputs().is_empty());
    assert!(t.policies().is_empty());
}
