//! The engine against the fake IM: what IM's Dummy cloud cannot show (intermediate
//! states, failures with a contextualization log, 5xx, slowness, deadlines),
//! retries across two providers, keep_last_attempt, cancellation, and a worker that
//! dies mid-deployment.

use std::time::Duration;

use im_client::fake::{FakeIm, Op};
use im_client::InfraState;
use serde_json::json;

use crate::{env, provider};

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_deployment_passes_through_pending_and_running_to_create_complete() {
    let im = FakeIm::start().await;
    im.set_state_sequence(vec![
        InfraState::Pending,
        InfraState::Running,
        InfraState::Configured,
    ]);
    im.set_outputs(serde_json::from_value(json!({"vm_ip": "10.0.0.7"})).unwrap());
    let e = env(&[provider("one", 1, im.url())], false, &[]).await;
    let id = e.submit(json!({"template_inputs": {"vm_count": 2}})).await;
    let engine = e.engine();
    let d = e.drive_until(&engine, &id, "CREATE_COMPLETE", LIMIT).await;
    assert_eq!(d["target_provider"], "one");
    assert_eq!(d["task_name"], "none");
    assert_eq!(d["template_outputs"]["vm_ip"], "10.0.0.7");
    assert!(d["im_infra_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(im.count(Op::State) >= 3, "polled through every state");
    assert_eq!(im.created_count(), 1);

    let resources = e.resources(&id).await;
    assert_eq!(resources.len(), 2);
    let mut vms: Vec<String> = resources
        .iter()
        .map(|r| {
            assert_eq!(r["status_name"], "STARTED", "{r}");
            assert_eq!(
                r["metadata"]["VirtualMachineInfo"]["vmProperties"]
                    .as_array()
                    .map(|a| a.is_empty()),
                Some(false),
                "{r}"
            );
            r["im_vm_idx"].as_str().expect("bound").to_string()
        })
        .collect();
    vms.sort();
    vms.dedup();
    assert_eq!(vms.len(), 2, "each resource has its own VM");

    let attempts = e.attempts(&id).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["outcome"], "succeeded");
    assert_eq!(attempts[0]["provider"], "one");
}

#[tokio::test]
async fn a_failed_provider_is_destroyed_and_the_next_one_is_tried() {
    let bad = FakeIm::start().await;
    bad.set_state_sequence(vec![InfraState::Running, InfraState::Failed]);
    bad.set_contmsg("Error launching the VMs: quota exceeded");
    let good = FakeIm::start().await;
    let e = env(
        &[
            provider("bad", 1, bad.url()),
            provider("good", 2, good.url()),
        ],
        false,
        &[],
    )
    .await;
    let id = e.submit(json!({"per_provider_max_retries": 1})).await;
    let d = e
        .drive_until(&e.engine(), &id, "CREATE_COMPLETE", LIMIT)
        .await;
    assert_eq!(d["target_provider"], "good");
    let attempts = e.attempts(&id).await;
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["provider"], "bad");
    assert_eq!(attempts[0]["outcome"], "failed");
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("quota exceeded"),
        "{}",
        attempts[0]
    );
    assert_eq!(
        bad.count(Op::Destroy),
        1,
        "the failed attempt's infrastructure is destroyed"
    );
    assert_eq!(good.count(Op::Destroy), 0);
}

#[tokio::test]
async fn each_provider_gets_its_retries_before_the_next() {
    let im = FakeIm::start().await;
    im.fail_next(Op::Create, 2, 400, "Error Creating Inf.: No VMI obtained");
    let e = env(&[provider("one", 1, im.url())], false, &[]).await;
    let id = e.submit(json!({"per_provider_max_retries": 3})).await;
    e.drive_until(&e.engine(), &id, "CREATE_COMPLETE", LIMIT)
        .await;
    let attempts = e.attempts(&id).await;
    let outcomes: Vec<&str> = attempts
        .iter()
        .map(|a| a["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "succeeded"]);
    assert!(attempts[0]["error"]
        .as_str()
        .unwrap_or("")
        .contains("No VMI obtained"));
}

#[tokio::test]
async fn when_every_provider_fails_the_reason_names_each_of_them() {
    let a = FakeIm::start().await;
    a.set_state_sequence(vec![InfraState::Failed]);
    a.set_contmsg("image not found");
    let b = FakeIm::start().await;
    b.fail_next(Op::Create, 10, 400, "Invalid TOSCA");
    let e = env(
        &[provider("alpha", 1, a.url()), provider("beta", 2, b.url())],
        false,
        &[],
    )
    .await;
    let id = e.submit(json!({"per_provider_max_retries": 1})).await;
    let d = e
        .drive_until(&e.engine(), &id, "CREATE_FAILED", LIMIT)
        .await;
    let reason = d["status_reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("alpha") && reason.contains("image not found"),
        "{reason}"
    );
    assert!(
        reason.contains("beta") && reason.contains("Invalid TOSCA"),
        "{reason}"
    );
    assert_eq!(d["task_name"], "none");
}

#[tokio::test]
async fn keep_last_attempt_keeps_only_the_last_failed_infrastructure() {
    for keep in [true, false] {
        let im = FakeIm::start().await;
        im.set_state_sequence(vec![InfraState::Unconfigured]);
        let e = env(&[provider("one", 1, im.url())], false, &[]).await;
        let id = e
            .submit(json!({"per_provider_max_retries": 2, "keep_last_attempt": keep}))
            .await;
        e.drive_until(&e.engine(), &id, "CREATE_FAILED", LIMIT)
            .await;
        assert_eq!(im.created_count(), 2);
        let expected = if keep { 1 } else { 2 };
        assert_eq!(im.count(Op::Destroy), expected, "keep_last_attempt={keep}");
    }
}

#[tokio::test]
async fn a_provider_that_never_finishes_times_out_and_the_next_is_tried() {
    let slow = FakeIm::start().await;
    slow.set_state_sequence(vec![InfraState::Pending]);
    let good = FakeIm::start().await;
    let e = env(
        &[
            provider("slow", 1, slow.url()),
            provider("good", 2, good.url()),
        ],
        false,
        &[],
    )
    .await;
    let id = e
        .submit(json!({"per_provider_max_retries": 1, "per_provider_timeout_mins": 5, "tot_timeout_mins": 60}))
        .await;
    let engine = e.engine();
    // Let the first attempt start and poll, then move its start 10 minutes back.
    for _ in 0..40 {
        engine.run_once().await.expect("step");
        if slow.count(Op::State) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(slow.count(Op::State) >= 2);
    e.rewind(
        "deployment_attempts",
        "deadline_at",
        "deployment_id",
        &id,
        10,
    )
    .await;
    let d = e.drive_until(&engine, &id, "CREATE_COMPLETE", LIMIT).await;
    assert_eq!(d["target_provider"], "good");
    let attempts = e.attempts(&id).await;
    assert_eq!(attempts[0]["outcome"], "timed_out");
    assert!(attempts[0]["error"]
        .as_str()
        .unwrap_or("")
        .contains("per_provider_timeout_mins"));
    assert_eq!(slow.count(Op::Destroy), 1);
}

#[tokio::test]
async fn the_total_deadline_ends_in_create_failed() {
    let slow = FakeIm::start().await;
    slow.set_state_sequence(vec![InfraState::Running]);
    let e = env(&[provider("slow", 1, slow.url())], false, &[]).await;
    let id = e.submit(json!({"tot_timeout_mins": 30})).await;
    let engine = e.engine();
    for _ in 0..40 {
        engine.run_once().await.expect("step");
        if slow.count(Op::State) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    e.rewind("deployments", "created_at", "id", &id, 31).await;
    let d = e.drive_until(&engine, &id, "CREATE_FAILED", LIMIT).await;
    assert!(
        d["status_reason"]
            .as_str()
            .unwrap_or("")
            .contains("tot_timeout_mins (30 minutes)"),
        "{d}"
    );
    assert_eq!(
        slow.count(Op::Destroy),
        1,
        "the running attempt is cleaned up"
    );
}

#[tokio::test]
async fn server_errors_and_slow_answers_are_retried() {
    let im = FakeIm::start().await;
    im.fail_next(Op::State, 3, 503, "Service Unavailable");
    im.fail_next(Op::Create, 1, 500, "Internal Server Error");
    let e = env(
        &[provider("one", 1, im.url())],
        false,
        &[("IM_TIMEOUT", "0.3")],
    )
    .await;
    im.set_delay(Op::Outputs, Duration::from_millis(600));
    let id = e.submit(json!({})).await;
    let engine = e.engine();
    // Outputs time out while the delay lasts; clear it after a few tries.
    let start = std::time::Instant::now();
    while im.count(Op::Outputs) < 2 && start.elapsed() < LIMIT {
        engine.run_once().await.expect("step");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    im.set_delay(Op::Outputs, Duration::ZERO);
    e.drive_until(&engine, &id, "CREATE_COMPLETE", LIMIT).await;
    assert_eq!(
        im.created_count(),
        1,
        "a 500 on create is retried, not a new attempt"
    );
    assert_eq!(e.attempts(&id).await.len(), 1);
}

#[tokio::test]
async fn deleting_a_deployment_being_created_cancels_it_and_destroys_what_it_made() {
    let im = FakeIm::start().await;
    im.set_state_sequence(vec![InfraState::Pending]);
    im.set_deleting_polls(2);
    let e = env(&[provider("one", 1, im.url())], false, &[]).await;
    let id = e.submit(json!({})).await;
    let engine = e.engine();
    while im.created_count() == 0 {
        engine.run_once().await.expect("step");
    }
    let r = e
        .app
        .delete_as(crate::helpers::ALICE, &format!("/api/v1/deployments/{id}"))
        .await;
    assert_eq!(r.status(), 202);
    let d = e.drive_until(&engine, &id, "DELETE_COMPLETE", LIMIT).await;
    assert_eq!(d["task_name"], "none");
    assert_eq!(im.created_count(), 1);
    assert_eq!(im.count(Op::Destroy), 1);
    for r in e.resources(&id).await {
        assert_eq!(r["status_name"], "DELETED");
    }
    assert_eq!(e.attempts(&id).await[0]["destroyed"], true);
}

#[tokio::test]
async fn a_deletion_that_im_refuses_ends_in_delete_failed_with_the_reason() {
    let im = FakeIm::start().await;
    let e = env(&[provider("one", 1, im.url())], false, &[]).await;
    let id = e.submit(json!({})).await;
    let engine = e.engine();
    e.drive_until(&engine, &id, "CREATE_COMPLETE", LIMIT).await;
    im.fail_next(
        Op::Destroy,
        1,
        403,
        "Access to this infrastructure not granted.",
    );
    let r = e
        .app
        .delete_as(crate::helpers::ALICE, &format!("/api/v1/deployments/{id}"))
        .await;
    assert_eq!(r.status(), 202);
    let d = e.drive_until(&engine, &id, "DELETE_FAILED", LIMIT).await;
    assert!(
        d["status_reason"]
            .as_str()
            .unwrap_or("")
            .contains("not granted"),
        "{d}"
    );
}

#[tokio::test]
async fn stop_and_start_follow_the_vm_state() {
    let im = FakeIm::start().await;
    let e = env(&[provider("one", 1, im.url())], false, &[]).await;
    let id = e.submit(json!({})).await;
    let engine = e.engine();
    e.drive_until(&engine, &id, "CREATE_COMPLETE", LIMIT).await;
    let rid = e.resources(&id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (action, want) in [
        ("stop", "STOPPED"),
        ("start", "STARTED"),
        ("reboot", "STARTED"),
    ] {
        let r = e
            .app
            .client
            .patch(e.app.url(&format!(
                "/api/v1/deployments/{id}/resources/{rid}/{action}"
            )))
            .bearer_auth(e.app.token(crate::helpers::ALICE))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            202,
            "{action}: {}",
            r.text().await.unwrap_or_default()
        );
        let start = std::time::Instant::now();
        loop {
            let r = e.resources(&id).await.remove(0);
            if r["status_name"] == want {
                break;
            }
            assert!(start.elapsed() < LIMIT, "{action}: {r}");
            engine.run_once().await.expect("step");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(im.count(Op::VmAction), 3);
}

#[tokio::test]
async fn an_update_scales_the_deployment_and_binds_the_new_vms() {
    let im = FakeIm::start().await;
    let e = env(&[provider("one", 1, im.url())], false, &[]).await;
    let id = e.submit(json!({"template_inputs": {"vm_count": 1}})).await;
    let engine = e.engine();
    e.drive_until(&engine, &id, "CREATE_COMPLETE", LIMIT).await;
    let r = e
        .app
        .patch_as(
            crate::helpers::ALICE,
            &format!("/api/v1/deployments/{id}"),
            &json!({"template_inputs": {"vm_count": 3}}),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    e.drive_until(&engine, &id, "UPDATE_COMPLETE", LIMIT).await;
    assert_eq!(im.count(Op::Update), 1);
    let live: Vec<_> = e
        .resources(&id)
        .await
        .into_iter()
        .filter(|r| r["status_name"] != "DELETED")
        .collect();
    assert_eq!(live.len(), 3, "{live:?}");
    assert!(live.iter().all(|r| r["im_vm_idx"].is_string()));
}

#[tokio::test]
async fn a_worker_that_dies_mid_deployment_is_replaced_without_a_second_infrastructure() {
    let im = FakeIm::start().await;
    im.set_state_sequence(vec![
        InfraState::Pending,
        InfraState::Pending,
        InfraState::Configured,
    ]);
    let e = env(
        &[provider("one", 1, im.url())],
        false,
        &[("ENGINE_LEASE", "1")],
    )
    .await;
    let id = e.submit(json!({})).await;
    // The first worker creates the infrastructure, then hangs in a slow poll and dies.
    let first = e.engine();
    while im.created_count() == 0 {
        first.run_once().await.expect("step");
    }
    im.set_delay(Op::State, Duration::from_secs(30));
    let stuck = tokio::spawn(async move {
        loop {
            let _ = first.run_once().await;
        }
    });
    while im.count(Op::State) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stuck.abort();
    let _ = stuck.await;
    im.set_delay(Op::State, Duration::ZERO);
    // A new worker cannot take the job before the lease expires, then finishes it.
    let second = e.engine();
    let d = e.drive_until(&second, &id, "CREATE_COMPLETE", LIMIT).await;
    assert_eq!(im.created_count(), 1, "exactly one IM infrastructure");
    assert_eq!(
        d["im_infra_id"].as_str(),
        im.infra_ids().first().map(String::as_str)
    );
}

#[tokio::test]
async fn without_any_provider_the_deployment_fails_with_a_clear_reason() {
    let e = env(&[], false, &[]).await;
    let id = e.submit(json!({})).await;
    let d = e
        .drive_until(&e.engine(), &id, "CREATE_FAILED", LIMIT)
        .await;
    assert!(
        d["status_reason"]
            .as_str()
            .unwrap_or("")
            .contains("no provider is configured"),
        "{d}"
    );
}

#[tokio::test]
async fn the_builtin_engine_of_serve_deploys_on_its_own() {
    let im = FakeIm::start().await;
    let e = env(&[provider("one", 1, im.url())], true, &[]).await;
    let id = e.submit(json!({})).await;
    e.wait_until(&id, "CREATE_COMPLETE", LIMIT).await;
    let r = e
        .app
        .delete_as(crate::helpers::ALICE, &format!("/api/v1/deployments/{id}"))
        .await;
    assert_eq!(r.status(), 202);
    e.wait_until(&id, "DELETE_COMPLETE", LIMIT).await;
}

#[tokio::test]
async fn the_configuration_lists_providers_without_credentials() {
    let im = FakeIm::start().await;
    let e = env(&[provider("one", 1, im.url())], false, &[]).await;
    let r = e
        .app
        .get_as(crate::helpers::ALICE, "/api/v1/configuration")
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["providers"][0]["name"], "one");
    assert_eq!(body["providers"][0]["type"], "Dummy");
    assert_eq!(body["im_urls"][0], im.url().trim_end_matches('/'));
    assert!(
        !text.contains("secret") && !text.contains("tester-"),
        "{text}"
    );
    let r = e.app.get("/api/v1/configuration").await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_provider_that_needs_the_users_token_gets_one_refreshed_from_the_stored_refresh_token() {
    let im = FakeIm::start().await;
    let mut spec = provider("one", 1, im.url());
    spec.token_auth = true;
    let e = env(&[spec], false, &[]).await;
    let refresh = e.app.issuer.refresh_token(crate::helpers::ALICE);
    let r = e
        .app
        .patch_as(
            crate::helpers::ALICE,
            "/api/v1/users/me",
            &json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let submitted_with = crate::short_lived_token(&e);
    let id = e.submit_with(&submitted_with, json!({})).await;
    e.drive_until(&e.engine(), &id, "CREATE_COMPLETE", LIMIT)
        .await;
    assert_eq!(im.created_count(), 1);
    let seen = im.tokens_seen();
    assert!(!seen.is_empty(), "IM got a token");
    assert!(
        !seen.contains(&submitted_with),
        "the nearly expired token was not used"
    );
}

#[tokio::test]
async fn the_submitters_own_token_is_used_while_it_is_valid() {
    let im = FakeIm::start().await;
    let mut spec = provider("one", 1, im.url());
    spec.token_auth = true;
    let e = env(&[spec], false, &[]).await;
    // No refresh token stored: the token of the submission is all there is.
    let token = e.app.token(crate::helpers::ALICE);
    let id = e.submit_with(&token, json!({})).await;
    e.drive_until(&e.engine(), &id, "CREATE_COMPLETE", LIMIT)
        .await;
    assert_eq!(im.tokens_seen(), vec![token]);
}

#[tokio::test]
async fn a_refused_refresh_token_fails_the_deployment_asking_the_user_to_log_in_again() {
    let im = FakeIm::start().await;
    let mut spec = provider("one", 1, im.url());
    spec.token_auth = true;
    let e = env(&[spec], false, &[]).await;
    let refresh = e.app.issuer.refresh_token(crate::helpers::ALICE);
    let r = e
        .app
        .patch_as(
            crate::helpers::ALICE,
            "/api/v1/users/me",
            &json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(r.status(), 204);
    e.app.issuer.revoke_refresh_token(&refresh);
    let id = e
        .submit_with(&crate::short_lived_token(&e), json!({}))
        .await;
    let d = e
        .drive_until(&e.engine(), &id, "CREATE_FAILED", LIMIT)
        .await;
    let reason = d["status_reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("refused the stored refresh token") && reason.contains("log in again"),
        "{reason}"
    );
    assert!(!reason.contains(&refresh), "the token is not shown");
    assert_eq!(im.created_count(), 0);
}

#[tokio::test]
async fn without_a_stored_refresh_token_the_reason_says_how_to_give_one() {
    let im = FakeIm::start().await;
    let mut spec = provider("one", 1, im.url());
    spec.token_auth = true;
    let e = env(&[spec], false, &[]).await;
    let id = e
        .submit_with(&crate::short_lived_token(&e), json!({}))
        .await;
    let d = e
        .drive_until(&e.engine(), &id, "CREATE_FAILED", LIMIT)
        .await;
    let reason = d["status_reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("no refresh token is stored") && reason.contains("PATCH /api/v1/users/me"),
        "{reason}"
    );
}
