//! A real S3 API for tests: `s3s-fs` 0.14.1 on a free loopback port, checking SigV4 signatures
//! with a random access key, over a temporary folder. Started per test, stopped on drop.
//!
//! Install: `cargo install s3s-fs --version 0.14.1 --features binary --locked` (`.ci/run` does).
//! A missing binary fails the test that needs it, never skips it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{S3BlobStore, S3Config};

pub struct S3TestServer {
    child: Child,
    pub endpoint: String,
    pub bucket: String,
    access_key: String,
    secret_key: String,
    _root: tempfile::TempDir,
}

impl S3TestServer {
    /// Starts the server with one empty bucket and waits until it says it is listening.
    pub fn start() -> Self {
        let root = tempfile::tempdir().expect("a temporary folder for s3s-fs");
        let bucket = "stride-test".to_owned();
        std::fs::create_dir(root.path().join(&bucket)).expect("create the bucket folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let access_key = format!("AK{}", uuid::Uuid::now_v7().simple());
        let secret_key = format!("SK{}", uuid::Uuid::now_v7().simple());
        let mut child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .arg(root.path())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start s3s-fs ({e}); install it: cargo install s3s-fs --version 0.14.1 --features binary --locked")
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("server is running at") {
                    let _ = ready_tx.send(());
                }
            }
        });
        if ready_rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = child.kill();
            panic!("s3s-fs did not report listening on port {port} within 30 s");
        }
        Self { child, endpoint: format!("http://127.0.0.1:{port}"), bucket, access_key, secret_key, _root: root }
    }

    pub fn config(&self) -> S3Config {
        S3Config {
            bucket: self.bucket.clone(),
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            path_style: true,
            static_credentials: Some((self.access_key.clone(), self.secret_key.clone())),
        }
    }

    /// The folder s3s-fs keeps the buckets in (one sub-folder a bucket, one file an object).
    pub fn root(&self) -> &std::path::Path {
        self._root.path()
    }

    pub fn store(&self) -> S3BlobStore {
        S3BlobStore::new(self.config())
    }

    /// The same server with keys it does not know: every call is refused (403).
    pub fn store_with_wrong_keys(&self) -> S3BlobStore {
        S3BlobStore::new(S3Config { static_credentials: Some(("nobody".into(), "wrong".into())), ..self.config() })
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
