//! The `Authorization` header builder, checked against a port of IM's own parser
//! (`parse_auth_header`, itself checked on the examples of IM's documentation).

use std::collections::BTreeMap;

use im_client::{parse_auth_header, AuthHeader};

fn line(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_password_header_reads_as_in_ims_documentation() {
    let auth = AuthHeader::with_password("alice", "s3cret");
    assert_eq!(
        auth.to_header_value(),
        "id = im; type = InfrastructureManager; username = alice; password = s3cret"
    );
}

#[test]
fn a_token_header_has_the_token_on_the_im_line() {
    let auth = AuthHeader::with_token("eyJhbGciOi.payload.sig");
    assert_eq!(
        auth.to_header_value(),
        "id = im; type = InfrastructureManager; token = eyJhbGciOi.payload.sig"
    );
}

#[test]
fn lines_are_joined_with_backslash_n_not_a_newline() {
    let auth = AuthHeader::with_password("u", "p").cloud("id = dummy; type = Dummy");
    let value = auth.to_header_value();
    assert_eq!(
        value,
        "id = im; type = InfrastructureManager; username = u; password = p\\nid = dummy; type = Dummy"
    );
    assert!(!value.contains('\n'));
    assert_eq!(
        parse_auth_header(&value),
        vec![
            line(&[
                ("id", "im"),
                ("type", "InfrastructureManager"),
                ("username", "u"),
                ("password", "p")
            ]),
            line(&[("id", "dummy"), ("type", "Dummy")]),
        ]
    );
}

#[test]
fn a_newline_inside_a_value_travels_as_backslash_backslash_n() {
    let pem = "-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----";
    let auth = AuthHeader::with_password("u", "p").cloud_fields(&[
        ("id", "ssh"),
        ("type", "SSH"),
        ("private_key", pem),
    ]);
    let value = auth.to_header_value();
    assert!(
        value.contains("-----BEGIN KEY-----\\\\nAAAA\\\\nBBBB"),
        "{value}"
    );
    assert!(!value.contains('\n'));
    let parsed = parse_auth_header(&value);
    assert_eq!(parsed[1]["private_key"], pem);
}

#[test]
fn a_raw_cloud_line_with_a_newline_is_escaped_too() {
    let auth = AuthHeader::with_token("t").cloud("id = a; type = B; key = x\ny");
    assert!(!auth.to_header_value().contains('\n'));
    assert_eq!(parse_auth_header(&auth.to_header_value())[1]["key"], "x\ny");
}

#[test]
fn values_with_separators_or_quotes_are_quoted() {
    for (value, encoded) in [
        ("pass;word", "'pass;word'"),
        ("abc==", "'abc=='"),
        ("it's", "\"it's\""),
        ("say \"hi\"", "'say \"hi\"'"),
        ("ends with\\", "'ends with\\'"),
        ("", "''"),
        ("plain", "plain"),
    ] {
        let header = AuthHeader::with_password("u", value).to_header_value();
        assert!(
            header.ends_with(&format!("password = {encoded}")),
            "{value:?} -> {header}"
        );
        assert_eq!(parse_auth_header(&header)[0]["password"], value);
    }
}

#[test]
fn values_with_both_quote_kinds_survive() {
    let value = "a'b\"c;d=e'";
    let header = AuthHeader::with_password(value, value).to_header_value();
    let parsed = &parse_auth_header(&header)[0];
    assert_eq!(parsed["username"], value);
    assert_eq!(parsed["password"], value);
}

/// Every short value over an alphabet of troublemakers comes back as IM reads it: the
/// value trimmed (IM trims), except for the two sequences no quoting can carry.
#[test]
fn every_short_value_round_trips_through_ims_parser() {
    let alphabet = ['a', ';', '=', '\'', '"', '\\', ' ', 'n', '\n', '#'];
    let mut checked = 0;
    for len in 0..=4u32 {
        for mut code in 0..alphabet.len().pow(len) {
            let mut value = String::new();
            for _ in 0..len {
                value.push(alphabet[code % alphabet.len()]);
                code /= alphabet.len();
            }
            if value.contains("\\n") {
                continue;
            }
            let header = AuthHeader::with_password("u", &value)
                .cloud("id = dummy; type = Dummy")
                .to_header_value();
            let parsed = parse_auth_header(&header);
            assert_eq!(parsed.len(), 2, "{value:?} -> {header}");
            assert_eq!(
                parsed[0].get("password").map(String::as_str),
                Some(value.trim()),
                "{value:?} -> {header}"
            );
            assert_eq!(parsed[1]["type"], "Dummy", "{value:?} -> {header}");
            checked += 1;
        }
    }
    assert!(checked > 5000);
}

#[test]
fn the_parser_reads_the_examples_of_ims_documentation() {
    let parsed = parse_auth_header(
        "type = InfrastructureManager; username = user; password = 'pass;test'\\n\
         type = VMRC; host = http://server:8080/vmrc; username = user; password = \"pass';test\"\\n\
         # a comment\\n\
         id=ost;type=OpenStack;host=oshost:8773;username=ACCESS_KEY;key=SECRET_KEY",
    );
    assert_eq!(parsed.len(), 3);
    assert_eq!(parsed[0]["password"], "pass;test");
    assert_eq!(parsed[1]["password"], "pass';test");
    assert_eq!(parsed[1]["host"], "http://server:8080/vmrc");
    assert_eq!(parsed[2]["key"], "SECRET_KEY");
}

#[test]
fn the_parser_reads_the_json_form() {
    let parsed = parse_auth_header(
        r#"[{"id":"im","type":"InfrastructureManager","username":"u","password":"p"},{"id":"dummy","type":"Dummy"}]"#,
    );
    assert_eq!(parsed[0]["username"], "u");
    assert_eq!(parsed[1]["type"], "Dummy");
}

#[test]
fn from_lines_keeps_the_lines_as_written() {
    let auth = AuthHeader::from_lines(&["id = dummy; type = Dummy", "id = x; type = Y"]);
    assert_eq!(
        auth.to_header_value(),
        "id = dummy; type = Dummy\\nid = x; type = Y"
    );
}

#[test]
fn debug_shows_ids_and_types_but_no_secret() {
    let auth = AuthHeader::with_password("alice", "s3cret-pw")
        .cloud("id = ost; type = OpenStack; host = https://keystone; password = tok-XYZ");
    let debug = format!("{auth:?}");
    for secret in ["alice", "s3cret-pw", "tok-XYZ"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    for shown in ["InfrastructureManager", "OpenStack", "ost"] {
        assert!(debug.contains(shown), "{debug}");
    }
    let debug = format!("{:?}", AuthHeader::with_token("eyJ.secret.token"));
    assert!(!debug.contains("eyJ"), "{debug}");
}
