//! The real `powerd` binary as a child process, and a small blocking
//! HTTP/1.1 client that reports I/O errors instead of panicking (the tests
//! using it kill the server under the client on purpose).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub const DAY_S: i64 = 86_400;

pub struct Server {
    child: Child,
    pub address: SocketAddr,
}

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[])
    }

    /// [`Server::start`] with extra `serve` flags.
    pub fn start_with(data_dir: &Path, flags: &[&str]) -> Server {
        Server::start_logging_to(data_dir, flags, Stdio::inherit())
    }

    /// [`Server::start_with`], its log lines (stderr) going to `stderr`;
    /// at `--log-level warn` unless `flags` say otherwise.
    pub fn start_logging_to(data_dir: &Path, flags: &[&str], stderr: impl Into<Stdio>) -> Server {
        let level: &[&str] = if flags.contains(&"--log-level") {
            &[]
        } else {
            &["--log-level", "warn"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_powerd"))
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(level)
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the powerd binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            let line = lines
                .next()
                .expect("powerd printed its listen line before exiting")
                .expect("stdout is readable");
            if let Some(rest) = line
                .strip_prefix("powerd listening on ")
                .and_then(|rest| rest.split("://").nth(1))
            {
                let address = rest.split([',', ' ']).next().unwrap_or_default();
                break address.parse().expect("the listen line carries an address");
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, address }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        self.child.wait().expect("the killed server is reaped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One keep-alive HTTP/1.1 connection; any I/O error is returned, since
/// the server dying under the client is the point of this test.
pub struct Client {
    stream: Box<dyn Stream>,
}

/// A plain or TLS connection.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

impl Client {
    pub fn connect(address: SocketAddr) -> std::io::Result<Client> {
        Ok(Client::over(Client::tcp(address)?))
    }

    /// A TCP connection with the client's timeouts and no Nagle delay.
    pub fn tcp(address: SocketAddr) -> std::io::Result<TcpStream> {
        let stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// A client on an established connection (a TLS stream, say).
    pub fn over(stream: impl Stream + 'static) -> Client {
        Client {
            stream: Box::new(stream),
        }
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        self.request_as(None, method, path, body)
    }

    /// [`Client::request`] with `Authorization: Bearer <token>`.
    pub fn request_as(
        &mut self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
        let head = format!("{method} {path} HTTP/1.1\r\nhost: crash\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len());
        self.stream.write_all(head.as_bytes())?;
        self.stream.write_all(body)?;
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 16384];
        let header_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(std::io::ErrorKind::InvalidData)?;
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .ok_or(std::io::ErrorKind::InvalidData)?;
        while buffer.len() < header_end + length {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        Ok((status, buffer[header_end..header_end + length].to_vec()))
    }
}

impl Server {
    /// SIGTERM, and the exit status: a graceful stop checkpoints.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal_term();
        self.child.wait().expect("the server is reaped")
    }

    /// SIGTERM, then the exit status if the process ends within `limit`
    /// (`None`: it is still running, and is killed when dropped).
    pub fn terminate_within(mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.signal_term();
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn signal_term(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM is delivered");
    }
}

/// A `POST /data` body for `ship`: 96 fifteen-minute readings in `units`
/// from `day_start_s`, reading `i` printed as `value(i)`.
pub fn day_body(
    ship: u64,
    units: &str,
    day_start_s: i64,
    value: impl Fn(i64) -> String,
) -> Vec<u8> {
    let readings: Vec<String> = (0..96)
        .map(|i| {
            format!(
                r#"{{"datetime":"{}","value":{}}}"#,
                timestamp(day_start_s + i * 900),
                value(i)
            )
        })
        .collect();
    format!(
        r#"{{"spaceship_id":{ship},"units":"{units}","data":[{}]}}"#,
        readings.join(",")
    )
    .into_bytes()
}

/// Runs `powerd ARGS...` to completion and returns what it printed.
pub fn powerd(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_powerd"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("the powerd binary runs")
}

/// `YYYY-MM-DDTHH:MM:SSZ` for `secs` (civil-from-days, Howard Hinnant), so
/// tests do not lean on the code under test to spell their input.
pub fn timestamp(secs: i64) -> String {
    let days = secs.div_euclid(DAY_S);
    let rem = secs.rem_euclid(DAY_S);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
