//! External servers the deployment tests start on loopback and stop when dropped: Oxigraph's
//! SPARQL server and an S3-compatible server (moto), as scripts/fetch-test-servers.sh installs
//! them in target/tools (`make test` runs it first).

use crate::common::root;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, killed on drop, with its data directory.
pub struct ChildServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(relative: &str) -> PathBuf {
    let dir = std::env::var_os("ASSETKG_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/tools"));
    let path = dir.join(relative);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-test-servers.sh (`make test` does)",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// Polls `url` until it answers 200 or the process exits.
fn wait_ready(child: &mut Child, url: &str, what: &str) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("{what} exited with {status} before it was ready");
        }
        if agent.get(url).call().is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} was not ready at {url} after 60 s");
}

/// An Oxigraph server (RocksDB in a temporary directory); SPARQL at `/query` and `/update`.
pub fn oxigraph() -> ChildServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = Command::new(tool("oxigraph-0.5.13/oxigraph"))
        .args(["serve", "--location"])
        .arg(dir.path())
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start oxigraph");
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(
        &mut child,
        &format!("{url}/query?query=ASK%7B%7D"),
        "oxigraph",
    );
    ChildServer {
        child,
        url,
        _dir: dir,
    }
}

/// An S3-compatible server (moto, in memory) with the bucket `bucket` created.
pub fn s3(bucket: &str) -> ChildServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = Command::new(tool("moto-5.2.5/bin/moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&mut child, &format!("{url}/moto-api/"), "moto");
    ureq::put(&format!("{url}/{bucket}"))
        .send_empty()
        .expect("create the bucket");
    ChildServer {
        child,
        url,
        _dir: dir,
    }
}

/// LanceDB storage options for the S3 server at `url`.
pub fn s3_options(url: &str) -> Vec<(String, String)> {
    [
        ("aws_endpoint", url),
        ("aws_region", "us-east-1"),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("allow_http", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}
