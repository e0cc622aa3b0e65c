//! Shards by ship (issue 15): `POST /data?spaceship_id=N`, and
//! `deploy/nginx-shards.conf` in front of two real powerd nodes.
//!
//! Guarantee: a POST whose query names its ship is stored as any other; one
//! whose query names another ship than its body, or a malformed id, is
//! refused (400, field `spaceship_id`, GET /data's message for a malformed
//! one) and writes nothing. Behind the checked-in nginx configuration
//! (Debian's `nginx`, run as a child process; `.ci/run` installs it, and
//! without it the test fails saying how to get it — it never skips), a
//! fleet written through nginx lives on exactly one node per ship, both
//! nodes get a share, nginx's answers are the owning node's byte for byte,
//! rewrites of a ship go to the same node, every request nginx cannot route
//! to one ship's node gets nginx's own JSON error without reaching a node,
//! and a stopped node's ships get 502 while the other node never sees them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

use crate::process::{day_body, timestamp, Server, DAY_S};
use crate::util::{at, post_body, start_server, Reply, TempDir};

#[tokio::test]
async fn a_post_naming_its_ship_in_the_query_is_stored() {
    let server = start_server().await;
    let body = post_body(7, "kWh", &[(at("00:00"), 12.0), (at("01:00"), 26.0)]);
    let reply = server.post("/data?spaceship_id=7", body.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        serde_json::json!({"spaceship_id": 7, "readings": 2, "buckets": 8})
    );
    let stored = server.get("/data?spaceship_id=7").await.buckets();
    let values: Vec<f64> = stored.iter().map(|(_, value, _)| *value).collect();
    assert_eq!(values, [3.0, 3.0, 3.0, 3.0, 6.5, 6.5, 6.5, 6.5]);

    // As before the parameter existed: other parameters are ignored, and an
    // empty value counts as absent (the query-string rule of every endpoint).
    for query in ["?spaceship_id=7&other=x", "?spaceship_id=", "?unrelated=1"] {
        let reply = server.post(&format!("/data{query}"), body.clone()).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text());
    }
    server.stop().await;
}

#[tokio::test]
async fn a_post_whose_query_names_another_ship_is_refused_and_writes_nothing() {
    let server = start_server().await;
    let first = post_body(7, "kWh", &[(at("00:00"), 1.0)]);
    assert_eq!(server.post("/data", first).await.status, 200);
    let before = server.get("/data?spaceship_id=7").await;
    assert_eq!(before.status, 200);

    // Ship 7's body under ship 8's query: it would overwrite 7 if written.
    let overwrite = post_body(7, "kWh", &[(at("00:00"), 99.0)]);
    let reply = server.post("/data?spaceship_id=8", overwrite).await;
    reply.assert_error(400, Some("spaceship_id"));
    let message = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(
        message.contains('8') && message.contains('7') && message.contains("nothing was written"),
        "{message}"
    );
    assert_eq!(server.get("/data?spaceship_id=7").await.body, before.body);
    server
        .get("/data?spaceship_id=8")
        .await
        .assert_error(404, Some("spaceship_id"));
    server.stop().await;
}

#[tokio::test]
async fn a_post_with_a_malformed_ship_id_in_its_query_is_refused_like_get_data() {
    let server = start_server().await;
    let body = post_body(7, "kWh", &[(at("00:00"), 1.0)]);
    for bad in [
        "abc",
        "-1",
        "%2B7",
        "7.0",
        "99999999999999999999",
        "7&spaceship_id=7",
        "%ff",
    ] {
        let query = format!("/data?spaceship_id={bad}");
        let post = server.post(&query, body.clone()).await;
        post.assert_error(400, Some("spaceship_id"));
        let get = server.get(&query).await;
        assert_eq!(post.text(), get.text(), "{bad}: GET /data's message");
    }
    server
        .get("/data?spaceship_id=7")
        .await
        .assert_error(404, Some("spaceship_id"));
    server.stop().await;
}

/// Where `deploy/nginx-shards.conf` says its example addresses are: the
/// lines the test rewrites (each must appear exactly once).
const EXAMPLE_LISTEN: &str = "listen 127.0.0.1:5000;";
const EXAMPLE_NODES: [&str; 2] = ["server 127.0.0.1:5001", "server 127.0.0.1:5002"];

/// 2026-01-15T00:00:00Z: the day the fleet reports.
const DAY: i64 = 1_768_435_200;
const SHIPS: u64 = 200;

#[test]
fn nginx_shards_the_fleet_by_ship_across_two_nodes() {
    let nginx_binary = nginx();
    let dir = TempDir::new("shards");
    let node_dirs = [dir.path().join("node-a"), dir.path().join("node-b")];
    let nodes = [Server::start(&node_dirs[0]), Server::start(&node_dirs[1])];
    let addresses = [nodes[0].address, nodes[1].address];
    let proxy = Nginx::start(&nginx_binary, &dir.path().join("nginx"), addresses);
    let via = proxy.address;

    assert_eq!(timestamp(DAY), "2026-01-15T00:00:00Z");
    // The fleet, through nginx, each POST naming its ship in the query.
    for ship in 0..SHIPS {
        let body = day_body(ship, "kW", DAY, |i| reading(ship, i, 0));
        let reply = request(via, "POST", &format!("/data?spaceship_id={ship}"), &body);
        assert_eq!(reply.status, 200, "ship {ship}: {}", reply.text());
        assert_eq!(
            reply.json(),
            serde_json::json!({"spaceship_id": ship, "readings": 96, "buckets": 96})
        );
    }

    // Every ship on exactly one node, asked directly; both get a share
    // (nginx's ring, 160 points per node placed by the node's address,
    // split these 200 ids no worse than 68/132 for 10,000 random pairs of
    // ephemeral ports in a simulation that matched nginx id for id).
    let owner: Vec<usize> = (0..SHIPS)
        .map(|ship| {
            let path = format!("/data?spaceship_id={ship}");
            let answers = addresses.map(|node| request(node, "GET", &path, b"").status);
            match answers {
                [200, 404] => 0,
                [404, 200] => 1,
                _ => panic!("ship {ship}: nodes answered {answers:?}, not one 200 and one 404"),
            }
        })
        .collect();
    let on_a = owner.iter().filter(|&&node| node == 0).count();
    assert!(
        (50..=150).contains(&on_a),
        "node a holds {on_a} of {SHIPS} ships: not a fair share"
    );

    // Through nginx, a ship's answers are its node's, byte for byte.
    for ship in 0..SHIPS {
        let node = addresses[owner[ship as usize]];
        let mut paths = vec![format!("/data?spaceship_id={ship}")];
        if ship % 10 == 0 {
            paths.push(format!(
                "/data?spaceship_id={ship}&start=2026-01-15T06-00-00Z&end=2026-01-15T12:00:00Z"
            ));
            paths.push(format!(
                "/forecast?spaceship_id={ship}&start={}&end={}",
                timestamp(DAY + DAY_S),
                timestamp(DAY + DAY_S + 6 * 3600)
            ));
        }
        for path in paths {
            let direct = request(node, "GET", &path, b"");
            assert_eq!(direct.status, 200, "{path}: {}", direct.text());
            let proxied = request(via, "GET", &path, b"");
            assert_eq!(proxied.status, 200, "{path} via nginx: {}", proxied.text());
            assert_eq!(proxied.text(), direct.text(), "{path}");
            assert_eq!(proxied.headers["content-type"], "application/json");
        }
        let direct = request(node, "GET", &format!("/data?spaceship_id={ship}"), b"");
        assert_eq!(direct.buckets().len(), 96, "ship {ship}");
    }

    // A rewrite goes where the ship is: new values on its node, still
    // nothing on the other.
    for ship in (0..SHIPS).step_by(10) {
        let body = day_body(ship, "kW", DAY, |i| reading(ship, i, 1));
        let path = format!("/data?spaceship_id={ship}");
        assert_eq!(request(via, "POST", &path, &body).status, 200);
        let home = owner[ship as usize];
        let stored = request(addresses[home], "GET", &path, b"").buckets();
        let expected: Vec<f64> = (0..96)
            .map(|i| reading(ship, i, 1).parse::<f64>().unwrap() / 4.0)
            .collect();
        let values: Vec<f64> = stored.iter().map(|(_, value, _)| *value).collect();
        assert_eq!(values, expected, "ship {ship}");
        assert_eq!(request(addresses[1 - home], "GET", &path, b"").status, 404);
    }

    // The node refuses a POST whose query names another ship than its body.
    let stray = day_body(100_000, "kW", DAY, |_| "1".to_owned());
    request(via, "POST", "/data?spaceship_id=5", &stray).assert_error(400, Some("spaceship_id"));
    for node in addresses {
        let reply = request(node, "GET", "/data?spaceship_id=100000", b"");
        assert_eq!(reply.status, 404, "{}", reply.text());
    }

    // What nginx cannot route to one ship's node, it answers itself.
    let before = addresses.map(requests_seen);
    let ship_1 = day_body(1, "kW", DAY, |_| "5".to_owned());
    let per_ship_without_id: &[(&str, &str, &[u8])] = &[
        ("POST", "/data", &ship_1),
        ("POST", "/data?spaceship_id=", &ship_1),
        ("POST", "/data?spaceship_id=01", &ship_1),
        ("POST", "/data?spaceship_id=%31", &ship_1),
        ("POST", "/data?spaceship_id=+1", &ship_1),
        // nginx matches names without regard to case, powerd exactly:
        // unchecked, nginx would route by 5 and powerd store ship 1 there.
        ("POST", "/data?SPACESHIP_ID=5", &ship_1),
        ("POST", "/data?Spaceship_Id=5&spaceship_id=1", &ship_1),
        ("POST", "/data?other=1", &ship_1),
        ("GET", "/data", b""),
        ("GET", "/data?spaceship_id=abc", b""),
        ("GET", "/data?start=2026-01-15T00-00-00Z", b""),
        ("GET", "/forecast", b""),
        ("GET", "/forecast?spaceship_id=1.0", b""),
    ];
    for (method, path, body) in per_ship_without_id {
        let reply = request(via, method, path, body);
        reply.assert_error(400, Some("spaceship_id"));
        let message = reply.json()["error"].as_str().unwrap().to_owned();
        if *method == "POST" {
            assert!(
                message.contains("add ?spaceship_id=<the body's spaceship_id>"),
                "{method} {path}: {message}"
            );
        }
    }
    let elsewhere: &[(&str, u16, &str)] = &[
        ("/data/fleet", 501, "lake/fleet_report.py"),
        (
            "/data/fleet?start=2026-01-15T00:00:00Z&step=1h",
            501,
            "lake",
        ),
        ("/data/fleet?spaceship_id=1", 501, "lake"),
        ("/topusers?count=3", 501, "lake/fleet_report.py"),
        ("/alerts", 501, "every node directly"),
        ("/ships?prefix=1", 501, "every node directly"),
        ("/metrics", 501, "every node"),
        ("/openapi.json", 501, "node directly"),
        ("/", 501, "a node's own address"),
        ("/dashboard/app.js", 501, "a node's own address"),
        ("/nope", 404, "no such endpoint"),
        ("/data/", 404, "no such endpoint"),
    ];
    for (path, status, says) in elsewhere {
        let reply = request(via, "GET", path, b"");
        reply.assert_error(*status, None);
        let message = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(message.contains(says), "GET {path}: {message}");
    }
    let health = request(via, "GET", "/health", b"");
    assert_eq!(health.status, 200);
    assert_eq!(health.headers["content-type"], "application/json");
    assert_eq!(health.json()["status"], "ok");
    // A body over powerd's 16 MiB default, refused from its length alone.
    let too_large = request_head(
        via,
        &format!(
            "POST /data?spaceship_id=1 HTTP/1.1\r\nhost: shards\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            16 * 1024 * 1024 + 1
        ),
    );
    too_large.assert_error(413, None);
    assert_eq!(
        addresses.map(requests_seen),
        before,
        "a request nginx answers itself must not reach a node"
    );

    // A stopped node's ships get 502, again and again (no node is taken
    // out of rotation), and never reach the other node.
    let [node_a, node_b] = nodes;
    node_b.kill9();
    let on_b = (0..SHIPS).find(|&ship| owner[ship as usize] == 1).unwrap();
    let on_a = (0..SHIPS).find(|&ship| owner[ship as usize] == 0).unwrap();
    let before = requests_seen(addresses[0]);
    let moved = day_body(on_b, "kW", DAY + DAY_S, |_| "2".to_owned());
    for _ in 0..3 {
        let path = format!("/data?spaceship_id={on_b}");
        let reply = request(via, "POST", &path, &moved);
        reply.assert_error(502, None);
        request(via, "GET", &path, b"").assert_error(502, None);
    }
    assert_eq!(
        requests_seen(addresses[0]),
        before,
        "node a saw node b's ship"
    );
    let reply = request(via, "GET", &format!("/data?spaceship_id={on_a}"), b"");
    assert_eq!(
        reply.status,
        200,
        "node a's ships carry on: {}",
        reply.text()
    );
    let direct = request(
        addresses[0],
        "GET",
        &format!("/data?spaceship_id={on_b}"),
        b"",
    );
    assert_eq!(direct.status, 404, "{}", direct.text());
    drop(proxy);
    assert!(node_a.terminate().success());
}

/// Reading `i` of `ship`'s day in kW, in `round` 0 or 1: three decimals,
/// different for every ship, reading and round.
fn reading(ship: u64, i: i64, round: u64) -> String {
    let milli = (ship * 7_919 + i as u64 * 104_729 + round * 7_777) % 50_000;
    format!("{}.{:03}", milli / 1000, milli % 1000)
}

/// Requests a node has answered, but for its `/metrics` scrapes (this one
/// included): `powerd_http_requests_total` summed over every other route.
fn requests_seen(node: SocketAddr) -> u64 {
    let reply = request(node, "GET", "/metrics", b"");
    assert_eq!(reply.status, 200);
    reply
        .text()
        .lines()
        .filter(|line| line.starts_with("powerd_http_requests_total{"))
        .filter(|line| !line.contains(r#"route="/metrics""#))
        .map(|line| {
            let count = line.rsplit(' ').next().unwrap();
            count
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("a count: {line}"))
        })
        .sum()
}

/// One request on its own connection, `connection: close`.
fn request(address: SocketAddr, method: &str, path: &str, body: &[u8]) -> Reply {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: shards\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    exchange(address, &bytes)
}

/// A request of only `head` (no body sent), answered before the body.
fn request_head(address: SocketAddr, head: &str) -> Reply {
    exchange(address, head.as_bytes())
}

/// Sends `bytes`, reads the response until the server closes.
fn exchange(address: SocketAddr, bytes: &[u8]) -> Reply {
    let mut stream =
        TcpStream::connect(address).unwrap_or_else(|e| panic!("connect {address}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(bytes).expect("send");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .expect("read the response");
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(&response)))
        + 4;
    let head = std::str::from_utf8(&response[..head_end]).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head}"));
    let mut headers = HeaderMap::new();
    for line in lines.filter(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':').expect("a header line");
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).expect("a header name"),
            HeaderValue::from_str(value.trim()).expect("a header value"),
        );
    }
    let body = response[head_end..].to_vec();
    let length: usize = headers
        .get("content-length")
        .unwrap_or_else(|| panic!("no content-length: {head}"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(body.len(), length, "the whole body: {head}");
    Reply {
        status,
        headers,
        body,
    }
}

/// Debian's nginx (or `$POWERD_NGINX`). Missing is a failure, not a skip.
fn nginx() -> PathBuf {
    if let Some(path) = std::env::var_os("POWERD_NGINX") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed, and the shard test needs it: run `bash .ci/run` (it \
                 installs it) or `apt-get update && apt-get install -y nginx`, or point \
                 POWERD_NGINX at an nginx binary"
            )
        })
}

/// nginx in the foreground with `deploy/nginx-shards.conf`, its example
/// addresses replaced by `nodes` and a free port; everything it writes
/// (pid, logs, temporary files) under `dir`.
struct Nginx {
    child: Child,
    address: SocketAddr,
    dir: PathBuf,
}

impl Nginx {
    fn start(binary: &Path, dir: &Path, nodes: [SocketAddr; 2]) -> Nginx {
        std::fs::create_dir_all(dir).expect("nginx's directory");
        // The free port is released for nginx to take, so another test may
        // take it first: that shows in nginx's log, and a new port is tried.
        for attempt in 1.. {
            let address = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port");
            match Nginx::start_on(binary, dir, nodes, address) {
                Ok(nginx) => return nginx,
                Err(log) if attempt < 3 && log.contains("Address already in use") => continue,
                Err(log) => panic!("nginx did not start:\n{log}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// nginx listening on `address`, or what its error log says.
    fn start_on(
        binary: &Path,
        dir: &Path,
        nodes: [SocketAddr; 2],
        address: SocketAddr,
    ) -> Result<Nginx, String> {
        let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx-shards.conf");
        let mut text = std::fs::read_to_string(&conf).expect("deploy/nginx-shards.conf");
        text = replace_once(&text, EXAMPLE_LISTEN, &format!("listen {address};"));
        for (example, node) in EXAMPLE_NODES.iter().zip(nodes) {
            text = replace_once(&text, example, &format!("server {node}"));
        }
        let shards = dir.join("powerd-shards.conf");
        std::fs::write(&shards, text).unwrap();
        // Only the main context around it is the test's: where nginx keeps
        // its files. A root master's workers would run as `nobody`, who may
        // not enter the test's directories.
        let root = std::fs::metadata(dir).unwrap().uid() == 0;
        let d = dir.display();
        let main = format!(
            "{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n    access_log {d}/access.log;\n    client_body_temp_path {d}/client_body;\n\
             proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
             include {shards};\n}}\n",
            user = if root { "user root;\n" } else { "" },
            shards = shards.display(),
        );
        let main_conf = dir.join("nginx.conf");
        std::fs::write(&main_conf, main).unwrap();
        let error_log = dir.join("error.log");
        let _ = std::fs::remove_file(&error_log);
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&main_conf)
            .arg("-e")
            .arg(&error_log)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", binary.display()));
        let mut nginx = Nginx {
            child,
            address,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = nginx.child.try_wait().expect("nginx can be waited for") {
                return Err(format!("nginx exited ({status}):\n{}", nginx.log()));
            }
            // The proxy's own health answer: not some other server that
            // took the port.
            if let Ok(mut stream) = TcpStream::connect(address) {
                let _ = stream.write_all(
                    b"GET /health HTTP/1.1\r\nhost: shards\r\nconnection: close\r\n\r\n",
                );
                let mut answer = Vec::new();
                if stream.read_to_end(&mut answer).is_ok()
                    && answer.starts_with(b"HTTP/1.1 200")
                    && answer.ends_with(br#"{"status":"ok","scope":"proxy"}"#)
                {
                    return Ok(nginx);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no answer within 20 s:\n{}", nginx.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Once reaped, its pid may be another process's.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM: the master stops its workers too (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` with its one `from` replaced: the checked-in file must keep the
/// example lines the test rewrites.
#[track_caller]
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "deploy/nginx-shards.conf must hold {from:?} exactly once"
    );
    text.replacen(from, to, 1)
}
