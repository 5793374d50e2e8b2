//! Parsing and validating a 500-line template with 50 inputs: issue 4 asks for
//! under 5 ms. Also measured apart: parsing, validating, node instances, rendering.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};
use tosca::Template;

/// A template of at least 500 lines with 50 inputs of every kind and constraints,
/// and node templates using them, with a valid value for each input.
fn template() -> (String, Map<String, Value>) {
    let mut src = String::from(
        "tosca_definitions_version: tosca_simple_yaml_1_3\n\
         metadata:\n  template_name: bench\n  template_version: \"1.0.0\"\n\
         description: A generated template for the benchmark.\n\
         data_types:\n  bench.Volume:\n    derived_from: tosca.datatypes.Root\n    properties:\n\
         \x20     size:\n        type: scalar-unit.size\n      mount:\n        type: string\n        default: /data\n\
         node_types:\n  bench.Vm:\n    derived_from: tosca.nodes.Compute\n  bench.App:\n    derived_from: tosca.nodes.SoftwareComponent\n\
         topology_template:\n  inputs:\n",
    );
    let mut given = Map::new();
    for i in 0..50 {
        let (definition, value) = match i % 10 {
            0 => ("type: integer\n      default: 2\n      constraints:\n        - in_range: [ 0, 100 ]", json!(i)),
            1 => ("type: string\n      constraints:\n        - min_length: 3\n        - pattern: \"[a-z0-9-]+\"", json!(format!("name-{i}"))),
            2 => ("type: scalar-unit.size\n      default: 4 GB\n      constraints:\n        - greater_or_equal: 1 GB", json!("16 GB")),
            3 => ("type: version\n      constraints:\n        - greater_or_equal: \"1.2\"", json!("1.28.2")),
            4 => ("type: boolean\n      default: false", json!("true")),
            5 => ("type: float\n      constraints:\n        - less_than: 100.0", json!(3.5)),
            6 => ("type: list\n      entry_schema:\n        type: integer\n        constraints:\n          - greater_than: 0", json!([1, 2, 3])),
            7 => ("type: map\n      entry_schema: string", json!({"a": "b", "c": "d"})),
            8 => ("type: timestamp\n      required: false", json!("2030-01-01T00:00:00Z")),
            _ => ("type: bench.Volume", json!({"size": "10 GB"})),
        };
        src.push_str(&format!(
            "    input_{i}:\n      description: Input number {i}\n      {definition}\n"
        ));
        given.insert(format!("input_{i}"), value);
    }
    src.push_str("  node_templates:\n");
    for n in 0..14 {
        src.push_str(&format!(
            "    vm_{n}:\n      type: bench.Vm\n      capabilities:\n        scalable:\n          properties:\n            count: {{ get_input: input_{c} }}\n        host:\n          properties:\n            mem_size: {{ get_input: input_{m} }}\n    app_{n}:\n      type: bench.App\n      properties:\n        name: {{ get_input: input_{s} }}\n      requirements:\n        - host: vm_{n}\n        - dependency:\n            node: vm_{d}\n            relationship: tosca.relationships.DependsOn\n",
            c = (n % 5) * 10,
            m = (n % 5) * 10 + 2,
            s = (n % 5) * 10 + 1,
            d = (n + 1) % 14,
        ));
    }
    src.push_str("  outputs:\n");
    for n in 0..5 {
        src.push_str(&format!(
            "    ip_{n}:\n      value: {{ get_attribute: [ vm_{n}, public_address ] }}\n"
        ));
    }
    (src, given)
}

fn bench(c: &mut Criterion) {
    let (src, given) = template();
    let lines = src.lines().count();
    let t = Template::parse(&src).expect("the bench template parses");
    assert!(lines >= 500, "only {lines} lines");
    assert_eq!(t.inputs().len(), 50);
    let resolved = t
        .validate_inputs(&given)
        .expect("the bench inputs are valid");
    println!(
        "bench template: {lines} lines, {} inputs, {} node templates",
        t.inputs().len(),
        t.node_templates().len()
    );

    c.bench_function("parse and validate (500 lines, 50 inputs)", |b| {
        b.iter(|| {
            let t = Template::parse(black_box(&src)).unwrap();
            black_box(t.validate_inputs(black_box(&given)).unwrap())
        })
    });
    c.bench_function("parse (500 lines)", |b| {
        b.iter(|| black_box(Template::parse(black_box(&src)).unwrap()))
    });
    c.bench_function("validate (50 inputs)", |b| {
        b.iter(|| black_box(t.validate_inputs(black_box(&given)).unwrap()))
    });
    c.bench_function("node instances", |b| {
        b.iter(|| black_box(t.node_instances(black_box(&resolved))))
    });
    c.bench_function("render", |b| {
        b.iter(|| black_box(t.render(black_box(&resolved))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
