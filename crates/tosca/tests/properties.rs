//! Property tests: rendering any valid input set then re-parsing keeps the topology
//! and puts exactly the given inputs in place; the parser and the validator never
//! panic, whatever they are given, and their error positions are in the text.

mod common;

use common::{fixture, imports, obj};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tosca::yaml::{self, Node};
use tosca::{ErrorKind, Template};

/// Inputs of `every_input_type.yaml`, each a valid value of its type.
fn valid_inputs() -> impl Strategy<Value = Map<String, Value>> {
    let size_unit = prop::sample::select(vec!["B", "kB", "KiB", "MB", "MiB", "GB", "GiB", "TB"]);
    let time_unit = prop::sample::select(vec!["d", "h", "m", "s", "ms", "us", "ns"]);
    let freq_unit = prop::sample::select(vec!["Hz", "kHz", "MHz", "GHz"]);
    (
        (
            prop::option::of(any::<String>()),
            prop::option::of(any::<i64>()),
            prop::option::of(prop::num::f64::NORMAL | prop::num::f64::ZERO),
            prop::option::of(any::<bool>()),
            prop::option::of((
                1970i32..2100,
                1u32..13,
                1u32..29,
                0u32..24,
                0u32..60,
                0u32..60,
                -12i32..13,
            )),
            prop::option::of((
                0u64..1000,
                0u64..1000,
                prop::option::of((0u64..100, "[a-z]{1,5}")),
            )),
        ),
        (
            prop::option::of((-1000i64..1000, prop::option::of(0i64..1000))),
            prop::option::of(prop::collection::vec(any::<i64>(), 0..5)),
            prop::option::of(prop::collection::btree_map(
                any::<String>(),
                any::<String>(),
                0..4,
            )),
            prop::option::of((0u32..100_000, size_unit)),
            prop::option::of((0u32..1000, time_unit)),
            prop::option::of((1u32..10_000, freq_unit)),
            prop::option::of(1i64..=65535),
        ),
    )
        .prop_map(|((s, i, f, b, ts, v), (r, l, m, size, time, freq, port))| {
            let mut out = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    out.insert(k.to_string(), v);
                }
            };
            put("a_string", s.map(Value::from));
            put("an_integer", i.map(Value::from));
            put("a_float", f.map(Value::from));
            put("a_boolean", b.map(Value::from));
            put(
                "a_timestamp",
                ts.map(|(y, mo, d, h, mi, se, z)| {
                    json!(format!(
                        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}{z:+03}:00"
                    ))
                }),
            );
            put(
                "a_version",
                v.map(|(major, minor, fix)| match fix {
                    Some((fix, q)) => json!(format!("{major}.{minor}.{fix}.{q}")),
                    None => json!(format!("{major}.{minor}")),
                }),
            );
            put(
                "a_range",
                r.map(|(lo, span)| match span {
                    Some(span) => json!([lo, lo + span]),
                    None => json!([lo, "UNBOUNDED"]),
                }),
            );
            put("a_list_of_integers", l.map(|l| json!(l)));
            put("a_map_of_strings", m.map(|m| json!(m)));
            put("a_size", size.map(|(n, u)| json!(format!("{n} {u}"))));
            put("a_time", time.map(|(n, u)| json!(format!("{n} {u}"))));
            put("a_frequency", freq.map(|(n, u)| json!(format!("{n} {u}"))));
            put("a_port", port.map(Value::from));
            out
        })
}

/// Any JSON value (no floats that JSON cannot hold), nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (prop::num::f64::NORMAL | prop::num::f64::ZERO | prop::num::f64::SUBNORMAL)
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[0-9a-zA-Z .:-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn every_type() -> Template {
    Template::parse(&fixture("every_input_type.yaml")).unwrap()
}

/// Asserts that an error's position is inside the text (1-based).
fn assert_located_in(src: &str, err: &tosca::Error) {
    let lines = src.split('\n').count().max(1);
    let line = err.line.expect("errors have a line");
    let column = err.column.expect("errors have a column");
    assert!(
        line >= 1 && line <= lines + 1,
        "line {line} of {lines}: {err}"
    );
    assert!(column >= 1, "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn rendering_valid_inputs_then_reparsing_puts_exactly_those_inputs_in_place(given in valid_inputs()) {
        let t = every_type();
        let resolved = t.validate_inputs(&given).expect("the generated inputs are valid");
        let rendered = t.render(&resolved);
        let again = Template::parse(&rendered).expect("the rendered template parses");
        // Exactly the given inputs (normalised) became defaults; the others have none.
        for input in again.inputs() {
            prop_assert_eq!(input.default.as_ref(), resolved.values().get(&input.name), "{}", input.name);
        }
        // And the rendered template, with no inputs at all, resolves to the same values.
        prop_assert_eq!(again.validate_inputs(&Map::new()).unwrap(), resolved.clone());
        // Nothing but the defaults changed.
        let mut expected = yaml::parse(&fixture("every_input_type.yaml")).unwrap().to_json();
        for (name, value) in resolved.values() {
            expected["topology_template"]["inputs"][name]["default"] = value.clone();
        }
        prop_assert_eq!(yaml::parse(&rendered).unwrap().to_json(), expected);
    }

    #[test]
    fn rendering_the_cluster_keeps_its_topology_for_any_worker_count(
        wn_num in 0u32..=20,
        token in "[ -~]{8,40}",
        cpus in 2i64..64,
    ) {
        let t = Template::parse_with_imports(&fixture("kubernetes_cluster.yaml"), &imports()).unwrap();
        let resolved = t
            .validate_inputs(&obj(json!({"wn_num": wn_num, "admin_token": token, "fe_cpus": cpus})))
            .unwrap();
        let again = Template::parse_with_imports(&t.render(&resolved), &imports()).unwrap();
        prop_assert_eq!(again.instance_count("k8s_wn_server", &resolved), wn_num);
        prop_assert_eq!(again.node_instances(&resolved), t.node_instances(&resolved));
        let before: Vec<_> = t.node_templates().iter().map(|n| {
            let mut caps = Value::Object(n.capabilities.clone());
            common::resolve_capability_counts(&mut caps, &resolved);
            (n.name.clone(), n.node_type.clone(), n.properties.clone(), caps, n.requirements.clone())
        }).collect();
        let after: Vec<_> = again.node_templates().iter().map(|n| {
            (n.name.clone(), n.node_type.clone(), n.properties.clone(), Value::Object(n.capabilities.clone()), n.requirements.clone())
        }).collect();
        prop_assert_eq!(before, after);
        prop_assert_eq!(again.validate_inputs(&Map::new()).unwrap(), resolved);
    }

    #[test]
    fn emitting_any_json_then_parsing_gives_it_back(value in any_json()) {
        let doc = json!({"v": value});
        let text = yaml::emit(&Node::from_json(&doc));
        let back = yaml::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(back.to_json(), doc);
    }

    #[test]
    fn the_parser_never_panics_on_arbitrary_text(src in any::<String>()) {
        if let Err(e) = Template::parse(&src) {
            assert_located_in(&src, &e);
        }
    }

    #[test]
    fn the_parser_never_panics_on_yaml_like_text(src in "[a-z_:\\-\\[\\]{}#&*!|>'\"%@` \n\t,?0-9.~]{0,300}") {
        if let Err(e) = Template::parse(&src) {
            assert_located_in(&src, &e);
        }
    }

    #[test]
    fn the_parser_never_panics_on_damaged_templates(
        file in prop::sample::select(vec![
            "single_vm.yaml",
            "kubernetes_cluster.yaml",
            "every_input_type.yaml",
            "every_constraint.yaml",
            "versions/tosca_1_3.yaml",
        ]),
        cut in any::<prop::sample::Index>(),
        len in 0usize..40,
        insert in "[ -~\n\t]{0,10}",
    ) {
        let src = fixture(file);
        let chars: Vec<char> = src.chars().collect();
        let at = cut.index(chars.len());
        let end = (at + len).min(chars.len());
        let damaged: String = chars[..at].iter().chain(insert.chars().collect::<Vec<_>>().iter()).chain(chars[end..].iter()).collect();
        match Template::parse_with_imports(&damaged, &imports()) {
            Ok(t) => {
                // Whatever survived still validates and renders without panicking.
                let _ = t.validate_inputs(&Map::new());
            }
            Err(e) => assert_located_in(&damaged, &e),
        }
    }

    #[test]
    fn validation_never_panics_and_points_only_at_given_or_declared_inputs(
        values in prop::collection::vec(any_json(), 20),
        extra in prop::collection::btree_map("[a-z/~]{1,8}", any_json(), 0..3),
    ) {
        for file in ["every_input_type.yaml", "every_constraint.yaml"] {
            let t = Template::parse(&fixture(file)).unwrap();
            let mut given: Map<String, Value> = t
                .inputs()
                .iter()
                .zip(values.iter())
                .map(|(i, v)| (i.name.clone(), v.clone()))
                .collect();
            given.extend(extra.clone());
            if let Err(violations) = t.validate_inputs(&given) {
                prop_assert!(!violations.is_empty());
                for v in &violations {
                    let first = v.pointer.split('/').nth(1).unwrap_or_default()
                        .replace("~1", "/").replace("~0", "~");
                    prop_assert!(given.contains_key(&first) || t.inputs().iter().any(|i| i.name == first), "{}", v.pointer);
                    prop_assert!(v.message.starts_with(&format!("input '{first}'")), "{}", v.message);
                }
            }
        }
    }
}

fn nested_block_sequence(depth: usize) -> String {
    let mut src =
        String::from("tosca_definitions_version: tosca_simple_yaml_1_3\nmetadata:\n  deep:\n");
    for i in 0..depth {
        src.push_str(&format!("{}-\n", " ".repeat(4 + 2 * i)));
    }
    src.push_str(&format!("{}x\n", " ".repeat(4 + 2 * depth)));
    src
}

/// Runs `f` on a thread with a 2 MiB stack, the default of spawned threads and of
/// tokio's workers: a stack overflow aborts the whole test binary.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn a_deeply_nested_document_is_refused_instead_of_overflowing_the_stack() {
    let err = on_small_stack(|| Template::parse(&nested_block_sequence(5000)).unwrap_err());
    assert_eq!(err.kind, ErrorKind::Yaml);
    assert!(err.message.contains("nested more than 100 levels"), "{err}");
    // Under the root and metadata maps, the 99th sequence is level 101.
    assert_eq!((err.line, err.column), (Some(102), Some(201)), "{err}");
    let flow = format!("a: {}1{}\n", "[".repeat(20_000), "]".repeat(20_000));
    let err = on_small_stack(move || Template::parse(&flow).unwrap_err());
    assert_eq!(err.kind, ErrorKind::Yaml);
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let src = nested_block_sequence(98);
    let t = on_small_stack(move || Template::parse(&src).map(|t| t.metadata().len()));
    assert_eq!(t, Ok(1));
    let err = on_small_stack(|| Template::parse(&nested_block_sequence(99)).unwrap_err());
    assert_eq!(err.kind, ErrorKind::Yaml);
}

#[test]
fn aliases_cannot_be_chained_into_a_document_too_deep_to_load() {
    // Each anchor nests the previous one 60 levels deeper: 30 of them reach 1800
    // levels with only a few thousand nodes, under saphyr's alias budget.
    let mut src = String::from("tosca_definitions_version: tosca_simple_yaml_1_3\nmetadata:\n");
    src.push_str(&format!(
        "  a0: &a0 {}x{}\n",
        "[".repeat(60),
        "]".repeat(60)
    ));
    for i in 1..30 {
        src.push_str(&format!(
            "  a{i}: &a{i} {}*a{} {}\n",
            "[".repeat(60),
            i - 1,
            "]".repeat(60)
        ));
    }
    let err = on_small_stack(move || Template::parse(&src).unwrap_err());
    assert_eq!(err.kind, ErrorKind::Yaml);
    assert!(err.message.contains("nested more than 100 levels"), "{err}");
    assert_eq!(err.line, Some(4), "{err}");
}
