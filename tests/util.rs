//! Helpers for the HTTP tests (mini-redis `tests/server.rs` style): a real
//! server on `127.0.0.1:0` in the test's own runtime, with its own data
//! directory, and two clients: hyper's for ordinary requests, and a raw TCP
//! one for the tests that must misbehave on purpose (slow headers, stalled
//! bodies, `Expect: 100-continue`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use powerd::config::ServerConfig;
use powerd::storage::{Engine, EngineOptions};

/// The longest any single client step may take before the test fails
/// instead of hanging. Generous: it only bounds broken servers.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A directory under cargo's per-target tmp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("powerd-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server. [`TestServer::stop`] shuts it down cleanly; dropping
/// it (say, after a failed assertion) still removes its directory.
pub struct TestServer {
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    // Last: the directory goes after everything that uses it.
    _dir: TempDir,
}

pub async fn start_server() -> TestServer {
    start_server_with(ServerConfig::default()).await
}

pub async fn start_server_with(config: ServerConfig) -> TestServer {
    let dir = TempDir::new("http");
    let engine = Engine::open(&dir.path().join("data"), EngineOptions::default())
        .expect("engine opens in a fresh directory");
    start_server_on(engine, config, dir).await
}

/// A server in front of `engine` (say, one on a simulated file system);
/// `dir` is removed when the server is dropped.
pub async fn start_server_on(engine: Engine, config: ServerConfig, dir: TempDir) -> TestServer {
    let engine = Arc::new(engine);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port 0 always binds");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(powerd::http::run(
        listener,
        Arc::clone(&engine),
        config,
        async move {
            // Dropping the sender counts as a signal too.
            let _ = shutdown_rx.await;
        },
    ));
    TestServer {
        addr,
        engine,
        shutdown: Some(shutdown_tx),
        task: Some(task),
        _dir: dir,
    }
}

impl TestServer {
    pub async fn get(&self, path_and_query: &str) -> Reply {
        self.request(Method::GET, path_and_query, Vec::new()).await
    }

    pub async fn post(&self, path: &str, body: impl Into<Vec<u8>>) -> Reply {
        self.request(Method::POST, path, body.into()).await
    }

    /// One request on a fresh connection with hyper's client.
    pub async fn request(&self, method: Method, path_and_query: &str, body: Vec<u8>) -> Reply {
        self.request_as(None, method, path_and_query, body).await
    }

    /// [`TestServer::request`] with `Authorization: Bearer <token>`.
    pub async fn request_as(
        &self,
        token: Option<&str>,
        method: Method,
        path_and_query: &str,
        body: Vec<u8>,
    ) -> Reply {
        tokio::time::timeout(STEP_TIMEOUT, async {
            let stream = TcpStream::connect(self.addr).await.expect("connect");
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(connection);
            let mut request = Request::builder()
                .method(method)
                .uri(path_and_query)
                .header(HOST, "localhost");
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let request = request
                .body(Full::new(Bytes::from(body)))
                .expect("a valid request");
            let response = sender.send_request(request).await.expect("a response");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("the whole body")
                .to_bytes()
                .to_vec();
            Reply {
                status,
                headers,
                body,
            }
        })
        .await
        .expect("the request finished in time")
    }

    /// Resolves the shutdown future handed to `run`.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for `run` to return.
    pub async fn wait_stopped(&mut self, within: Duration) {
        let task = self.task.take().expect("waited for once");
        tokio::time::timeout(within, task)
            .await
            .expect("run returned in time")
            .expect("run did not panic");
    }

    /// Shuts down, waits for `run`, closes the engine.
    pub async fn stop(mut self) {
        self.begin_shutdown();
        self.wait_stopped(STEP_TIMEOUT).await;
        self.engine.close().expect("the engine closes cleanly");
    }

    pub async fn raw(&self) -> RawClient {
        RawClient::connect(self.addr).await
    }
}

/// A response: status, headers and the whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// Asserts a JSON error response with `status` that blames `field`
    /// (`None`: no single field), in the documented shape.
    #[track_caller]
    pub fn assert_error(&self, status: u16, field: Option<&str>) {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(self.headers["content-type"], "application/json");
        let json = self.json();
        let error = json["error"].as_str().expect("an error message");
        match field {
            Some(field) => {
                assert_eq!(json["field"], field, "body: {}", self.text());
                assert!(
                    error.starts_with(&format!("{field}: ")),
                    "the message names the field: {error}"
                );
            }
            None => assert!(json["field"].is_null(), "body: {}", self.text()),
        }
    }

    /// `(datetime, value, coverage)` of each bucket of a `GET /data` reply.
    #[track_caller]
    pub fn buckets(&self) -> Vec<(String, f64, u64)> {
        assert_eq!(self.status, 200, "body: {}", self.text());
        self.json()["data"]
            .as_array()
            .expect("a data array")
            .iter()
            .map(|b| {
                (
                    b["datetime"].as_str().expect("datetime").to_owned(),
                    b["value"].as_f64().expect("value"),
                    // Only partial buckets carry `coverage`; absent means all 900 s.
                    b["coverage"].as_u64().unwrap_or(900),
                )
            })
            .collect()
    }
}

/// A deliberately dumb HTTP/1.1 client over one TCP connection.
pub struct RawClient {
    pub stream: TcpStream,
    /// Bytes read but not yet returned as a response.
    pending: Vec<u8>,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        RawClient {
            stream,
            pending: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// Reads one response (interim `100 Continue` ones included), using
    /// `content-length` to find its end.
    pub async fn read_response(&mut self) -> Reply {
        tokio::time::timeout(STEP_TIMEOUT, self.read_response_untimed())
            .await
            .expect("a response in time")
    }

    pub async fn read_response_untimed(&mut self) -> Reply {
        let head_end = loop {
            if let Some(at) = find(&self.pending, b"\r\n\r\n") {
                break at + 4;
            }
            self.fill().await;
        };
        let head = String::from_utf8(self.pending[..head_end].to_vec()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("a status line");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = HeaderMap::new();
        for line in lines.filter(|line| !line.is_empty()) {
            let (name, value) = line.split_once(':').expect("a header line");
            headers.append(
                HeaderName::from_bytes(name.trim().as_bytes()).expect("header name"),
                HeaderValue::from_str(value.trim()).expect("header value"),
            );
        }
        let length: usize = headers
            .get("content-length")
            .map(|v| v.to_str().unwrap().parse().unwrap())
            .unwrap_or(0);
        while self.pending.len() < head_end + length {
            self.fill().await;
        }
        let body = self.pending[head_end..head_end + length].to_vec();
        self.pending.drain(..head_end + length);
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the server closed the connection mid-response");
        self.pending.extend_from_slice(&chunk[..n]);
    }

    /// Waits until the server closes the connection (EOF or reset);
    /// `false` if it is still open after `within`.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        read_until_closed(&mut self.stream, within).await.is_some()
    }
}

/// Reads until EOF or a reset; `None` if that takes longer than `within`,
/// else what was read on the way.
pub async fn read_until_closed(
    reader: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let until_closed = async {
        let mut chunk = [0u8; 4096];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(within, until_closed).await.ok()?;
    Some(seen)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A `POST /data` body: `readings` are `(datetime, value)` pairs.
pub fn post_body(ship: u64, units: &str, readings: &[(impl AsRef<str>, f64)]) -> String {
    let data: Vec<_> = readings
        .iter()
        .map(|(datetime, value)| serde_json::json!({"datetime": datetime.as_ref(), "value": value}))
        .collect();
    serde_json::json!({"spaceship_id": ship, "units": units, "data": data}).to_string()
}

/// `2018-08-24T<hh:mm>:00Z`, the day of SPEC.md's examples.
pub fn at(hh_mm: &str) -> String {
    format!("2018-08-24T{hh_mm}:00Z")
}

/// A tmpfs mounted for the test's life.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    /// Mounts one of `size` (`24m`) at a fresh directory named by `label`.
    pub fn mount(label: &str, size: &str) -> Tmpfs {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("powerd-tmpfs-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "cannot mount a tmpfs at {} (this test needs root, as CI has)",
            dir.display()
        );
        Tmpfs(dir)
    }

    pub fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount to {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}
