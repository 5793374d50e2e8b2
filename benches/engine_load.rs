//! Engine load benchmark (issue 6): one worker with many deployments in flight
//! against the fake IM. Reports the worker process's peak resident memory and its IM
//! request rate against the configured budget (`IM_MAX_REQUESTS_PER_SECOND`).
//!
//! Run: `cargo bench --bench engine_load` (defaults: 10 000 deployments, 90 s of
//! engine time, budget 100 requests/s). Settings: `BENCH_DEPLOYMENTS`,
//! `BENCH_SECONDS`, `BENCH_BUDGET`, `BENCH_DB_URL` (default: a temporary SQLite file;
//! a PostgreSQL URL to a fresh database works too).
//!
//! Measured on the 2-core development machine, `BENCH_SECONDS=60 cargo bench --bench
//! engine_load` (SQLite, 10 000 deployments, budget 100/s, 2026-12-07): resident
//! memory 19.9 MiB after seeding, peak 58.5 MiB while running (target < 256 MiB);
//! 3 156 IM requests in 60 s, 52.4/s on average, highest 5-s window 62.6/s (within
//! the budget of 100/s). In that minute the worker was still creating (52
//! infrastructures/s, bounded by the database, not by IM), so no poll was due yet.
//!
//! The fake IM runs inside the measured process, so the memory figure includes it
//! (an upper bound for the worker alone). Every infrastructure stays `running`, so
//! every deployment stays in flight and keeps polling.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use im_client::fake::{FakeIm, Op};
use im_client::InfraState;
use orchestrator::config::Config;
use orchestrator::domain::{Timestamp, User};
use orchestrator::engine::Engine;
use orchestrator::service::submit::{create, NewDeployment};
use orchestrator::service::Actor;
use orchestrator::store::users;

const TEMPLATE: &str = include_str!("../tests/fixtures/engine_vm.yaml");

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn total_requests(im: &FakeIm) -> usize {
    [
        Op::Create,
        Op::State,
        Op::VmList,
        Op::VmInfo,
        Op::Outputs,
        Op::Contmsg,
        Op::VmAction,
        Op::Update,
        Op::Destroy,
    ]
    .into_iter()
    .map(|op| im.count(op))
    .sum()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = env_or("BENCH_DEPLOYMENTS", 10_000);
    let seconds: u64 = env_or("BENCH_SECONDS", 90);
    let budget: u32 = env_or("BENCH_BUDGET", 100);
    let dir = tempfile::tempdir()?;
    let db_url = std::env::var("BENCH_DB_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));

    let im = FakeIm::start().await;
    im.set_state_sequence(vec![InfraState::Running]);
    let providers = dir.path().join("providers.yaml");
    std::fs::write(
        &providers,
        format!(
            "providers:\n  - name: fake\n    type: Dummy\n    im_url: {}\n    im_auth: {{username: bench, password: bench}}\n    cloud_auth: \"id = dummy; type = Dummy\"\n",
            im.url()
        ),
    )?;
    let vars = HashMap::from([
        ("DB_URL".to_string(), db_url.clone()),
        ("DATA_DIR".to_string(), dir.path().display().to_string()),
        (
            "PROVIDERS_FILE".to_string(),
            providers.display().to_string(),
        ),
        ("LOG_LEVEL".to_string(), "error".to_string()),
        ("ENGINE".to_string(), "builtin".to_string()),
        ("ENGINE_CONCURRENCY".to_string(), "16".to_string()),
        ("IM_MAX_REQUESTS_PER_SECOND".to_string(), budget.to_string()),
        ("IM_POLL_MIN".to_string(), "5".to_string()),
        ("IM_POLL_MAX".to_string(), "60".to_string()),
    ]);
    let config = Config::from_sources(vars, None)?;
    orchestrator::telemetry::init(&config);
    let state = orchestrator::app::build_state(config).await?;

    let now = Timestamp::now();
    let user = User {
        id: uuid::Uuid::new_v4(),
        sub: "bench".into(),
        issuer: "https://issuer.example".into(),
        name: "Bench".into(),
        username: "bench".into(),
        email: "bench@example.org".into(),
        picture: None,
        public_ssh_key: None,
        refresh_token: None,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.store.begin().await?;
    users::insert(&mut tx, &user).await?;
    tx.commit().await?;
    let actor = Actor {
        user_id: user.id,
        is_admin: false,
        groups: vec!["users".into()],
        name: "bench".into(),
        token: Default::default(),
    };
    let template =
        orchestrator::service::templates::register(&state, &actor, TEMPLATE.into(), None)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let t0 = Instant::now();
    for _ in 0..n {
        create(
            &state,
            &actor,
            NewDeployment {
                template_id: template.id,
                user_group: "users".into(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    println!(
        "seeded {n} deployments in {:.1} s ({})",
        t0.elapsed().as_secs_f64(),
        db_url.split("://").next().unwrap_or("")
    );
    let rss_before = rss_mib();

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let engine = Arc::new(Engine::new(state.clone()));
    let worker = tokio::spawn(engine.run(stopped));
    let start = Instant::now();
    let mut peak = rss_before;
    let mut samples = Vec::new();
    let mut last = (Instant::now(), total_requests(&im));
    while start.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let rss = rss_mib();
        peak = peak.max(rss);
        let now = (Instant::now(), total_requests(&im));
        let rate = (now.1 - last.1) as f64 / now.0.duration_since(last.0).as_secs_f64();
        samples.push(rate);
        println!(
            "t={:>4}s rss={rss:>7.1} MiB im_requests/s={rate:>7.1} infrastructures={} state_polls={}",
            start.elapsed().as_secs(),
            im.created_count(),
            im.count(Op::State)
        );
        last = now;
    }
    let _ = stop.send(true);
    let _ = worker.await;
    let max_rate = samples.iter().copied().fold(0.0, f64::max);
    let total = total_requests(&im);
    println!("--");
    println!(
        "deployments in flight: {n}; infrastructures created: {}",
        im.created_count()
    );
    println!("resident memory: {rss_before:.1} MiB after seeding, peak {peak:.1} MiB while running (target < 256 MiB)");
    println!(
        "IM requests: {total} in {:.0} s = {:.1}/s on average, highest 5-s window {max_rate:.1}/s (budget {budget}/s)",
        start.elapsed().as_secs_f64(),
        total as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}
