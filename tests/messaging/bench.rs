//! Relay benchmarks against the broker, run on demand (never as timed tests):
//!
//! ```sh
//! . .services/env && cargo test --test messaging bench -- --ignored --nocapture
//! ```
//!
//! - throughput: rows already committed, drained by `Relay::run_once` rounds;
//! - delay from commit to broker acknowledgement: rows committed at a steady rate
//!   while the relay runs in the background (`published_at - created_at`, which
//!   includes the relay's `OUTBOX_POLL_INTERVAL`).

use std::time::{Duration, Instant};

use orchestrator::messaging::relay::{Relay, RelayOutcome};
use orchestrator::store::outbox;
use serde_json::json;
use uuid::Uuid;

use crate::bare_state;
use crate::helpers::spawn_app_with;
use crate::kafka::{broker, kafka_options, topics};

const PAYLOAD_PADDING: usize = 1_500;

fn payload(n: usize) -> serde_json::Value {
    json!({"msg_version": "1.0.0", "n": n, "template": "x".repeat(PAYLOAD_PADDING)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run on demand with --ignored --nocapture"]
async fn bench_relay_throughput() {
    let Some(bootstrap) = broker() else { return };
    let t = topics(&bootstrap).await;
    let (state, _db, _dir) = bare_state(kafka_options(&bootstrap, &t).vars).await;
    let total = 5_000;
    for chunk in 0..total / 500 {
        let mut tx = state.store.begin().await.unwrap();
        for i in 0..500 {
            let key = Uuid::new_v4().to_string();
            outbox::push(
                &mut tx,
                "create-deployment",
                &key,
                &payload(chunk * 500 + i),
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let relay = Relay::new(state.clone());
    let start = Instant::now();
    loop {
        match relay.run_once().await.unwrap() {
            RelayOutcome::Idle => break,
            RelayOutcome::Delivered { failed, .. } => assert_eq!(failed, 0),
            RelayOutcome::Standby => panic!("lost the lease"),
        }
    }
    let elapsed = start.elapsed();
    let mut conn = state.store.conn().await.unwrap();
    assert_eq!(outbox::unpublished(&mut conn).await.unwrap(), 0);
    println!(
        "relay throughput: {total} messages of ~{} bytes in {:.2} s = {:.0} messages/s (SQLite, batches of 500)",
        PAYLOAD_PADDING + 60,
        elapsed.as_secs_f64(),
        f64::from(total as u32) / elapsed.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run on demand with --ignored --nocapture"]
async fn bench_commit_to_ack_delay() {
    let Some(bootstrap) = broker() else { return };
    let t = topics(&bootstrap).await;
    let app = spawn_app_with(kafka_options(&bootstrap, &t).var("OUTBOX_POLL_INTERVAL", "0.1"))
        .await
        .unwrap();
    let state = app.state.clone();
    // Warm up: the producer's first message waits for its connection and producer id.
    let mut tx = state.store.begin().await.unwrap();
    outbox::push(&mut tx, "create-deployment", "warm-up", &payload(0))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    wait_drained(&state).await;
    let (count, rate) = (500, 50.0);
    let mut ids = Vec::with_capacity(count);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    for n in 0..count {
        tick.tick().await;
        let mut tx = state.store.begin().await.unwrap();
        let key = Uuid::new_v4().to_string();
        ids.push(
            outbox::push(&mut tx, "create-deployment", &key, &payload(n))
                .await
                .unwrap(),
        );
        tx.commit().await.unwrap();
    }
    wait_drained(&state).await;
    let mut conn = state.store.conn().await.unwrap();
    let mut delays = Vec::with_capacity(count);
    for id in ids {
        let (m, published) = outbox::get(&mut conn, id).await.unwrap().unwrap();
        let published = published.expect("published");
        delays.push((published.as_micros() - m.created_at.as_micros()) as f64 / 1000.0);
    }
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays[((delays.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "commit to broker acknowledgement, {count} messages at {rate}/s, OUTBOX_POLL_INTERVAL=0.1: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

async fn wait_drained(state: &orchestrator::state::AppState) {
    let start = Instant::now();
    loop {
        let mut conn = state.store.conn().await.unwrap();
        if outbox::unpublished(&mut conn).await.unwrap() == 0 {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
