//! The client test-suite against a real IM 2.0 with the Dummy connector.
//!
//! Which IM: `TEST_IM_URL` if set; else, with `IM_VENV` set (a virtualenv holding IM,
//! see `/work/shared/reference/im.md`), one IM started for this test binary on a free
//! port of 127.0.0.1, in a temporary directory with a fresh database, stopped with
//! SIGTERM when the last running test lets go of it; else the tests print a notice and
//! pass, unless `REQUIRE_SERVICES=1`, which makes them fail.

#[macro_use]
mod contract;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, PoisonError, Weak};
use std::time::{Duration, Instant};

use contract::Target;
use tokio::sync::Mutex;

contract_tests!(target);

async fn target() -> Option<Target> {
    if let Ok(url) = std::env::var("TEST_IM_URL") {
        return Some(Target::new(url.trim_end_matches('/').to_owned(), ()));
    }
    let Some(venv) = std::env::var_os("IM_VENV") else {
        assert!(
            std::env::var("REQUIRE_SERVICES").as_deref() != Ok("1"),
            "REQUIRE_SERVICES=1 but neither TEST_IM_URL nor IM_VENV is set"
        );
        eprintln!("skipped: set TEST_IM_URL or IM_VENV to run the client suite against a real IM");
        return None;
    };
    let im = RealIm::shared(Path::new(&venv)).await;
    Some(Target::new(im.url.clone(), im))
}

/// An IM process of this test binary.
struct RealIm {
    url: String,
    child: std::sync::Mutex<Child>,
    /// IM's working directory: `tosca_cache.sqlite`, the database, the logs.
    dir: tempfile::TempDir,
}

/// The IM the running tests share; a test arriving after it stopped starts another.
static SHARED: Mutex<Weak<RealIm>> = Mutex::const_new(Weak::new());

/// IM reads its configuration from files only; this sets it in the process instead, so
/// every run has its own port and database. The watchdog stops IM if the test binary
/// dies without dropping it.
const LAUNCHER: &str = r#"
import os, signal, threading, time
def watchdog(parent=os.getppid()):
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=watchdog, daemon=True).start()
from IM.config import Config as C
C.REST_ADDRESS = '127.0.0.1'; C.REST_PORT = int(os.environ['IM_TEST_PORT'])
C.DATA_DB = 'sqlite://' + os.path.join(os.getcwd(), 'inf.dat')
C.LOG_FILE = os.path.join(os.getcwd(), 'im.log'); C.LOG_LEVEL = 'DEBUG'
import IM.im_service as s; s.main()
"#;

impl RealIm {
    async fn shared(venv: &Path) -> Arc<RealIm> {
        let mut slot = SHARED.lock().await;
        if let Some(im) = slot.upgrade() {
            return im;
        }
        let im = Arc::new(RealIm::start(venv).await);
        *slot = Arc::downgrade(&im);
        im
    }

    async fn start(venv: &Path) -> RealIm {
        let python: PathBuf = venv.join("bin").join("python");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let dir = tempfile::Builder::new()
            .prefix("im-test.")
            .tempdir()
            .unwrap();
        let log = std::fs::File::create(dir.path().join("stdout.log")).unwrap();
        let child = Command::new(&python)
            .arg("-c")
            .arg(LAUNCHER)
            .env("IM_TEST_PORT", port.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let im = RealIm {
            url: format!("http://127.0.0.1:{port}"),
            child: std::sync::Mutex::new(child),
            dir,
        };
        im.wait_ready().await;
        im
    }

    async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(response) = http.get(format!("{}/version", self.url)).send().await {
                if response.status().is_success() {
                    eprintln!(
                        "IM ready at {} after {} ms (logs in {})",
                        self.url,
                        started.elapsed().as_millis(),
                        self.dir.path().display()
                    );
                    return;
                }
            }
            let exited = self.child().try_wait();
            if let Ok(Some(status)) = exited {
                panic!("IM exited ({status}) before answering:\n{}", self.output());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("IM not ready after 30 s:\n{}", self.output());
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }
}

impl Drop for RealIm {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(PoisonError::into_inner);
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
