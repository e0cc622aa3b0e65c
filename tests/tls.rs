//! TLS (`serve --tls-cert --tls-key`) with the real binary, a fresh
//! self-signed certificate per test, and real TLS clients: rustls from the
//! test, and curl (OpenSSL or GnuTLS underneath) for a second opinion.
//!
//! Guarantee: the API answers over TLS (tokens work as over plain HTTP);
//! plain HTTP to the port gets no HTTP answer and is closed; SIGHUP swaps
//! the certificate for new connections while open ones carry on; a broken
//! certificate on SIGHUP keeps the one in force; SIGTERM does not wait for
//! a handshake that never comes; bad TLS flags or files refuse to start
//! with exit 2.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};

use crate::process::{Client, Server};
use crate::util::TempDir;
use powerd::auth::{AuthFile, WriteScope};

/// A self-signed certificate for `localhost` and 127.0.0.1, and its key.
struct Pair {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn pair() -> Pair {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("a self-signed certificate");
    Pair {
        cert_pem: made.cert.pem(),
        key_pem: made.signing_key.serialize_pem(),
        der: made.cert.der().clone(),
    }
}

impl Pair {
    fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

/// A rustls client that trusts exactly `trusted`.
fn client_config(trusted: &[&CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in trusted {
        roots.add((*cert).clone()).expect("a usable root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("default versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// A finished handshake with the server at `address`, as `localhost`.
fn connect(address: SocketAddr, config: &Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream> {
    let name = ServerName::try_from("localhost").expect("a server name");
    let connection =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(connection, Client::tcp(address)?);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// The certificate the server presented on `stream`.
fn presented(stream: &TlsStream) -> CertificateDer<'static> {
    stream.conn.peer_certificates().expect("a certificate")[0].clone()
}

fn auth_file(dir: &Path) -> (PathBuf, String, String) {
    let mut auth = AuthFile::default();
    let reader = auth.add("reader", WriteScope::None, true, false).unwrap();
    let admin = auth
        .add("prometheus", WriteScope::None, false, true)
        .unwrap();
    let path = dir.join("auth.json");
    auth.store(&path).unwrap();
    (path, reader, admin)
}

fn start(dir: &TempDir, cert: &Path, key: &Path, auth: &Path) -> Server {
    start_with(dir, cert, key, auth, &[])
}

/// [`start`] with more `serve` flags.
fn start_with(dir: &TempDir, cert: &Path, key: &Path, auth: &Path, more: &[&str]) -> Server {
    let mut flags = vec![
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--auth-file",
        auth.to_str().unwrap(),
    ];
    flags.extend_from_slice(more);
    Server::start_with(&dir.path().join("data"), &flags)
}

fn hangup(server: &Server) {
    let sent = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "SIGHUP is delivered");
}

#[test]
fn the_api_answers_over_tls_and_plain_http_is_refused() {
    let dir = TempDir::new("tls");
    std::fs::create_dir_all(dir.path()).unwrap();
    let pair = pair();
    let (cert, key) = pair.write(dir.path());
    let (auth, reader, admin) = auth_file(dir.path());
    let server = start(&dir, &cert, &key, &auth);
    let config = client_config(&[&pair.der]);

    let stream = connect(server.address, &config).expect("a TLS handshake");
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(presented(&stream), pair.der);
    let mut client = Client::over(stream);
    assert_eq!(client.request("GET", "/health", b"").unwrap().0, 200);
    assert_eq!(client.request("GET", "/data/fleet", b"").unwrap().0, 401);
    let (status, body) = client
        .request_as(Some(&reader), "GET", "/data/fleet", b"")
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // A client that does not trust the certificate stops at the handshake.
    let stranger = client_config(&[&self::pair().der]);
    assert!(connect(server.address, &stranger).is_err());

    // curl, another TLS stack, trusting the certificate file.
    let url = format!("https://localhost:{}/data/fleet", server.address.port());
    let curl = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--cacert"])
        .arg(&cert)
        .args(["--header", &format!("Authorization: Bearer {reader}")])
        .arg(&url)
        .output()
        .expect("curl runs (.ci/run installs it)");
    assert!(
        curl.status.success(),
        "curl over TLS: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert!(String::from_utf8_lossy(&curl.stdout).starts_with(r#"{"units":"kWh""#));

    // Plain HTTP: no HTTP answer, and the connection is closed.
    let mut plain = Client::tcp(server.address).unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let started = Instant::now();
    let mut chunk = [0u8; 4096];
    loop {
        match plain.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a plain-HTTP connection stays open"
        );
    }
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer: {}",
        String::from_utf8_lossy(&answer)
    );

    // The failed handshakes are counted (the stranger's and the plain one).
    let mut client = Client::over(connect(server.address, &config).unwrap());
    let (status, metrics) = client
        .request_as(Some(&admin), "GET", "/metrics", b"")
        .unwrap();
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    let failures: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("powerd_tls_handshake_failures_total "))
        .expect("the TLS failure counter")
        .parse()
        .unwrap();
    assert!(failures >= 2, "{failures} handshake failures counted");
}

#[test]
fn sighup_swaps_the_certificate_and_open_connections_carry_on() {
    let dir = TempDir::new("tls-reload");
    std::fs::create_dir_all(dir.path()).unwrap();
    let (first, second) = (pair(), pair());
    let (cert, key) = first.write(dir.path());
    let (auth, reader, _) = auth_file(dir.path());
    let server = start(&dir, &cert, &key, &auth);
    let config = client_config(&[&first.der, &second.der]);

    let open = connect(server.address, &config).unwrap();
    assert_eq!(presented(&open), first.der);
    let mut open = Client::over(open);
    assert_eq!(open.request("GET", "/health", b"").unwrap().0, 200);

    second.write(dir.path());
    hangup(&server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while presented(&connect(server.address, &config).unwrap()) != second.der {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not swap the certificate"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The connection made before the reload still answers.
    let (status, _) = open
        .request_as(Some(&reader), "GET", "/data/fleet", b"")
        .unwrap();
    assert_eq!(status, 200);

    // A certificate that does not parse, or a key of another certificate:
    // the pair in force stays, and the server keeps serving.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    hangup(&server);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&cert, &first.cert_pem).unwrap();
    std::fs::write(&key, &second.key_pem).unwrap();
    hangup(&server);
    std::thread::sleep(Duration::from_millis(300));
    let again = connect(server.address, &config).expect("the server still serves TLS");
    assert_eq!(presented(&again), second.der);
    assert_eq!(
        Client::over(again)
            .request("GET", "/health", b"")
            .unwrap()
            .0,
        200
    );
}

/// SIGTERM stops the server at once even while a client holds a TCP
/// connection without ever starting its TLS handshake: a handshake has no
/// request in flight to wait for (here the header timeout and the grace
/// are two minutes, so waiting for either would miss the limit).
#[test]
fn shutdown_does_not_wait_for_a_handshake_that_never_comes() {
    let dir = TempDir::new("tls-stop");
    std::fs::create_dir_all(dir.path()).unwrap();
    let pair = pair();
    let (cert, key) = pair.write(dir.path());
    let (auth, _, _) = auth_file(dir.path());
    let server = start_with(
        &dir,
        &cert,
        &key,
        &auth,
        &["--header-timeout", "120", "--shutdown-grace", "120"],
    );
    let silent = Client::tcp(server.address).unwrap();
    // A served request after it: the silent connection has been accepted
    // and its task is waiting for the handshake.
    let config = client_config(&[&pair.der]);
    let mut client = Client::over(connect(server.address, &config).unwrap());
    assert_eq!(client.request("GET", "/health", b"").unwrap().0, 200);

    let status = server
        .terminate_within(Duration::from_secs(30))
        .expect("SIGTERM stopped the server without waiting for the handshake");
    assert!(status.success(), "{status}");
    drop(silent);
}

#[test]
fn bad_tls_flags_and_files_refuse_to_start() {
    let dir = TempDir::new("tls-flags");
    std::fs::create_dir_all(dir.path()).unwrap();
    let (first, second) = (pair(), pair());
    let (cert, key) = first.write(dir.path());
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(&other_key, &second.key_pem).unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "hello\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let data = dir.path().join("data");
    let (cert, key, other_key, garbage, missing) = (
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        other_key.to_str().unwrap(),
        garbage.to_str().unwrap(),
        missing.to_str().unwrap(),
    );
    let cases: [(&[&str], &str); 6] = [
        (&["--tls-cert", cert], "--tls-key"),
        (&["--tls-key", key], "--tls-cert"),
        (&["--tls-cert", missing, "--tls-key", key], missing),
        (
            &["--tls-cert", garbage, "--tls-key", key],
            "no PEM certificate",
        ),
        (
            &["--tls-cert", cert, "--tls-key", garbage],
            "no PEM private key",
        ),
        (
            &["--tls-cert", cert, "--tls-key", other_key],
            "does not belong",
        ),
    ];
    for (flags, says) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_powerd"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(flags)
            .output()
            .expect("powerd runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{flags:?} should say {says:?}: {stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("listening"),
            "{flags:?} started"
        );
    }
}
