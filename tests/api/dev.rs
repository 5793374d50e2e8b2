//! `orchestrator dev`, run as the built binary: it prints tokens that work against the
//! API it serves, keeps them (and every other secret) out of its logs, and refuses
//! to listen anywhere but on loopback. `orchestrator serve` with no configuration
//! runs on an embedded database file, and an unreachable `DB_URL` stops it at start.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A child process, killed when the test ends however it ends.
struct Running {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// The next stdout line, waiting at most until `deadline`.
    fn line(&self, deadline: Instant) -> Option<String> {
        self.stdout
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    }
}

fn orchestrator(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orchestrator"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn start(mut command: Command) -> Running {
    let mut child = command.spawn().expect("start the orchestrator binary");
    let (tx, stdout) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Running {
        child,
        stdout,
        stderr,
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Waits for the process to exit; `None` if it is still running after `limit`.
fn exit_status(running: &mut Running, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = running.child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[tokio::test]
async fn orchestrator_dev_prints_admin_and_user_tokens_that_work() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut dev = start(orchestrator(
        dir.path(),
        &["dev", "--listen", &listen],
        &[("LOG_LEVEL", "debug")],
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut admin, mut user, mut printed) = (None, None, Vec::new());
    while user.is_none() {
        let Some(line) = dev.line(deadline) else {
            let status = exit_status(&mut dev, Duration::from_secs(1));
            panic!(
                "no USER_TOKEN line (exit {status:?}); stdout {printed:?}, stderr {}",
                dev.stderr.lock().unwrap()
            );
        };
        if let Some(token) = line.strip_prefix("ADMIN_TOKEN=") {
            admin = Some(token.to_string());
        }
        if let Some(token) = line.strip_prefix("USER_TOKEN=") {
            user = Some(token.to_string());
        }
        printed.push(line);
    }
    let (admin, user) = (admin.expect("ADMIN_TOKEN line"), user.unwrap());
    while let Some(line) = dev.line(Instant::now() + Duration::from_secs(2)) {
        let done = line.starts_with("try: curl");
        printed.push(line);
        if done {
            break;
        }
    }
    let text = printed.join("\n");
    assert!(text.contains(&format!("http://{listen}/api/v1")), "{text}");
    assert!(
        text.contains(&format!(
            "curl -H \"Authorization: Bearer $USER_TOKEN\" http://{listen}/api/v1/users/me"
        )),
        "{text}"
    );

    let client = reqwest::Client::new();
    let base = format!("http://{listen}/api/v1");
    let me = |token: &str| {
        client
            .get(format!("{base}/users/me"))
            .bearer_auth(token)
            .send()
    };
    let seen: Value = me(&user).await.unwrap().json().await.unwrap();
    assert_eq!(seen["sub"], "dev-user", "{seen}");
    let seen: Value = me(&admin).await.unwrap().json().await.unwrap();
    assert_eq!(seen["sub"], "dev-admin", "{seen}");
    let list = |token: &str| {
        client
            .get(format!("{base}/users"))
            .bearer_auth(token)
            .send()
    };
    let page: Value = list(&admin).await.unwrap().json().await.unwrap();
    assert_eq!(
        page["page"]["total_elements"], 2,
        "the admin sees both users"
    );
    let page: Value = list(&user).await.unwrap().json().await.unwrap();
    assert_eq!(
        page["page"]["total_elements"], 1,
        "the user sees only themselves"
    );

    // Secrets stay out of the logs, even at debug level: the tokens used above, a
    // refresh token, and the rejected tokens.
    let refresh = "rt-0123456789abcdef-never-log-me";
    let response = client
        .patch(format!("{base}/users/me"))
        .bearer_auth(&user)
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let tampered = format!("{}x", user);
    let response = client
        .get(format!("{base}/users/me"))
        .bearer_auth(&tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = client
        .get(format!("{base}/users/me"))
        .header("authorization", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = dev.stderr.lock().unwrap().clone();
    assert!(logs.contains("DEBUG") || logs.contains("INFO"), "{logs}");
    for (what, secret) in [
        ("admin token", admin.as_str()),
        ("user token", user.as_str()),
        ("refresh token", refresh),
    ] {
        assert!(!logs.contains(secret), "the {what} is in the logs");
        for part in secret.split('.').filter(|p| p.len() >= 12) {
            assert!(!logs.contains(part), "a part of the {what} is in the logs");
        }
    }
    // Nor is the key that seals stored secrets.
    let key = std::fs::read_to_string(dir.path().join("secret.key")).expect("sealing key");
    assert!(!key.trim().is_empty() && !logs.contains(key.trim()));
}

#[test]
fn orchestrator_dev_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    for (args, env) in [
        (vec!["dev", "--listen", "0.0.0.0:8000"], vec![]),
        (vec!["dev"], vec![("LISTEN_ADDR", "0.0.0.0:8000")]),
    ] {
        let mut dev = start(orchestrator(dir.path(), &args, &env));
        let status = exit_status(&mut dev, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{args:?} {env:?} is still running"));
        assert!(!status.success(), "{args:?} {env:?}");
        // Let the reader thread collect what was written before the exit.
        std::thread::sleep(Duration::from_millis(200));
        let stderr = dev.stderr.lock().unwrap().clone();
        assert!(
            stderr.contains("loopback") && stderr.contains("0.0.0.0:8000"),
            "{stderr}"
        );
        assert!(
            dev.line(Instant::now())
                .is_none_or(|l| !l.contains("TOKEN")),
            "no token is printed"
        );
    }
}

#[tokio::test]
async fn orchestrator_serve_with_no_configuration_is_healthy_on_an_embedded_database() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut serve = start(orchestrator(
        dir.path(),
        &["serve", "--listen", &listen],
        &[],
    ));
    let url = format!("http://{listen}/api/v1/health");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let response = loop {
        if let Ok(response) = client.get(&url).send().await {
            break response;
        }
        if let Some(status) = serve.child.try_wait().unwrap() {
            panic!(
                "serve exited with {status} before answering; stderr {}",
                serve.stderr.lock().unwrap()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no answer on {url} within 60 s; stderr {}",
            serve.stderr.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["db_connection"], "healthy", "{body}");
    assert!(
        dir.path().join("orchestrator.db").is_file(),
        "the embedded database is a file in the working directory"
    );
    serve.child.kill().unwrap();
    assert!(exit_status(&mut serve, Duration::from_secs(10)).is_some());
}

#[test]
fn orchestrator_serve_with_an_unreachable_db_url_exits_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut serve = start(orchestrator(
        dir.path(),
        &["serve", "--listen", &listen],
        &[("DB_URL", "postgres://127.0.0.1:1/x")],
    ));
    let status = exit_status(&mut serve, Duration::from_secs(15))
        .expect("serve still runs 15 s after failing to reach its database");
    assert!(!status.success(), "{status}");
    // Let the reader thread collect what was written before the exit.
    std::thread::sleep(Duration::from_millis(200));
    let stderr = serve.stderr.lock().unwrap().clone();
    assert!(stderr.contains("DB_URL"), "{stderr}");
}
