//! What the end-to-end benchmarks share: starting the real binary, a raw
//! keep-alive HTTP/1.1 client, and the figures' arithmetic.

// Each bench binary includes this module and uses part of it.
#![allow(dead_code)]

/// The forecast backtest protocol (also used by examples/forecast_backtest.rs).
pub mod backtest;
/// The synthetic fleet of the fleet and lake benchmarks.
pub mod synthetic;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn timestamp(secs: i64) -> String {
    powerd::wire::format_timestamp(secs)
}

/// A keep-alive HTTP/1.1 connection speaking just enough of the protocol.
pub struct Client {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// Sent with every request, as `name: value\r\n` (e.g. a token).
    extra_header: Vec<u8>,
}

impl Client {
    pub async fn connect(address: SocketAddr) -> Client {
        let stream = TcpStream::connect(address).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buffer: Vec::with_capacity(1 << 16),
            extra_header: Vec::new(),
        }
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: &str) -> Client {
        self.extra_header = format!("authorization: Bearer {token}\r\n").into_bytes();
        self
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> (u16, Vec<u8>) {
        let mut request = format!("{method} {path} HTTP/1.1\r\nhost: bench\r\n").into_bytes();
        request.extend_from_slice(&self.extra_header);
        if let Some(body) = body {
            request.extend_from_slice(
                format!(
                    "content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            request.extend_from_slice(body);
        } else {
            request.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&request).await.expect("send");
        // Read until the end of the headers.
        let header_end = loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            self.fill().await;
        };
        let head = String::from_utf8_lossy(&self.buffer[..header_end]).to_string();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .expect("content-length");
        while self.buffer.len() < header_end + length {
            self.fill().await;
        }
        let body = self.buffer[header_end..header_end + length].to_vec();
        self.buffer.drain(..header_end + length);
        (status, body)
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 65536];
        let n = self.stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "server closed the connection");
        self.buffer.extend_from_slice(&chunk[..n]);
    }
}

pub struct Server {
    pub child: Child,
    pub address: SocketAddr,
}

impl Server {
    pub fn start(binary: &Path, data_dir: &Path) -> Server {
        Server::start_with(binary, data_dir, &[])
    }

    /// [`Server::start`] with extra `serve` flags.
    pub fn start_with(binary: &Path, data_dir: &Path, flags: &[&str]) -> Server {
        let mut child = Command::new(binary)
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start powerd");
        let address = read_listen_line(&mut child);
        Server { child, address }
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "powerd exited with {status} on SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for the line `powerd listening on http://ADDR, ...` and returns ADDR.
pub fn read_listen_line(child: &mut Child) -> SocketAddr {
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.expect("read stdout");
        if let Some(rest) = line.split("http://").nth(1) {
            let address = rest
                .split(|c: char| c == ',' || c.is_whitespace())
                .next()
                .unwrap_or("");
            let address = address.parse().expect("listen address");
            // Keep draining stdout so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return address;
        }
    }
    panic!("powerd exited before printing its listen address");
}

pub async fn wait_healthy(address: SocketAddr) {
    let mut client = Client::connect(address).await;
    let (status, _) = client.request("GET", "/health", None).await;
    assert_eq!(status, 200);
}

/// Resident KiB of `pid` that are its own (`RssAnon`) and that are pages
/// of mapped files (`RssFile`: the block files, reclaimable by the kernel).
pub fn rss_split_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("RssAnon:"), field("RssFile:"))
}

/// CPU seconds (user + system) process `pid` (or `"self"`) has used.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line.
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                total += dir_bytes(&path);
            } else if let Ok(meta) = entry.metadata() {
                total += meta.len();
            }
        }
    }
    total
}

pub fn percentile(values: &mut [Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort_unstable();
    values[((values.len() - 1) as f64 * q).round() as usize]
}

pub fn mean(values: &[Duration]) -> f64 {
    values.iter().map(Duration::as_secs_f64).sum::<f64>() / values.len().max(1) as f64
}

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Bytes of every `.parquet` file under `dir`.
pub fn parquet_bytes(dir: &Path) -> u64 {
    parquet_files(dir)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Every `.parquet` file under `dir` (a lake).
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path);
            }
        }
    }
    out
}
