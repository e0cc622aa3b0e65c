//! The dashboard (`GET /`) in a real headless Chromium against the real
//! binary, and the JSON endpoints it relies on (`GET /ships`,
//! `GET /alerts`).
//!
//! Guarantee: with seeded data the page loads without console messages,
//! draws the fleet chart and the top users, opens a ship from the URL hash
//! with its curve, forecast and band, and lists the seeded gap, partial
//! interval and outlier as alerts where they are. Chromium is Debian's
//! `chromium` package, which `.ci/run` installs; without it these tests
//! fail (they never skip), saying so.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{timestamp, Client, Server, DAY_S};
use crate::util::{start_server, Reply, TempDir, TestServer};

/// 2026-01-01T00:00:00Z: the seeded data's first bucket.
const SEED_START_S: i64 = 1_767_225_600;
const SEED_DAYS: i64 = 21;
/// The end of the seeded data, 2026-01-22T00:00:00Z.
const SEED_END_S: i64 = SEED_START_S + SEED_DAYS * DAY_S;
/// Ships with three weeks of a daily pattern; the energy grows with the id.
const STEADY_SHIPS: [u64; 6] = [1, 2, 3, 4, 5, 42];
/// Ship 3 misses 06:00–12:00 on 2026-01-20.
const GAP_SHIP: u64 = 3;
/// Ship 4 draws 8 times its usual at 2026-01-21 12:30.
const OUTLIER_SHIP: u64 = 4;
/// Ship 5 has one 5-minute reading alone in 2026-01-19 03:00.
const PARTIAL_SHIP: u64 = 5;
/// Ship 7 sent only the last 6 hours: too little to forecast from.
const SHORT_SHIP: u64 = 7;

fn value(ship: u64, bucket_of_day: i64) -> f64 {
    let phase = 2.0 * std::f64::consts::PI * bucket_of_day as f64 / 96.0;
    (ship as f64 + 1.0) * (1.5 + phase.sin())
}

/// The seed as `POST /data` bodies: one day of one ship each.
fn seed_bodies() -> Vec<String> {
    let mut bodies = Vec::new();
    for ship in STEADY_SHIPS {
        for day in 0..SEED_DAYS {
            let mut data = Vec::new();
            for b in 0..96 {
                let t = SEED_START_S + day * DAY_S + b * 900;
                if ship == GAP_SHIP && day == 19 && (24..48).contains(&b) {
                    continue;
                }
                if ship == PARTIAL_SHIP && day == 18 && b == 12 {
                    continue;
                }
                let mut kwh = value(ship, b);
                if ship == OUTLIER_SHIP && day == 20 && b == 50 {
                    kwh *= 8.0;
                }
                data.push(serde_json::json!({"datetime": timestamp(t), "value": kwh}));
            }
            bodies.push(
                serde_json::json!({"spaceship_id": ship, "units": "kWh", "interval": "PT15M", "data": data})
                    .to_string(),
            );
        }
    }
    // The partial interval: 5 minutes at 6 kW.
    bodies.push(
        serde_json::json!({"spaceship_id": PARTIAL_SHIP, "units": "kW", "interval": "PT5M",
            "data": [{"datetime": timestamp(SEED_START_S + 18 * DAY_S + 12 * 900), "value": 6}]})
        .to_string(),
    );
    let data: Vec<_> = (0..24)
        .map(|b| {
            let t = SEED_END_S - 6 * 3600 + b * 900;
            serde_json::json!({"datetime": timestamp(t), "value": 0.5})
        })
        .collect();
    bodies.push(
        serde_json::json!({"spaceship_id": SHORT_SHIP, "units": "kWh", "data": data}).to_string(),
    );
    bodies
}

/// The real binary with the seed stored.
fn seeded_binary(dir: &TempDir) -> Server {
    let server = Server::start(&dir.path().join("data"));
    let mut client = Client::connect(server.address).expect("connect to powerd");
    for body in seed_bodies() {
        let (status, answer) = client
            .request("POST", "/data", body.as_bytes())
            .expect("the seed POST is answered");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    }
    server
}

async fn seeded_in_process() -> TestServer {
    let server = start_server().await;
    for body in seed_bodies() {
        let reply = server.post("/data", body).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    server
}

// ---- Chromium ---------------------------------------------------------------

/// Debian's `chromium` (or `$POWERD_CHROMIUM`). Missing is a failure, not
/// a skip: CI must run these tests.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("POWERD_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "Chromium is not installed, and the dashboard tests need a real headless browser: \
         run `bash .ci/run` (it installs it) or `apt-get update && apt-get install -y chromium`, \
         or point POWERD_CHROMIUM at a Chromium binary"
    );
}

/// What Chromium made of a page: the DOM after scripts ran, and the
/// console messages it logged.
struct Page {
    dom: String,
    console: Vec<String>,
}

impl Page {
    /// Chromium headless: `--dump-dom` after a virtual-time budget (which
    /// waits for the page's fetches), console messages from its log.
    fn load(url: &str) -> Page {
        let profile = TempDir::new("chromium");
        std::fs::create_dir_all(profile.path()).expect("create the profile directory");
        let mut child = Command::new(chromium())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--window-size=1400,1200",
                "--virtual-time-budget=15000",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--dump-dom", url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        // Read both pipes on threads so neither fills up and blocks it.
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let out = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
        });
        let err = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut text).map(|_| text)
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait().expect("chromium can be waited for") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish {url} within 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let dom = out.join().expect("reader").expect("chromium's stdout");
        let log = err.join().expect("reader").expect("chromium's stderr");
        assert!(
            status.success(),
            "chromium failed on {url}: {status}\n{log}"
        );
        let console = log
            .lines()
            .filter(|line| line.contains(":CONSOLE") || line.contains("Uncaught"))
            .map(str::to_owned)
            .collect();
        Page { dom, console }
    }

    /// The page finished every request, caught no script error and logged
    /// nothing to the console.
    #[track_caller]
    fn assert_clean(&self) {
        assert!(
            self.console.is_empty(),
            "console messages: {:#?}",
            self.console
        );
        assert!(
            self.dom.contains(r#"data-state="ready""#),
            "the page did not finish loading:\n{}",
            self.dom
        );
        assert!(
            self.dom.contains(r#"data-errors="0""#),
            "the page caught errors:\n{}",
            self.element_text("status")
        );
    }

    /// The opening tag of the element with `id`.
    #[track_caller]
    fn tag(&self, id: &str) -> &str {
        let at = self
            .dom
            .find(&format!(r#"id="{id}""#))
            .unwrap_or_else(|| panic!("no element #{id} in:\n{}", self.dom));
        let open = self.dom[..at]
            .rfind('<')
            .expect("a tag opens before its id");
        let close = at + self.dom[at..].find('>').expect("the tag closes");
        &self.dom[open..=close]
    }

    /// An attribute of the element with `id`.
    #[track_caller]
    fn attribute(&self, id: &str, name: &str) -> String {
        attribute(self.tag(id), name).unwrap_or_else(|| panic!("#{id} has no {name}"))
    }

    /// The text of the element with `id` up to its first child tag.
    fn element_text(&self, id: &str) -> String {
        let Some(at) = self.dom.find(&format!(r#"id="{id}""#)) else {
            return String::new();
        };
        let start = at + self.dom[at..].find('>').map_or(0, |p| p + 1);
        let end = start + self.dom[start..].find('<').unwrap_or(0);
        self.dom[start..end].to_owned()
    }

    /// Every opening tag that starts with `prefix` (`<tr data-ship=`).
    fn tags(&self, prefix: &str) -> Vec<&str> {
        self.dom
            .match_indices(prefix)
            .map(|(at, _)| {
                let end = at + self.dom[at..].find('>').expect("the tag closes");
                &self.dom[at..=end]
            })
            .collect()
    }
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(r#" {name}=""#);
    let at = tag.find(&needle)? + needle.len();
    let end = at + tag[at..].find('"')?;
    Some(tag[at..end].replace("&amp;", "&"))
}

// ---- In Chromium ------------------------------------------------------------

/// The harness itself: a page that throws is caught, so a clean page means
/// something.
#[test]
fn chromium_console_errors_are_seen() {
    let page =
        Page::load("data:text/html,<body><script>console.error('boom');undefinedFn()</script>");
    assert!(
        page.console
            .iter()
            .any(|line| line.contains("Uncaught ReferenceError")),
        "{:#?}",
        page.console
    );
    assert!(page.console.iter().any(|line| line.contains("boom")));
}

#[test]
fn chromium_shows_the_fleet_top_users_and_alerts() {
    let dir = TempDir::new("dashboard");
    let server = seeded_binary(&dir);
    let page = Page::load(&format!("http://{}/", server.address));
    page.assert_clean();

    // With no hash: the last 7 days of stored data, per hour.
    let fleet = page.tag("fleet-svg");
    assert_eq!(
        attribute(fleet, "data-x0").as_deref(),
        Some("2026-01-15T00:00:00Z")
    );
    assert_eq!(
        attribute(fleet, "data-x1").as_deref(),
        Some("2026-01-22T00:00:00Z")
    );
    assert_eq!(page.attribute("fleet-line", "data-count"), "168");
    assert!(page.attribute("fleet-line", "d").matches('L').count() >= 160);

    // Top users: every ship with data in the window, most energy first.
    let top: Vec<String> = page
        .tags("<li data-ship=")
        .iter()
        .filter_map(|tag| attribute(tag, "data-ship"))
        .collect();
    assert_eq!(top, ["42", "5", "4", "3", "2", "1", "7"]);
    assert!(page
        .dom
        .contains(r#"<button type="button" class="ship" data-ship="42">Ship 42</button>"#));

    // Alerts: the gap, the partial interval and the outlier, where they are.
    let rows: Vec<(String, String)> = page
        .tags("<tr data-ship=")
        .iter()
        .map(|tag| {
            (
                attribute(tag, "data-ship").unwrap(),
                attribute(tag, "data-kinds").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("3".to_owned(), "missing".to_owned()),
            ("4".to_owned(), "outlier".to_owned()),
            ("5".to_owned(), "partial".to_owned()),
        ],
        "{}",
        page.dom
    );
    assert!(page.dom.contains("missing 2026-01-20 06:00–12:00 (6 h)"));
    let usual = value(OUTLIER_SHIP, 50);
    let outlier = format!(
        "outlier 2026-01-21 12:30: {:.2} kWh, usually {usual:.2}",
        8.0 * usual
    );
    assert!(page.dom.contains(&outlier), "{outlier}");
    assert!(page
        .dom
        .contains("partial 2026-01-19 03:00 (300 s of 900 s)"));
    assert!(page
        .element_text("alerts-note")
        .contains("examined 7 of 7 ships"));

    // The ship search lists the stored ships.
    assert_eq!(page.element_text("ships-page"), "page 1 of 1 · 7 ships");
}

#[test]
fn chromium_opens_a_ship_with_its_curve_forecast_and_gap() {
    let dir = TempDir::new("dashboard");
    let server = seeded_binary(&dir);
    let page = Page::load(&format!("http://{}/#ship={GAP_SHIP}", server.address));
    page.assert_clean();

    assert_eq!(page.element_text("ship-title"), "Ship 3");
    // 7 days of 15-minute buckets less the 6-hour gap.
    assert_eq!(page.attribute("ship-line", "data-count"), "648");
    // The line breaks at the gap: two pieces.
    assert_eq!(page.attribute("ship-line", "d").matches('M').count(), 2);
    // The forecast continues the curve for 24 h, with its band.
    assert_eq!(page.attribute("forecast-line", "data-count"), "96");
    assert_eq!(page.attribute("forecast-band", "data-count"), "96");
    let ship_svg = page.tag("ship-svg");
    assert_eq!(
        attribute(ship_svg, "data-x1").as_deref(),
        Some("2026-01-23T00:00:00Z")
    );
    let gaps = page.tags(r#"<rect class="gap""#);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(
        attribute(gaps[0], "data-start").as_deref(),
        Some("2026-01-20T06:00:00Z")
    );
    assert_eq!(
        attribute(gaps[0], "data-end").as_deref(),
        Some("2026-01-20T12:00:00Z")
    );
    let note = page.element_text("ship-note");
    assert!(
        note.contains("Forecast for the next 24 h from 2026-01-22 00:00"),
        "{note}"
    );
    assert!(note.contains("24 missing, 0 partial, 0 outlier"), "{note}");
    // The alert row of the open ship is highlighted.
    assert!(page
        .dom
        .contains(r#"<tr data-ship="3" data-kinds="missing" class="selected">"#));
}

#[test]
fn chromium_marks_outliers_and_partials_in_a_chosen_window() {
    let dir = TempDir::new("dashboard");
    let server = seeded_binary(&dir);
    // Two days per 15 minutes, ship 4 open.
    let page = Page::load(&format!(
        "http://{}/#start=2026-01-20T00:00:00Z&end=2026-01-22T00:00:00Z&step=15m&ship={OUTLIER_SHIP}",
        server.address
    ));
    page.assert_clean();
    assert_eq!(page.attribute("fleet-line", "data-count"), "192");
    assert_eq!(page.attribute("fleet-svg", "data-step"), "15m");
    assert_eq!(page.attribute("ship-line", "data-count"), "192");
    let outliers = page.tags(r#"<circle class="outlier""#);
    assert_eq!(outliers.len(), 1, "{outliers:?}");
    assert_eq!(
        attribute(outliers[0], "data-datetime").as_deref(),
        Some("2026-01-21T12:30:00Z")
    );
    assert!(page
        .dom
        .contains("2026-01-20 00:00 – 2026-01-22 00:00 UTC, per 15m"));

    // Ship 5's partial bucket is marked on its curve.
    let page = Page::load(&format!(
        "http://{}/#start=2026-01-18T00:00:00Z&end=2026-01-22T00:00:00Z&ship={PARTIAL_SHIP}",
        server.address
    ));
    page.assert_clean();
    let partials = page.tags(r#"<circle class="partial""#);
    assert_eq!(partials.len(), 1, "{partials:?}");
    assert_eq!(
        attribute(partials[0], "data-datetime").as_deref(),
        Some("2026-01-19T03:00:00Z")
    );
}

#[test]
fn chromium_explains_a_ship_too_new_to_forecast() {
    let dir = TempDir::new("dashboard");
    let server = seeded_binary(&dir);
    let page = Page::load(&format!("http://{}/#ship={SHORT_SHIP}", server.address));
    // A 422 from /forecast is an answer to show, not an error.
    page.assert_clean();
    assert_eq!(page.attribute("ship-line", "data-count"), "24");
    // Drawn from its first data, not from the window's start.
    assert_eq!(
        page.attribute("ship-svg", "data-x0"),
        "2026-01-21T18:00:00Z"
    );
    assert!(!page.dom.contains(r#"id="forecast-line""#));
    let note = page.element_text("ship-note");
    assert!(
        note.contains("No forecast: start: not enough history"),
        "{note}"
    );
    // An unknown ship says so.
    let page = Page::load(&format!("http://{}/#ship=999", server.address));
    page.assert_clean();
    assert_eq!(
        page.element_text("ship-note"),
        "Ship 999 has no stored data."
    );
}

#[test]
fn chromium_pages_through_a_fleet_of_1200_ships() {
    const SHIPS: u64 = 1200;
    const DAYS: i64 = 8;
    let dir = TempDir::new("dashboard");
    let server = Server::start(&dir.path().join("data"));
    let mut client = Client::connect(server.address).expect("connect to powerd");
    let first_s = SEED_END_S - DAYS * DAY_S;
    for ship in 0..SHIPS {
        // Hourly kWh; every 4th ship misses 06:00-12:00 on the last day.
        let data: Vec<_> = (0..DAYS * 24)
            .filter(|hour| {
                ship % 4 != 0 || !((DAYS - 1) * 24 + 6..(DAYS - 1) * 24 + 12).contains(hour)
            })
            .map(|hour| {
                serde_json::json!({"datetime": timestamp(first_s + hour * 3600),
                    "value": 4.0 * value(ship % 10, (hour % 24) * 4)})
            })
            .collect();
        let body = serde_json::json!({"spaceship_id": ship, "units": "kWh", "interval": "PT1H", "data": data});
        let (status, answer) = client
            .request("POST", "/data", body.to_string().as_bytes())
            .expect("the seed POST is answered");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    }
    let page = Page::load(&format!("http://{}/", server.address));
    page.assert_clean();
    // One fleet series, ten top users, a page of 20 ids, at most 200 rows.
    assert_eq!(page.attribute("fleet-line", "data-count"), "168");
    assert_eq!(page.tags("<li data-ship=").len(), 10);
    assert_eq!(page.element_text("ships-page"), "page 1 of 60 · 1200 ships");
    assert_eq!(
        page.tags(r#"<button type="button" class="ship""#).len(),
        10 + 20 + 200
    );
    let rows = page.tags("<tr data-ship=");
    assert_eq!(rows.len(), 200);
    assert!(rows.iter().all(
        |row| attribute(row, "data-kinds").as_deref() == Some("missing")
            && attribute(row, "data-ship").unwrap().parse::<u64>().unwrap() % 4 == 0
    ));
    // Two requests of 1,000 ships examined them all.
    assert_eq!(
        page.element_text("alerts-note"),
        "300 ships with alerts (the 200 most severe shown); examined 1200 of 1200 ships \
         (1200 with data in the window or the week before)."
    );
}

// ---- Over HTTP ----------------------------------------------------------------

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let server = start_server().await;
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/dashboard/app.js", "text/javascript; charset=utf-8"),
        ("/dashboard/style.css", "text/css; charset=utf-8"),
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.headers["content-type"], content_type, "{path}");
        assert_eq!(reply.headers["cache-control"], "no-cache", "{path}");
        assert_eq!(reply.headers["x-content-type-options"], "nosniff");
        assert!(reply.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'self'"));
        // Offline: nothing is fetched from anywhere else.
        let text = reply.text().replace("http://www.w3.org/2000/svg", "");
        assert!(
            !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"),
            "{path} refers to another origin"
        );
        // Revalidation: the same version is a 304 without a body.
        let etag = reply.headers["etag"].to_str().unwrap().to_owned();
        let again = get_with(&server, path, "if-none-match", &etag).await;
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty());
        let other = get_with(&server, path, "if-none-match", "\"0-0\"").await;
        assert_eq!(other.status, 200, "{path}");
    }
    let page = server.get("/").await;
    assert!(page
        .text()
        .contains(r#"<script src="/dashboard/app.js" defer></script>"#));
    server.post("/", "x").await.assert_error(405, None);
    server
        .get("/dashboard/nope.js")
        .await
        .assert_error(404, None);
    server.stop().await;
}

#[tokio::test]
async fn ships_are_listed_by_page_and_prefix() {
    let server = seeded_in_process().await;
    let all = server.get("/ships").await.json();
    assert_eq!(
        all,
        serde_json::json!({"prefix": "", "page": 1, "per_page": 50, "total": 7, "pages": 1,
            "ships": [1, 2, 3, 4, 5, 7, 42]})
    );
    let page = server.get("/ships?per_page=3&page=2").await.json();
    assert_eq!(page["ships"], serde_json::json!([4, 5, 7]));
    assert_eq!(page["pages"], 3);
    let past = server.get("/ships?per_page=3&page=9").await.json();
    assert_eq!(past["ships"], serde_json::json!([]));
    assert_eq!(past["total"], 7);
    let prefix = server.get("/ships?prefix=4").await.json();
    assert_eq!(prefix["ships"], serde_json::json!([4, 42]));
    let none = server.get("/ships?prefix=9").await.json();
    assert_eq!(none["total"], 0);

    for (query, field) in [
        ("prefix=abc", "prefix"),
        ("prefix=-1", "prefix"),
        ("prefix=123456789012345678901", "prefix"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("per_page=0", "per_page"),
        ("per_page=1001", "per_page"),
        ("per_page=1&per_page=2", "per_page"),
    ] {
        server
            .get(&format!("/ships?{query}"))
            .await
            .assert_error(400, Some(field));
    }
    server.post("/ships", "").await.assert_error(405, None);
    server.stop().await;
}

#[tokio::test]
async fn alerts_say_where_and_how_much() {
    let server = seeded_in_process().await;
    // Default: the last day of stored data.
    let day = server.get("/alerts").await.json();
    assert_eq!(day["start"], "2026-01-21T00:00:00Z");
    assert_eq!(day["end"], "2026-01-22T00:00:00Z");
    assert_eq!(day["data_end"], "2026-01-22T00:00:00Z");
    assert_eq!(day["ships_total"], 7);
    let ids: Vec<u64> = ids_of(&day);
    assert_eq!(ids, [OUTLIER_SHIP]);

    let week = server
        .get("/alerts?start=2026-01-15T00:00:00Z&end=2026-01-22T00:00:00Z")
        .await
        .json();
    assert_eq!(ids_of(&week), [GAP_SHIP, OUTLIER_SHIP, PARTIAL_SHIP]);
    assert_eq!(week["ships_examined"], 7);
    assert_eq!(week["ships_active"], 7);
    assert_eq!(week["next_after"], serde_json::Value::Null);
    let ships = week["ships"].as_array().unwrap();
    assert_eq!(
        ships[0],
        serde_json::json!({"spaceship_id": 3, "expected_buckets": 672, "missing_buckets": 24,
            "partial_buckets": 0, "partial_missing_seconds": 0, "judged_buckets": 648,
            "outlier_buckets": 0,
            "missing": [{"start": "2026-01-20T06:00:00Z", "end": "2026-01-20T12:00:00Z", "buckets": 24}],
            "partial": [], "outliers": []})
    );
    assert_eq!(ships[1]["outlier_buckets"], 1);
    let outlier = &ships[1]["outliers"][0];
    assert_eq!(outlier["datetime"], "2026-01-21T12:30:00Z");
    assert!((outlier["value"].as_f64().unwrap() - 8.0 * value(4, 50)).abs() < 1e-6);
    assert!((outlier["expected"].as_f64().unwrap() - value(4, 50)).abs() < 1e-6);
    assert!(outlier["score"].as_f64().unwrap() > 5.0);
    assert_eq!(
        ships[2]["partial"],
        serde_json::json!([{"start": "2026-01-19T03:00:00Z", "end": "2026-01-19T03:15:00Z",
            "buckets": 1, "covered_seconds": 300}])
    );
    assert_eq!(ships[2]["partial_missing_seconds"], 600);
    // Ship 7 started 6 hours before the end: nothing is missing before that.
    assert!(!ids_of(&week).contains(&SHORT_SHIP));

    // Pages of 2 ships, followed by their cursor, find the same.
    let mut after: Option<u64> = None;
    let mut found = Vec::new();
    let mut pages = 0;
    loop {
        let mut path =
            "/alerts?start=2026-01-15T00:00:00Z&end=2026-01-22T00:00:00Z&per_page=2".to_owned();
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        let page = server.get(&path).await.json();
        assert!(page["ships_examined"].as_u64().unwrap() <= 2);
        found.extend(ids_of(&page));
        pages += 1;
        match page["next_after"].as_u64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(found, [GAP_SHIP, OUTLIER_SHIP, PARTIAL_SHIP]);
    // `limit` stops at that many ships with findings; the cursor goes on.
    let limited = server
        .get("/alerts?start=2026-01-15T00:00:00Z&end=2026-01-22T00:00:00Z&limit=1")
        .await
        .json();
    assert_eq!(ids_of(&limited), [GAP_SHIP]);
    assert_eq!(limited["next_after"], GAP_SHIP);

    for (query, field) in [
        ("start=2026-01-15T00:00:00Z&end=2026-01-22T00:00:01Z", "end"),
        ("start=2026-01-10T00:00:00Z&end=2026-01-22T00:00:00Z", "end"),
        (
            "start=2026-01-22T00:00:00Z&end=2026-01-22T00:00:00Z",
            "start",
        ),
        (
            "start=2026-01-23T00:00:00Z&end=2026-01-22T00:00:00Z",
            "start",
        ),
        ("start=yesterday", "start"),
        ("end=2026-02-30T00:00:00Z", "end"),
        ("after=-1", "after"),
        ("after=x", "after"),
        ("per_page=0", "per_page"),
        ("per_page=10001", "per_page"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
    ] {
        server
            .get(&format!("/alerts?{query}"))
            .await
            .assert_error(400, Some(field));
    }
    server.post("/alerts", "").await.assert_error(405, None);
    server.stop().await;
}

#[tokio::test]
async fn alerts_and_ships_of_an_empty_store() {
    let server = start_server().await;
    let alerts = server.get("/alerts").await.json();
    assert_eq!(
        alerts,
        serde_json::json!({"start": null, "end": null, "data_end": null, "ships_total": 0,
            "ships_examined": 0, "ships_active": 0, "next_after": null, "ships": []})
    );
    let window = server
        .get("/alerts?start=2026-01-01T00:00:00Z")
        .await
        .json();
    assert_eq!(window["end"], "2026-01-02T00:00:00Z");
    assert_eq!(window["ships"], serde_json::json!([]));
    let ships = server.get("/ships").await.json();
    assert_eq!(ships["total"], 0);
    assert_eq!(ships["pages"], 0);
    server.stop().await;
}

fn ids_of(page: &serde_json::Value) -> Vec<u64> {
    page["ships"]
        .as_array()
        .expect("a ships array")
        .iter()
        .map(|ship| ship["spaceship_id"].as_u64().expect("an id"))
        .collect()
}

/// `GET path` with one extra header, on a raw connection.
async fn get_with(server: &TestServer, path: &str, name: &str, value: &str) -> Reply {
    let mut raw = server.raw().await;
    raw.send(
        format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n{name}: {value}\r\n\r\n").as_bytes(),
    )
    .await;
    raw.read_response().await
}
