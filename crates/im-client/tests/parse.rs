//! The response readers, on bodies recorded from a real IM 2.0.0 (see
//! `/work/shared/reference/im.md`).

use im_client::parse;
use im_client::{ImError, InfraState};
use serde_json::json;

const VM_INFO: &str = r#"{"radl":[{"class":"network","id":"private_net","outbound":"no"},{"class":"system","id":"simple_node","instance_name":"simple_node","disk.0.os.name":"linux","cpu.count_min":1,"memory.size_min":1000000000,"net_interface.0.connection":"private_net","state":"configured","provider.type":"Dummy","net_interface.0.ip":"10.0.0.1","disk.0.os.credentials.username":"username","disk.0.os.credentials.password":"password","disk.0.os.credentials.new.password":"M2PIBxVL","net_interface.0.dns_name":"vnode-1","net_interface.0.dns.0.name":"vnode-1"}]}"#;

#[test]
fn the_state_report_is_read_from_under_the_second_state() {
    let report = parse::state_report(
        br#"{"state":{"state":"stopped","vm_states":{"0":"stopped","1":"configured"}}}"#,
    )
    .unwrap();
    assert_eq!(report.state, InfraState::Stopped);
    assert_eq!(report.vm_states["0"], InfraState::Stopped);
    assert_eq!(report.vm_states["1"], InfraState::Configured);
}

#[test]
fn a_failed_launch_has_no_vm_states() {
    let report = parse::state_report(br#"{"state":{"state":"failed","vm_states":{}}}"#).unwrap();
    assert_eq!(report.state, InfraState::Failed);
    assert!(report.vm_states.is_empty());
}

#[test]
fn a_single_level_state_is_a_protocol_error() {
    let err = parse::state_report(br#"{"state":"configured"}"#).unwrap_err();
    assert!(matches!(err, ImError::Protocol(_)), "{err:?}");
}

#[test]
fn every_state_name_round_trips_and_strangers_are_unknown() {
    for state in InfraState::ALL {
        assert_eq!(InfraState::parse(state.as_str()), state);
        assert_eq!(state.to_string(), state.as_str());
    }
    assert_eq!(InfraState::parse("exploding"), InfraState::Unknown);
    assert_eq!(InfraState::parse("Configured"), InfraState::Unknown);
}

#[test]
fn the_created_id_comes_from_the_infid_header() {
    let id = parse::created_infra_id(
        Some("624ecdee-eadc-11f1-b259-02fc00000001"),
        br#"{"uri":"http://127.0.0.1:47289/infrastructures/other"}"#,
    )
    .unwrap();
    assert_eq!(id.0, "624ecdee-eadc-11f1-b259-02fc00000001");
}

#[test]
fn without_infid_the_created_id_is_the_last_segment_of_the_uri() {
    let id = parse::created_infra_id(
        None,
        br#"{"uri":"http://127.0.0.1:47289/infrastructures/624ecdee-eadc-11f1-b259-02fc00000001"}"#,
    )
    .unwrap();
    assert_eq!(id.to_string(), "624ecdee-eadc-11f1-b259-02fc00000001");
    let err = parse::created_infra_id(None, b"").unwrap_err();
    assert!(matches!(err, ImError::Protocol(_)), "{err:?}");
}

#[test]
fn vm_ids_are_the_last_segments_of_the_uri_list() {
    let ids = parse::uri_list_ids(
        br#"{"uri-list":[{"uri":"http://h/infrastructures/x/vms/0"},{"uri":"http://h/infrastructures/x/vms/12"}]}"#,
    )
    .unwrap();
    assert_eq!(ids, ["0", "12"]);
    assert!(parse::uri_list_ids(br#"{"uri-list":[]}"#)
        .unwrap()
        .is_empty());
}

#[test]
fn vm_info_binds_the_vm_to_its_tosca_node() {
    let info = parse::vm_info("0", VM_INFO.as_bytes()).unwrap();
    assert_eq!(info.vm_id, "0");
    assert_eq!(info.node_name.as_deref(), Some("simple_node"));
    assert_eq!(info.state, InfraState::Configured);
    assert_eq!(info.properties.len(), 2);
    assert_eq!(
        info.system_property("net_interface.0.ip"),
        Some(&json!("10.0.0.1"))
    );
    assert_eq!(info.system().map(|s| s.len()), Some(15));
}

#[test]
fn vm_info_without_a_system_entry_has_no_node_and_an_unknown_state() {
    let info = parse::vm_info("3", br#"{"radl":[{"class":"network","id":"n"}]}"#).unwrap();
    assert_eq!(info.node_name, None);
    assert_eq!(info.state, InfraState::Unknown);
    assert_eq!(info.system(), None);
}

#[test]
fn outputs_keep_nulls() {
    let outputs =
        parse::outputs(br#"{"outputs":{"node_ip":"10.0.0.1","node_public_ip":null}}"#).unwrap();
    assert_eq!(outputs["node_ip"], json!("10.0.0.1"));
    assert_eq!(outputs["node_public_ip"], json!(null));
    assert!(parse::outputs(br#"{"outputs":null}"#).unwrap().is_empty());
}

#[test]
fn contmsg_and_version_are_read() {
    assert_eq!(
        parse::contmsg(
            br#"{"contmsg":"Contextualization disabled by the RADL/TOSCA template.\n\n"}"#
        )
        .unwrap(),
        "Contextualization disabled by the RADL/TOSCA template.\n\n"
    );
    assert_eq!(parse::version(br#"{"version":"2.0.0"}"#).unwrap(), "2.0.0");
    assert_eq!(parse::version(b"2.0.0\n").unwrap(), "2.0.0");
    assert!(parse::version(b"<html>oops</html> page").is_err());
}

fn error(status: u16, body: &str) -> ImError {
    parse::error(status, body.as_bytes())
}

/// The variant and status of an error, to compare in tables.
fn kind(err: &ImError) -> (&'static str, Option<u16>) {
    match err {
        ImError::Unreachable(_) => ("Unreachable", None),
        ImError::Server { status, .. } => ("Server", Some(*status)),
        ImError::Unauthorized { .. } => ("Unauthorized", None),
        ImError::Forbidden { .. } => ("Forbidden", None),
        ImError::NotFound { .. } => ("NotFound", None),
        ImError::Conflict { .. } => ("Conflict", None),
        ImError::Rejected { status, .. } => ("Rejected", Some(*status)),
        ImError::Protocol(_) => ("Protocol", None),
    }
}

#[test]
fn ims_error_bodies_map_to_what_the_caller_does_next() {
    let cases = [
        (
            401,
            r#"{"message":"No authentication data provided","code":401}"#,
            ("Unauthorized", None),
        ),
        (
            401,
            r#"{"message":"Error Creating Inf.: No credentials provided for the InfrastructureManager.","code":401}"#,
            ("Unauthorized", None),
        ),
        (
            400,
            r#"{"message":"Error Getting Inf. prop: No credentials provided for the InfrastructureManager.","code":400}"#,
            ("Unauthorized", None),
        ),
        (
            403,
            r#"{"message":"Error Getting Inf. prop: Access to this infrastructure not granted.","code":403}"#,
            ("Forbidden", None),
        ),
        (
            404,
            r#"{"message":"Error Getting Inf. prop: Invalid infrastructure ID or access not granted.","code":404}"#,
            ("NotFound", None),
        ),
        (
            404,
            r#"{"message":"Error Getting Inf. prop: Deleted infrastructure.","code":404}"#,
            ("NotFound", None),
        ),
        (
            404,
            r#"{"message":"Error Getting VM. info: Invalid VM ID","code":404}"#,
            ("NotFound", None),
        ),
        (
            409,
            r#"{"message":"Error Destroying Inf: busy","code":409}"#,
            ("Conflict", None),
        ),
        (
            415,
            r#"{"message":"Unsupported Media Type ['application/xml']","code":415}"#,
            ("Rejected", Some(415)),
        ),
        (
            400,
            r#"{"message":"Error parsing request body: Error parsing TOSCA template: while parsing a flow sequence","code":400}"#,
            ("Rejected", Some(400)),
        ),
        (
            500,
            r#"{"message":"Internal error","code":500}"#,
            ("Server", Some(500)),
        ),
        (
            504,
            r#"{"message":"Operation timed out","code":504}"#,
            ("Server", Some(504)),
        ),
        (502, "Bad Gateway", ("Server", Some(502))),
    ];
    for (status, body, expected) in cases {
        let err = error(status, body);
        assert_eq!(kind(&err), expected, "{status} {body} -> {err:?}");
    }
}

#[test]
fn only_unreachable_and_server_errors_are_transient() {
    assert!(ImError::Unreachable("x".into()).is_transient());
    assert!(error(503, "").is_transient());
    for status in [400, 401, 403, 404, 409, 415, 422] {
        assert!(
            !error(status, r#"{"message":"m","code":0}"#).is_transient(),
            "{status}"
        );
    }
    assert!(!ImError::Protocol("x".into()).is_transient());
}

#[test]
fn the_message_is_ims_text() {
    let err = error(
        403,
        r#"{"message":"Error Getting Inf. prop: Access to this infrastructure not granted.","code":403}"#,
    );
    let ImError::Forbidden { message } = err else {
        panic!("{err:?}");
    };
    assert_eq!(
        message,
        "Error Getting Inf. prop: Access to this infrastructure not granted."
    );
}

#[test]
fn fastapi_422_details_are_rejected_with_their_locations() {
    let err = error(
        422,
        r#"{"detail":[{"type":"bool_parsing","loc":["query","async"],"msg":"Input should be a valid boolean, unable to interpret input","input":"maybe"}]}"#,
    );
    let ImError::Rejected { status, message } = err else {
        panic!("{err:?}");
    };
    assert_eq!(status, 422);
    assert_eq!(
        message,
        "query.async: Input should be a valid boolean, unable to interpret input"
    );
}

#[test]
fn a_404_without_ims_body_is_a_protocol_error_not_a_deleted_infrastructure() {
    for body in [r#"{"detail":"Not Found"}"#, "", "<html>404</html>"] {
        let err = error(404, body);
        assert!(matches!(err, ImError::Protocol(_)), "{body:?} -> {err:?}");
    }
}

#[test]
fn empty_and_unexpected_answers_still_say_something() {
    let ImError::Server { message, .. } = error(503, "") else {
        panic!()
    };
    assert_eq!(message, "HTTP 503 with an empty body");
    assert!(matches!(error(302, ""), ImError::Protocol(_)));
}

#[test]
fn huge_messages_are_cut() {
    let body = json!({"message": "x".repeat(100_000), "code": 400}).to_string();
    let ImError::Rejected { message, .. } = error(400, &body) else {
        panic!()
    };
    assert!(message.chars().count() <= 16 * 1024 + 1);
    assert!(message.ends_with('…'));
}
