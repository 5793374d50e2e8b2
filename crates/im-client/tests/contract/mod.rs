//! The client test-suite, one body per behaviour, run by `tests/fake.rs` against the
//! fake IM and by `tests/real.rs` against a real IM 2.0 with the Dummy connector. A
//! behaviour the fake gets wrong fails in one binary and not the other.
//!
//! Each test uses its own IM user, so a real IM shared by the tests of a binary keeps
//! them apart. Templates carry no interfaces or artifacts: with them IM would try to
//! SSH into the Dummy VM's made-up address.

use std::any::Any;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use im_client::{AuthHeader, Im, ImClient, ImError, InfraId, InfraState, StateReport, VmAction};
use serde_json::json;

/// Generates one `#[tokio::test]` per contract body, each getting its target from
/// `$target()` (an `async fn() -> Option<Target>`; `None` skips).
macro_rules! contract_tests {
    ($target:path) => {
        contract_tests!(@each $target,
            the_version_is_reported,
            a_created_infrastructure_becomes_configured_and_binds_its_vms_to_nodes,
            outputs_resolve_addresses_and_contmsg_says_contextualization_is_disabled,
            stopping_and_starting_a_vm_changes_its_state,
            the_aggregate_state_follows_the_first_vm,
            updating_the_template_scales_a_node_up_and_down,
            input_defaults_resolve_in_properties_and_outputs,
            a_function_in_default_instances_is_rejected_with_400,
            a_destroyed_infrastructure_is_not_found_and_destroying_again_is_ok,
            a_forced_destroy_deletes_too,
            invalid_tosca_is_rejected_with_400,
            creating_without_an_im_line_is_unauthorized,
            other_calls_without_an_im_line_are_unauthorized,
            another_user_is_forbidden_and_does_not_see_the_infrastructure,
            unknown_infrastructures_and_vms_are_not_found,
            credentials_with_separators_quotes_and_newlines_reach_im_intact,
            creating_without_a_cloud_line_fails_after_the_create_call,
            a_wrong_base_path_is_a_protocol_error_and_destroy_does_not_pretend,
            state_and_outputs_refuse_an_accept_other_than_json,
            create_answers_with_an_infid_header_and_a_uri,
            vm_actions_and_delete_answer_200_with_an_empty_body,
            a_call_without_authorization_is_401,
            bad_query_parameters_get_fastapi_422_details,
        );
    };
    (@each $target:path, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                if let Some(target) = $target().await {
                    contract::$name(&target).await;
                }
            }
        )*
    };
}

/// Where the suite runs: an IM's URL, and whatever keeps that IM alive.
pub struct Target {
    pub url: String,
    _keep_alive: Box<dyn Any + Send + Sync>,
}

impl Target {
    pub fn new(url: String, keep_alive: impl Any + Send + Sync) -> Self {
        Target {
            url,
            _keep_alive: Box::new(keep_alive),
        }
    }

    pub fn client(&self) -> ImClient {
        ImClient::new(&self.url, Duration::from_secs(60)).unwrap()
    }

    /// A raw HTTP client for the quirks the typed client hides.
    fn raw(&self) -> reqwest::Client {
        reqwest::Client::new()
    }
}

pub const DUMMY: &str = "id = dummy; type = Dummy";

/// Credentials of a user of its own, with the Dummy cloud.
pub fn new_user() -> AuthHeader {
    AuthHeader::with_password(&format!("test-{}", uuid::Uuid::new_v4()), "secret").cloud(DUMMY)
}

/// One Compute node, `simple_node`, with `instances` VMs (standard `scalable`), and two
/// outputs: its private and its public address.
pub fn single_node(instances: u32) -> String {
    format!(
        r#"tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    simple_node:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {{ min_instances: 0, max_instances: 5, default_instances: {instances} }}
        host:
          properties: {{ num_cpus: 1, mem_size: 1 GB }}
        os:
          properties: {{ type: linux }}
  outputs:
    node_ip:
      value: {{ get_attribute: [ simple_node, private_address ] }}
    node_public_ip:
      value: {{ get_attribute: [ simple_node, public_address ] }}
"#
    )
}

/// Polls the state until `done` holds (30 s at most) and returns the last report.
pub async fn wait_for(
    im: &impl Im,
    auth: &AuthHeader,
    id: &InfraId,
    done: impl Fn(&StateReport) -> bool,
) -> StateReport {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let report = im.state(auth, id).await.unwrap();
        if done(&report) {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "state still {report:?} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn configured(im: &impl Im, auth: &AuthHeader, id: &InfraId) -> StateReport {
    let report = wait_for(im, auth, id, |r| {
        !matches!(r.state, InfraState::Pending | InfraState::Running)
    })
    .await;
    assert_eq!(report.state, InfraState::Configured, "{report:?}");
    report
}

/// Creates `single_node(instances)` and waits until it is configured.
pub async fn create_configured(im: &ImClient, auth: &AuthHeader, instances: u32) -> InfraId {
    let id = im.create(auth, &single_node(instances)).await.unwrap();
    configured(im, auth, &id).await;
    id
}

/// Waits until a destroyed infrastructure is gone (`NotFound`), passing through
/// `deleting`. A real IM can lose an asynchronous delete that races a state poll: the
/// infrastructure then stays, in its last state, for good. So the first poll waits a
/// second, and a state other than `deleting` gets the destroy sent again (the engine
/// must do the same).
pub async fn gone(im: &impl Im, auth: &AuthHeader, id: &InfraId) {
    let deadline = Instant::now() + Duration::from_secs(30);
    tokio::time::sleep(Duration::from_secs(1)).await;
    loop {
        match im.state(auth, id).await {
            Err(ImError::NotFound { .. }) => return,
            Ok(report) => {
                assert!(Instant::now() < deadline, "still {report:?} after 30 s");
                if report.state != InfraState::Deleting {
                    im.destroy(auth, id, false).await.unwrap();
                }
            }
            Err(e) => panic!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---------------------------------------------------------------------------------

pub async fn the_version_is_reported(target: &Target) {
    assert_eq!(target.client().version().await.unwrap(), "2.0.0");
}

pub async fn a_created_infrastructure_becomes_configured_and_binds_its_vms_to_nodes(
    target: &Target,
) {
    let (im, auth) = (target.client(), new_user());
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    let report = configured(&im, &auth, &id).await;
    assert_eq!(
        report.vm_states.into_iter().collect::<Vec<_>>(),
        [("0".to_owned(), InfraState::Configured)]
    );
    assert_eq!(im.vm_ids(&auth, &id).await.unwrap(), ["0"]);
    let info = im.vm_info(&auth, &id, "0").await.unwrap();
    assert_eq!(info.vm_id, "0");
    assert_eq!(info.node_name.as_deref(), Some("simple_node"));
    assert_eq!(info.state, InfraState::Configured);
    assert_eq!(info.system_property("provider.type"), Some(&json!("Dummy")));
    assert_eq!(
        info.system_property("net_interface.0.ip"),
        Some(&json!("10.0.0.1"))
    );
    assert!(info
        .properties
        .iter()
        .any(|entry| entry["class"] == "network"));
    assert_eq!(im.list(&auth).await.unwrap(), std::slice::from_ref(&id));
    im.destroy(&auth, &id, false).await.unwrap();
}

pub async fn outputs_resolve_addresses_and_contmsg_says_contextualization_is_disabled(
    target: &Target,
) {
    let (im, auth) = (target.client(), new_user());
    let id = create_configured(&im, &auth, 1).await;
    let outputs = im.outputs(&auth, &id).await.unwrap();
    assert_eq!(
        serde_json::Value::Object(outputs),
        json!({"node_ip": "10.0.0.1", "node_public_ip": null})
    );
    let contmsg = im.contmsg(&auth, &id).await.unwrap();
    assert!(
        contmsg.contains("Contextualization disabled"),
        "{contmsg:?}"
    );
    im.destroy(&auth, &id, false).await.unwrap();
}

pub async fn stopping_and_starting_a_vm_changes_its_state(target: &Target) {
    let (im, auth) = (target.client(), new_user());
    let id = create_configured(&im, &auth, 1).await;

    im.vm_action(&auth, &id, "0", VmAction::Stop).await.unwrap();
    let report = im.state(&auth, &id).await.unwrap();
    assert_eq!(report.state, InfraState::Stopped);
    assert_eq!(report.vm_states["0"], InfraState::Stopped);
    assert_eq!(
        im.vm_info(&auth, &id, "0").await.unwrap().state,
        InfraState::Stopped
    );

    im.vm_action(&auth, &id, "0", VmAction::Start)
        .await
        .unwrap();
    let report = im.state(&auth, &id).await.unwrap();
    assert_eq!(report.state, InfraState::Configured);

    // The Dummy IM leaves a stopped VM stopped on reboot: reboot a running one.
    im.vm_action(&auth, &id, "0", VmAction::Reboot)
        .await
        .unwrap();
    assert_eq!(
        im.state(&auth, &id).await.unwrap().state,
        InfraState::Configured
    );
    im.destroy(&auth, &id, false).await.unwrap();
}

pub async fn the_aggregate_state_follows_the_first_vm(target: &Target) {
    let (im, auth) = (target.client(), new_user());
    let id = create_configured(&im, &auth, 2).await;

    im.vm_action(&auth, &id, "1", VmAction::Stop).await.unwrap();
    let report = im.state(&auth, &id).await.unwrap();
    assert_eq!(report.vm_states["1"], InfraState::Stopped);
    assert_eq!(report.state, InfraState::Configured, "{report:?}");

    im.vm_action(&auth, &id, "1", VmAction::Start)
        .await
        .unwrap();
    im.vm_action(&auth, &id, "0", VmAction::Stop).await.unwrap();
    let report = im.state(&auth, &id).await.unwrap();
    assert_eq!(report.state, InfraState::Stopped, "{report:?}");
    im.destroy(&auth, &id, false).await.unwrap();
}

pub async fn updating_the_template_scales_a_node_up_and_down(target: &Target) {
    let (im, auth) = (target.client(), new_user());
    let id = create_configured(&im, &auth, 1).await;

    let added = im.update(&auth, &id, &single_node(2)).await.unwrap();
    assert_eq!(added.len(), 1, "{added:?}");
    assert_ne!(added[0], "0");
    let report = configured(&im, &auth, &id).await;
    assert_eq!(report.vm_states.len(), 2, "{report:?}");
    let vms = im.vm_ids(&auth, &id).await.unwrap();
    assert_eq!(
        vms.iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from(["0".to_owned(), added[0].clone()])
    );
    for vm in &vms {
        let info = im.vm_info(&auth, &id, vm).await.unwrap();
        assert_eq!(info.node_name.as_deref(), Some("simple_node"));
    }

    // The same template again changes nothing.
    assert!(im
        .update(&auth, &id, &single_node(2))
        .await
        .unwrap()
        .is_empty());

    // Scaling down removes the oldest VM first.
    assert!(im
        .update(&auth, &id, &single_node(1))
        .await
        .unwrap()
        .is_empty());
    configured(&im, &auth, &id).await;
    assert_eq!(im.vm_ids(&auth, &id).await.unwrap(), added);
    im.destroy(&auth, &id, false).await.unwrap();
}

/// The orchestrator passes input values as the inputs' defaults; IM resolves
/// `get_input` from them in properties and outputs.
pub async fn input_defaults_resolve_in_properties_and_outputs(target: &Target) {
    let (im, auth) = (target.client(), new_user());
    let tosca = r#"tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  inputs:
    cpus: { type: integer, default: 2 }
    greeting: { type: string, default: hello }
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        host:
          properties: { num_cpus: { get_input: cpus } }
  outputs:
    greeting:
      value: { get_input: greeting }
    vm_ip:
      value: { get_attribute: [ vm, private_address ] }
"#;
    let id = im.create(&auth, tosca).await.unwrap();
    configured(&im, &auth, &id).await;
    assert_eq!(im.vm_ids(&auth, &id).await.unwrap().len(), 1);
    assert_eq!(
        serde_json::Value::Object(im.outputs(&auth, &id).await.unwrap()),
        json!({"greeting": "hello", "vm_ip": "10.0.0.1"})
    );
    im.destroy(&auth, &id, false).await.unwrap();
}

/// tosca-parser compares `min_instances <= default_instances <= max_instances` before
/// resolving functions: the instance count must be written into the template.
pub async fn a_function_in_default_instances_is_rejected_with_400(target: &Target) {
    let (im, auth) = (target.client(), new_user());
    let tosca = single_node(1).replace(
        "default_instances: 1",
        "default_instances: { get_input: vm_count }",
    );
    let tosca = tosca.replace(
        "topology_template:\n",
        "topology_template:\n  inputs:\n    vm_count: { type: integer, default: 2 }\n",
    );
    let err = im.create(&auth, &tosca).await.unwrap_err();
    let ImError::Rejected {
        status: 400,
        message,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(
        message.ends_with("'<=' not supported between instances of 'int' and 'dict'"),
        "{message}"
    );
}

pub async fn a_destroyed_infrastructure_is_not_found_and_destroying_again_is_ok(target: &Target) {
    let (im, auth) = (target.client(), new_user());
    let id = create_configured(&im, &auth, 1).await;
    im.destroy(&auth, &id, false).await.unwrap();
    gone(&im, &auth, &id).await;
    let err = im.vm_ids(&auth, &id).await.unwrap_err();
    assert!(matches!(err, ImError::NotFound { .. }), "{err:?}");
    let err = im.outputs(&auth, &id).await.unwrap_err();
    assert!(matches!(err, ImError::NotFound { .. }), "{err:?}");
    im.destroy(&auth, &id, false).await.unwrap();
    im.destroy(&auth, &id, true).await.unwrap();
    assert!(im.list(&auth).await.unwrap().is_empty());
}

pub async fn a_forced_destroy_deletes_too(target: &Target) {
    let (im, auth) = (target.client(), new_user());
    let id = create_configured(&im, &auth, 1).await;
    im.destroy(&auth, &id, true).await.unwrap();
    gone(&im, &auth, &id).await;
}

/// Only a YAML syntax error: IM's TOSCA validation (tosca-parser) keeps its errors in
/// process-wide state, and after some concurrent calls it accepts unknown types or a
/// missing `tosca_definitions_version` with a 200. The YAML parser is reliable.
pub async fn invalid_tosca_is_rejected_with_400(target: &Target) {
    let (im, auth) = (target.client(), new_user());
    let tosca = "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    a: [unclosed\n";
    let err = im.create(&auth, tosca).await.unwrap_err();
    let ImError::Rejected { status, message } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*status, 400);
    assert!(
        message.starts_with("Error parsing request body: Error parsing TOSCA template:"),
        "{message}"
    );
    assert!(!err.is_transient());
    assert!(im.list(&auth).await.unwrap().is_empty());
}

pub async fn creating_without_an_im_line_is_unauthorized(target: &Target) {
    let im = target.client();
    let err = im
        .create(&AuthHeader::from_lines(&[DUMMY]), &single_node(1))
        .await
        .unwrap_err();
    let ImError::Unauthorized { message } = &err else {
        panic!("{err:?}");
    };
    assert!(message.contains("No credentials provided"), "{message}");
}

pub async fn other_calls_without_an_im_line_are_unauthorized(target: &Target) {
    let (im, auth) = (target.client(), new_user());
    let id = create_configured(&im, &auth, 1).await;
    let cloud_only = AuthHeader::from_lines(&[DUMMY]);
    let results = [
        im.state(&cloud_only, &id).await.map(drop),
        im.vm_ids(&cloud_only, &id).await.map(drop),
        im.vm_info(&cloud_only, &id, "0").await.map(drop),
        im.outputs(&cloud_only, &id).await.map(drop),
        im.contmsg(&cloud_only, &id).await.map(drop),
        im.vm_action(&cloud_only, &id, "0", VmAction::Stop).await,
        im.update(&cloud_only, &id, &single_node(2)).await.map(drop),
        im.destroy(&cloud_only, &id, false).await,
        im.list(&cloud_only).await.map(drop),
    ];
    for (i, result) in results.into_iter().enumerate() {
        assert!(
            matches!(result, Err(ImError::Unauthorized { .. })),
            "call {i}: {result:?}"
        );
    }
    assert_eq!(
        im.state(&auth, &id).await.unwrap().state,
        InfraState::Configured
    );
    im.destroy(&auth, &id, false).await.unwrap();
}

pub async fn another_user_is_forbidden_and_does_not_see_the_infrastructure(target: &Target) {
    let (im, owner, other) = (target.client(), new_user(), new_user());
    let id = create_configured(&im, &owner, 1).await;
    for result in [
        im.state(&other, &id).await.map(drop),
        im.vm_info(&other, &id, "0").await.map(drop),
        im.destroy(&other, &id, false).await,
    ] {
        assert!(
            matches!(result, Err(ImError::Forbidden { .. })),
            "{result:?}"
        );
    }
    assert!(im.list(&other).await.unwrap().is_empty());
    im.destroy(&owner, &id, false).await.unwrap();
}

pub async fn unknown_infrastructures_and_vms_are_not_found(target: &Target) {
    let (im, auth) = (target.client(), new_user());
    let unknown = InfraId(uuid::Uuid::new_v4().to_string());
    let err = im.state(&auth, &unknown).await.unwrap_err();
    let ImError::NotFound { message } = &err else {
        panic!("{err:?}");
    };
    assert!(
        message.ends_with("Invalid infrastructure ID or access not granted."),
        "{message}"
    );
    im.destroy(&auth, &unknown, false).await.unwrap();

    let id = create_configured(&im, &auth, 1).await;
    let err = im.vm_info(&auth, &id, "99").await.unwrap_err();
    assert!(matches!(err, ImError::NotFound { .. }), "{err:?}");
    let err = im
        .vm_action(&auth, &id, "99", VmAction::Stop)
        .await
        .unwrap_err();
    assert!(matches!(err, ImError::NotFound { .. }), "{err:?}");
    im.destroy(&auth, &id, false).await.unwrap();
}

pub async fn credentials_with_separators_quotes_and_newlines_reach_im_intact(target: &Target) {
    let im = target.client();
    let user = format!("we;ird=\"user\" {}", uuid::Uuid::new_v4());
    let password = "p;a=s's\"w\nord\\";
    let auth = AuthHeader::with_password(&user, password).cloud(DUMMY);
    let id = create_configured(&im, &auth, 1).await;
    // IM keys ownership on the whole pair: any cut of the password is someone else.
    for cut in ["p", "p;a=s's\"w", "p;a=s's\"w\nord"] {
        let other = AuthHeader::with_password(&user, cut).cloud(DUMMY);
        let err = im.state(&other, &id).await.unwrap_err();
        assert!(matches!(err, ImError::Forbidden { .. }), "{cut:?}: {err:?}");
    }
    im.destroy(&auth, &id, false).await.unwrap();
}

pub async fn creating_without_a_cloud_line_fails_after_the_create_call(target: &Target) {
    let im = target.client();
    let auth = AuthHeader::with_password(&format!("test-{}", uuid::Uuid::new_v4()), "secret");
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    let report = wait_for(&im, &auth, &id, |r| r.state != InfraState::Pending).await;
    assert_eq!(report.state, InfraState::Failed, "{report:?}");
    assert!(report.vm_states.is_empty());
    assert!(im.vm_ids(&auth, &id).await.unwrap().is_empty());
    let contmsg = im.contmsg(&auth, &id).await.unwrap();
    assert!(contmsg.contains("No VMI obtained"), "{contmsg:?}");
    assert_eq!(
        im.outputs(&auth, &id).await.unwrap()["node_ip"],
        json!(null)
    );
    im.destroy(&auth, &id, false).await.unwrap();
    gone(&im, &auth, &id).await;
}

pub async fn a_wrong_base_path_is_a_protocol_error_and_destroy_does_not_pretend(target: &Target) {
    let im = ImClient::new(&format!("{}/not-im/", target.url), Duration::from_secs(10)).unwrap();
    let auth = new_user();
    let id = InfraId(uuid::Uuid::new_v4().to_string());
    let err = im.state(&auth, &id).await.unwrap_err();
    assert!(matches!(err, ImError::Protocol(_)), "{err:?}");
    let err = im.destroy(&auth, &id, false).await.unwrap_err();
    assert!(matches!(err, ImError::Protocol(_)), "{err:?}");
}

// Raw HTTP: the quirks the typed client absorbs, pinned so the fake keeps them.

async fn raw_create(target: &Target, auth: &AuthHeader) -> (reqwest::Response, String) {
    let response = target
        .raw()
        .post(format!("{}/infrastructures?async=1", target.url))
        .header("Authorization", auth.to_header_value())
        .header("Content-Type", "text/yaml")
        .header("Accept", "application/json")
        .body(single_node(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["infid"].to_str().unwrap().to_owned();
    (response, id)
}

pub async fn state_and_outputs_refuse_an_accept_other_than_json(target: &Target) {
    let (im, auth) = (target.client(), new_user());
    let id = create_configured(&im, &auth, 1).await;
    for prop in ["state", "outputs"] {
        let response = target
            .raw()
            .get(format!("{}/infrastructures/{id}/{prop}", target.url))
            .header("Authorization", auth.to_header_value())
            .header("Accept", "text/plain")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "{prop}");
        assert_eq!(
            response.text().await.unwrap(),
            "Unsupported Accept Media Types: ['text/plain']"
        );
    }
    // Errors are JSON only when Accept names application/json.
    let response = target
        .raw()
        .get(format!("{}/infrastructures/nope/state", target.url))
        .header("Authorization", auth.to_header_value())
        .header("Accept", "*/*")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.text().await.unwrap(),
        "Error Getting Inf. prop: Invalid infrastructure ID or access not granted."
    );
    im.destroy(&auth, &id, false).await.unwrap();
}

pub async fn create_answers_with_an_infid_header_and_a_uri(target: &Target) {
    let auth = new_user();
    let (response, id) = raw_create(target, &auth).await;
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"uri": format!("{}/infrastructures/{id}", target.url)})
    );
    // A destroy while IM is still adding the VMs would be a 409: wait.
    let (im, id) = (target.client(), InfraId(id));
    configured(&im, &auth, &id).await;
    im.destroy(&auth, &id, false).await.unwrap();
}

pub async fn vm_actions_and_delete_answer_200_with_an_empty_body(target: &Target) {
    let (im, auth) = (target.client(), new_user());
    let id = create_configured(&im, &auth, 1).await;
    let url = format!("{}/infrastructures/{id}", target.url);
    for (method, url) in [
        (reqwest::Method::PUT, format!("{url}/vms/0/stop")),
        (reqwest::Method::DELETE, format!("{url}?async=1")),
    ] {
        let response = target
            .raw()
            .request(method, url)
            .header("Authorization", auth.to_header_value())
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().is_empty());
    }
    gone(&im, &auth, &id).await;
}

pub async fn a_call_without_authorization_is_401(target: &Target) {
    let response = target
        .raw()
        .get(format!("{}/infrastructures", target.url))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"message": "No authentication data provided", "code": 401})
    );
}

pub async fn bad_query_parameters_get_fastapi_422_details(target: &Target) {
    let response = target
        .raw()
        .post(format!("{}/infrastructures?async=maybe", target.url))
        .header("Authorization", new_user().to_header_value())
        .header("Content-Type", "text/yaml")
        .header("Accept", "application/json")
        .body(single_node(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["query", "async"]));
    assert_eq!(body["detail"][0]["type"], "bool_parsing");
}
