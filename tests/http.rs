//! The HTTP API end to end: a real server on a free port, real requests.
//!
//! Guarantees checked here: the worked examples of SPEC.md come back exactly;
//! windows are half-open and accept both timestamp spellings; a POST owns
//! exactly the span it covers (retries change nothing, overwrites keep the
//! rest of a bucket, gaps stay gaps); bad input gets a 4xx naming the field
//! and writes nothing; misbehaving clients (slow headers, idle connections,
//! stalled bodies, oversized bodies) cannot stall anyone else; shutdown lets
//! an in-flight POST finish.

use std::time::Duration;

use hyper::Method;
use serde_json::json;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::util::{
    at, post_body, read_until_closed, start_server, start_server_with, RawClient, TempDir,
    TestServer, STEP_TIMEOUT,
};
use powerd::config::ServerConfig;

/// SPEC.md worked example 1: kWh, hourly.
fn example_1(ship: u64) -> String {
    post_body(
        ship,
        "kWh",
        &[
            (at("00:00"), 12.0),
            (at("01:00"), 26.0),
            (at("02:00"), 18.0),
        ],
    )
}

/// SPEC.md worked example 2: kW, 5-minute, ending in a partial bucket.
fn example_2_readings() -> Vec<(String, f64)> {
    [
        ("00:00", 22.0),
        ("00:05", 24.0),
        ("00:10", 23.0),
        ("00:15", 18.0),
        ("00:20", 22.0),
        ("00:25", 23.0),
        ("00:30", 8.0),
    ]
    .iter()
    .map(|(time, value)| (at(time), *value))
    .collect()
}

/// SPEC.md worked example 3: kWh, 15-minute.
fn example_3(ship: u64) -> String {
    post_body(
        ship,
        "kWh",
        &[
            (at("00:00"), 2.0),
            (at("00:15"), 5.0),
            (at("00:30"), 2.0),
            (at("00:45"), 6.0),
        ],
    )
}

fn full(time: &str, value: f64) -> (String, f64, u64) {
    (at(time), value, 900)
}

fn quarter_hours(from_hour: u32, to_hour: u32) -> Vec<String> {
    (from_hour..to_hour)
        .flat_map(|hour| [0, 15, 30, 45].map(|minute| format!("{hour:02}:{minute:02}")))
        .collect()
}

#[tokio::test]
async fn health() {
    let server = start_server().await;
    let reply = server.get("/health").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.json(), json!({"status": "ok"}));
    server.stop().await;
}

#[tokio::test]
async fn worked_example_1_kwh_hourly() {
    let server = start_server().await;
    let reply = server.post("/data", example_1(1)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"spaceship_id": 1, "readings": 3, "buckets": 12})
    );

    let buckets = server.get("/data?spaceship_id=1").await.buckets();
    let expected: Vec<_> = quarter_hours(0, 3)
        .iter()
        .zip([3.0; 4].iter().chain(&[6.5; 4]).chain(&[4.5; 4]))
        .map(|(time, value)| full(time, *value))
        .collect();
    assert_eq!(buckets, expected);
    server.stop().await;
}

#[tokio::test]
async fn worked_example_2_kw_five_minute_with_a_partial_bucket() {
    let server = start_server().await;
    let reply = server
        .post("/data", post_body(2, "kW", &example_2_readings()))
        .await;
    assert_eq!(
        reply.json(),
        json!({"spaceship_id": 2, "readings": 7, "buckets": 3})
    );

    let buckets = server.get("/data?spaceship_id=2").await.buckets();
    assert_eq!(buckets.len(), 3, "{buckets:?}");
    assert_eq!(buckets[0], full("00:00", 5.75));
    assert_eq!(buckets[1], full("00:15", 5.25));
    let (time, value, coverage) = &buckets[2];
    assert_eq!(time, &at("00:30"));
    assert!((value - 8.0 * 5.0 / 60.0).abs() < 1e-6, "{value}");
    assert_eq!(*coverage, 300, "the 00:30 bucket is partial");
    server.stop().await;
}

#[tokio::test]
async fn worked_example_3_kwh_fifteen_minute_is_stored_unchanged() {
    let server = start_server().await;
    assert_eq!(server.post("/data", example_3(3)).await.status, 200);
    let buckets = server.get("/data?spaceship_id=3").await.buckets();
    assert_eq!(
        buckets,
        vec![
            full("00:00", 2.0),
            full("00:15", 5.0),
            full("00:30", 2.0),
            full("00:45", 6.0)
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn whole_numbers_print_without_a_fraction() {
    let server = start_server().await;
    server.post("/data", example_1(1)).await;
    let reply = server.get("/data?spaceship_id=1").await;
    let text = reply.text();
    // Complete buckets have exactly SPEC.md's shape.
    assert!(
        text.contains(r#"{"datetime":"2018-08-24T00:00:00Z","value":3}"#),
        "{text}"
    );
    assert!(text.contains(r#""value":6.5}"#), "{text}");
    assert!(!text.contains("3.0"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn windows_accept_both_spellings_offsets_and_encodings() {
    let server = start_server().await;
    server.post("/data", example_1(1)).await;
    let hour_one: Vec<_> = quarter_hours(1, 2)
        .iter()
        .map(|time| full(time, 6.5))
        .collect();
    for query in [
        // SPEC.md's dashed spelling.
        "start=2018-08-24T01-00-00Z&end=2018-08-24T02-00-00Z",
        // RFC 3339, plain and percent-encoded.
        "start=2018-08-24T01:00:00Z&end=2018-08-24T02:00:00Z",
        "start=2018-08-24T01%3A00%3A00Z&end=2018-08-24T02%3a00%3a00Z",
        // Offsets, `+` encoded and left raw; fractions are truncated.
        "start=2018-08-24T03:00:00%2B02:00&end=2018-08-24T04:00:00+02:00",
        "start=2018-08-24T01:00:00.999Z&end=2018-08-24T02:00:00.5Z",
    ] {
        let reply = server.get(&format!("/data?spaceship_id=1&{query}")).await;
        assert_eq!(reply.buckets(), hour_one, "{query}");
    }
    server.stop().await;
}

async fn bucket_times(server: &TestServer, query: &str) -> Vec<String> {
    let reply = server.get(&format!("/data?spaceship_id=1&{query}")).await;
    reply
        .buckets()
        .into_iter()
        .map(|(time, _, _)| time)
        .collect()
}

#[tokio::test]
async fn windows_are_half_open() {
    let server = start_server().await;
    server.post("/data", example_1(1)).await;
    // The bucket starting at `end` is excluded.
    assert_eq!(
        bucket_times(&server, "end=2018-08-24T00:30:00Z").await,
        [at("00:00"), at("00:15")]
    );
    // A bucket starting before `start` is excluded, even if it overlaps.
    assert_eq!(
        bucket_times(&server, "start=2018-08-24T02:15:01Z").await,
        [at("02:30"), at("02:45")]
    );
    // An empty window is an empty list, not an error.
    let reply = server
        .get("/data?spaceship_id=1&start=2018-08-24T01:00:00Z&end=2018-08-24T01:00:00Z")
        .await;
    assert_eq!(
        reply.json(),
        json!({"spaceship_id": 1, "units": "kWh", "data": []})
    );
    // Unknown parameters are ignored; no bounds means all of time.
    assert_eq!(bucket_times(&server, "colour=blue").await.len(), 12);
    server.stop().await;
}

#[tokio::test]
async fn unsorted_readings_give_the_same_buckets() {
    let server = start_server().await;
    let mut readings = example_2_readings();
    server.post("/data", post_body(1, "kW", &readings)).await;
    readings.reverse();
    readings.swap(1, 4);
    let reply = server.post("/data", post_body(2, "kW", &readings)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        server.get("/data?spaceship_id=2").await.buckets(),
        server.get("/data?spaceship_id=1").await.buckets()
    );
    server.stop().await;
}

#[tokio::test]
async fn retrying_a_post_changes_nothing() {
    let server = start_server().await;
    let body = post_body(1, "kW", &example_2_readings());
    assert_eq!(server.post("/data", body.clone()).await.status, 200);
    let first = server.get("/data?spaceship_id=1").await.buckets();
    let retry = server.post("/data", body).await;
    assert_eq!(
        retry.json(),
        json!({"spaceship_id": 1, "readings": 7, "buckets": 3})
    );
    assert_eq!(server.get("/data?spaceship_id=1").await.buckets(), first);
    server.stop().await;
}

/// One hourly reading: 12 kWh over 00:00–01:00, i.e. 3 kWh per bucket.
fn twelve_kwh_for_an_hour(ship: u64) -> String {
    json!({
        "spaceship_id": ship, "units": "kWh", "interval": "PT1H",
        "data": [{"datetime": at("00:00"), "value": 12}],
    })
    .to_string()
}

#[tokio::test]
async fn a_post_replaces_exactly_the_span_it_covers() {
    let server = start_server().await;
    assert_eq!(
        server.post("/data", twelve_kwh_for_an_hour(1)).await.status,
        200
    );
    // One reading with no interval covers 15 minutes: 8 kW → 2 kWh.
    let reply = server
        .post("/data", post_body(1, "kW", &[(at("00:15"), 8.0)]))
        .await;
    assert_eq!(
        reply.json(),
        json!({"spaceship_id": 1, "readings": 1, "buckets": 1})
    );
    assert_eq!(
        server.get("/data?spaceship_id=1").await.buckets(),
        vec![
            full("00:00", 3.0),
            full("00:15", 2.0),
            full("00:30", 3.0),
            full("00:45", 3.0)
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn an_overwrite_keeps_the_rest_of_a_partly_covered_bucket() {
    let server = start_server().await;
    assert_eq!(
        server.post("/data", twelve_kwh_for_an_hour(1)).await.status,
        200
    );
    // 6 kW over 00:20–00:25 replaces 5 of the bucket's 15 minutes.
    let body = json!({
        "spaceship_id": 1, "units": "kW", "interval": "PT5M",
        "data": [{"datetime": at("00:20"), "value": 6}],
    });
    assert_eq!(server.post("/data", body.to_string()).await.status, 200);
    // 12 kW for 10 minutes (2 kWh) plus 6 kW for 5 minutes (0.5 kWh).
    assert_eq!(
        server.get("/data?spaceship_id=1").await.buckets(),
        vec![
            full("00:00", 3.0),
            full("00:15", 2.5),
            full("00:30", 3.0),
            full("00:45", 3.0)
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn gaps_stay_absent() {
    let server = start_server().await;
    let body = post_body(
        1,
        "kWh",
        &[
            (at("00:00"), 12.0),
            (at("01:00"), 12.0),
            (at("03:00"), 12.0),
        ],
    );
    let reply = server.post("/data", body).await;
    assert_eq!(
        reply.json(),
        json!({"spaceship_id": 1, "readings": 3, "buckets": 12})
    );
    let times: Vec<_> = server
        .get("/data?spaceship_id=1")
        .await
        .buckets()
        .into_iter()
        .map(|(time, value, coverage)| {
            assert_eq!((value, coverage), (3.0, 900));
            time
        })
        .collect();
    let expected: Vec<_> = quarter_hours(0, 2)
        .into_iter()
        .chain(quarter_hours(3, 4))
        .map(|time| at(&time))
        .collect();
    assert_eq!(times, expected, "02:00–02:45 is missing data, not zero");
    server.stop().await;
}

#[tokio::test]
async fn unknown_ship_is_404() {
    let server = start_server().await;
    server.post("/data", example_3(3)).await;
    server
        .get("/data?spaceship_id=4")
        .await
        .assert_error(404, Some("spaceship_id"));
    server.stop().await;
}

#[tokio::test]
async fn bad_posts_name_the_field_and_write_nothing() {
    let server = start_server().await;
    assert_eq!(server.post("/data", example_3(5)).await.status, 200);
    let before = server.get("/data?spaceship_id=5").await.buckets();

    let ok = |time: &str| json!({"datetime": at(time), "value": 9});
    let with_second = |second: serde_json::Value| {
        json!({"spaceship_id": 5, "units": "kWh", "data": [ok("00:00"), second]}).to_string()
    };
    let cases: Vec<(String, Option<&str>)> = vec![
        (
            json!({"units": "kWh", "data": [ok("00:00")]}).to_string(),
            Some("spaceship_id"),
        ),
        (
            json!({"spaceship_id": "five", "units": "kWh", "data": [ok("00:00")]}).to_string(),
            Some("spaceship_id"),
        ),
        (
            json!({"spaceship_id": -5, "units": "kWh", "data": [ok("00:00")]}).to_string(),
            Some("spaceship_id"),
        ),
        (
            json!({"spaceship_id": 5.5, "units": "kWh", "data": [ok("00:00")]}).to_string(),
            Some("spaceship_id"),
        ),
        (
            json!({"spaceship_id": 5, "data": [ok("00:00")]}).to_string(),
            Some("units"),
        ),
        (
            json!({"spaceship_id": 5, "units": "MW", "data": [ok("00:00")]}).to_string(),
            Some("units"),
        ),
        (
            json!({"spaceship_id": 5, "units": 5, "data": [ok("00:00")]}).to_string(),
            Some("units"),
        ),
        (
            json!({"spaceship_id": 5, "units": "kWh"}).to_string(),
            Some("data"),
        ),
        (
            json!({"spaceship_id": 5, "units": "kWh", "data": []}).to_string(),
            Some("data"),
        ),
        (
            json!({"spaceship_id": 5, "units": "kWh", "data": "lots"}).to_string(),
            Some("data"),
        ),
        (
            json!({"spaceship_id": 5, "units": "kWh", "interval": "5 minutes", "data": [ok("00:00")]})
                .to_string(),
            Some("interval"),
        ),
        (with_second(json!(5)), Some("data[1]")),
        (with_second(json!({"value": 9})), Some("data[1].datetime")),
        (
            with_second(json!({"datetime": "2019-01-05T04:42:00ZZ", "value": 9})),
            Some("data[1].datetime"),
        ),
        (
            with_second(json!({"datetime": "2018-02-30T00:00:00Z", "value": 9})),
            Some("data[1].datetime"),
        ),
        (
            with_second(json!({"datetime": at("00:00"), "value": 9})),
            Some("data[1].datetime"),
        ),
        (
            with_second(json!({"datetime": at("00:15")})),
            Some("data[1].value"),
        ),
        (
            with_second(json!({"datetime": at("00:15"), "value": -1})),
            Some("data[1].value"),
        ),
        (
            with_second(json!({"datetime": at("00:15"), "value": "abc"})),
            Some("data[1].value"),
        ),
        (
            with_second(json!({"datetime": at("00:15"), "value": "NaN"})),
            Some("data[1].value"),
        ),
        // JSON has no infinity; an overflowing literal is the way to send one.
        (
            with_second(json!({"datetime": at("00:15"), "value": 0})).replace(":0}", ":1e999}"),
            Some("data[1].value"),
        ),
        ("{".to_owned(), None),
        (String::new(), None),
        ("[1, 2]".to_owned(), None),
    ];
    for (body, field) in cases {
        let reply = server.post("/data", body.clone()).await;
        assert!(
            (400..500).contains(&reply.status),
            "{body} → {}",
            reply.text()
        );
        match field {
            Some(field) => assert_eq!(reply.json()["field"], field, "{body} → {}", reply.text()),
            None => assert!(reply.json()["field"].is_null(), "{body} → {}", reply.text()),
        }
        assert_eq!(
            server.get("/data?spaceship_id=5").await.buckets(),
            before,
            "{body} wrote something"
        );
    }

    // A rejected POST does not create the ship either.
    let duplicate = post_body(6, "kWh", &[(at("00:00"), 1.0), (at("00:00"), 2.0)]);
    let reply = server.post("/data", duplicate).await;
    reply.assert_error(400, Some("data[1].datetime"));
    let message = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(message.contains("data[0]"), "names the clash: {message}");
    assert!(message.contains(&at("00:00")), "names the time: {message}");
    server
        .get("/data?spaceship_id=6")
        .await
        .assert_error(404, Some("spaceship_id"));
    server.stop().await;
}

/// What schemathesis found: readings far apart must not make one write
/// cover years, a write may cover at most 1,000,000 buckets, and no offset
/// may carry a timestamp out of years 0001..=9999. Nothing is written.
#[tokio::test]
async fn far_apart_readings_and_far_out_offsets_are_bounded() {
    let server = start_server().await;
    // Two readings ten years apart, no `interval`: each covers 7 days.
    let far = r#"{"spaceship_id":8,"units":"kW","data":[{"datetime":"2010-01-01T00:00:00Z","value":1},{"datetime":"2020-01-01T00:00:00Z","value":2}]}"#;
    let reply = server.post("/data", far.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["buckets"], 2 * 7 * 96);
    // 1,500 readings a week apart, each covering its week: 1,008,000 buckets.
    let weekly: Vec<serde_json::Value> = (0..1500)
        .map(|k| {
            json!({
                "datetime": powerd::wire::format_timestamp(1_262_304_000 + k * 7 * 86_400),
                "value": 1
            })
        })
        .collect();
    let body = json!({"spaceship_id": 9, "units": "kW", "interval": "P7D", "data": weekly});
    let reply = server.post("/data", body.to_string()).await;
    reply.assert_error(400, Some("data"));
    assert!(reply.text().contains("1008000"), "{}", reply.text());
    server
        .get("/data?spaceship_id=9")
        .await
        .assert_error(404, Some("spaceship_id"));
    for stamp in ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+00:01"] {
        let body =
            json!({"spaceship_id": 10, "units": "kWh", "data": [{"datetime": stamp, "value": 1}]});
        let reply = server.post("/data", body.to_string()).await;
        reply.assert_error(400, Some("data[0].datetime"));
        server
            .get(&format!("/data/fleet?start={}", stamp.replace('+', "%2B")))
            .await
            .assert_error(400, Some("start"));
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_queries_name_the_parameter() {
    let server = start_server().await;
    server.post("/data", example_3(5)).await;
    for (query, field) in [
        ("", "spaceship_id"),
        ("spaceship_id=", "spaceship_id"),
        ("spaceship_id=abc", "spaceship_id"),
        ("spaceship_id=-1", "spaceship_id"),
        ("spaceship_id=5&spaceship_id=6", "spaceship_id"),
        ("spaceship_id=5&start=yesterday", "start"),
        ("spaceship_id=5&start=2018-08-24T00%ZZ", "start"),
        ("spaceship_id=5&end=2018-13-01T00:00:00Z", "end"),
        (
            "spaceship_id=5&start=2018-08-24T01:00:00Z&end=2018-08-24T00:00:00Z",
            "start",
        ),
    ] {
        let reply = server.get(&format!("/data?{query}")).await;
        reply.assert_error(400, Some(field));
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods() {
    let server = start_server().await;
    server.get("/nope").await.assert_error(404, None);
    server.get("/data/").await.assert_error(404, None);
    let reply = server.request(Method::PUT, "/data", Vec::new()).await;
    reply.assert_error(405, None);
    assert_eq!(reply.headers["allow"], "GET, POST");
    let reply = server.request(Method::DELETE, "/health", Vec::new()).await;
    reply.assert_error(405, None);
    assert_eq!(reply.headers["allow"], "GET");
    server.stop().await;
}

fn small_body_limit() -> ServerConfig {
    ServerConfig {
        max_body_bytes: 1024,
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn oversized_body_declared_up_front_is_413() {
    let server = start_server_with(small_body_limit()).await;
    let mut client = server.raw().await;
    // With `Expect: 100-continue` the client waits before sending the body:
    // the limit must be enforced from the header alone.
    client
        .send(
            b"POST /data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 2000\r\nExpect: 100-continue\r\n\r\n",
        )
        .await;
    client.read_response().await.assert_error(413, None);
    assert!(!server.engine.ship_exists(1));
    server.stop().await;
}

#[tokio::test]
async fn oversized_chunked_body_is_413() {
    let server = start_server_with(small_body_limit()).await;
    let mut client = server.raw().await;
    let padding = " ".repeat(1000);
    let body = format!("{}{padding}", example_3(1));
    let mut request =
        b"POST /data HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.as_bytes().chunks(300) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    client.send(&request).await;
    client.read_response().await.assert_error(413, None);
    assert!(!server.engine.ship_exists(1));

    // The same data within the limit goes through.
    assert_eq!(server.post("/data", example_3(1)).await.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eight_mebibyte_body_is_accepted() {
    let server = start_server().await;
    // 5-minute kW readings from 2018-01-01, until the body passes 8 MiB.
    const TARGET_BYTES: usize = 8 * 1024 * 1024;
    let start_s = 1_514_764_800i64;
    let mut body = String::with_capacity(TARGET_BYTES + 1024);
    body.push_str(r#"{"spaceship_id": 8, "units": "kW", "data": ["#);
    let mut readings = 0i64;
    while body.len() < TARGET_BYTES {
        if readings > 0 {
            body.push(',');
        }
        let when = crate::process::timestamp(start_s + readings * 300);
        body.push_str(&format!(
            r#"{{"datetime": "{when}", "value": {}}}"#,
            readings % 7
        ));
        readings += 1;
    }
    body.push_str("]}");
    assert!(body.len() >= TARGET_BYTES);

    let reply = server.post("/data", body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["readings"], readings);
    let first_day = server
        .get("/data?spaceship_id=8&start=2018-01-01T00:00:00Z&end=2018-01-02T00:00:00Z")
        .await
        .buckets();
    assert_eq!(first_day.len(), 96);
    server.stop().await;
}

#[test]
fn civil_dates_for_the_big_body_are_right() {
    assert_eq!(crate::process::timestamp(0), "1970-01-01T00:00:00Z");
    assert_eq!(
        crate::process::timestamp(1_535_068_800),
        "2018-08-24T00:00:00Z"
    );
    assert_eq!(
        crate::process::timestamp(1_551_398_399),
        "2019-02-28T23:59:59Z"
    );
}

/// Sends `GET /health` with a long header one byte per 100 ms, until the
/// server hangs up (or the headers end, some 17 minutes later). Returns how
/// many bytes went out.
async fn slowloris(mut writer: impl AsyncWrite + Unpin) -> usize {
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    let mut sent = 0;
    for byte in request.as_bytes() {
        if writer.write_all(&[*byte]).await.is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sent
}

#[tokio::test]
async fn slow_and_idle_clients_do_not_delay_others() {
    let server = start_server().await;
    let (_slow_reader, slow_writer) = server.raw().await.stream.into_split();
    let slow = tokio::spawn(slowloris(slow_writer));

    let mut idle = Vec::new();
    // 100 keep-alive connections that finished a request and went quiet...
    for _ in 0..100 {
        let mut client = server.raw().await;
        client
            .send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        assert_eq!(client.read_response().await.status, 200);
        idle.push(client);
    }
    // ...and 100 that never said a word.
    for _ in 0..100 {
        idle.push(server.raw().await);
    }

    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(5), server.get("/health"))
        .await
        .expect("a normal request is served while 201 others hang around");
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        !slow.is_finished(),
        "the slow client is still being patient"
    );

    slow.abort();
    drop(idle);
    server.stop().await;
}

#[tokio::test]
async fn slow_headers_hit_the_header_timeout() {
    let header_timeout = Duration::from_millis(500);
    let server = start_server_with(ServerConfig {
        header_timeout,
        ..ServerConfig::default()
    })
    .await;
    let (mut reader, writer) = server.raw().await.stream.into_split();
    let started = Instant::now();
    let slow = tokio::spawn(slowloris(writer));
    let answer = read_until_closed(&mut reader, Duration::from_secs(5))
        .await
        .expect("the server hung up on the slow client");
    assert!(started.elapsed() >= header_timeout);
    let sent = slow.await.unwrap();
    assert!(
        sent < 1000,
        "gave up long before the headers ended ({sent} bytes)"
    );
    // Whatever it said before hanging up, it was not a success.
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains("200 OK"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let idle_timeout = Duration::from_millis(500);
    let server = start_server_with(ServerConfig {
        idle_timeout,
        header_timeout: Duration::from_secs(30),
        ..ServerConfig::default()
    })
    .await;
    let mut client = server.raw().await;
    client
        .send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(client.read_response().await.status, 200);
    let answered = Instant::now();
    assert!(client.closed_within(Duration::from_secs(5)).await);
    // Millisecond stamps: allow for rounding down.
    assert!(answered.elapsed() >= idle_timeout - Duration::from_millis(5));
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_writes_nothing() {
    let server = start_server_with(ServerConfig {
        idle_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    })
    .await;
    let mut client = server.raw().await;
    client
        .send(b"POST /data HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"spaceship_id\"")
        .await;
    client.read_response().await.assert_error(408, None);
    assert!(!server.engine.ship_exists(1));
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_their_turn() {
    let server = start_server_with(ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    })
    .await;
    let mut first = server.raw().await;
    first.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(first.read_response().await.status, 200);

    let mut second = server.raw().await;
    second
        .send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let early =
        tokio::time::timeout(Duration::from_millis(300), second.read_response_untimed()).await;
    assert!(early.is_err(), "served beyond the connection limit");
    drop(first);
    assert_eq!(second.read_response().await.status, 200);
    server.stop().await;
}

/// A POST whose handler is running: headers sent with
/// `Expect: 100-continue`, and the server has asked for the body.
async fn post_in_flight(server: &TestServer, body: &str) -> RawClient {
    let mut client = server.raw().await;
    client
        .send(
            format!(
                "POST /data HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\
                 Expect: 100-continue\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(client.read_response().await.status, 100);
    client
}

/// Waits until the listener is gone (connections refused).
async fn until_refusing(addr: std::net::SocketAddr) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the server stopped accepting");
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_post_finish() {
    let mut server = start_server().await;
    let body = example_3(1);
    let mut client = post_in_flight(&server, &body).await;

    server.begin_shutdown();
    until_refusing(server.addr).await;
    client.send(body.as_bytes()).await;
    let reply = client.read_response().await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.headers["connection"], "close");
    server.wait_stopped(Duration::from_secs(5)).await;

    let stored = server.engine.read_buckets(1, 0, i64::MAX / 900).unwrap();
    assert_eq!(stored.map(|buckets| buckets.len()), Some(4));
    server.engine.close().unwrap();
}

#[tokio::test]
async fn shutdown_gives_up_on_stuck_requests_after_the_grace() {
    let mut server = start_server_with(ServerConfig {
        shutdown_grace: Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .await;
    // Never sends its body.
    let mut stuck = post_in_flight(&server, &example_3(1)).await;
    server.begin_shutdown();
    server.wait_stopped(Duration::from_secs(5)).await;
    assert!(stuck.closed_within(Duration::from_secs(5)).await);
    assert!(!server.engine.ship_exists(1));
    server.engine.close().unwrap();
}

/// The binary itself: the banner comes once the port is bound, the port is
/// the real one for `--listen …:0`, and SIGTERM means a clean exit 0.
#[cfg(unix)]
#[test]
fn the_binary_announces_serves_and_exits_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};

    let dir = TempDir::new("bin");
    let data_dir = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_powerd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("powerd starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = line_tx.send(line);
    });
    let banner = line_rx
        .recv_timeout(STEP_TIMEOUT)
        .expect("the banner is printed");
    let address = banner
        .strip_prefix("powerd listening on http://")
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"));
    let canonical = std::fs::canonicalize(&data_dir).expect("the data dir exists");
    assert!(
        banner
            .trim_end()
            .ends_with(&format!("data in {}", canonical.display())),
        "{banner:?}"
    );

    let mut stream = std::net::TcpStream::connect(address).expect("the port is live");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");

    let pid = child.id().to_string();
    let (exit_tx, exit_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = exit_tx.send(child.wait());
    });
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.expect("kill runs").success());
    let status = exit_rx
        .recv_timeout(STEP_TIMEOUT)
        .expect("powerd exits after SIGTERM")
        .expect("wait works");
    assert!(status.success(), "{status}");
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_powerd"))
        .args(["serve", "--max-connections", "0"])
        .output()
        .expect("powerd runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--max-connections"), "{stderr}");
}

#[tokio::test]
async fn fleet_sums_counts_and_averages_ships_per_interval() {
    let server = start_server().await;
    let empty = server.get("/data/fleet").await.json();
    assert_eq!(
        (&empty["start"], &empty["end"], &empty["data"]),
        (&json!(null), &json!(null), &json!([]))
    );
    // Ship 1: 12, 26, 18 kWh hourly (3, 6.5, 4.5 per bucket); ship 2: 2, 5, 2, 6
    // kWh for the first hour's quarters.
    assert_eq!(server.post("/data", example_1(1)).await.status, 200);
    assert_eq!(server.post("/data", example_3(2)).await.status, 200);
    let reply = server
        .get("/data/fleet?start=2018-08-24T00:00:00Z&end=2018-08-24T01:00:00Z")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let json = reply.json();
    assert_eq!(json["step"], "15m");
    assert_eq!(json["start"], "2018-08-24T00:00:00Z");
    let data = json["data"].as_array().expect("data");
    let rows: Vec<(String, f64, f64, u64)> = data
        .iter()
        .map(|d| {
            (
                d["datetime"].as_str().expect("datetime").to_string(),
                d["sum"].as_f64().expect("sum"),
                d["avg"].as_f64().expect("avg"),
                d["ships"].as_u64().expect("ships"),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (at("00:00"), 5.0, 2.5, 2),
            (at("00:15"), 8.0, 4.0, 2),
            (at("00:30"), 5.0, 2.5, 2),
            (at("00:45"), 9.0, 4.5, 2),
        ]
    );

    // Hourly steps over everything stored: ship 2 only has data in the first hour.
    let reply = server.get("/data/fleet?step=1h").await;
    let json = reply.json();
    // An open window reports the stored range it stood for.
    assert_eq!(json["start"], "2018-08-24T00:00:00Z");
    assert_eq!(json["end"], "2018-08-24T03:00:00Z");
    let data = json["data"].as_array().expect("data");
    assert_eq!(data.len(), 3);
    assert_eq!(
        (data[0]["sum"].as_f64(), data[0]["ships"].as_u64()),
        (Some(27.0), Some(2))
    );
    assert_eq!(
        (data[1]["sum"].as_f64(), data[1]["ships"].as_u64()),
        (Some(26.0), Some(1))
    );
    assert_eq!(data[2]["avg"].as_f64(), Some(18.0));

    // An empty window is an empty list, not an error.
    let reply = server
        .get("/data/fleet?start=2030-01-01T00:00:00Z&end=2030-01-02T00:00:00Z")
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["data"], json!([]));
    server
        .get("/data/fleet?step=2h")
        .await
        .assert_error(400, Some("step"));
    server
        .get("/data/fleet?start=2018-08-25T00:00:00Z&end=2018-08-24T00:00:00Z")
        .await
        .assert_error(400, Some("start"));
    server.stop().await;
}

/// The fleet views follow overwrites by exactly the difference, count a
/// partial bucket's ship, and count ships in a window-cut interval from the
/// part inside the window.
#[tokio::test]
async fn fleet_views_follow_overwrites_partial_buckets_and_cut_windows() {
    let server = start_server().await;
    let rows = |json: serde_json::Value| -> Vec<(String, f64, u64)> {
        json["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|d| {
                (
                    d["datetime"].as_str().expect("datetime").to_string(),
                    d["sum"].as_f64().expect("sum"),
                    d["ships"].as_u64().expect("ships"),
                )
            })
            .collect()
    };
    assert_eq!(server.post("/data", example_1(1)).await.status, 200);
    // Ship 2: 6 kW for the five minutes from 00:10, a partial 00:00 bucket.
    let partial = r#"{"spaceship_id":2,"units":"kW","interval":"PT5M","data":[{"datetime":"2018-08-24T00:10:00Z","value":6}]}"#;
    assert_eq!(server.post("/data", partial.to_string()).await.status, 200);
    let first_hour = "/data/fleet?start=2018-08-24T00:00:00Z&end=2018-08-24T01:00:00Z";
    assert_eq!(
        rows(server.get(first_hour).await.json())[..2],
        [(at("00:00"), 3.5, 2), (at("00:15"), 3.0, 1)]
    );
    // Ship 1's first hour overwritten: 24 kWh instead of 12.
    let overwrite = r#"{"spaceship_id":1,"units":"kWh","interval":"PT1H","data":[{"datetime":"2018-08-24T00:00:00Z","value":24}]}"#;
    assert_eq!(
        server.post("/data", overwrite.to_string()).await.status,
        200
    );
    assert_eq!(
        rows(server.get(first_hour).await.json())[..2],
        [(at("00:00"), 6.5, 2), (at("00:15"), 6.0, 1)]
    );
    let top = server.get("/topusers").await.json();
    assert_eq!(top["ships"][0]["consumption"], 68);
    assert_eq!(top["ships"][1]["consumption"], 0.5);
    // 00:20 rounds up to the 00:30 bucket: ship 2's data lies before it, so
    // the cut day counts ship 1 only, with the 24 + 26 + 18 - 12 kWh inside.
    let cut_day = server
        .get("/data/fleet?start=2018-08-24T00:20:00Z&end=2018-08-25T00:00:00Z&step=1d")
        .await
        .json();
    assert_eq!(rows(cut_day), [(at("00:00"), 56.0, 1)]);
    // A cut hour counts both ships.
    let cut_hour = server
        .get("/data/fleet?start=2018-08-24T00:00:00Z&end=2018-08-24T00:30:00Z&step=1h")
        .await
        .json();
    assert_eq!(rows(cut_hour), [(at("00:00"), 12.5, 2)]);
    server.stop().await;
}

#[tokio::test]
async fn top_users_rank_by_energy_with_ties_by_id() {
    let server = start_server().await;
    // Ships 1 and 3 store 56 kWh each (a tie), ship 2 stores 15 kWh.
    assert_eq!(server.post("/data", example_1(3)).await.status, 200);
    assert_eq!(server.post("/data", example_1(1)).await.status, 200);
    assert_eq!(server.post("/data", example_3(2)).await.status, 200);
    let ranking = |reply: crate::util::Reply| -> Vec<(u64, f64)> {
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["ships"]
            .as_array()
            .expect("ships")
            .iter()
            .map(|s| {
                (
                    s["spaceship_id"].as_u64().expect("id"),
                    s["consumption"].as_f64().expect("consumption"),
                )
            })
            .collect()
    };
    assert_eq!(
        ranking(server.get("/topusers").await),
        vec![(1, 56.0), (3, 56.0), (2, 15.0)]
    );
    assert_eq!(
        ranking(server.get("/topusers?count=1").await),
        vec![(1, 56.0)]
    );
    // An unaligned window: 00:20–00:50 covers the 00:30 and 00:45 buckets.
    assert_eq!(
        ranking(
            server
                .get("/topusers?count=5&start=2018-08-24T00:20:00Z&end=2018-08-24T00:50:00Z")
                .await
        ),
        vec![(2, 8.0), (1, 6.0), (3, 6.0)]
    );
    assert!(ranking(server.get("/topusers?start=2030-01-01T00:00:00Z").await).is_empty());
    server
        .get("/topusers?count=0")
        .await
        .assert_error(400, Some("count"));
    server
        .get("/topusers?count=1001")
        .await
        .assert_error(400, Some("count"));
    server
        .get("/topusers?count=three")
        .await
        .assert_error(400, Some("count"));
    let reply = server.request(Method::POST, "/topusers", Vec::new()).await;
    assert_eq!(reply.status, 405);
    server.stop().await;
}
