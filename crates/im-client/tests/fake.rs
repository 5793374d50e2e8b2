//! The client test-suite against the fake IM, then what only the fake can show:
//! intermediate states, server errors, slowness, a `deleting` phase.

#[macro_use]
mod contract;

use std::time::Duration;

use contract::{configured, gone, new_user, single_node, wait_for, Target};
use im_client::fake::{FakeIm, Op};
use im_client::{AuthHeader, Im, ImClient, ImError, InfraState};
use serde_json::json;

async fn target() -> Option<Target> {
    let fake = FakeIm::start().await;
    Some(Target::new(fake.url().to_owned(), fake))
}

contract_tests!(target);

fn client(fake: &FakeIm) -> ImClient {
    ImClient::new(fake.url(), Duration::from_secs(10)).unwrap()
}

#[tokio::test]
async fn states_follow_the_scripted_sequence_poll_by_poll() {
    let fake = FakeIm::start().await;
    fake.set_state_sequence(vec![
        InfraState::Pending,
        InfraState::Running,
        InfraState::Configured,
    ]);
    let (im, auth) = (client(&fake), new_user());
    let id = im.create(&auth, &single_node(2)).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let report = im.state(&auth, &id).await.unwrap();
        assert!(report.vm_states.values().all(|s| *s == report.state));
        seen.push(report.state);
    }
    use InfraState::*;
    assert_eq!(seen, [Pending, Running, Configured, Configured]);
    assert_eq!(fake.count(Op::State), 4);
}

#[tokio::test]
async fn vm_info_shows_where_the_sequence_stands_without_moving_it() {
    let fake = FakeIm::start().await;
    fake.set_state_sequence(vec![InfraState::Pending, InfraState::Configured]);
    let (im, auth) = (client(&fake), new_user());
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    assert_eq!(
        im.vm_info(&auth, &id, "0").await.unwrap().state,
        InfraState::Pending
    );
    assert_eq!(
        im.state(&auth, &id).await.unwrap().state,
        InfraState::Pending
    );
    assert_eq!(
        im.vm_info(&auth, &id, "0").await.unwrap().state,
        InfraState::Pending
    );
    configured(&im, &auth, &id).await;
}

#[tokio::test]
async fn a_failed_launch_reports_the_scripted_contmsg() {
    let fake = FakeIm::start().await;
    fake.set_state_sequence(vec![InfraState::Pending, InfraState::Failed]);
    fake.set_contmsg("Error launching the VMs: quota exceeded");
    let (im, auth) = (client(&fake), new_user());
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    let report = wait_for(&im, &auth, &id, |r| r.state != InfraState::Pending).await;
    assert_eq!(report.state, InfraState::Failed);
    assert_eq!(
        im.contmsg(&auth, &id).await.unwrap(),
        "Error launching the VMs: quota exceeded"
    );
}

#[tokio::test]
async fn an_update_replays_the_sequence() {
    let fake = FakeIm::start().await;
    fake.set_state_sequence(vec![InfraState::Running, InfraState::Configured]);
    let (im, auth) = (client(&fake), new_user());
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    configured(&im, &auth, &id).await;
    im.update(&auth, &id, &single_node(2)).await.unwrap();
    assert_eq!(
        im.state(&auth, &id).await.unwrap().state,
        InfraState::Running
    );
    configured(&im, &auth, &id).await;
}

#[tokio::test]
async fn a_5xx_is_a_transient_server_error_and_the_retry_succeeds() {
    let fake = FakeIm::start().await;
    let (im, auth) = (client(&fake), new_user());
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    fake.fail_next(Op::State, 2, 503, "Service Unavailable");
    for _ in 0..2 {
        let err = im.state(&auth, &id).await.unwrap_err();
        assert!(
            matches!(&err, ImError::Server { status: 503, message } if message == "Service Unavailable"),
            "{err:?}"
        );
        assert!(err.is_transient());
    }
    configured(&im, &auth, &id).await;
    assert_eq!(fake.count(Op::State), 3);
}

#[tokio::test]
async fn ims_own_504_is_transient() {
    let fake = FakeIm::start().await;
    fake.fail_next(Op::Create, 1, 504, "Operation timed out");
    let (im, auth) = (client(&fake), new_user());
    let err = im.create(&auth, &single_node(1)).await.unwrap_err();
    assert!(
        matches!(err, ImError::Server { status: 504, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(fake.created_count(), 0);
    im.create(&auth, &single_node(1)).await.unwrap();
    assert_eq!(fake.created_count(), 1);
}

#[tokio::test]
async fn a_slow_im_is_unreachable_after_the_timeout() {
    let fake = FakeIm::start().await;
    fake.set_delay(Op::State, Duration::from_secs(5));
    let im = ImClient::new(fake.url(), Duration::from_millis(200)).unwrap();
    let auth = new_user();
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    let err = im.state(&auth, &id).await.unwrap_err();
    assert!(matches!(err, ImError::Unreachable(_)), "{err:?}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let im = ImClient::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
    let err = im.version().await.unwrap_err();
    assert!(matches!(err, ImError::Unreachable(_)), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_fastapi_422_is_rejected_with_its_detail() {
    let fake = FakeIm::start().await;
    fake.fail_next(Op::Destroy, 1, 422, "Input should be a valid boolean");
    let (im, auth) = (client(&fake), new_user());
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    let err = im.destroy(&auth, &id, true).await.unwrap_err();
    let ImError::Rejected { status, message } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*status, 422);
    assert_eq!(message, "query: Input should be a valid boolean");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn other_scripted_statuses_map_to_their_errors() {
    let fake = FakeIm::start().await;
    let (im, auth) = (client(&fake), new_user());
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    fake.fail_next(
        Op::Destroy,
        1,
        409,
        "Error Destroying Inf: adding resources",
    );
    let err = im.destroy(&auth, &id, false).await.unwrap_err();
    assert!(matches!(err, ImError::Conflict { .. }), "{err:?}");
    fake.fail_next(
        Op::Outputs,
        1,
        401,
        "Invalid InfrastructureManager credentials",
    );
    let err = im.outputs(&auth, &id).await.unwrap_err();
    assert!(matches!(err, ImError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn deleting_polls_answer_deleting_before_not_found() {
    let fake = FakeIm::start().await;
    fake.set_deleting_polls(2);
    let (im, auth) = (client(&fake), new_user());
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    configured(&im, &auth, &id).await;
    im.destroy(&auth, &id, false).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            im.state(&auth, &id).await.unwrap().state,
            InfraState::Deleting
        );
    }
    // IM's first answer after a delete differs from the later ones; both are 404.
    let err = im.state(&auth, &id).await.unwrap_err();
    assert!(
        matches!(&err, ImError::NotFound { message } if message.ends_with("Deleted infrastructure.")),
        "{err:?}"
    );
    let err = im.state(&auth, &id).await.unwrap_err();
    assert!(
        matches!(&err, ImError::NotFound { message } if message.ends_with("Invalid infrastructure ID or access not granted.")),
        "{err:?}"
    );
    assert!(fake.infra_ids().is_empty());
}

#[tokio::test]
async fn scripted_outputs_replace_resolved_ones() {
    let fake = FakeIm::start().await;
    let outputs = json!({"endpoint": "https://10.0.0.1", "ports": [80, 443]});
    fake.set_outputs(outputs.as_object().unwrap().clone());
    let (im, auth) = (client(&fake), new_user());
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    assert_eq!(
        serde_json::Value::Object(im.outputs(&auth, &id).await.unwrap()),
        outputs
    );
}

#[tokio::test]
async fn compute_nodes_are_counted_by_type_and_instance_count() {
    let fake = FakeIm::start().await;
    fake.set_compute_types(&["my.nodes.Worker"]);
    let tosca = r#"tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    front:
      type: tosca.nodes.indigo.Compute
      capabilities:
        scalable:
          properties: { count: 2 }
    workers:
      type: my.nodes.Worker
      capabilities:
        scalable:
          properties: { min_instances: 0, max_instances: 5, default_instances: 3 }
    none:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: { count: 0 }
    db:
      type: tosca.nodes.Database
  outputs:
    greeting:
      value: hello
    front_ip:
      value: { get_attribute: [ front, private_address, 0 ] }
"#;
    let (im, auth) = (client(&fake), new_user());
    let id = im.create(&auth, tosca).await.unwrap();
    let vms = im.vm_ids(&auth, &id).await.unwrap();
    assert_eq!(vms.len(), 5);
    let mut nodes = Vec::new();
    for vm in &vms {
        nodes.push(im.vm_info(&auth, &id, vm).await.unwrap().node_name.unwrap());
    }
    assert_eq!(nodes, ["front", "front", "workers", "workers", "workers"]);
    assert_eq!(
        serde_json::Value::Object(im.outputs(&auth, &id).await.unwrap()),
        json!({"greeting": "hello", "front_ip": "10.0.0.1"})
    );
}

#[tokio::test]
async fn an_indigo_count_may_come_from_an_input_default() {
    let fake = FakeIm::start().await;
    let tosca = r#"tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  inputs:
    number_of_nodes: { type: integer, default: 3 }
  node_templates:
    wn:
      type: tosca.nodes.indigo.Compute
      capabilities:
        scalable:
          properties: { count: { get_input: number_of_nodes } }
"#;
    let (im, auth) = (client(&fake), new_user());
    let id = im.create(&auth, tosca).await.unwrap();
    assert_eq!(im.vm_ids(&auth, &id).await.unwrap().len(), 3);
}

#[tokio::test]
async fn counts_and_ids_tell_what_the_engine_did() {
    let fake = FakeIm::start().await;
    let (im, auth) = (client(&fake), new_user());
    let a = im.create(&auth, &single_node(1)).await.unwrap();
    let b = im.create(&auth, &single_node(1)).await.unwrap();
    assert_eq!(fake.created_count(), 2);
    assert_eq!(fake.infra_ids(), [a.0.clone(), b.0.clone()]);
    im.destroy(&auth, &a, false).await.unwrap();
    gone(&im, &auth, &a).await;
    assert_eq!(fake.infra_ids(), [b.0]);
    assert_eq!(fake.count(Op::Create), 2);
    assert_eq!(fake.count(Op::Destroy), 1);
    assert_eq!(fake.count(Op::Update), 0);
}

#[tokio::test]
async fn errors_never_carry_the_credentials() {
    let fake = FakeIm::start().await;
    let auth = AuthHeader::with_token("eyJ.very-secret-token.sig").cloud(
        "id = ost; type = OpenStack; host = https://keystone:5000; password = cloud-pass-123",
    );
    fake.fail_next(
        Op::Create,
        1,
        500,
        "cannot log in to https://keystone:5000 with cloud-pass-123 (token eyJ.very-secret-token.sig)",
    );
    let err = client(&fake)
        .create(&auth, &single_node(1))
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("cloud-pass-123"), "{text}");
    assert!(!text.contains("very-secret-token"), "{text}");
    assert!(text.contains("https://keystone:5000"), "{text}");
}

#[tokio::test]
async fn an_unreadable_answer_is_a_protocol_error_without_the_credentials() {
    let fake = FakeIm::start().await;
    let auth = AuthHeader::with_password("someone", "pass-word-42").cloud(contract::DUMMY);
    let im = client(&fake);
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    // A 200 whose body is not a state report, quoting the password.
    fake.fail_next(Op::State, 1, 200, "echo pass-word-42");
    let err = im.state(&auth, &id).await.unwrap_err();
    assert!(matches!(err, ImError::Protocol(_)), "{err:?}");
    let text = err.to_string();
    assert!(!text.contains("pass-word-42"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
}

#[tokio::test]
async fn a_timeout_on_create_leaves_an_infrastructure_that_list_finds() {
    let fake = FakeIm::start().await;
    fake.set_delay(Op::Create, Duration::from_millis(600));
    let auth = new_user();
    let impatient = ImClient::new(fake.url(), Duration::from_millis(100)).unwrap();
    let err = impatient.create(&auth, &single_node(1)).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    // The fake, like IM, finishes the create although nobody waits for the answer.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let listed: Vec<String> = client(&fake)
        .list(&auth)
        .await
        .unwrap()
        .into_iter()
        .map(|id| id.0)
        .collect();
    assert_eq!(listed, fake.infra_ids());
    assert_eq!(fake.created_count(), 1);
}

#[tokio::test]
async fn a_destroy_while_im_is_adding_vms_is_a_conflict() {
    let fake = FakeIm::start().await;
    fake.set_adding_polls(1);
    let (im, auth) = (client(&fake), new_user());
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    let err = im.destroy(&auth, &id, false).await.unwrap_err();
    let ImError::Conflict { message } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        message,
        "Error Destroying Inf: Invalid State to perform this operation."
    );
    assert!(!err.is_transient());
    configured(&im, &auth, &id).await;
    im.destroy(&auth, &id, false).await.unwrap();
    gone(&im, &auth, &id).await;
}

#[tokio::test]
async fn a_lost_destroy_leaves_the_infrastructure_until_destroyed_again() {
    let fake = FakeIm::start().await;
    fake.set_lost_destroys(1);
    let (im, auth) = (client(&fake), new_user());
    let id = im.create(&auth, &single_node(1)).await.unwrap();
    configured(&im, &auth, &id).await;
    im.destroy(&auth, &id, false).await.unwrap();
    assert_eq!(
        im.state(&auth, &id).await.unwrap().state,
        InfraState::Configured
    );
    im.destroy(&auth, &id, false).await.unwrap();
    let err = im.state(&auth, &id).await.unwrap_err();
    assert!(matches!(err, ImError::NotFound { .. }), "{err:?}");
}
