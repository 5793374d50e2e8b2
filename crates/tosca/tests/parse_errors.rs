//! Parse errors carry the kind of problem and the line and column (1-based) where
//! a user finds it in their file.

mod common;

use common::fixture;
use tosca::{ErrorKind, Template};

/// (fixture under `broken/`, kind, line, column, part of the message)
const BROKEN: &[(&str, ErrorKind, usize, usize, &str)] = &[
    (
        "unclosed_flow_sequence.yaml",
        ErrorKind::Yaml,
        9,
        13,
        "not valid YAML",
    ),
    ("tab_indented.yaml", ErrorKind::Yaml, 6, 4, "tabs"),
    (
        "bad_indentation.yaml",
        ErrorKind::Yaml,
        7,
        6,
        "did not find expected key",
    ),
    (
        "duplicate_node_template.yaml",
        ErrorKind::Yaml,
        9,
        5,
        "duplicate",
    ),
    (
        "not_a_mapping.yaml",
        ErrorKind::Tosca,
        1,
        1,
        "a TOSCA template must be a YAML mapping",
    ),
    (
        "unsupported_version.yaml",
        ErrorKind::Tosca,
        2,
        28,
        "unsupported tosca_definitions_version 'tosca_2_0'",
    ),
    (
        "unknown_node_type.yaml",
        ErrorKind::Tosca,
        6,
        13,
        "node template 'simple_node' has unknown node type 'tosca.nodes.indigo.Compute'",
    ),
    (
        "unknown_parent_type.yaml",
        ErrorKind::Tosca,
        5,
        19,
        "type 'datacloud.nodes.Worker' is derived from unknown type 'datacloud.nodes.Missing'",
    ),
    (
        "derived_from_cycle.yaml",
        ErrorKind::Tosca,
        5,
        19,
        "type 'datacloud.nodes.A' is part of a derived_from cycle",
    ),
    (
        "default_violates_constraint.yaml",
        ErrorKind::Tosca,
        7,
        16,
        "the default of input 'wn_num' must be in the range [1, 20], got 50",
    ),
    (
        "unknown_input_type.yaml",
        ErrorKind::Tosca,
        6,
        13,
        "input 'size' has unknown type 'scalar-unit.sizes'",
    ),
    (
        "unknown_constraint_operator.yaml",
        ErrorKind::Tosca,
        9,
        11,
        "unknown constraint operator 'starts_with'",
    ),
    (
        "invalid_pattern.yaml",
        ErrorKind::Tosca,
        8,
        20,
        "constraint 'pattern' is not a valid regular expression",
    ),
    (
        "requirement_to_unknown_node.yaml",
        ErrorKind::Tosca,
        8,
        17,
        "requirement 'host' of node 'app' names unknown node 'serverr'",
    ),
    (
        "undeclared_get_input.yaml",
        ErrorKind::Tosca,
        15,
        36,
        "get_input refers to undeclared input 'num_cpu'",
    ),
];

#[test]
fn each_broken_fixture_fails_with_its_kind_line_column_and_message() {
    for (file, kind, line, column, message) in BROKEN {
        let err = Template::parse(&fixture(&format!("broken/{file}")))
            .expect_err(&format!("{file} should not parse"));
        assert_eq!(err.kind, *kind, "{file}: {err}");
        assert_eq!(
            (err.line, err.column),
            (Some(*line), Some(*column)),
            "{file}: {err}"
        );
        assert!(err.message.contains(message), "{file}: {err}");
    }
}

#[test]
fn every_broken_fixture_has_an_expectation() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut expected: Vec<String> = BROKEN.iter().map(|b| b.0.to_string()).collect();
    expected.sort();
    assert_eq!(files, expected);
}

#[test]
fn the_same_broken_template_always_reports_the_same_error() {
    // Type checks must not depend on hash-map order.
    for file in ["derived_from_cycle.yaml", "unknown_parent_type.yaml"] {
        let src = fixture(&format!("broken/{file}"));
        let first = Template::parse(&src).unwrap_err();
        for _ in 0..20 {
            assert_eq!(Template::parse(&src).unwrap_err(), first, "{file}");
        }
    }
}

#[test]
fn an_error_displays_as_line_column_and_message() {
    let err = Template::parse(&fixture("broken/unknown_node_type.yaml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 6, column 13: node template 'simple_node' has unknown node type 'tosca.nodes.indigo.Compute'"
    );
}

fn yaml_error(src: &str) -> (usize, usize) {
    let err = Template::parse(src).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Yaml, "{src:?}: {err}");
    (err.line.unwrap(), err.column.unwrap())
}

#[test]
fn yaml_syntax_errors_point_at_the_offending_character() {
    assert_eq!(yaml_error("a: [1, 2\nb: c\n"), (2, 2));
    assert_eq!(yaml_error("a: b: c\n"), (1, 5));
    assert_eq!(yaml_error("key: value\n  bad: indent\n"), (2, 6));
    assert_eq!(yaml_error("a:\n  - b\n  c: d\n"), (3, 3));
    assert_eq!(yaml_error("a: @foo\n"), (1, 4));
    assert_eq!(yaml_error("a: |\n  text\n b: 1\n"), (3, 2));
}

#[test]
fn an_unterminated_quoted_string_points_at_its_opening_quote() {
    assert_eq!(yaml_error("a: \"abc\n"), (1, 4));
    assert_eq!(yaml_error("x: 1\na: 'abc\nb: 1\n"), (2, 4));
}

#[test]
fn columns_count_characters_not_bytes() {
    // 'ü' is two bytes in UTF-8; the duplicate key is the 11th character.
    assert_eq!(yaml_error("a: {ü: 1, ü: 2}\n"), (1, 11));
    assert_eq!(yaml_error("ä: \"€€\\q\"\n"), (1, 4));
}

#[test]
fn windows_line_endings_and_a_byte_order_mark_do_not_shift_positions() {
    assert_eq!(yaml_error("a: 1\r\nb: 2\r\na: 3\r\n"), (3, 1));
    assert_eq!(yaml_error("\u{feff}a: 1\nb: {x: 1, x: 2}\n"), (2, 11));
    let t = Template::parse(
        "\u{feff}tosca_definitions_version: tosca_simple_yaml_1_3\r\nmetadata:\r\n  template_name: crlf\r\n",
    )
    .unwrap();
    assert_eq!(t.template_name().as_deref(), Some("crlf"));
}

#[test]
fn an_empty_document_is_a_yaml_error_at_the_start() {
    for src in ["", "\n\n", "# only a comment\n"] {
        let err = Template::parse(src).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Yaml, "{src:?}");
        assert_eq!((err.line, err.column), (Some(1), Some(1)), "{src:?}");
        assert!(err.message.contains("empty"), "{err}");
    }
    // An explicit empty document is null: YAML, but not a TOSCA mapping.
    let err = Template::parse("---\n").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Tosca);
}

#[test]
fn a_document_that_is_not_a_mapping_is_a_tosca_error_where_it_starts() {
    for (src, pos) in [
        ("hello\n", (1, 1)),
        ("# header\n- a\n", (2, 1)),
        ("\n\n  42\n", (3, 3)),
    ] {
        let err = Template::parse(src).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Tosca, "{src:?}");
        assert_eq!((err.line.unwrap(), err.column.unwrap()), pos, "{src:?}");
    }
}

#[test]
fn duplicate_keys_are_errors_at_the_second_key_however_deep() {
    let src = "tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    a:
      type: string
      description: first
      type: integer
";
    assert_eq!(yaml_error(src), (7, 7));
}

#[test]
fn a_billion_laughs_document_is_refused_instead_of_expanded() {
    let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        src.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let err = Template::parse(&src).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Yaml, "{err}");
    assert!(err.line.is_some_and(|l| l > 1), "{err}");
}

#[test]
fn a_value_that_contradicts_its_core_schema_tag_is_a_yaml_error_where_it_is() {
    let err = Template::parse(
        "tosca_definitions_version: tosca_simple_yaml_1_3\nmetadata:\n  n: !!int many\n",
    )
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Yaml, "{err}");
    assert_eq!((err.line, err.column), (Some(3), Some(6)));
}

#[test]
fn an_unknown_alias_is_a_yaml_error_where_it_is() {
    let err =
        Template::parse("tosca_definitions_version: tosca_simple_yaml_1_3\nmetadata: *nowhere\n")
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Yaml, "{err}");
    assert_eq!(err.line, Some(2), "{err}");
}

#[test]
fn errors_deep_in_an_input_definition_point_at_the_offending_node() {
    let head =
        "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  inputs:\n    x:\n";
    let cases = [
        ("      description: no type\n", (5, 7), "input 'x' has no 'type'"),
        ("      type: [string]\n", (5, 13), "the type of input 'x' must be a name"),
        ("      type: string\n      required: maybe\n", (6, 17), "'required' of input 'x' must be true or false"),
        ("      type: string\n      constraints: {min_length: 1}\n", (6, 20), "'constraints' must be a list"),
        ("      type: string\n      constraints:\n        - {min_length: 1, max_length: 2}\n", (7, 11), "single 'operator: value'"),
        ("      type: string\n      constraints:\n        - min_length: -1\n", (7, 23), "'min_length' needs a non-negative integer"),
        ("      type: string\n      constraints:\n        - length: two\n", (7, 19), "'length' needs a non-negative integer"),
        ("      type: integer\n      constraints:\n        - in_range: [1]\n", (7, 21), "'in_range' needs a list of two bounds"),
        ("      type: integer\n      constraints:\n        - valid_values: 3\n", (7, 25), "'valid_values' needs a list"),
        ("      type: string\n      constraints:\n        - pattern: 3\n", (7, 20), "'pattern' needs a string"),
        ("      type: integer\n      constraints:\n        - greater_than: ten\n", (7, 25), "has an operand that is not of type 'integer'"),
        ("      type: integer\n      constraints:\n        - greater_than: 1\n        - in_range: [1, ten]\n", (8, 25), "has an operand that is not of type 'integer'"),
        ("      type: string\n      constraints:\n        - valid_values: [a, b, 3]\n", (7, 32), "has an operand that is not of type 'string'"),
        ("      type: list\n      entry_schema:\n        type: strin\n", (7, 15), "the entry_schema of input 'x' has unknown type 'strin'"),
        ("      type: list\n      entry_schema: {constraints: []}\n", (6, 21), "the entry_schema of input 'x' has no 'type'"),
        ("      type: integer\n      default: ten\n", (6, 16), "the default of input 'x' must be an integer"),
        ("    y: string\n", (6, 8), "input 'y' must be a mapping with a 'type'"),
    ];
    for (body, (line, column), message) in cases {
        let src = if body.starts_with("    y") {
            format!("{head}      type: string\n{body}")
        } else {
            format!("{head}{body}")
        };
        let err = Template::parse(&src).unwrap_err();
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
fn duplicate_keys_are_found_in_large_mappings_too() {
    let mut src = String::from("tosca_definitions_version: tosca_simple_yaml_1_3\nmetadata:\n");
    for i in 0..40 {
        src.push_str(&format!("  key_{i}: {i}\n"));
    }
    src.push_str("  key_3: again\n");
    assert_eq!(yaml_error(&src), (43, 3));
}
