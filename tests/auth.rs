//! Tokens at work (`serve --auth-file`): 401 without a valid token (before
//! any routing, and without reading a body), 403 without the scope, a ship
//! token writes its own ships only, reads and metrics need their scopes,
//! `/health` and the dashboard's files need none; and a non-loopback
//! address without tokens is refused at start.

use std::sync::Arc;

use hyper::Method as M;

use crate::util::{at, post_body, start_server_on, TempDir, TestServer};
use powerd::auth::{AuthFile, Tokens, WriteScope};
use powerd::config::ServerConfig;
use powerd::storage::Engine;

struct Secrets {
    ship_42: String,
    reader: String,
    admin: String,
    writer: String,
}

async fn server() -> (TestServer, Secrets) {
    let mut auth = AuthFile::default();
    let tokens = Secrets {
        ship_42: auth
            .add("ship-42", WriteScope::parse("42").unwrap(), false, false)
            .unwrap(),
        reader: auth
            .add("dashboard", WriteScope::None, true, false)
            .unwrap(),
        admin: auth
            .add("prometheus", WriteScope::None, false, true)
            .unwrap(),
        writer: auth.add("gateway", WriteScope::All, true, false).unwrap(),
    };
    let dir = TempDir::new("auth");
    let engine = Engine::open(&dir.path().join("data"), Default::default()).unwrap();
    let file = dir.path().join("auth.json");
    std::fs::create_dir_all(dir.path()).unwrap();
    auth.store(&file).unwrap();
    let config = ServerConfig {
        auth: Some(Arc::new(Tokens::load(&file).unwrap())),
        ..ServerConfig::default()
    };
    (start_server_on(engine, config, dir).await, tokens)
}

fn body(ship: u64) -> String {
    post_body(ship, "kW", &[(at("00:00"), 4.0), (at("00:15"), 8.0)])
}

#[tokio::test]
async fn requests_need_a_token_with_the_right_scope() {
    let (s, t) = server().await;

    // No token, or an unknown one: 401 whatever the path, method or body.
    for (method, path) in [
        (M::GET, "/data?spaceship_id=42"),
        (M::POST, "/data"),
        (M::GET, "/data/fleet"),
        (M::GET, "/topusers"),
        (M::GET, "/metrics"),
        (M::GET, "/openapi.json"),
        (M::GET, "/no-such-path"),
        (M::DELETE, "/data"),
    ] {
        for token in [None, Some("pwd_0000"), Some("")] {
            let reply = s
                .request_as(token, method.clone(), path, body(42).into())
                .await;
            reply.assert_error(401, Some("authorization"));
            assert_eq!(
                reply.headers["www-authenticate"], "Bearer",
                "{method} {path}"
            );
        }
    }
    // A body over the limit is not read before the token is checked.
    let huge = vec![b' '; 32 << 20];
    s.request_as(None, M::POST, "/data", huge)
        .await
        .assert_error(401, Some("authorization"));

    // No token needed.
    assert_eq!(
        s.request_as(None, M::GET, "/health", vec![]).await.status,
        200
    );
    assert_eq!(s.request_as(None, M::GET, "/", vec![]).await.status, 200);

    // A ship's token writes that ship, and only that one, and reads nothing.
    let reply = s
        .request_as(Some(&t.ship_42), M::POST, "/data", body(42).into())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let refused = s
        .request_as(Some(&t.ship_42), M::POST, "/data", body(7).into())
        .await;
    refused.assert_error(403, Some("spaceship_id"));
    assert!(
        refused.text().contains("may not write ship 7"),
        "{}",
        refused.text()
    );
    s.request_as(Some(&t.ship_42), M::GET, "/data?spaceship_id=42", vec![])
        .await
        .assert_error(403, None);

    // Reading needs read scope; ship 7 was never written.
    let read = s
        .request_as(Some(&t.reader), M::GET, "/data?spaceship_id=42", vec![])
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["data"].as_array().unwrap().len(), 2);
    s.request_as(Some(&t.reader), M::GET, "/data?spaceship_id=7", vec![])
        .await
        .assert_error(404, Some("spaceship_id"));
    s.request_as(Some(&t.reader), M::POST, "/data", body(7).into())
        .await
        .assert_error(403, None);
    for path in [
        "/data/fleet",
        "/topusers",
        "/openapi.json",
        "/ships",
        "/alerts",
    ] {
        let reply = s.request_as(Some(&t.reader), M::GET, path, vec![]).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }

    // Metrics need admin.
    s.request_as(Some(&t.reader), M::GET, "/metrics", vec![])
        .await
        .assert_error(403, None);
    assert_eq!(
        s.request_as(Some(&t.admin), M::GET, "/metrics", vec![])
            .await
            .status,
        200
    );

    // A token for every ship; with a valid token, routing errors are back.
    let reply = s
        .request_as(Some(&t.writer), M::POST, "/data", body(7).into())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    s.request_as(Some(&t.writer), M::GET, "/no-such-path", vec![])
        .await
        .assert_error(404, None);
    s.request_as(Some(&t.writer), M::DELETE, "/data", vec![])
        .await
        .assert_error(405, None);

    // Secrets never come back in a body.
    let metrics = s
        .request_as(Some(&t.admin), M::GET, "/metrics", vec![])
        .await;
    for secret in [&t.ship_42, &t.reader, &t.admin, &t.writer] {
        assert!(!metrics.text().contains(secret.as_str()));
    }
    s.stop().await;
}

/// `/metrics` counts requests by the scope they need and refusals by
/// reason — never by token, and never naming one.
#[tokio::test]
async fn metrics_count_requests_per_scope_and_refusals_per_reason() {
    let (s, t) = server().await;
    s.request_as(None, M::GET, "/data/fleet", vec![])
        .await
        .assert_error(401, Some("authorization"));
    s.request_as(None, M::GET, "/no-such-path", vec![])
        .await
        .assert_error(401, Some("authorization"));
    let mut raw = s.raw().await;
    raw.send(b"GET /data/fleet HTTP/1.1\r\nhost: x\r\nauthorization: Basic dXNlcjpwdw==\r\n\r\n")
        .await;
    raw.read_response()
        .await
        .assert_error(401, Some("authorization"));
    s.request_as(Some("pwd_0000"), M::GET, "/data/fleet", vec![])
        .await
        .assert_error(401, Some("authorization"));
    s.request_as(Some(&t.reader), M::POST, "/data", body(42).into())
        .await
        .assert_error(403, None);
    s.request_as(Some(&t.ship_42), M::POST, "/data", body(7).into())
        .await
        .assert_error(403, Some("spaceship_id"));
    assert_eq!(s.get("/health").await.status, 200);

    let metrics = s
        .request_as(Some(&t.admin), M::GET, "/metrics", vec![])
        .await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    let value = |series: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .parse()
            .unwrap()
    };
    for (scope, count) in [
        ("read", 3),
        ("write", 2),
        ("admin", 1),
        ("public", 1),
        ("none", 1),
    ] {
        let series = format!("powerd_http_requests_by_scope_total{{scope=\"{scope}\"}}");
        assert_eq!(value(&series), count, "{series}");
    }
    for (reason, count) in [
        ("no_token", 2),
        ("malformed", 1),
        ("unknown_token", 1),
        ("scope", 1),
        ("ship", 1),
    ] {
        let series = format!("powerd_http_auth_refusals_total{{reason=\"{reason}\"}}");
        assert_eq!(value(&series), count, "{series}");
    }
    for secret in [&t.ship_42, &t.reader, &t.admin, &t.writer] {
        assert!(!text.contains(secret.as_str()));
    }
    for name in ["ship-42", "dashboard", "prometheus", "gateway"] {
        assert!(!text.contains(name), "a token's name in the metrics");
    }
    s.stop().await;
}

/// Without tokens, only loopback is served: anything else needs
/// `--auth-file`, or `--insecure-no-auth` said out loud.
#[test]
fn a_non_loopback_address_without_tokens_is_refused() {
    let dir = TempDir::new("auth-listen");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_powerd"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .expect("powerd runs");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--auth-file") && stderr.contains("powerd token add"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists(), "nothing is created");

    let server =
        crate::process::Server::start_with(&dir.path().join("data"), &["--insecure-no-auth"]);
    drop(server);
}

/// The binary with an auth file: tokens work, and SIGHUP re-reads the
/// file — a revoked token is refused from then on, a new one works, and a
/// file that does not parse leaves the tokens in force.
#[test]
fn sighup_re_reads_the_auth_file() {
    let dir = TempDir::new("auth-sighup");
    std::fs::create_dir_all(dir.path()).unwrap();
    let auth_file = dir.path().join("auth.json");
    let mut auth = AuthFile::default();
    let old = auth.add("old", WriteScope::All, true, false).unwrap();
    auth.store(&auth_file).unwrap();
    let log = dir.path().join("powerd.log");
    let server = crate::process::Server::start_logging_to(
        &dir.path().join("data"),
        &[
            "--auth-file",
            auth_file.to_str().unwrap(),
            "--log-level",
            "info",
        ],
        std::fs::File::create(&log).unwrap(),
    );
    let status = |token: Option<&str>| {
        let mut client = crate::process::Client::connect(server.address).unwrap();
        client
            .request_as(token, "GET", "/data/fleet", b"")
            .unwrap()
            .0
    };
    assert_eq!(status(None), 401);
    assert_eq!(status(Some(&old)), 200);
    // The request log names the token, never shows it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(!text.contains(&old), "a secret in the log");
        if text.contains("token=old") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request line names the token: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let hangup = |expect: &dyn Fn() -> bool| {
        let pid = server.pid().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !expect() {
            assert!(std::time::Instant::now() < deadline, "SIGHUP had no effect");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    // Revoke "old", add "new".
    auth.remove("old").unwrap();
    let new = auth.add("new", WriteScope::None, true, false).unwrap();
    auth.store(&auth_file).unwrap();
    hangup(&|| status(Some(&old)) == 401);
    assert_eq!(status(Some(&new)), 200);

    // A broken file: "new" stays in force, and the process is alive.
    std::fs::write(&auth_file, "{ not json").unwrap();
    hangup(&|| true);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(status(Some(&new)), 200);
    assert_eq!(status(Some(&old)), 401);
}
