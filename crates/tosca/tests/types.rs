//! The type hierarchy: normative types built in, template and imported types
//! extending them through `derived_from`, cycles and unknown parents refused.

mod common;

use common::{imports, parse_fixture};
use tosca::types::{Family, Registry, TypeDef};
use tosca::{ErrorKind, Template};

#[test]
fn a_chain_runs_from_a_template_type_through_imported_types_to_the_normative_root() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    assert_eq!(
        t.ancestors("datacloud.nodes.GpuWorkerNode"),
        [
            "datacloud.nodes.GpuWorkerNode",
            "tosca.nodes.indigo.LRMS.WorkerNode.Kubernetes",
            "tosca.nodes.indigo.LRMS.WorkerNode",
            "tosca.nodes.SoftwareComponent",
            "tosca.nodes.Root",
        ]
    );
}

#[test]
fn a_chain_crosses_two_levels_of_imports_to_tosca_nodes_compute() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    assert_eq!(
        t.ancestors("tosca.nodes.indigo.Compute"),
        [
            "tosca.nodes.indigo.Compute",
            "tosca.nodes.indigo.MonitoredCompute",
            "tosca.nodes.Compute",
            "tosca.nodes.Abstract.Compute",
            "tosca.nodes.Root",
        ]
    );
    assert!(t.is_derived_from("tosca.nodes.indigo.Compute", "tosca.nodes.Compute"));
    assert!(t.is_derived_from("tosca.nodes.indigo.Compute", "tosca.nodes.Abstract.Compute"));
    assert!(!t.is_derived_from(
        "tosca.nodes.indigo.Compute",
        "tosca.nodes.SoftwareComponent"
    ));
    assert!(!t.is_derived_from("tosca.nodes.Compute", "tosca.nodes.indigo.Compute"));
}

#[test]
fn is_derived_from_accepts_short_and_prefixed_normative_names() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    for ancestor in ["Compute", "tosca:Compute", "tosca.nodes.Compute", "Root"] {
        assert!(
            t.is_derived_from("tosca.nodes.indigo.Compute", ancestor),
            "{ancestor}"
        );
    }
    assert!(t.is_derived_from("Compute", "tosca.nodes.Root"));
    assert!(!t.is_derived_from("tosca.nodes.indigo.Compute", "Computer"));
}

#[test]
fn a_type_is_derived_from_itself_but_an_unknown_type_from_nothing_normative() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    assert!(t.is_derived_from(
        "datacloud.nodes.GpuWorkerNode",
        "datacloud.nodes.GpuWorkerNode"
    ));
    assert!(!t.is_derived_from("datacloud.nodes.Nothing", "tosca.nodes.Root"));
    assert_eq!(
        t.ancestors("datacloud.nodes.Nothing"),
        ["datacloud.nodes.Nothing"]
    );
}

#[test]
fn compute_nodes_are_those_whose_type_derives_from_tosca_nodes_compute() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let compute: Vec<&str> = t
        .node_templates()
        .iter()
        .filter(|n| t.is_compute_node(&n.name))
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(compute, ["k8s_master_server", "k8s_wn_server"]);
    assert!(!t.is_compute_node("no_such_node"));
    let t = parse_fixture("versions/tosca_1_1.yaml");
    assert!(t.is_compute_node("db_server"), "short name 'Compute'");
    assert!(!t.is_compute_node("dbms"));
}

#[test]
fn the_normative_node_types_form_the_tosca_hierarchy() {
    let r = Registry::normative();
    let cases = [
        ("tosca.nodes.Compute", "tosca.nodes.Abstract.Compute"),
        ("tosca.nodes.WebServer", "tosca.nodes.SoftwareComponent"),
        ("tosca.nodes.DBMS", "tosca.nodes.SoftwareComponent"),
        (
            "tosca.nodes.Container.Runtime",
            "tosca.nodes.SoftwareComponent",
        ),
        (
            "tosca.nodes.Storage.BlockStorage",
            "tosca.nodes.Abstract.Storage",
        ),
        (
            "tosca.nodes.Storage.ObjectStorage",
            "tosca.nodes.Abstract.Storage",
        ),
        ("tosca.nodes.BlockStorage", "tosca.nodes.Root"),
        ("tosca.nodes.network.Port", "tosca.nodes.Root"),
        ("tosca.nodes.LoadBalancer", "tosca.nodes.Root"),
    ];
    for (name, parent) in cases {
        assert_eq!(r.ancestors(Family::Node, name)[1], parent, "{name}");
        assert!(
            r.is_derived_from(Family::Node, name, "tosca.nodes.Root"),
            "{name}"
        );
        assert!(!r.is_custom(Family::Node, name), "{name}");
    }
    assert!(!r.is_derived_from(
        Family::Node,
        "tosca.nodes.Database",
        "tosca.nodes.SoftwareComponent"
    ));
    assert!(!r.is_derived_from(
        Family::Node,
        "tosca.nodes.WebApplication",
        "tosca.nodes.WebServer"
    ));
}

#[test]
fn each_family_has_its_own_namespace_and_short_names() {
    let r = Registry::normative();
    assert_eq!(
        r.resolve(Family::Capability, "Scalable"),
        "tosca.capabilities.Scalable"
    );
    assert_eq!(
        r.resolve(Family::Relationship, "tosca:HostedOn"),
        "tosca.relationships.HostedOn"
    );
    assert_eq!(
        r.resolve(Family::Data, "Credential"),
        "tosca.datatypes.Credential"
    );
    assert_eq!(
        r.resolve(Family::Policy, "Placement"),
        "tosca.policies.Placement"
    );
    assert_eq!(
        r.resolve(Family::Node, "Scalable"),
        "Scalable",
        "not a node type"
    );
    assert!(!r.contains(Family::Node, "tosca.capabilities.Root"));
    assert!(r.contains(Family::Capability, "tosca.capabilities.Root"));
    assert!(r.is_derived_from(
        Family::Capability,
        "tosca.capabilities.Compute",
        "Container"
    ));
    assert!(r.is_derived_from(
        Family::Relationship,
        "tosca.relationships.RoutesTo",
        "ConnectsTo"
    ));
    assert!(r.is_derived_from(
        Family::Relationship,
        "tosca.relationships.network.LinksTo",
        "DependsOn"
    ));
}

#[test]
fn primitive_types_count_as_data_types_and_normative_ones_derive_from_them() {
    let r = Registry::normative();
    for p in tosca::types::PRIMITIVES {
        assert!(r.contains(Family::Data, p), "{p}");
        assert_eq!(r.resolve(Family::Data, p), *p);
    }
    assert!(!r.contains(Family::Node, "string"));
    assert_eq!(
        r.ancestors(Family::Data, "tosca.datatypes.network.PortDef"),
        ["tosca.datatypes.network.PortDef", "integer"]
    );
}

#[test]
fn imported_capability_and_policy_types_extend_the_normative_ones() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let r = t.registry();
    assert!(r.is_derived_from(
        Family::Capability,
        "tosca.capabilities.indigo.Scalable",
        "tosca.capabilities.Scalable"
    ));
    assert!(r.is_derived_from(
        Family::Capability,
        "tosca.capabilities.indigo.Endpoint",
        "tosca.capabilities.Root"
    ));
    assert!(r.is_derived_from(
        Family::Policy,
        "tosca.policies.indigo.SlaPlacement",
        "Placement"
    ));
    assert!(r.is_derived_from(
        Family::Data,
        "tosca.datatypes.indigo.Volume",
        "tosca.datatypes.Root"
    ));
    assert!(r.is_custom(Family::Relationship, "tosca.relationships.indigo.Manages"));
    assert!(!r.is_custom(Family::Relationship, "tosca.relationships.HostedOn"));
}

#[test]
fn the_registry_lists_custom_node_types_and_knows_where_they_are_defined() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let names: Vec<&str> = t.registry().node_types().collect();
    for expected in [
        "datacloud.nodes.GpuWorkerNode",
        "tosca.nodes.indigo.Compute",
        "tosca.nodes.indigo.MonitoredCompute",
        "tosca.nodes.Compute",
    ] {
        assert!(names.contains(&expected), "{expected}");
    }
    let pos = t
        .registry()
        .position(Family::Node, "datacloud.nodes.GpuWorkerNode");
    assert_eq!((pos.line, pos.column), (21, 5));
    assert_eq!(
        t.registry().position(Family::Node, "tosca.nodes.Compute"),
        Default::default()
    );
}

fn node_types(body: &str) -> Result<Template, tosca::Error> {
    Template::parse(&format!(
        "tosca_definitions_version: tosca_simple_yaml_1_3\nnode_types:\n{body}"
    ))
}

#[test]
fn derived_from_may_use_a_short_normative_name() {
    let t = node_types("  my.Vm:\n    derived_from: Compute\n  my.Other:\n    derived_from: tosca:SoftwareComponent\n").unwrap();
    assert_eq!(t.ancestors("my.Vm")[1], "tosca.nodes.Compute");
    assert!(t.is_derived_from("my.Other", "tosca.nodes.SoftwareComponent"));
}

#[test]
fn a_type_without_derived_from_is_a_root_of_its_own() {
    let t = node_types("  my.Standalone:\n    description: nothing\n").unwrap();
    assert_eq!(t.ancestors("my.Standalone"), ["my.Standalone"]);
    assert!(!t.is_derived_from("my.Standalone", "tosca.nodes.Root"));
}

#[test]
fn a_type_derived_from_itself_is_a_cycle_at_its_derived_from() {
    let err = node_types("  my.Loop:\n    derived_from: my.Loop\n").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Tosca);
    assert_eq!((err.line, err.column), (Some(4), Some(19)));
    assert_eq!(
        err.message,
        "type 'my.Loop' is part of a derived_from cycle (my.Loop -> my.Loop)"
    );
}

#[test]
fn a_three_type_cycle_is_reported_at_the_first_type_in_the_document() {
    let err = node_types(
        "  my.C:\n    derived_from: my.A\n  my.A:\n    derived_from: my.B\n  my.B:\n    derived_from: my.C\n",
    )
    .unwrap_err();
    assert_eq!((err.line, err.column), (Some(4), Some(19)));
    assert_eq!(
        err.message,
        "type 'my.C' is part of a derived_from cycle (my.C -> my.A -> my.B -> my.C)"
    );
}

#[test]
fn a_type_hanging_off_a_cycle_says_so() {
    let err = node_types(
        "  my.Leaf:\n    derived_from: my.A\n  my.A:\n    derived_from: my.B\n  my.B:\n    derived_from: my.A\n",
    )
    .unwrap_err();
    assert_eq!((err.line, err.column), (Some(4), Some(19)));
    assert_eq!(
        err.message,
        "type 'my.Leaf' is derived from a derived_from cycle (my.A -> my.B -> my.A)"
    );
}

#[test]
fn a_cycle_through_an_imported_type_is_found() {
    let src = "tosca_definitions_version: tosca_simple_yaml_1_3
imports:
  - https://example.org/loop.yaml
node_types:
  my.Local:
    derived_from: my.Imported
";
    let imported = "tosca_definitions_version: tosca_simple_yaml_1_3\nnode_types:\n  my.Imported:\n    derived_from: my.Local\n";
    let imports = std::collections::HashMap::from([(
        "https://example.org/loop.yaml".to_string(),
        imported.to_string(),
    )]);
    let err = Template::parse_with_imports(src, &imports).unwrap_err();
    assert_eq!((err.line, err.column), (Some(6), Some(19)));
    assert!(
        err.message.contains("my.Local -> my.Imported -> my.Local"),
        "{err}"
    );
}

#[test]
fn unknown_parents_are_refused_in_every_family() {
    for family in Family::ALL {
        let src = format!(
            "tosca_definitions_version: tosca_simple_yaml_1_3\n{}:\n  my.Thing:\n    derived_from: my.Nowhere\n",
            family.section()
        );
        let err = Template::parse(&src).unwrap_err();
        assert_eq!((err.line, err.column), (Some(4), Some(19)), "{family:?}");
        assert_eq!(
            err.message, "type 'my.Thing' is derived from unknown type 'my.Nowhere'",
            "{family:?}"
        );
    }
}

#[test]
fn a_parent_from_another_family_is_unknown() {
    let err = node_types("  my.Node:\n    derived_from: tosca.capabilities.Root\n").unwrap_err();
    assert!(
        err.message
            .contains("unknown type 'tosca.capabilities.Root'"),
        "{err}"
    );
}

#[test]
fn derived_from_must_be_a_type_name() {
    let err = node_types("  my.Node:\n    derived_from: [tosca.nodes.Root]\n").unwrap_err();
    assert_eq!((err.line, err.column), (Some(4), Some(19)));
    assert!(err.message.contains("'derived_from' must be a type name"));
}

#[test]
fn a_template_type_wins_over_an_imported_type_of_the_same_name() {
    let src = "tosca_definitions_version: tosca_simple_yaml_1_3
imports:
  - https://example.org/types.yaml
node_types:
  my.Vm:
    derived_from: tosca.nodes.Compute
";
    let imported = "tosca_definitions_version: tosca_simple_yaml_1_3\nnode_types:\n  my.Vm:\n    derived_from: tosca.nodes.SoftwareComponent\n";
    let imports = std::collections::HashMap::from([(
        "https://example.org/types.yaml".to_string(),
        imported.to_string(),
    )]);
    let t = Template::parse_with_imports(src, &imports).unwrap();
    assert!(t.is_derived_from("my.Vm", "tosca.nodes.Compute"));
    assert!(!t.is_derived_from("my.Vm", "tosca.nodes.SoftwareComponent"));
}

#[test]
fn the_same_import_reached_twice_is_loaded_once() {
    // Both imports bring in the base types; defining them twice is no error.
    let src = format!(
        "tosca_definitions_version: tosca_simple_yaml_1_0\nimports:\n  - {}\n  - {}\n",
        common::CUSTOM_TYPES_URL,
        common::BASE_TYPES_URL
    );
    let t = Template::parse_with_imports(&src, &imports()).unwrap();
    assert!(t.is_derived_from("tosca.nodes.indigo.Compute", "Compute"));
    assert_eq!(t.imports().len(), 2);
}

#[test]
fn registry_check_reports_a_cycle_of_types_defined_without_positions() {
    let mut r = Registry::normative();
    for (name, parent) in [("b", "a"), ("a", "b")] {
        r.define(
            Family::Node,
            TypeDef {
                name: name.into(),
                derived_from: Some(parent.into()),
                definition: None,
            },
        );
    }
    let err = r.check().unwrap_err();
    // Checked by name, so 'a' is reported whatever the insertion order.
    assert_eq!(
        err.message,
        "type 'a' is part of a derived_from cycle (a -> b -> a)"
    );
    assert_eq!(
        r.check_type(Family::Node, "b").unwrap_err().message,
        "type 'b' is part of a derived_from cycle (b -> a -> b)"
    );
    assert!(r.check_type(Family::Node, "tosca.nodes.Compute").is_ok());
    assert!(r.check_type(Family::Node, "not.defined").is_ok());
}

#[test]
fn the_first_definition_of_a_type_is_kept() {
    let mut r = Registry::normative();
    for parent in ["tosca.nodes.Compute", "tosca.nodes.Root"] {
        r.define(
            Family::Node,
            TypeDef {
                name: "my.T".into(),
                derived_from: Some(parent.into()),
                definition: None,
            },
        );
    }
    assert_eq!(
        r.get(Family::Node, "my.T").unwrap().derived_from.as_deref(),
        Some("tosca.nodes.Compute")
    );
}

#[test]
fn the_version_fixtures_use_types_from_their_imports() {
    let t = parse_fixture("versions/tosca_1_2.yaml");
    assert!(t.is_derived_from("example.nodes.Gateway", "tosca.nodes.Container.Application"));
    assert_eq!(
        t.node_template("gateway").unwrap().node_type,
        "example.nodes.Gateway"
    );
}
