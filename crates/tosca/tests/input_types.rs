//! Every TOSCA input type accepts its valid values (normalised: numbers and
//! booleans sent as strings become typed) and rejects invalid ones with a
//! violation at the input's JSON pointer.

mod common;

use common::{obj, one_input, parse_fixture, pointers, validate_x};
use serde_json::{json, Value};
use tosca::{Template, Violation};

fn every_type() -> Template {
    parse_fixture("every_input_type.yaml")
}

/// Validates one input of the every-type fixture.
fn check(t: &Template, name: &str, value: Value) -> Result<Value, Vec<Violation>> {
    t.validate_inputs(&obj(json!({ name: value })))
        .map(|r| r.values()[name].clone())
}

fn accepts(name: &str, cases: &[(Value, Value)]) {
    let t = every_type();
    for (given, normalised) in cases {
        match check(&t, name, given.clone()) {
            Ok(v) => assert_eq!(&v, normalised, "{name} = {given}"),
            Err(e) => panic!("{name} = {given} was refused: {e:?}"),
        }
    }
}

fn rejects(name: &str, cases: &[(Value, &str)]) {
    let t = every_type();
    for (given, message) in cases {
        match check(&t, name, given.clone()) {
            Ok(v) => panic!("{name} = {given} was accepted as {v}"),
            Err(violations) => {
                assert_eq!(violations.len(), 1, "{name} = {given}: {violations:?}");
                assert_eq!(
                    violations[0].pointer,
                    format!("/{name}"),
                    "{name} = {given}"
                );
                assert!(
                    violations[0]
                        .message
                        .starts_with(&format!("input '{name}' ")),
                    "{name} = {given}: {}",
                    violations[0].message
                );
                assert!(
                    violations[0].message.contains(message),
                    "{name} = {given}: {}",
                    violations[0].message
                );
            }
        }
    }
}

#[test]
fn string_accepts_any_text_and_nothing_else() {
    accepts(
        "a_string",
        &[
            (json!("abc"), json!("abc")),
            (json!(""), json!("")),
            (json!("42"), json!("42")),
            (json!("ünïcödé ✓"), json!("ünïcödé ✓")),
        ],
    );
    rejects(
        "a_string",
        &[
            (json!(42), "must be a string, got 42"),
            (json!(true), "must be a string, got true"),
            (json!(null), "must be a string, got null"),
            (json!(["a"]), "must be a string"),
            (json!({"a": 1}), "must be a string"),
        ],
    );
}

#[test]
fn integer_accepts_whole_numbers_and_their_text() {
    accepts(
        "an_integer",
        &[
            (json!(5), json!(5)),
            (json!(-3), json!(-3)),
            (json!(0), json!(0)),
            (json!("42"), json!(42)),
            (json!(" 7 "), json!(7)),
            (json!("-12"), json!(-12)),
            (json!(3.0), json!(3)),
            (json!(i64::MAX), json!(i64::MAX)),
            (json!(i64::MIN), json!(i64::MIN)),
        ],
    );
    rejects(
        "an_integer",
        &[
            (json!(3.5), "must be an integer, got 3.5"),
            (json!("3.5"), "must be an integer"),
            (json!("abc"), "must be an integer"),
            (json!(""), "must be an integer"),
            (json!(true), "must be an integer"),
            (json!(null), "must be an integer"),
            (json!(u64::MAX), "must be an integer"),
            (json!("9223372036854775808"), "must be an integer"),
            (json!([1]), "must be an integer"),
        ],
    );
}

#[test]
fn float_accepts_numbers_and_their_text_as_floats() {
    accepts(
        "a_float",
        &[
            (json!(1.5), json!(1.5)),
            (json!(2), json!(2.0)),
            (json!(-0.25), json!(-0.25)),
            (json!("2.5"), json!(2.5)),
            (json!("1e3"), json!(1000.0)),
        ],
    );
    rejects(
        "a_float",
        &[
            (json!("NaN"), "must be a number"),
            (json!("inf"), "must be a number"),
            (json!("abc"), "must be a number"),
            (json!(true), "must be a number"),
            (json!(null), "must be a number"),
        ],
    );
    // A float input normalises to a JSON float, never an integer.
    let v = check(&every_type(), "a_float", json!(2)).unwrap();
    assert!(v.is_f64(), "{v}");
}

#[test]
fn boolean_accepts_true_and_false_in_any_case() {
    accepts(
        "a_boolean",
        &[
            (json!(true), json!(true)),
            (json!(false), json!(false)),
            (json!("true"), json!(true)),
            (json!("False"), json!(false)),
            (json!("TRUE"), json!(true)),
        ],
    );
    rejects(
        "a_boolean",
        &[
            (json!("yes"), "must be true or false, got \"yes\""),
            (json!("1"), "must be true or false"),
            (json!(1), "must be true or false"),
            (json!(null), "must be true or false"),
        ],
    );
}

#[test]
fn timestamp_accepts_iso_8601_and_yaml_timestamps() {
    let valid = [
        "2024-01-31T10:00:00Z",
        "2024-01-31T10:00:00.123+01:00",
        "2024-01-31",
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14 21:59:43.10 -05:00",
        "2001-12-14 21:59:43.10 -5",
        "2001-12-14 21:59:43.10",
        "2001-12-15 2:59:43.10",
        "2001-12-14T21:59:43+0530",
        "2024-01-31T10:00:00 Z",
        "2002-12-14T00:00:00",
    ];
    let cases: Vec<(Value, Value)> = valid.iter().map(|v| (json!(v), json!(v))).collect();
    accepts("a_timestamp", &cases);
    rejects(
        "a_timestamp",
        &[
            (json!("2024-02-30"), "is not a timestamp"),
            (json!("2024-13-01T00:00:00Z"), "is not a timestamp"),
            (json!("2024-01-31T25:00:00Z"), "is not a timestamp"),
            (json!("2024-01-31T10:00:00+25:00"), "is not a timestamp"),
            (json!("2024-01-31T10:00"), "is not a timestamp"),
            (json!("2024-1-31"), "is not a timestamp"),
            (json!("31/01/2024"), "is not a timestamp"),
            (json!("yesterday"), "is not a timestamp"),
            (json!(""), "is not a timestamp"),
            (json!(1_700_000_000), "must be a timestamp string"),
        ],
    );
}

#[test]
fn version_accepts_major_minor_fix_qualifier_and_build() {
    accepts(
        "a_version",
        &[
            (json!("1.0"), json!("1.0")),
            (json!("2.10.3"), json!("2.10.3")),
            (json!("1.2.3.beta-4"), json!("1.2.3.beta-4")),
            (json!("1.2.3.rc1"), json!("1.2.3.rc1")),
            (json!(1.2), json!("1.2")),
        ],
    );
    rejects(
        "a_version",
        &[
            (json!("1"), "is not a version"),
            (json!("v1.0"), "is not a version"),
            (json!("1.0."), "is not a version"),
            (json!("1.0.0.beta-x"), "is not a version"),
            (json!("1.2.3.4.5"), "is not a version"),
            (json!("99999999999999999999.1"), "is not a version"),
            (json!("1.0.0.rc-99999999999999999999"), "is not a version"),
            (json!(""), "is not a version"),
            (json!(1), "is not a version"),
            (json!(true), "must be a version string"),
        ],
    );
}

#[test]
fn range_accepts_two_ordered_integer_bounds_with_an_unbounded_top() {
    accepts(
        "a_range",
        &[
            (json!([1, 5]), json!([1, 5])),
            (json!([3, 3]), json!([3, 3])),
            (json!([0, "UNBOUNDED"]), json!([0, "UNBOUNDED"])),
            (json!([-5, -1]), json!([-5, -1])),
        ],
    );
    rejects(
        "a_range",
        &[
            (json!([5, 1]), "lower bound above its upper bound"),
            (json!(["UNBOUNDED", 5]), "lower bound cannot be UNBOUNDED"),
            (json!([1]), "must be a range [min, max]"),
            (json!([1, 2, 3]), "must be a range [min, max]"),
            (
                json!([1.5, 2]),
                "range bounds must be integers or UNBOUNDED",
            ),
            (
                json!([1, "unbounded"]),
                "range bounds must be integers or UNBOUNDED",
            ),
            (json!("1-5"), "must be a range [min, max]"),
        ],
    );
}

#[test]
fn list_checks_and_normalises_every_entry_against_its_schema() {
    accepts(
        "a_list_of_integers",
        &[
            (json!([]), json!([])),
            (json!([1, "2", 3.0]), json!([1, 2, 3])),
        ],
    );
    rejects("a_list_of_integers", &[(json!("1,2"), "must be a list")]);
    let t = every_type();
    let err = check(&t, "a_list_of_integers", json!([1, "x", 3, true])).unwrap_err();
    assert_eq!(
        pointers(&err),
        ["/a_list_of_integers/1", "/a_list_of_integers/3"]
    );
    assert_eq!(
        err[0].message,
        "input 'a_list_of_integers' entry 1 must be an integer, got \"x\""
    );
}

#[test]
fn entry_schema_constraints_apply_to_each_entry() {
    let t = every_type();
    assert!(check(&t, "a_list_of_sizes", json!(["1 GB", "1 TB"])).is_ok());
    let err = check(&t, "a_list_of_sizes", json!(["1 GB", "2 TB", "1.5 TB"])).unwrap_err();
    assert_eq!(pointers(&err), ["/a_list_of_sizes/1", "/a_list_of_sizes/2"]);
    assert!(
        err[0]
            .message
            .contains("must be less than or equal to 1 TB, got 2 TB"),
        "{err:?}"
    );
}

#[test]
fn map_checks_every_value_with_keys_escaped_in_the_pointer() {
    accepts(
        "a_map_of_strings",
        &[
            (json!({}), json!({})),
            (json!({"a": "b", "c": "d"}), json!({"a": "b", "c": "d"})),
        ],
    );
    rejects(
        "a_map_of_strings",
        &[
            (json!(["a"]), "must be a map"),
            (json!("a=b"), "must be a map"),
        ],
    );
    let t = every_type();
    let err = check(&t, "a_map_of_strings", json!({"ok": "x", "a/b~c": 1})).unwrap_err();
    assert_eq!(pointers(&err), ["/a_map_of_strings/a~1b~0c"]);
    assert_eq!(
        err[0].message,
        "input 'a_map_of_strings' entry 'a/b~c' must be a string, got 1"
    );
}

#[test]
fn scalar_unit_size_accepts_every_size_unit_in_any_case() {
    let valid = [
        "4 GB", "4GB", "512 MiB", "1.5 TB", "0 B", "10 kB", "10 KiB", "2 TiB", "3 GiB", "7 mb",
    ];
    let cases: Vec<(Value, Value)> = valid.iter().map(|v| (json!(v), json!(v))).collect();
    accepts("a_size", &cases);
    rejects(
        "a_size",
        &[
            (json!("4"), "is not a size"),
            (json!("GB"), "is not a size"),
            (json!("4 GBs"), "is not a unit of size"),
            (json!("4 s"), "is not a unit of size"),
            (json!("-1 GB"), "must not be negative"),
            (json!(4), "must be a scalar-unit.size string"),
        ],
    );
}

#[test]
fn scalar_unit_time_accepts_every_time_unit() {
    let valid = [
        "30 s", "2 h", "1.5 d", "100 ms", "10 us", "5 ns", "1 m", "90s",
    ];
    let cases: Vec<(Value, Value)> = valid.iter().map(|v| (json!(v), json!(v))).collect();
    accepts("a_time", &cases);
    rejects(
        "a_time",
        &[
            (json!("30"), "is not a time"),
            (json!("30 sec"), "is not a unit of time"),
            (json!("30 min"), "is not a unit of time"),
            (json!("1 GB"), "is not a unit of time"),
            (json!(30), "must be a scalar-unit.time string"),
        ],
    );
}

#[test]
fn scalar_unit_frequency_accepts_every_frequency_unit() {
    let valid = ["2.4 GHz", "100 MHz", "1 kHz", "50 Hz", "3 ghz"];
    let cases: Vec<(Value, Value)> = valid.iter().map(|v| (json!(v), json!(v))).collect();
    accepts("a_frequency", &cases);
    rejects(
        "a_frequency",
        &[
            (json!("2.4"), "is not a frequency"),
            (json!("2.4 G"), "is not a unit of frequency"),
            (json!("2.4 GB"), "is not a unit of frequency"),
            (json!(2.4), "must be a scalar-unit.frequency string"),
        ],
    );
}

#[test]
fn a_complex_data_type_checks_its_properties_and_applies_their_defaults() {
    accepts(
        "a_volume",
        &[
            (
                json!({"size": "10 GB"}),
                json!({"size": "10 GB", "mount_path": "/data"}),
            ),
            (
                json!({"size": "10 GB", "mount_path": "/scratch", "read_only": "true"}),
                json!({"size": "10 GB", "mount_path": "/scratch", "read_only": true}),
            ),
        ],
    );
    rejects(
        "a_volume",
        &[(json!("10 GB"), "must be a map of the properties")],
    );
    let t = every_type();
    let missing = check(&t, "a_volume", json!({})).unwrap_err();
    assert_eq!(pointers(&missing), ["/a_volume/size"]);
    assert!(missing[0]
        .message
        .contains("is missing required property 'size'"));
    let small = check(&t, "a_volume", json!({"size": "500 MB"})).unwrap_err();
    assert_eq!(pointers(&small), ["/a_volume/size"]);
    assert!(small[0]
        .message
        .contains("must be greater than or equal to 1 GB"));
    let extra = check(&t, "a_volume", json!({"size": "1 GB", "colour": "red"})).unwrap_err();
    assert_eq!(pointers(&extra), ["/a_volume/colour"]);
    assert!(extra[0].message.contains("does not declare"), "{extra:?}");
}

#[test]
fn a_data_type_derived_from_a_primitive_inherits_its_constraints() {
    accepts(
        "a_port",
        &[
            (json!(1), json!(1)),
            (json!(443), json!(443)),
            (json!("8080"), json!(8080)),
            (json!(65535), json!(65535)),
        ],
    );
    rejects(
        "a_port",
        &[
            (json!(0), "must be in the range [1, 65535], got 0"),
            (json!(65536), "must be in the range [1, 65535], got 65536"),
            (json!("http"), "must be an integer"),
        ],
    );
}

#[test]
fn nested_data_types_in_a_map_report_the_full_pointer() {
    let t = every_type();
    let err = check(
        &t,
        "a_map_of_volumes",
        json!({"data": {"size": "1 GB"}, "bad": {"size": "x"}, "worse": 3}),
    )
    .unwrap_err();
    assert_eq!(
        pointers(&err),
        ["/a_map_of_volumes/bad/size", "/a_map_of_volumes/worse"]
    );
}

#[test]
fn normative_complex_data_types_accept_their_properties() {
    let t = one_input("type: map\nentry_schema:\n  type: tosca.datatypes.network.PortSpec\n");
    let ports = json!({"ssh": {"protocol": "tcp", "source": 22}, "https": {"protocol": "tcp", "source": 443, "remote_cidr": "0.0.0.0/0"}});
    assert_eq!(validate_x(&t, ports.clone()).unwrap(), ports);
    let err = validate_x(&t, json!({"ssh": 22})).unwrap_err();
    assert_eq!(pointers(&err), ["/x/ssh"]);
    let t = one_input("type: tosca.datatypes.Credential\n");
    assert!(validate_x(
        &t,
        json!({"user": "u", "token": "t", "token_type": "password"})
    )
    .is_ok());
}

#[test]
fn a_type_extending_a_normative_complex_type_checks_only_what_it_declares() {
    let t = common::parse(
        "tosca_definitions_version: tosca_simple_yaml_1_3
data_types:
  my.PortSpec:
    derived_from: tosca.datatypes.network.PortSpec
    properties:
      remote_cidr:
        type: string
        default: 0.0.0.0/0
topology_template:
  inputs:
    x:
      type: my.PortSpec
",
    );
    assert_eq!(
        validate_x(&t, json!({"protocol": "udp", "source": 53})).unwrap(),
        json!({"protocol": "udp", "source": 53, "remote_cidr": "0.0.0.0/0"})
    );
    let err = validate_x(&t, json!({"protocol": "udp", "remote_cidr": 10})).unwrap_err();
    assert_eq!(pointers(&err), ["/x/remote_cidr"]);
}

#[test]
fn a_data_type_inherits_properties_from_its_parents_and_may_override_them() {
    let t = common::parse(
        "tosca_definitions_version: tosca_simple_yaml_1_3
data_types:
  my.Base:
    derived_from: tosca.datatypes.Root
    properties:
      name: {type: string}
      size: {type: integer}
  my.Child:
    derived_from: my.Base
    properties:
      size: {type: string}
      extra: {type: boolean, required: false}
topology_template:
  inputs:
    x:
      type: my.Child
",
    );
    assert!(validate_x(&t, json!({"name": "n", "size": "big"})).is_ok());
    let err = validate_x(&t, json!({"size": 3, "extra": "no"})).unwrap_err();
    // The nearest type's properties first, then the inherited ones.
    assert_eq!(pointers(&err), ["/x/size", "/x/extra", "/x/name"]);
}

#[test]
fn null_is_its_own_type() {
    let t = one_input("type: \"null\"\nrequired: false\n");
    assert_eq!(validate_x(&t, json!(null)).unwrap(), json!(null));
    assert!(validate_x(&t, json!(0)).is_err());
}

#[test]
fn scalar_unit_bitrate_is_supported_too() {
    let t = one_input("type: scalar-unit.bitrate\nconstraints:\n  - greater_than: 1 Mbps\n");
    assert!(validate_x(&t, json!("10 Mbps")).is_ok());
    assert!(validate_x(&t, json!("2 Gibps")).is_ok());
    assert!(validate_x(&t, json!("999 kbps")).is_err());
    assert!(validate_x(&t, json!("10 MB")).is_err());
}

#[test]
fn a_port_def_is_a_port_number_from_1_to_65535() {
    let t = parse_fixture("versions/tosca_1_1.yaml");
    let check = |port: Value| {
        t.validate_inputs(&obj(json!({"db_name": "orders", "db_port": port})))
            .map(|r| r.values()["db_port"].clone())
    };
    assert_eq!(check(json!(1)).unwrap(), json!(1));
    assert_eq!(check(json!("5432")).unwrap(), json!(5432));
    assert_eq!(check(json!(65535)).unwrap(), json!(65535));
    for bad in [json!(0), json!(65536), json!(-22)] {
        let err = check(bad.clone()).unwrap_err();
        assert_eq!(pointers(&err), ["/db_port"], "{bad}");
        assert!(
            err[0].message.contains("must be in the range [1, 65535]"),
            "{err:?}"
        );
    }
}
