//! `GET /metrics` through HTTP: the exposition parses as Prometheus text,
//! request counters say exactly what was asked, histograms are well formed,
//! and the storage numbers follow the writes. And the request log line:
//! there at `--log-level info`, gone at `warn`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use hyper::Method;

use crate::util::{at, post_body, start_server, TempDir, TestServer};

/// A series' labels (without `le`), sorted.
type Labels = Vec<(String, String)>;

/// One sample: metric name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: its samples in order, and the `# TYPE` of each family.
#[derive(Debug)]
struct Exposition {
    samples: Vec<Sample>,
    types: BTreeMap<String, String>,
}

impl Exposition {
    /// Parses the text format (version 0.0.4), strictly enough to fail on
    /// anything a Prometheus server would reject: every sample belongs to a
    /// family declared by `# HELP` and `# TYPE` before it, names and labels
    /// are well formed, values are numbers.
    fn parse(text: &str) -> Exposition {
        let mut samples = Vec::new();
        let mut types = BTreeMap::new();
        let mut helped = BTreeSet::new();
        assert!(text.ends_with('\n'), "the exposition ends with a newline");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP name text");
                assert!(valid_name(name), "{line}");
                assert!(!help.is_empty(), "{line}");
                assert!(helped.insert(name.to_owned()), "HELP twice: {line}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "{line}"
                );
                assert!(helped.contains(name), "TYPE before HELP: {line}");
                assert!(
                    types.insert(name.to_owned(), kind.to_owned()).is_none(),
                    "TYPE twice: {line}"
                );
                continue;
            }
            assert!(
                !line.starts_with('#') && !line.is_empty(),
                "stray line {line:?}"
            );
            let sample = parse_sample(line);
            let family = family_of(&sample.name, &types)
                .unwrap_or_else(|| panic!("sample before its TYPE: {line}"));
            if types[&family] == "counter" {
                assert!(family.ends_with("_total"), "counter name: {family}");
            }
            samples.push(sample);
        }
        Exposition { samples, types }
    }

    /// The samples named `name` whose labels include all of `labels`.
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The one sample named `name` with exactly `labels`.
    #[track_caller]
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<_> = self
            .find(name, labels)
            .into_iter()
            .filter(|s| s.labels.len() == labels.len())
            .collect();
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
        found[0].value
    }

    /// `powerd_http_requests_total` as `(route, method, status) -> count`.
    fn requests(&self) -> BTreeMap<(String, String, String), u64> {
        self.find("powerd_http_requests_total", &[])
            .into_iter()
            .map(|s| {
                assert_eq!(s.labels.len(), 3, "{s:?}");
                let key = (
                    s.labels["route"].clone(),
                    s.labels["method"].clone(),
                    s.labels["status"].clone(),
                );
                (key, s.value as u64)
            })
            .collect()
    }

    /// Checks every series of histogram `name`: `le` ascending and ending at
    /// `+Inf`, counts cumulative, `+Inf` equal to `_count`, a `_sum`.
    /// Returns `_count` per series (labels other than `le`).
    #[track_caller]
    fn histogram(&self, name: &str) -> BTreeMap<Labels, (u64, f64)> {
        assert_eq!(self.types.get(name).map(String::as_str), Some("histogram"));
        let mut series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
        for s in self.find(&format!("{name}_bucket"), &[]) {
            let mut labels = s.labels.clone();
            let le = labels.remove("le").expect("a bucket has le");
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("le is a number")
            };
            series
                .entry(labels.into_iter().collect())
                .or_default()
                .push((le, s.value));
        }
        let mut counts = BTreeMap::new();
        for (labels, buckets) in series {
            let label_refs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert!(buckets.len() >= 2, "{name}{labels:?}");
            assert!(
                buckets.windows(2).all(|w| w[0].0 < w[1].0),
                "le ascending: {name}{labels:?} {buckets:?}"
            );
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "cumulative: {name}{labels:?} {buckets:?}"
            );
            let (last_le, inf) = *buckets.last().unwrap();
            assert_eq!(last_le, f64::INFINITY, "ends with +Inf: {name}{labels:?}");
            let count = self.value(&format!("{name}_count"), &label_refs);
            assert_eq!(inf, count, "+Inf = _count: {name}{labels:?}");
            let sum = self.value(&format!("{name}_sum"), &label_refs);
            assert!(sum >= 0.0);
            counts.insert(labels, (count as u64, sum));
        }
        counts
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The family a sample belongs to: its own name, or a histogram's name
/// without `_bucket`, `_sum` or `_count`.
fn family_of(name: &str, types: &BTreeMap<String, String>) -> Option<String> {
    if types.contains_key(name) {
        return Some(name.to_owned());
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        (types.get(base).map(String::as_str) == Some("histogram")).then(|| base.to_owned())
    })
}

/// `name{k="v",...} value` or `name value`.
fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').expect("name and value");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => value
            .parse()
            .unwrap_or_else(|_| panic!("value of {line:?}")),
    };
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => {
            let body = rest.strip_suffix('}').expect("labels close with }");
            let mut labels = BTreeMap::new();
            let mut rest = body;
            while !rest.is_empty() {
                let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
                assert!(valid_name(key) && !key.contains(':'), "label name {key:?}");
                // Values need no escapes here; a backslash would be a bug.
                let (value, after) = after.split_once('"').expect("closing quote");
                assert!(!value.contains('\\'), "{line}");
                assert!(
                    labels.insert(key.to_owned(), value.to_owned()).is_none(),
                    "label twice: {line}"
                );
                rest = after.strip_prefix(',').unwrap_or(after);
            }
            (name, labels)
        }
    };
    assert!(valid_name(name), "{line}");
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

async fn scrape(server: &TestServer) -> Exposition {
    let reply = server.get("/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Exposition::parse(reply.text())
}

fn key(route: &str, method: &str, status: &str) -> (String, String, String) {
    (route.to_owned(), method.to_owned(), status.to_owned())
}

/// `(readings, buckets)` of a successful POST's answer.
#[track_caller]
fn written(reply: &crate::util::Reply) -> (u64, u64) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let json = reply.json();
    (
        json["readings"].as_u64().unwrap(),
        json["buckets"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn metrics_count_requests_writes_and_storage() {
    let server = start_server().await;

    // Before anything: an exposition with zero writes and no requests but this one.
    let first = scrape(&server).await;
    assert!(first.requests().is_empty(), "{:?}", first.requests());
    assert_eq!(first.value("powerd_readings_written_total", &[]), 0.0);
    assert_eq!(first.value("powerd_ships_stored", &[]), 0.0);
    assert_eq!(first.value("powerd_http_requests_in_flight", &[]), 1.0);

    // SPEC.md's example: 3 hourly kWh readings, 12 buckets.
    let hourly = [
        (at("00:00"), 12.0),
        (at("01:00"), 26.0),
        (at("02:00"), 18.0),
    ];
    let a = written(&server.post("/data", post_body(1, "kWh", &hourly)).await);
    assert_eq!(a, (3, 12));
    // Five-minute kW readings straddling a bucket edge: 4 readings, 2 buckets.
    let five = [
        (at("00:05"), 1.0),
        (at("00:10"), 2.0),
        (at("00:15"), 3.0),
        (at("00:20"), 4.0),
    ];
    let b = written(&server.post("/data", post_body(2, "kW", &five)).await);
    assert_eq!(b, (4, 2));
    // Ship 1 again, overwriting an hour: counted again.
    let c = written(
        &server
            .post("/data", post_body(1, "kWh", &[(at("00:00"), 4.0)]))
            .await,
    );
    assert_eq!(c, (1, 1));
    // A bad body: 400, nothing written, nothing counted as written.
    server
        .post(
            "/data",
            r#"{"spaceship_id":1,"units":"kWh","data":[{"datetime":"x","value":1}]}"#,
        )
        .await
        .assert_error(400, Some("data[0].datetime"));

    let day = "/data?spaceship_id=1&start=2018-08-24T00-00-00Z&end=2018-08-25T00-00-00Z";
    assert_eq!(server.get(day).await.status, 200);
    assert_eq!(server.get("/data?spaceship_id=2").await.status, 200);
    server
        .get("/data?spaceship_id=99")
        .await
        .assert_error(404, Some("spaceship_id"));
    server
        .get("/data?spaceship_id=x")
        .await
        .assert_error(400, Some("spaceship_id"));
    assert_eq!(server.get("/data/fleet?step=1h").await.status, 200);
    assert_eq!(server.get("/topusers?count=2").await.status, 200);
    assert_eq!(server.get("/health").await.status, 200);
    server.get("/no/such/thing").await.assert_error(404, None);
    server
        .get("/secret-admin?token=1")
        .await
        .assert_error(404, None);
    // The dashboard: its page and an asset by template, a missing asset is `other`.
    assert_eq!(server.get("/").await.status, 200);
    assert_eq!(server.get("/dashboard/app.js").await.status, 200);
    server
        .get("/dashboard/missing.js")
        .await
        .assert_error(404, None);
    assert_eq!(server.get("/ships").await.status, 200);
    let put = server.request(Method::PUT, "/health", Vec::new()).await;
    assert_eq!(put.status, 405);
    let delete = server.request(Method::DELETE, "/data", Vec::new()).await;
    assert_eq!(delete.status, 405);

    let m = scrape(&server).await;

    // Exactly these series, with exactly these counts: the first scrape is
    // counted, this one is not yet (it is counted once answered).
    let expected: BTreeMap<_, _> = [
        (key("/metrics", "GET", "200"), 1),
        (key("/data", "POST", "200"), 3),
        (key("/data", "POST", "400"), 1),
        (key("/data", "GET", "200"), 2),
        (key("/data", "GET", "404"), 1),
        (key("/data", "GET", "400"), 1),
        (key("/data", "DELETE", "405"), 1),
        (key("/data/fleet", "GET", "200"), 1),
        (key("/topusers", "GET", "200"), 1),
        (key("/health", "GET", "200"), 1),
        (key("/health", "PUT", "405"), 1),
        (key("other", "GET", "404"), 3),
        (key("/", "GET", "200"), 1),
        (key("/dashboard/*", "GET", "200"), 1),
        (key("/ships", "GET", "200"), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(m.requests(), expected);
    // Raw paths never become labels.
    assert!(m.samples.iter().all(|s| s
        .labels
        .values()
        .all(|v| !v.contains("secret") && !v.contains("no/such") && !v.contains("missing"))));

    // Latency: one histogram per route and status class seen; the counts
    // add up to the requests of that route and class.
    let histograms = m.histogram("powerd_http_request_duration_seconds");
    let class = |status: &str| format!("{}xx", &status[..1]);
    let mut per_series: BTreeMap<(String, String), u64> = BTreeMap::new();
    for ((route, _, status), count) in &expected {
        *per_series
            .entry((route.clone(), class(status)))
            .or_default() += count;
    }
    let seen: BTreeMap<(String, String), u64> = histograms
        .iter()
        .map(|(labels, (count, sum))| {
            assert_eq!(labels.len(), 2, "{labels:?}");
            assert_eq!(
                (labels[0].0.as_str(), labels[1].0.as_str()),
                ("route", "status")
            );
            assert!(*sum > 0.0, "time was spent: {labels:?}");
            ((labels[0].1.clone(), labels[1].1.clone()), *count)
        })
        .collect();
    assert_eq!(seen, per_series);
    for (route, status) in per_series.keys() {
        let buckets = m.find(
            "powerd_http_request_duration_seconds_bucket",
            &[("route", route.as_str()), ("status", status.as_str())],
        );
        assert_eq!(buckets.len(), 17, "{route} {status}");
    }

    // What the POSTs reported as written, and nothing of the 400.
    assert_eq!(
        m.value("powerd_readings_written_total", &[]),
        (3 + 4 + 1) as f64
    );
    assert_eq!(
        m.value("powerd_buckets_written_total", &[]),
        (12 + 2 + 1) as f64
    );
    assert_eq!(
        (a.0 + b.0 + c.0, a.1 + b.1 + c.1),
        (8, 15),
        "the answers add up to the counters"
    );
    assert_eq!(m.value("powerd_storage_writes_total", &[]), 3.0);
    // 3 hourly + 4 five-minute + 1 = 8 spans.
    assert_eq!(m.value("powerd_storage_spans_written_total", &[]), 8.0);
    let fsyncs = m.value("powerd_storage_fsyncs_total", &[]);
    assert!(
        (1.0..=3.0).contains(&fsyncs),
        "one per commit group: {fsyncs}"
    );
    let log_bytes = m.value("powerd_storage_log_written_bytes_total", &[]);
    assert!(log_bytes > 0.0);
    assert_eq!(log_bytes, server.engine.stats().log_bytes_written as f64);
    assert_eq!(m.value("powerd_ships_stored", &[]), 2.0);
    assert_eq!(m.value("powerd_rollup_index_enabled", &[]), 1.0);
    assert_eq!(m.value("powerd_storage_checkpoints_total", &[]), 0.0);
    // Not compared with the log bytes: the walk races the engine's spare
    // segment being renamed into place, and may miss that file once.
    let data_dir = m.value("powerd_data_dir_bytes", &[]);
    assert!(
        data_dir >= 32.0,
        "at least the first log segment's header: {data_dir}"
    );
    assert_eq!(
        m.value(
            "powerd_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // The next scrape counts the one before.
    let again = scrape(&server).await;
    assert_eq!(again.requests()[&key("/metrics", "GET", "200")], 2);
    let post = server.post("/metrics", "").await;
    post.assert_error(405, None);
    assert_eq!(post.headers["allow"], "GET");
    server.stop().await;
}

#[tokio::test]
async fn metrics_follow_checkpoints() {
    let server = start_server().await;
    let before = scrape(&server).await;
    let histogram = before.histogram("powerd_storage_checkpoint_duration_seconds");
    assert_eq!(histogram[&Vec::new()].0, 0, "no checkpoint yet");

    let readings: Vec<_> = (0..96)
        .map(|i| {
            (
                format!("2018-08-24T{:02}:{:02}:00Z", i / 4, i % 4 * 15),
                1.0,
            )
        })
        .collect();
    for ship in 1..=3 {
        written(
            &server
                .post("/data", post_body(ship, "kWh", &readings))
                .await,
        );
    }
    let engine = std::sync::Arc::clone(&server.engine);
    tokio::task::spawn_blocking(move || engine.checkpoint())
        .await
        .unwrap()
        .expect("the checkpoint succeeds");

    let m = scrape(&server).await;
    assert_eq!(m.value("powerd_storage_checkpoints_total", &[]), 1.0);
    assert_eq!(
        m.value("powerd_storage_checkpoint_failures_total", &[]),
        0.0
    );
    let histogram = m.histogram("powerd_storage_checkpoint_duration_seconds");
    let (count, sum) = histogram[&Vec::new()];
    assert_eq!(count, 1);
    assert!(sum > 0.0, "a checkpoint takes time: {sum}");
    let last = m.value("powerd_storage_last_checkpoint_duration_seconds", &[]);
    assert!(last <= sum + 1e-3, "{last} vs {sum}");
    assert_eq!(m.value("powerd_ships_stored", &[]), 3.0);
    assert_eq!(m.value("powerd_storage_chunks", &[]), 3.0);
    assert!(m.value("powerd_storage_block_files", &[]) >= 1.0);
    assert!(m.value("powerd_storage_rollup_file_bytes", &[]) > 0.0);
    assert_eq!(m.value("powerd_readings_written_total", &[]), 288.0);
    assert_eq!(m.value("powerd_buckets_written_total", &[]), 288.0);
    server.stop().await;
}

/// Runs the real binary with `--log-level <level>`, makes a few requests,
/// stops it, and returns what it logged.
fn stderr_of_a_run(level: &str) -> String {
    let dir = TempDir::new("metrics-log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_powerd"))
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--log-level", level])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the powerd binary starts");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines.next().expect("a listen line").expect("readable");
        if let Some(rest) = line.strip_prefix("powerd listening on http://") {
            break rest.split(',').next().unwrap().to_owned();
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for path in ["/health", "/nowhere?x=1"] {
            let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).await.unwrap();
            assert!(reply.starts_with(b"HTTP/1.1 "), "a response");
        }
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{stderr}");
    stderr
}

#[test]
fn one_log_line_per_request_at_info_none_at_warn() {
    let info = stderr_of_a_run("info");
    let requests: Vec<&str> = info
        .lines()
        .filter(|l| l.contains(powerd::http::REQUEST_LOG_TARGET))
        .collect();
    assert_eq!(requests.len(), 2, "{info}");
    for (line, (route, path, status)) in requests
        .iter()
        .zip([("/health", "/health", 200), ("other", "/nowhere", 404)])
    {
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.contains("method=GET"), "{line}");
        assert!(line.contains(&format!("route=\"{route}\"")), "{line}");
        assert!(line.contains(&format!("path={path} ")), "{line}");
        assert!(line.contains(&format!("status={status}")), "{line}");
        let duration: f64 = line
            .split("duration_ms=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("a duration in ms: {line}"));
        assert!((0.0..10_000.0).contains(&duration), "{line}");
    }
    // Other info lines are there too: the request lines did not replace them.
    assert!(info.contains("serving"), "{info}");

    let warn = stderr_of_a_run("warn");
    assert!(
        !warn.contains(powerd::http::REQUEST_LOG_TARGET) && !warn.contains("status="),
        "{warn}"
    );
}

/// The response cache: a repeated `GET /data` is served from it (the
/// counters say so), a checkpoint keeps it valid, and any write to the ship
/// makes the next answer fresh — in a run of overwrites, every answer is
/// the data as written last.
#[tokio::test]
async fn the_response_cache_serves_again_and_never_stale() {
    let server = start_server().await;
    let day = "/data?spaceship_id=1&start=2018-08-24T00:00:00Z&end=2018-08-25T00:00:00Z";
    // The same window written another way is the same question.
    let same_day =
        "/data?spaceship_id=1&start=2018-08-24T02:00:00%2B02:00&end=2018-08-25T00:00:00Z";
    let mut values = [1.0f64; 96];
    let readings: Vec<_> = (0..96)
        .map(|i| {
            (
                format!("2018-08-24T{:02}:{:02}:00Z", i / 4, i % 4 * 15),
                1.0,
            )
        })
        .collect();
    written(&server.post("/data", post_body(1, "kWh", &readings)).await);
    written(&server.post("/data", post_body(2, "kWh", &readings)).await);

    let first = server.get(day).await;
    assert_eq!(first.status, 200);
    assert_eq!(server.get(day).await.body, first.body);
    assert_eq!(server.get(same_day).await.body, first.body);
    let m = scrape(&server).await;
    assert_eq!(m.value("powerd_response_cache_misses_total", &[]), 1.0);
    assert_eq!(m.value("powerd_response_cache_hits_total", &[]), 2.0);
    assert_eq!(m.value("powerd_response_cache_entries", &[]), 1.0);
    let bytes = m.value("powerd_response_cache_bytes", &[]);
    assert!(bytes > first.body.len() as f64, "{bytes}");
    assert_eq!(
        m.value("powerd_response_cache_budget_bytes", &[]),
        (256u64 << 20) as f64
    );

    // A checkpoint moves the data, it does not change it.
    let engine = std::sync::Arc::clone(&server.engine);
    tokio::task::spawn_blocking(move || engine.checkpoint())
        .await
        .unwrap()
        .expect("the checkpoint succeeds");
    assert_eq!(server.get(day).await.body, first.body);
    let m = scrape(&server).await;
    assert_eq!(m.value("powerd_response_cache_hits_total", &[]), 3.0);

    // Overwrites, each read back at once: never the answer before it.
    let mut seed = 7u64;
    for round in 0..40 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let bucket = (seed >> 33) as usize % 96;
        let value = (round + 2) as f64 / 4.0;
        values[bucket] = value;
        let at = &readings[bucket].0;
        written(
            &server
                .post("/data", post_body(1, "kWh", &[(at, value)]))
                .await,
        );
        // Another ship's write leaves ship 1's answer cached.
        written(
            &server
                .post("/data", post_body(2, "kWh", &[(at, value)]))
                .await,
        );
        for path in [day, same_day] {
            let reply = server.get(path).await;
            let got: Vec<f64> = reply.json()["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["value"].as_f64().unwrap())
                .collect();
            assert_eq!(got, values, "round {round}");
        }
    }
    let m = scrape(&server).await;
    // Per round: one miss after the write, then one hit.
    assert_eq!(m.value("powerd_response_cache_misses_total", &[]), 41.0);
    assert_eq!(m.value("powerd_response_cache_hits_total", &[]), 43.0);
    server.stop().await;

    // Off: the same answers, nothing kept.
    let config = powerd::config::ServerConfig {
        response_cache_bytes: 0,
        ..Default::default()
    };
    let server = crate::util::start_server_with(config).await;
    written(&server.post("/data", post_body(1, "kWh", &readings)).await);
    let a = server.get(day).await;
    assert_eq!(server.get(day).await.body, a.body);
    let m = scrape(&server).await;
    assert_eq!(m.value("powerd_response_cache_hits_total", &[]), 0.0);
    assert_eq!(m.value("powerd_response_cache_entries", &[]), 0.0);
    assert_eq!(m.value("powerd_response_cache_budget_bytes", &[]), 0.0);
    server.stop().await;
}
