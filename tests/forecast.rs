//! `GET /forecast` over HTTP: the answer for a ship with a known synthetic
//! pattern, past windows that ignore later data, short and stale history,
//! window sizes, and every error case.

use serde_json::Value;

use crate::util::{start_server, TestServer};

const DAY_S: i64 = 86_400;
const BUCKET_S: i64 = 900;
const DAY: usize = 96;
/// 2018-01-01T00:00:00Z, a Monday: where the synthetic history begins.
const FIRST_S: i64 = 1_514_764_800;
/// Days of synthetic history: 20 weeks.
const HISTORY_DAYS: usize = 140;

fn ts(secs: i64) -> String {
    powerd::wire::format_timestamp(secs)
}

/// The noise-free pattern at bucket `i` from [`FIRST_S`]: a trend (+0.3 kWh
/// per bucket per week), a daily shape (0 at midnight, +6 at noon) and a
/// weekly one (two heavier days) on a base of 10 kWh per bucket.
fn pattern(i: usize) -> f64 {
    let slot = (i % DAY) as f64;
    let trend = 10.0 + 0.3 * i as f64 / (7 * DAY) as f64;
    let daily = 3.0 * (1.0 - (2.0 * std::f64::consts::PI * slot / DAY as f64).cos());
    let weekly = [0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 4.0][(i / DAY) % 7];
    trend + daily + weekly
}

/// Deterministic noise in [-1, 1] (a 64-bit LCG), so failures reproduce.
fn noise(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    ((*state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

/// A `POST /data` body of 15-minute kWh readings `values[k]` at bucket
/// `first + k` (counted from [`FIRST_S`]).
fn kwh_body(ship: u64, first: usize, values: &[f64]) -> String {
    let data: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let t = FIRST_S + (first + k) as i64 * BUCKET_S;
            serde_json::json!({"datetime": ts(t), "value": v})
        })
        .collect();
    serde_json::json!({"spaceship_id": ship, "units": "kWh", "data": data}).to_string()
}

/// `days` of the pattern with ±1% noise from [`FIRST_S`].
fn noisy_pattern(days: usize) -> Vec<f64> {
    let mut state = 42;
    (0..days * DAY)
        .map(|i| pattern(i) + 0.1 * noise(&mut state))
        .collect()
}

/// Stores [`noisy_pattern`] for `ship`.
async fn store_pattern(server: &TestServer, ship: u64, days: usize) {
    let values = noisy_pattern(days);
    let reply = server.post("/data", kwh_body(ship, 0, &values)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

fn forecast_path(ship: u64, start: i64, end: i64) -> String {
    format!(
        "/forecast?spaceship_id={ship}&start={}&end={}",
        ts(start),
        ts(end)
    )
}

async fn forecast(server: &TestServer, ship: u64, start: i64, end: i64) -> Value {
    let reply = server.get(&forecast_path(ship, start, end)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.headers["content-type"], "application/json");
    reply.json()
}

/// `(bucket index from FIRST_S, value)` of each `data` item, checking that
/// they are consecutive buckets.
fn curve(answer: &Value) -> Vec<(usize, f64)> {
    let data = answer["data"].as_array().expect("data");
    let items: Vec<(usize, f64)> = data
        .iter()
        .map(|item| {
            let t = powerd::wire::parse_timestamp(item["datetime"].as_str().unwrap()).unwrap();
            assert_eq!(item.as_object().unwrap().len(), 4, "{item}");
            let value = item["value"].as_f64().expect("value");
            // Each bucket's own 80% interval holds its expected value.
            let (low, high) = (
                item["low"].as_f64().unwrap(),
                item["high"].as_f64().unwrap(),
            );
            assert!(0.0 <= low && low <= value && value <= high, "{item}");
            (((t - FIRST_S) / BUCKET_S) as usize, value)
        })
        .collect();
    for pair in items.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "consecutive buckets");
    }
    items
}

fn total(answer: &Value) -> f64 {
    answer["expected_consumption"].as_f64().expect("a total")
}

#[tokio::test]
async fn forecasts_a_known_pattern_day_ahead() {
    let server = start_server().await;
    store_pattern(&server, 1, HISTORY_DAYS).await;
    // Every weekday of the week after the history, light and heavy: each
    // forecast from the 20 weeks before its start.
    for day in HISTORY_DAYS - 7..HISTORY_DAYS {
        let start = FIRST_S + day as i64 * DAY_S;
        let answer = forecast(&server, 1, start, start + DAY_S).await;
        assert_eq!(answer["spaceship_id"], 1);
        assert_eq!(answer["units"], "kWh");
        assert_eq!(answer["start"], ts(start));
        assert_eq!(answer["end"], ts(start + DAY_S));

        let items = curve(&answer);
        assert_eq!(items.len(), DAY, "one value per bucket of the window");
        assert_eq!(items[0].0, day * DAY);
        for &(i, value) in &items {
            let error = (value / pattern(i) - 1.0).abs();
            assert!(
                error < 0.03,
                "day {day} bucket {i}: {value} vs {}",
                pattern(i)
            );
        }
        let expected = total(&answer);
        let sum: f64 = items.iter().map(|&(_, v)| v).sum();
        assert!((sum - expected).abs() < 1e-6, "{sum} vs {expected}");
        let truth: f64 = (day * DAY..(day + 1) * DAY).map(pattern).sum();
        assert!(
            (expected / truth - 1.0).abs() < 0.005,
            "day {day}: {expected} vs {truth}"
        );

        let interval = &answer["interval"];
        let (low, high) = (
            interval["low"].as_f64().unwrap(),
            interval["high"].as_f64().unwrap(),
        );
        assert_eq!(interval["level"], 0.8);
        assert!(low <= expected && expected <= high, "{interval}");
        assert!(
            low <= truth && truth <= high,
            "day {day}: {truth} outside {interval}"
        );
        assert!(high - low < 0.05 * truth, "a tight interval: {interval}");

        let model = &answer["model"];
        assert!(model["method"].as_str().unwrap().contains("blend"));
        assert_eq!(model["backtest"], true, "2018 is in the past");
        assert_eq!(model["history_start"], ts(FIRST_S));
        assert_eq!(model["history_end"], ts(start));
        assert_eq!(model["history_buckets"], day * DAY);
        assert_eq!(model["imputed_buckets"], 0);
        assert_eq!(
            model["unusual_days"],
            serde_json::json!([]),
            "no day is off"
        );
        assert_eq!(model["fallbacks"], serde_json::json!([]));
        assert!(model["validation_origins"].as_u64().unwrap() >= 28);
        for weights in ["level_weights", "shape_weights"] {
            let weights = model[weights].as_object().expect("named weights");
            let sum: f64 = weights.values().map(|w| w.as_f64().unwrap()).sum();
            assert!((sum - 1.0).abs() < 1e-6, "{weights:?}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_holiday_is_named_and_does_not_pull_its_weekday_down() {
    let server = start_server().await;
    // Ship 1 as in every test; ship 2 the same but for a Wednesday that
    // drew a third of its usual (a holiday), eight weeks before the end.
    let days = 112;
    let holiday = days - 8 * 7 + 2;
    store_pattern(&server, 1, days).await;
    let mut off = noisy_pattern(days);
    off[holiday * DAY..(holiday + 1) * DAY]
        .iter_mut()
        .for_each(|v| *v /= 3.0);
    let reply = server.post("/data", kwh_body(2, 0, &off)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let holiday_start = FIRST_S + holiday as i64 * DAY_S;
    // The day after it, the model cannot tell it from a new level yet.
    let start = holiday_start + DAY_S;
    let answer = forecast(&server, 2, start, start + DAY_S).await;
    assert_eq!(answer["model"]["unusual_days"], serde_json::json!([]));
    // From the day after that on, it is named, and the next Wednesday is
    // forecast as if it had been a usual day.
    for weeks in 1..=4 {
        let start = holiday_start + weeks * 7 * DAY_S;
        let with = forecast(&server, 2, start, start + DAY_S).await;
        let without = forecast(&server, 1, start, start + DAY_S).await;
        assert_eq!(
            with["model"]["unusual_days"],
            serde_json::json!([ts(holiday_start)]),
        );
        assert_eq!(without["model"]["unusual_days"], serde_json::json!([]));
        let (a, b) = (total(&with), total(&without));
        assert!(
            (a / b - 1.0).abs() < 0.01,
            "{weeks} week(s) after: {a} vs {b}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_past_window_uses_only_the_history_before_its_start() {
    let server = start_server().await;
    store_pattern(&server, 2, HISTORY_DAYS).await;
    let start = FIRST_S + 126 * DAY_S;
    let path = forecast_path(2, start, start + 2 * DAY_S);
    // The same window, and one starting a bucket later, before the rewrite.
    let later_path = forecast_path(2, start + BUCKET_S, start + 2 * DAY_S);
    let before = server.get(&path).await;
    assert_eq!(before.status, 200, "{}", before.text());
    assert_eq!(before.json()["model"]["history_end"], ts(start));
    let later_before = server.get(&later_path).await;
    assert_eq!(later_before.status, 200, "{}", later_before.text());

    // Rewrite everything from `start` on at ten times the load: it is
    // stored (GET /data sees it), and the forecast does not move.
    let from = 126 * DAY;
    let values: Vec<f64> = (from..HISTORY_DAYS * DAY)
        .map(|i| 10.0 * pattern(i))
        .collect();
    let reply = server.post("/data", kwh_body(2, from, &values)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let stored = server
        .get(&format!(
            "/data?spaceship_id=2&start={}&end={}",
            ts(start),
            ts(start + BUCKET_S)
        ))
        .await
        .buckets();
    assert_eq!(stored.len(), 1);
    assert!((stored[0].1 - 10.0 * pattern(from)).abs() < 1e-6);
    let after = server.get(&path).await;
    assert_eq!(after.text(), before.text());

    // A bucket later, the rewritten bucket at `start` is history: the
    // answer moves (so the first comparison could have failed).
    let later_after = server.get(&later_path).await;
    assert_eq!(later_after.status, 200);
    assert_ne!(
        total(&later_after.json()),
        total(&later_before.json()),
        "the rewritten bucket is read once it is before the start"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_future_window_is_not_a_backtest() {
    let server = start_server().await;
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let today = now_s - now_s.rem_euclid(DAY_S);
    // Two weeks of history ending at today's UTC midnight; forecast the next
    // UTC day (the hours of today in between are simply missing).
    let days = 14;
    let first = (today - days * DAY_S - FIRST_S) / BUCKET_S;
    let values: Vec<f64> = (0..days as usize * DAY)
        .map(|i| 1.0 + (i % DAY) as f64)
        .collect();
    let reply = server
        .post("/data", kwh_body(3, first as usize, &values))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = forecast(&server, 3, today + DAY_S, today + 2 * DAY_S).await;
    assert_eq!(answer["model"]["backtest"], false);
    assert_eq!(answer["model"]["history_start"], ts(today - days * DAY_S));
    let items = curve(&answer);
    assert_eq!(items.len(), DAY);
    for (slot, &(_, value)) in items.iter().enumerate() {
        assert!(
            (value - (1.0 + slot as f64)).abs() < 0.05,
            "slot {slot}: {value}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn windows_from_one_bucket_to_28_days() {
    let server = start_server().await;
    store_pattern(&server, 4, HISTORY_DAYS).await;
    let start = FIRST_S + HISTORY_DAYS as i64 * DAY_S;

    // One bucket, at the daily peak of the last stored day (a past window,
    // from the history before it): the shape is used, not a daily mean.
    let noon = (HISTORY_DAYS - 1) * DAY + DAY / 2;
    let noon_s = FIRST_S + noon as i64 * BUCKET_S;
    let answer = forecast(&server, 4, noon_s, noon_s + BUCKET_S).await;
    let items = curve(&answer);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].0, noon);
    assert!(
        (items[0].1 / pattern(noon) - 1.0).abs() < 0.03,
        "{}",
        items[0].1
    );
    assert!(
        items[0].1 > pattern(noon - DAY / 2),
        "above the midnight low"
    );
    assert_eq!(total(&answer), items[0].1);

    // Unaligned edges widen to whole buckets: 12:07–12:08 is the 12:00 bucket.
    let answer = forecast(&server, 4, noon_s + 420, noon_s + 480).await;
    assert_eq!(answer["start"], ts(noon_s));
    assert_eq!(answer["end"], ts(noon_s + BUCKET_S));
    assert_eq!(curve(&answer), items);

    // 28 days: every bucket, and the trend carried on.
    let answer = forecast(&server, 4, start, start + 28 * DAY_S).await;
    let items = curve(&answer);
    assert_eq!(items.len(), 28 * DAY);
    assert_eq!(answer["end"], ts(start + 28 * DAY_S));
    let truth: f64 = (HISTORY_DAYS * DAY..(HISTORY_DAYS + 28) * DAY)
        .map(pattern)
        .sum();
    assert!(
        (total(&answer) / truth - 1.0).abs() < 0.01,
        "{} vs {truth}",
        total(&answer)
    );
    for &(i, value) in &items {
        assert!((value / pattern(i) - 1.0).abs() < 0.04, "bucket {i}");
    }

    // 28 days and one bucket: refused, naming `end`.
    let reply = server
        .get(&forecast_path(4, start, start + 28 * DAY_S + BUCKET_S))
        .await;
    reply.assert_error(400, Some("end"));
    assert!(reply.json()["error"].as_str().unwrap().contains("2689"));
    server.stop().await;
}

#[tokio::test]
async fn short_history_is_422_saying_how_much_is_needed() {
    let server = start_server().await;
    // Ten hours: 40 buckets, under the one day needed.
    let values = vec![2.0; 40];
    let reply = server.post("/data", kwh_body(5, 0, &values)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let start = FIRST_S + DAY_S;
    let reply = server.get(&forecast_path(5, start, start + DAY_S)).await;
    reply.assert_error(422, Some("start"));
    let message = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(
        message.contains("need at least 96 usable 15-minute buckets"),
        "{message}"
    );
    assert!(message.contains("have 40"), "{message}");

    // Before any of its data, the ship has nothing at all.
    let reply = server
        .get(&forecast_path(5, FIRST_S, FIRST_S + DAY_S))
        .await;
    reply.assert_error(422, Some("start"));
    assert!(reply.text().contains("have 0"), "{}", reply.text());

    // A day and a half of it is enough, with the fallbacks named.
    let values = vec![2.0; DAY + DAY / 2];
    let reply = server.post("/data", kwh_body(6, 0, &values)).await;
    assert_eq!(reply.status, 200);
    let answer = forecast(&server, 6, FIRST_S + 2 * DAY_S, FIRST_S + 3 * DAY_S).await;
    assert!((total(&answer) - 2.0 * DAY as f64).abs() < 1e-6, "{answer}");
    let fallbacks = answer["model"]["fallbacks"].as_array().unwrap();
    assert!(
        fallbacks
            .iter()
            .any(|f| f.as_str().unwrap().contains("no day-of-week terms")),
        "{fallbacks:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_ship_silent_for_weeks_is_fitted_where_its_data_ends() {
    let server = start_server().await;
    store_pattern(&server, 7, 70).await;
    // Ten weeks after the data ends, same time of week as its end.
    let end_of_data = FIRST_S + 70 * DAY_S;
    let start = end_of_data + 70 * DAY_S;
    let answer = forecast(&server, 7, start, start + DAY_S).await;
    let model = &answer["model"];
    assert_eq!(model["history_end"], ts(end_of_data));
    assert_eq!(model["history_buckets"], 70 * DAY);
    assert_eq!(
        model["fallbacks"],
        serde_json::json!(["no data in the week before the origin: fitted 10 week(s) earlier"])
    );
    // The pattern where the data ends, a day ahead of it.
    for &(i, value) in &curve(&answer) {
        let then = i - 70 * DAY;
        assert!((value / pattern(then) - 1.0).abs() < 0.03, "bucket {i}");
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_ship_is_404() {
    let server = start_server().await;
    store_pattern(&server, 8, 7).await;
    let reply = server
        .get("/forecast?spaceship_id=9&start=2018-01-08T00:00:00Z&end=2018-01-09T00:00:00Z")
        .await;
    reply.assert_error(404, Some("spaceship_id"));
    server.stop().await;
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_field() {
    let server = start_server().await;
    store_pattern(&server, 1, 7).await;
    let (start, end) = ("2018-01-08T00:00:00Z", "2018-01-09T00:00:00Z");
    let cases = [
        (format!("start={start}&end={end}"), "spaceship_id"),
        (
            format!("spaceship_id=&start={start}&end={end}"),
            "spaceship_id",
        ),
        (
            format!("spaceship_id=-1&start={start}&end={end}"),
            "spaceship_id",
        ),
        (
            format!("spaceship_id=one&start={start}&end={end}"),
            "spaceship_id",
        ),
        (format!("spaceship_id=1&end={end}"), "start"),
        (format!("spaceship_id=1&start={start}"), "end"),
        (
            format!("spaceship_id=1&start=2018-01-08&end={end}"),
            "start",
        ),
        (
            format!("spaceship_id=1&start=2018-02-30T00:00:00Z&end={end}"),
            "start",
        ),
        (format!("spaceship_id=1&start={start}&end=tomorrow"), "end"),
        (
            format!("spaceship_id=1&start={start}&start={start}&end={end}"),
            "start",
        ),
        // start equal to or after end
        (format!("spaceship_id=1&start={start}&end={start}"), "start"),
        (format!("spaceship_id=1&start={end}&end={start}"), "start"),
        // over 28 days
        (
            format!("spaceship_id=1&start={start}&end=2018-03-08T00:00:00Z"),
            "end",
        ),
    ];
    for (query, field) in cases {
        let reply = server.get(&format!("/forecast?{query}")).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text());
        reply.assert_error(400, Some(field));
    }
    // The dashed timestamp spelling of GET /data works here too.
    let reply = server
        .get("/forecast?spaceship_id=1&start=2018-01-08T00-00-00Z&end=2018-01-08T01-00-00Z")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let reply = server.post("/forecast", "{}").await;
    reply.assert_error(405, None);
    assert_eq!(reply.headers["allow"], "GET");
    server.stop().await;
}
