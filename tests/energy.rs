//! One energy per bucket, said directly: random histories go through the
//! real HTTP server (its parser and normaliser) into the engine; then
//! `GET /data` prints the same strings after a checkpoint, after a
//! restart, and after a compaction that rewrites every block, and
//! `/data/fleet` (15 minutes, hours, days) and `/topusers` print exactly
//! the sums of those strings.

use std::collections::BTreeMap;
use std::sync::Arc;

use powerd::config::ServerConfig;
use powerd::storage::{Engine, EngineOptions};
use proptest::prelude::*;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::util::TempDir;

/// 2018-08-01T00:00:00Z
const BASE_S: i64 = 1_533_081_600;
const SHIPS: u64 = 4;

#[derive(Clone, Debug)]
struct Post {
    ship: u64,
    kwh: bool,
    spacing_s: i64,
    explicit_interval: bool,
    start_s: i64,
    /// (skip this reading, value text)
    readings: Vec<(bool, String)>,
}

fn value_text() -> impl Strategy<Value = String> {
    (0u64..60_000_000_000, 0u32..=9).prop_map(|(raw, decimals)| {
        let scale = 10u64.pow(decimals);
        let value = raw % (60 * scale);
        if decimals == 0 {
            value.to_string()
        } else {
            format!(
                "{}.{:0width$}",
                value / scale,
                value % scale,
                width = decimals as usize
            )
        }
    })
}

fn a_post() -> impl Strategy<Value = Post> {
    (
        0..SHIPS,
        any::<bool>(),
        prop::sample::select(vec![300i64, 600, 900, 3600]),
        any::<bool>(),
        // Up to two days in, sometimes off a bucket edge.
        (0i64..192, prop::sample::select(vec![0i64, 0, 0, 1, 7, 450])),
        prop::collection::vec((prop::bool::weighted(0.1), value_text()), 1..40),
    )
        .prop_map(
            |(ship, kwh, spacing_s, explicit_interval, (slot, skew), readings)| Post {
                ship,
                kwh,
                spacing_s,
                explicit_interval,
                start_s: BASE_S + slot * 900 + skew,
                readings,
            },
        )
}

fn body(post: &Post) -> String {
    let data: Vec<String> = post
        .readings
        .iter()
        .enumerate()
        .filter(|(i, (skip, _))| !skip || *i == 0)
        .map(|(i, (_, value))| {
            let t = chrono::DateTime::from_timestamp(post.start_s + i as i64 * post.spacing_s, 0)
                .expect("in range");
            format!(
                r#"{{"datetime":"{}","value":{value}}}"#,
                t.format("%Y-%m-%dT%H:%M:%SZ")
            )
        })
        .collect();
    let interval = if post.explicit_interval {
        format!(r#","interval":"PT{}M""#, post.spacing_s / 60)
    } else {
        String::new()
    };
    format!(
        r#"{{"spaceship_id":{},"units":"{}"{interval},"data":[{}]}}"#,
        post.ship,
        if post.kwh { "kWh" } else { "kW" },
        data.join(",")
    )
}

/// A decimal energy string as `GET /data` prints it, in nano-kWh.
fn nano(text: &str) -> i128 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    assert!(fraction.len() <= 9, "{text}");
    let digits = format!("{whole}{fraction:0<9}");
    digits.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Every `"key":value` of a JSON text, the value as printed.
fn printed(text: &str, key: &str) -> Vec<String> {
    let needle = format!("\"{key}\":");
    text.split(&needle)
        .skip(1)
        .map(|rest| {
            rest.split([',', '}'])
                .next()
                .expect("a value")
                .trim_matches('"')
                .to_string()
        })
        .collect()
}

/// What the API prints about the stored history.
#[derive(Debug, PartialEq)]
struct Printed {
    /// Per ship: (datetime, value) of every bucket.
    data: BTreeMap<u64, Vec<(String, String)>>,
    /// Per step: (datetime, sum) of every interval.
    fleet: BTreeMap<&'static str, Vec<(String, String)>>,
    /// (ship, consumption), ranked.
    top: Vec<(String, String)>,
}

struct Served {
    addr: std::net::SocketAddr,
    engine: Arc<Engine>,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn serve(dir: &std::path::Path, options: EngineOptions) -> Served {
    let engine = Arc::new(Engine::open(dir, options).expect("open"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (shutdown, stop) = oneshot::channel::<()>();
    let task = tokio::spawn(powerd::http::run(
        listener,
        Arc::clone(&engine),
        ServerConfig::default(),
        async move {
            let _ = stop.await;
        },
    ));
    Served {
        addr,
        engine,
        shutdown,
        task,
    }
}

impl Served {
    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.task.await.expect("server task");
        self.engine.close().expect("close");
    }

    async fn get(&self, path: &str) -> String {
        let url = format!("http://{}{path}", self.addr);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let response = client.get(url.parse().expect("uri")).await.expect("GET");
        assert_eq!(response.status(), 200, "{path}");
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8(body.to_vec()).expect("UTF-8")
    }

    async fn post(&self, body: String) {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let request = hyper::Request::post(format!("http://{}/data", self.addr))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body.clone())))
            .expect("request");
        let response = client.request(request).await.expect("POST");
        assert_eq!(response.status(), 200, "{body}");
    }

    async fn printed(&self, ships: &[u64]) -> Printed {
        const WINDOW: &str = "start=2018-07-31T00:00:00Z&end=2018-08-06T00:00:00Z";
        let mut data = BTreeMap::new();
        for &ship in ships {
            let text = self
                .get(&format!("/data?spaceship_id={ship}&{WINDOW}"))
                .await;
            let rows: Vec<(String, String)> = printed(&text, "datetime")
                .into_iter()
                .zip(printed(&text, "value"))
                .collect();
            if !rows.is_empty() {
                data.insert(ship, rows);
            }
        }
        let mut fleet = BTreeMap::new();
        for step in ["15m", "1h", "1d"] {
            let text = self.get(&format!("/data/fleet?{WINDOW}&step={step}")).await;
            let datetimes = printed(&text, "datetime");
            let sums = printed(&text, "sum");
            fleet.insert(step, datetimes.into_iter().zip(sums).collect());
        }
        let text = self.get(&format!("/topusers?count={SHIPS}&{WINDOW}")).await;
        let top = printed(&text, "spaceship_id")
            .into_iter()
            .zip(printed(&text, "consumption"))
            .collect();
        Printed { data, fleet, top }
    }
}

/// Fleet sums and rankings are the sums of the printed bucket values.
fn sums_agree(p: &Printed) -> Result<(), TestCaseError> {
    for (step, seconds) in [("15m", 900i64), ("1h", 3600), ("1d", 86_400)] {
        let mut want: BTreeMap<i64, i128> = BTreeMap::new();
        for rows in p.data.values() {
            for (datetime, value) in rows {
                let t = chrono::DateTime::parse_from_rfc3339(datetime)
                    .expect("datetime")
                    .timestamp();
                *want.entry(t.div_euclid(seconds) * seconds).or_default() += nano(value);
            }
        }
        let got: BTreeMap<i64, i128> = p.fleet[step]
            .iter()
            .map(|(datetime, sum)| {
                let t = chrono::DateTime::parse_from_rfc3339(datetime)
                    .expect("datetime")
                    .timestamp();
                (t, nano(sum))
            })
            .collect();
        prop_assert_eq!(got, want, "fleet per {}", step);
    }
    let mut totals: Vec<(u64, i128)> = p
        .data
        .iter()
        .map(|(ship, rows)| (*ship, rows.iter().map(|(_, v)| nano(v)).sum()))
        .collect();
    totals.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let got: Vec<(u64, i128)> = p
        .top
        .iter()
        .map(|(ship, consumption)| (ship.parse().expect("id"), nano(consumption)))
        .collect();
    prop_assert_eq!(got, totals);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_same_history_prints_the_same_values_through_checkpoints_restarts_and_compaction(
        posts in prop::collection::vec(a_post(), 1..10),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let dir = TempDir::new("energy");
            let server = serve(dir.path(), EngineOptions::default()).await;
            for post in &posts {
                server.post(body(post)).await;
            }
            let mut ships: Vec<u64> = posts.iter().map(|p| p.ship).collect();
            ships.sort_unstable();
            ships.dedup();
            let first = server.printed(&ships).await;
            sums_agree(&first)?;

            server.engine.checkpoint().expect("checkpoint");
            prop_assert_eq!(&server.printed(&ships).await, &first, "after a checkpoint");
            server.stop().await;

            let server = serve(dir.path(), EngineOptions::default()).await;
            prop_assert_eq!(&server.printed(&ships).await, &first, "after a restart");
            server.stop().await;

            // A compaction that rewrites every block: sending the last POST
            // again changes no value (retries are safe) but gives the
            // checkpoint work.
            let options = EngineOptions {
                compact_below_live_fraction: 1.01,
                ..EngineOptions::default()
            };
            let server = serve(dir.path(), options).await;
            server.post(body(posts.last().expect("one post"))).await;
            server.engine.checkpoint().expect("checkpoint");
            // Every live chunk now sits in the one block just written.
            prop_assert_eq!(server.engine.stats().block_files, 1);
            prop_assert_eq!(&server.printed(&ships).await, &first, "after compaction");
            server.stop().await;

            let server = serve(dir.path(), EngineOptions::default()).await;
            prop_assert_eq!(&server.printed(&ships).await, &first, "after compaction and a restart");
            server.stop().await;
            Ok(())
        })?;
    }
}
