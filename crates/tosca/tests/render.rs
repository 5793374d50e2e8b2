//! Rendering for IM: the user's inputs written as the input defaults, everything
//! else structurally untouched, in YAML that reads back the same (with saphyr
//! here, and with YAML 1.1 readers such as IM's PyYAML).

mod common;

use common::{fixture, imports, obj, parse, parse_fixture, with_counts_resolved};
use serde_json::{json, Value};
use tosca::yaml::{self, Key, Node, Yaml};
use tosca::{ResolvedInputs, Template};

fn resolved(t: &Template, given: Value) -> ResolvedInputs {
    t.validate_inputs(&obj(given)).unwrap()
}

/// The original document as JSON with `inputs` written as defaults (and scalable
/// counts taken from inputs written as numbers): what the rendered text must read
/// back as, exactly.
fn expected(src: &str, inputs: &ResolvedInputs) -> Value {
    let mut doc = yaml::parse(src).unwrap().to_json();
    for (name, value) in inputs.values() {
        doc["topology_template"]["inputs"][name]["default"] = value.clone();
    }
    with_counts_resolved(doc, inputs)
}

#[test]
fn rendering_writes_inputs_as_defaults_and_changes_nothing_else() {
    for (file, given) in [
        (
            "kubernetes_cluster.yaml",
            json!({"admin_token": "s3cr3t-token", "wn_num": 7, "kube_version": "1.29"}),
        ),
        (
            "single_vm.yaml",
            json!({"ssh_public_key": "ssh-ed25519 AAAA u@h", "num_cpus": "8", "ports": {}}),
        ),
        ("versions/tosca_1_0.yaml", json!({"http_port": 8080})),
        (
            "versions/tosca_1_3.yaml",
            json!({"maintenance_start": "2030-01-01 02:00:00 +1"}),
        ),
    ] {
        let src = fixture(file);
        let t = Template::parse_with_imports(&src, &imports()).unwrap();
        let inputs = resolved(&t, given);
        let rendered = t.render(&inputs);
        assert_eq!(
            yaml::parse(&rendered).unwrap().to_json(),
            expected(&src, &inputs),
            "{file}"
        );
    }
}

#[test]
fn the_rendered_template_is_self_contained_and_resolves_to_the_same_inputs() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let inputs = resolved(&t, json!({"admin_token": "s3cr3t-token", "wn_num": "3"}));
    let again = Template::parse_with_imports(&t.render(&inputs), &imports()).unwrap();
    assert_eq!(again.validate_inputs(&obj(json!({}))).unwrap(), inputs);
    assert_eq!(again.node_instances(&inputs), t.node_instances(&inputs));
    assert_eq!(again.template_name(), t.template_name());
    assert_eq!(again.imports(), t.imports());
    assert_eq!(again.outputs(), t.outputs());
    assert_eq!(again.policies(), t.policies());
}

#[test]
fn inputs_that_are_not_resolved_keep_their_definition_without_a_default() {
    let t = parse_fixture("versions/tosca_1_3.yaml");
    let inputs = resolved(&t, json!({}));
    let again = parse(&t.render(&inputs));
    let start = again
        .inputs()
        .iter()
        .find(|i| i.name == "maintenance_start")
        .unwrap();
    assert_eq!(start.default, None);
    assert!(!start.required);
}

#[test]
fn rendering_no_inputs_adds_no_sections() {
    for src in [
        "tosca_definitions_version: tosca_simple_yaml_1_3\ndescription: nothing\n",
        "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n    vm: {type: Compute}\n",
    ] {
        let t = parse(src);
        let rendered = t.render(&ResolvedInputs::default());
        assert_eq!(
            yaml::parse(&rendered).unwrap().to_json(),
            yaml::parse(src).unwrap().to_json()
        );
    }
}

#[test]
fn strings_that_look_like_other_types_stay_strings() {
    let tricky = [
        "22.04",
        "1.0",
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "true",
        "null",
        "~",
        "0x1F",
        "0o17",
        "017",
        "1e3",
        ".inf",
        ".nan",
        "-",
        "- a",
        ": b",
        "a: b",
        "#c",
        "@x",
        "`x",
        "!tag",
        "&a",
        "*a",
        "%p",
        "{a}",
        "[a]",
        "'q'",
        "\"q\"",
        "",
        " lead",
        "trail ",
        "multi\nline",
        "tab\there",
        "back\\slash",
        "2024-01-31",
        "12:30:00",
        "1_000",
    ];
    let t = one_string_input();
    for s in tricky {
        let inputs = resolved(&t, json!({ "x": s }));
        let again = parse(&t.render(&inputs));
        assert_eq!(again.inputs()[0].default, Some(json!(s)), "{s:?}");
    }
}

fn one_string_input() -> Template {
    parse(&common::with_inputs("x:\n  type: string\n"))
}

/// Characters that a YAML 1.1 reader (PyYAML) refuses or reads as line breaks.
fn unsafe_for_yaml_1_1(c: char) -> bool {
    let printable = matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
    !printable || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

#[test]
fn characters_yaml_readers_refuse_or_fold_are_escaped() {
    let t = one_string_input();
    for s in [
        "del\u{7f}",
        "nel\u{85}",
        "c1\u{9f}",
        "ls\u{2028}ps\u{2029}",
        "bom\u{feff}",
        "nul\u{0}",
        "esc\u{1b}[0m",
        "bell\u{7}",
        "nonchar\u{fffe}\u{ffff}",
        "emoji 🚀 and ü",
    ] {
        let rendered = t.render(&resolved(&t, json!({ "x": s })));
        let bad: Vec<char> = rendered
            .chars()
            .filter(|c| unsafe_for_yaml_1_1(*c))
            .collect();
        assert!(bad.is_empty(), "{s:?} rendered with raw {bad:?}");
        assert_eq!(
            parse(&rendered).inputs()[0].default,
            Some(json!(s)),
            "{s:?}"
        );
    }
}

/// YAML 1.1's float pattern (PyYAML's resolver): a dot, and a signed exponent.
fn is_yaml_1_1_float(text: &str) -> bool {
    let re = regex::Regex::new(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
    .unwrap();
    re.is_match(text)
}

#[test]
fn floats_are_written_so_that_yaml_1_1_readers_see_floats() {
    for f in [
        0.0,
        -0.0,
        1.0,
        2.5,
        -3.75,
        1e20,
        1.5e300,
        1e-7,
        123456789012345680.0,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        0.1,
    ] {
        let node = Node::synthetic(Yaml::Map(vec![(
            Key {
                text: "f".into(),
                pos: Default::default(),
            },
            Node::synthetic(Yaml::Float(f)),
        )]));
        let text = yaml::emit(&node);
        let value = text.trim_end().strip_prefix("\"f\": ").unwrap();
        assert!(is_yaml_1_1_float(value), "{f:?} written as {value}");
        match yaml::parse(&text).unwrap().get("f").unwrap().value {
            Yaml::Float(back) => {
                assert_eq!(back.to_bits(), f.to_bits(), "{f:?} read back as {back:?}")
            }
            ref other => panic!("{f:?} read back as {other:?}"),
        }
    }
}

#[test]
fn special_floats_are_written_as_yaml_specials() {
    for (f, text) in [
        (f64::INFINITY, ".inf"),
        (f64::NEG_INFINITY, "-.inf"),
        (f64::NAN, ".nan"),
    ] {
        let node = Node::synthetic(Yaml::Seq(vec![Node::synthetic(Yaml::Float(f))]));
        assert_eq!(yaml::emit(&node), format!("- {text}\n"));
    }
}

#[test]
fn a_float_input_renders_as_a_float_and_an_integer_as_an_integer() {
    let t = parse(&common::with_inputs(
        "f:\n  type: float\ni:\n  type: integer\nbig:\n  type: float\n",
    ));
    let inputs = resolved(&t, json!({"f": 2, "i": "3", "big": 1e21}));
    let again = parse(&t.render(&inputs));
    assert_eq!(again.inputs()[0].default, Some(json!(2.0)));
    assert!(again.inputs()[0].default.as_ref().unwrap().is_f64());
    assert_eq!(again.inputs()[1].default, Some(json!(3)));
    assert_eq!(again.inputs()[2].default, Some(json!(1e21)));
}

#[test]
fn nested_lists_and_maps_render_as_block_yaml_and_read_back() {
    let t = parse(&common::with_inputs("m:\n  type: map\nl:\n  type: list\n"));
    let m =
        json!({"a": [1, {"b": []}, {}], "c": {"d": {"e": null}}, "": "empty key", "k: v": [[]]});
    let l = json!([[1, [2, [3]]], {"x": [{}]}, null, true, -1.5]);
    let again = parse(&t.render(&resolved(&t, json!({"m": m, "l": l}))));
    assert_eq!(again.inputs()[0].default, Some(m));
    assert_eq!(again.inputs()[1].default, Some(l));
}

#[test]
fn rendering_is_deterministic() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let inputs = resolved(&t, json!({"admin_token": "s3cr3t-token"}));
    assert_eq!(t.render(&inputs), t.render(&inputs));
}

#[test]
fn rendering_a_rendered_template_with_the_same_inputs_is_a_fixed_point() {
    let t = parse_fixture("kubernetes_cluster.yaml");
    let inputs = resolved(&t, json!({"admin_token": "s3cr3t-token", "wn_num": 4}));
    let once = t.render(&inputs);
    let twice = Template::parse_with_imports(&once, &imports())
        .unwrap()
        .render(&inputs);
    assert_eq!(once, twice);
}

#[test]
fn a_scalable_count_from_an_input_is_written_as_the_number_for_im() {
    let src = "tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  inputs:
    n: {type: integer, default: 1}
    m: {type: integer, default: 4}
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {min_instances: 0, max_instances: 5, default_instances: {get_input: n}}
    wn:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {count: {get_input: [m]}}
";
    let t = parse(src);
    let inputs = resolved(&t, json!({"n": 3}));
    let out = yaml::parse(&t.render(&inputs)).unwrap().to_json();
    let nodes = &out["topology_template"]["node_templates"];
    assert_eq!(
        nodes["vm"]["capabilities"]["scalable"]["properties"]["default_instances"],
        3
    );
    assert_eq!(
        nodes["vm"]["capabilities"]["scalable"]["properties"]["min_instances"],
        0
    );
    assert_eq!(
        nodes["wn"]["capabilities"]["scalable"]["properties"]["count"],
        4
    );
    // The input itself keeps its definition, with the value as default.
    assert_eq!(out["topology_template"]["inputs"]["n"]["default"], 3);
    assert_eq!(parse(&t.render(&inputs)).node_instances(&inputs).len(), 7);
}
