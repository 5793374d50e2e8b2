//! Every TOSCA constraint, checked on both sides of its bound, with the violation
//! at the input's pointer and a message naming the rule.

mod common;

use common::{obj, one_input, parse_fixture, pointers, validate_x};
use serde_json::{json, Value};
use tosca::{ErrorKind, Template, Template as T};

fn every_constraint() -> T {
    parse_fixture("every_constraint.yaml")
}

/// Asserts which values an input of the every-constraint fixture accepts, and
/// which it refuses with a message containing the given text.
fn bounds(name: &str, ok: &[Value], refused: &[Value], message: &str) {
    let t = every_constraint();
    for v in ok {
        let r = t.validate_inputs(&obj(json!({ name: v })));
        assert!(r.is_ok(), "{name} = {v} was refused: {r:?}");
    }
    for v in refused {
        let violations = t
            .validate_inputs(&obj(json!({ name: v })))
            .expect_err(&format!("{name} = {v} was accepted"));
        assert_eq!(pointers(&violations), [format!("/{name}")], "{name} = {v}");
        assert!(
            violations[0].message.contains(message),
            "{name} = {v}: {}",
            violations[0].message
        );
    }
}

#[test]
fn equal_accepts_only_the_value() {
    bounds(
        "equal",
        &[json!(3), json!("3")],
        &[json!(2), json!(4)],
        "must be equal to 3",
    );
}

#[test]
fn greater_than_excludes_its_bound() {
    bounds(
        "greater_than",
        &[json!(4), json!(i64::MAX)],
        &[json!(3), json!(2)],
        "must be greater than 3",
    );
}

#[test]
fn greater_or_equal_includes_its_bound() {
    bounds(
        "greater_or_equal",
        &[json!(3), json!(4)],
        &[json!(2), json!(i64::MIN)],
        "must be greater than or equal to 3",
    );
}

#[test]
fn less_than_excludes_its_bound() {
    bounds(
        "less_than",
        &[json!(2), json!(-100)],
        &[json!(3), json!(4)],
        "must be less than 3",
    );
}

#[test]
fn less_or_equal_includes_its_bound() {
    bounds(
        "less_or_equal",
        &[json!(3), json!(2)],
        &[json!(4)],
        "must be less than or equal to 3",
    );
}

#[test]
fn in_range_includes_both_bounds() {
    bounds(
        "in_range",
        &[json!(2), json!(3), json!(5)],
        &[json!(1), json!(6)],
        "must be in the range [2, 5]",
    );
    bounds(
        "float_in_range",
        &[json!(0.5), json!(1.0), json!(1.5), json!("1.5")],
        &[json!(0.49), json!(1.51)],
        "must be in the range [0.5, 1.5]",
    );
}

#[test]
fn valid_values_accepts_only_listed_values_exactly() {
    bounds(
        "valid_values",
        &[json!("small"), json!("large")],
        &[json!("Small"), json!("huge"), json!("small ")],
        "must be one of small, medium, large",
    );
    bounds(
        "integer_valid_values",
        &[json!(4), json!("8")],
        &[json!(3), json!(16)],
        "must be one of 1, 2, 4, 8",
    );
}

#[test]
fn length_counts_characters_exactly() {
    bounds(
        "length",
        &[json!("abcd"), json!("ünïc")],
        &[json!("abc"), json!("abcde")],
        "must have length 4",
    );
}

#[test]
fn min_length_includes_its_bound() {
    bounds(
        "min_length",
        &[json!("ab"), json!("abc")],
        &[json!("a"), json!("")],
        "must have length of at least 2",
    );
}

#[test]
fn max_length_includes_its_bound() {
    bounds(
        "max_length",
        &[json!("abcd"), json!("")],
        &[json!("abcde")],
        "must have length of at most 4",
    );
}

#[test]
fn length_constraints_apply_to_lists_and_maps() {
    bounds(
        "list_length",
        &[json!(["a"]), json!(["a", "b", "c"])],
        &[json!([])],
        "at least 1",
    );
    bounds(
        "list_length",
        &[],
        &[json!(["a", "b", "c", "d"])],
        "at most 3",
    );
    bounds(
        "map_length",
        &[json!({"a": 1, "b": 2})],
        &[json!({"a": 1}), json!({"a": 1, "b": 2, "c": 3})],
        "must have length 2",
    );
}

#[test]
fn pattern_must_match_the_whole_value() {
    bounds(
        "pattern",
        &[json!("vm-01"), json!("abc-99")],
        &[
            json!("vm-1"),
            json!("VM-01"),
            json!("vm-01 "),
            json!("a vm-01"),
            json!("vm-011"),
        ],
        "must match the pattern '[a-z]+-[0-9]{2}'",
    );
}

#[test]
fn a_pattern_with_alternatives_is_anchored_as_a_whole() {
    let t = one_input("type: string\nconstraints:\n  - pattern: \"a|b\"\n");
    assert!(validate_x(&t, json!("a")).is_ok());
    assert!(validate_x(&t, json!("b")).is_ok());
    assert!(validate_x(&t, json!("ab")).is_err());
    assert!(validate_x(&t, json!("xa")).is_err());
}

#[test]
fn scalar_units_compare_by_quantity_across_units() {
    bounds(
        "size_greater_than",
        &[json!("1.1 GiB"), json!("1074 MB"), json!("1 TB")],
        &[json!("1 GiB"), json!("1073741824 B"), json!("1 GB")],
        "must be greater than 1 GiB",
    );
    bounds(
        "time_less_than",
        &[json!("119 m"), json!("7199 s"), json!("1 h")],
        &[json!("120 m"), json!("2 h"), json!("1 d")],
        "must be less than 2 h",
    );
    bounds(
        "frequency_in_range",
        &[json!("1 GHz"), json!("1000 MHz"), json!("3.5 GHz")],
        &[json!("999 MHz"), json!("3.6 GHz")],
        "must be in the range [1 GHz, 3.5 GHz]",
    );
}

#[test]
fn versions_compare_numerically_part_by_part() {
    bounds(
        "version_greater_or_equal",
        &[
            json!("1.26"),
            json!("1.26.0"),
            json!("1.27"),
            json!("1.100"),
            json!("2.0"),
        ],
        &[json!("1.25.9"), json!("1.3"), json!("0.99")],
        "must be greater than or equal to 1.26",
    );
}

#[test]
fn timestamps_compare_as_instants_whatever_their_zone() {
    bounds(
        "timestamp_less_than",
        &[
            json!("2029-12-31T23:59:59Z"),
            json!("2030-01-01T00:59:59+01:00"),
            json!("2029-12-31"),
        ],
        &[
            json!("2030-01-01T00:00:00Z"),
            json!("2030-01-01T01:00:00+01:00"),
            json!("2029-12-31T19:00:00-05:00"),
        ],
        "must be less than 2030-01-01T00:00:00Z",
    );
}

#[test]
fn every_broken_constraint_of_a_value_is_reported() {
    let t = every_constraint();
    let cases = [
        (json!("AB"), 3),
        (json!("ABCD"), 1),
        (json!("ab"), 1),
        (json!("abc"), 0),
    ];
    for (v, expected) in cases {
        let n = t
            .validate_inputs(&obj(json!({ "several": v })))
            .err()
            .map_or(0, |e| e.len());
        assert_eq!(n, expected, "several = {v}");
    }
}

#[test]
fn integer_bounds_are_exact_even_beyond_float_precision() {
    let t = one_input("type: integer\nconstraints:\n  - less_than: 9223372036854775807\n");
    assert!(validate_x(&t, json!(9_223_372_036_854_775_806_i64)).is_ok());
    assert!(validate_x(&t, json!(i64::MAX)).is_err());
    let t = one_input("type: integer\nconstraints:\n  - equal: 9007199254740993\n");
    assert!(validate_x(&t, json!(9_007_199_254_740_992_i64)).is_err());
    assert!(validate_x(&t, json!(9_007_199_254_740_993_i64)).is_ok());
}

#[test]
fn in_range_accepts_an_unbounded_upper_bound() {
    let t = one_input("type: integer\nconstraints:\n  - in_range: [1, UNBOUNDED]\n");
    assert!(validate_x(&t, json!(1)).is_ok());
    assert!(validate_x(&t, json!(i64::MAX)).is_ok());
    let err = validate_x(&t, json!(0)).unwrap_err();
    assert!(
        err[0]
            .message
            .contains("must be in the range [1, UNBOUNDED], got 0"),
        "{err:?}"
    );
    // Only the upper bound may be unbounded.
    let err = Template::parse(&common::with_inputs(
        "x:\n  type: integer\n  constraints:\n    - in_range: [UNBOUNDED, 1]\n",
    ))
    .unwrap_err();
    assert_eq!((err.line, err.column), (Some(7), Some(22)), "{err}");
}

#[test]
fn equal_on_a_list_or_map_compares_the_whole_value() {
    let t = one_input("type: list\nentry_schema: integer\nconstraints:\n  - equal: [1, 2]\n");
    assert!(validate_x(&t, json!([1, 2])).is_ok());
    assert!(
        validate_x(&t, json!(["1", 2])).is_ok(),
        "entries are normalised first"
    );
    assert!(validate_x(&t, json!([2, 1])).is_err());
    assert!(validate_x(&t, json!([1, 2, 3])).is_err());
    let t = one_input("type: map\nconstraints:\n  - equal: {a: 1}\n");
    assert!(validate_x(&t, json!({"a": 1})).is_ok());
    assert!(validate_x(&t, json!({"a": 2})).is_err());
}

#[test]
fn valid_values_of_lists_compare_whole_lists() {
    let t = one_input(
        "type: list\nentry_schema: float\nconstraints:\n  - valid_values: [[1, 2], [3]]\n",
    );
    assert!(validate_x(&t, json!([1.0, 2.0])).is_ok());
    assert!(validate_x(&t, json!([3])).is_ok());
    assert!(validate_x(&t, json!([1])).is_err());
}

#[test]
fn a_constraint_that_cannot_apply_to_the_type_is_refused_when_parsing() {
    let cases = [
        (
            "type: integer\nconstraints:\n  - min_length: 1\n",
            "'min_length'",
        ),
        ("type: boolean\nconstraints:\n  - length: 1\n", "'length'"),
        (
            "type: integer\nconstraints:\n  - pattern: \"[0-9]+\"\n",
            "'pattern'",
        ),
        (
            "type: list\nconstraints:\n  - pattern: \"a\"\n",
            "'pattern'",
        ),
        (
            "type: list\nconstraints:\n  - greater_than: [1]\n",
            "'greater_than'",
        ),
        (
            "type: map\nconstraints:\n  - in_range: [{}, {}]\n",
            "'in_range'",
        ),
        (
            "type: range\nconstraints:\n  - less_than: [1, 2]\n",
            "'less_than'",
        ),
    ];
    for (definition, operator) in cases {
        let indented: String = definition.lines().map(|l| format!("  {l}\n")).collect();
        let err = Template::parse(&common::with_inputs(&format!("x:\n{indented}"))).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Tosca, "{definition}");
        assert_eq!(
            (err.line, err.column),
            (Some(7), Some(11)),
            "{definition}: {err}"
        );
        assert!(
            err.message.contains(operator) && err.message.contains("does not apply"),
            "{definition}: {err}"
        );
    }
    // Lengths do apply to strings, lists and maps; order to scalar units.
    one_input("type: list\nconstraints:\n  - max_length: 2\n");
    one_input("type: map\nconstraints:\n  - min_length: 1\n");
    one_input("type: scalar-unit.size\nconstraints:\n  - less_than: 1 GB\n");
}

#[test]
fn operands_must_be_values_of_the_input_type() {
    let cases = [
        ("type: integer\nconstraints:\n  - equal: three\n", (7, 18)),
        (
            "type: scalar-unit.size\nconstraints:\n  - less_than: 4\n",
            (7, 22),
        ),
        (
            "type: version\nconstraints:\n  - valid_values: [\"1.0\", latest]\n",
            (7, 33),
        ),
        (
            "type: list\nentry_schema: integer\nconstraints:\n  - equal: [1, x]\n",
            (8, 22),
        ),
    ];
    for (definition, (line, column)) in cases {
        let indented: String = definition.lines().map(|l| format!("  {l}\n")).collect();
        let err = Template::parse(&common::with_inputs(&format!("x:\n{indented}"))).unwrap_err();
        assert_eq!(
            (err.line, err.column),
            (Some(line), Some(column)),
            "{definition}: {err}"
        );
        assert!(
            err.message.contains("has an operand that is not of type"),
            "{err}"
        );
    }
}

#[test]
fn constraints_apply_to_defaults_when_the_template_is_parsed() {
    for (definition, ok) in [
        (
            "type: integer\ndefault: 3\nconstraints:\n  - in_range: [1, 3]\n",
            true,
        ),
        (
            "type: integer\ndefault: 4\nconstraints:\n  - in_range: [1, 3]\n",
            false,
        ),
        (
            "type: string\ndefault: ab\nconstraints:\n  - min_length: 3\n",
            false,
        ),
    ] {
        let indented: String = definition.lines().map(|l| format!("  {l}\n")).collect();
        let r = Template::parse(&common::with_inputs(&format!("x:\n{indented}")));
        assert_eq!(r.is_ok(), ok, "{definition}: {:?}", r.err());
        if let Err(e) = r {
            assert_eq!((e.line, e.column), (Some(6), Some(16)), "{e}");
            assert!(e.message.starts_with("the default of input 'x' "), "{e}");
        }
    }
}
