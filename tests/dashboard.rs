//! The dashboard (`GET /`) in a real headless Chromium against the real
//! binary, and the JSON endpoints it relies on (`GET /ships`,
//! `GET /alerts`).
//!
//! Guarantee: with seeded data the page loads without console messages,
//! draws the fleet chart and the top users, opens a ship from the URL hash
//! with its curve, forecast and band, and lists the seeded gap, partial
//! interval and outlier as alerts where they are. With `--auth-file`, the
//! page's files load without a token, every panel says its call was
//! refused and the page asks for a token; a read token typed into the form
//! (over the DevTools protocol) is kept for the tab and sent as a header,
//! never in a URL, and a wrong or write-only token is refused in words.
//! Chromium is Debian's `chromium` package, which `.ci/run` installs;
//! without it these tests fail (they never skip), saying so.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use crate::process::{timestamp, Client, Server, DAY_S};
use crate::util::{start_server, Reply, TempDir, TestServer};
use powerd::auth::{AuthFile, WriteScope};

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
    seed(&server, None);
    server
}

/// Stores the seed, sending `token` (if any) with each `POST /data`.
fn seed(server: &Server, token: Option<&str>) {
    let mut client = Client::connect(server.address).expect("connect to powerd");
    for body in seed_bodies() {
        let (status, answer) = client
            .request_as(token, "POST", "/data", body.as_bytes())
            .expect("the seed POST is answered");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    }
}

/// The secrets of [`seeded_binary_with_tokens`].
struct Secrets {
    /// `dashboard`: `--read`.
    reader: String,
    /// `ship-42`: `--write 42`, no read scope.
    ship_42: String,
}

/// The real binary with `--auth-file` and the seed stored (by a writing
/// token); its log, request lines included, in `dir/powerd.log`.
fn seeded_binary_with_tokens(dir: &TempDir) -> (Server, Secrets) {
    std::fs::create_dir_all(dir.path()).expect("create the test directory");
    let mut auth = AuthFile::default();
    let writer = auth.add("gateway", WriteScope::All, false, false).unwrap();
    let secrets = Secrets {
        reader: auth
            .add("dashboard", WriteScope::None, true, false)
            .unwrap(),
        ship_42: auth
            .add("ship-42", WriteScope::parse("42").unwrap(), false, false)
            .unwrap(),
    };
    let file = dir.path().join("auth.json");
    auth.store(&file).expect("store the auth file");
    let log = std::fs::File::create(dir.path().join("powerd.log")).expect("create the log");
    let server = Server::start_logging_to(
        &dir.path().join("data"),
        &["--auth-file", file.to_str().unwrap(), "--log-level", "info"],
        log,
    );
    seed(&server, Some(&writer));
    (server, secrets)
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

/// How every test runs Chromium: headless, as root (no sandbox), no GPU,
/// no first-run or extension work, a desktop-sized window.
const HEADLESS: [&str; 6] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-extensions",
    "--window-size=1400,1200",
];

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
            .args(HEADLESS)
            .args([
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

    /// An attribute of `<body>`.
    #[track_caller]
    fn attribute_of_body(&self, name: &str) -> String {
        let at = self.dom.find("<body").expect("a body");
        let end = at + self.dom[at..].find('>').expect("the tag closes");
        attribute(&self.dom[at..=end], name).unwrap_or_else(|| panic!("<body> has no {name}"))
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

// ---- Chromium over the DevTools protocol --------------------------------------

/// The longest one DevTools step may take: a command's answer, or the page
/// reaching a state. Generous: it only bounds a broken page or browser.
const CDP_TIMEOUT: Duration = Duration::from_secs(60);

/// A Chromium process, ended when dropped: asked to close by [`Browser`],
/// killed if it has not exited within 5 s (say, after a failed assertion).
struct Chromium(Child);

impl Drop for Chromium {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Headless Chromium driven over the DevTools protocol (one websocket, one
/// flattened session on one tab), for what `--dump-dom` cannot do: type
/// into the page, click, reload it in the same tab, and see every request
/// it sent with its `authorization` header.
struct Browser {
    socket: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Console calls, uncaught exceptions and log entries, one line each.
    console: Vec<String>,
    /// Every request the page sent: its URL and `authorization` header.
    requests: Vec<(String, Option<String>)>,
    // Last: the browser exits before its profile is removed.
    _chromium: Chromium,
    _profile: TempDir,
}

impl Browser {
    fn start() -> Browser {
        let profile = TempDir::new("chromium-cdp");
        std::fs::create_dir_all(profile.path()).expect("create the profile directory");
        let mut child = Command::new(chromium())
            .args(HEADLESS)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let stderr = child.stderr.take().expect("piped");
        let chromium = Chromium(child);
        // Chromium prints where DevTools listens on stderr; the thread then
        // drains the rest so the pipe never fills up.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut before = Vec::new();
            let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
            let url = lines.by_ref().find_map(|line| {
                let url = line
                    .strip_prefix("DevTools listening on ")
                    .map(|url| url.trim().to_owned());
                if url.is_none() {
                    before.push(line);
                }
                url
            });
            let _ = sender.send(url.ok_or_else(|| before.join("\n")));
            lines.for_each(drop);
        });
        let url = match receiver.recv_timeout(CDP_TIMEOUT) {
            Ok(Ok(url)) => url,
            Ok(Err(log)) => panic!("chromium ended without listening for DevTools:\n{log}"),
            Err(_) => panic!("chromium did not listen for DevTools within {CDP_TIMEOUT:?}"),
        };
        let address = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("not a ws:// address: {url}"));
        let stream = TcpStream::connect(address).expect("connect to DevTools");
        stream
            .set_read_timeout(Some(CDP_TIMEOUT))
            .expect("a read timeout");
        let (socket, _) =
            tungstenite::client(url.as_str(), stream).expect("the DevTools websocket handshake");
        let mut browser = Browser {
            socket,
            session: String::new(),
            next_id: 0,
            console: Vec::new(),
            requests: Vec::new(),
            _chromium: chromium,
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        for domain in ["Page", "Runtime", "Log", "Network"] {
            browser.call(&format!("{domain}.enable"), json!({}));
        }
        browser
    }

    /// Sends one command (to the tab once attached) and returns its result;
    /// the events read meanwhile are kept.
    #[track_caller]
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .unwrap_or_else(|error| panic!("DevTools refused {method}: {error}"))
    }

    /// [`Browser::call`], DevTools' error as an `Err`.
    fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            command["sessionId"] = json!(self.session);
        }
        self.socket
            .send(Message::text(command.to_string()))
            .unwrap_or_else(|e| panic!("DevTools: sending {method}: {e}"));
        let deadline = Instant::now() + CDP_TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "DevTools did not answer {method} within {CDP_TIMEOUT:?}"
            );
            let frame = self
                .socket
                .read()
                .unwrap_or_else(|e| panic!("DevTools: waiting for {method}: {e}"));
            let Message::Text(text) = frame else {
                continue;
            };
            let message: Value = serde_json::from_str(text.as_str()).expect("DevTools sends JSON");
            if message["id"] == id {
                return match message.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(message["result"].clone()),
                };
            }
            self.event(&message);
        }
    }

    fn event(&mut self, message: &Value) {
        let params = &message["params"];
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        match message["method"].as_str().unwrap_or_default() {
            "Runtime.consoleAPICalled" => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|arg| match arg.get("value") {
                        Some(value) => value.to_string(),
                        None => text(&arg["description"]),
                    })
                    .collect();
                self.console.push(format!(
                    "console.{}: {}",
                    text(&params["type"]),
                    args.join(" ")
                ));
            }
            "Runtime.exceptionThrown" => {
                let details = &params["exceptionDetails"];
                self.console.push(format!(
                    "uncaught: {} {}",
                    text(&details["text"]),
                    text(&details["exception"]["description"])
                ));
            }
            "Log.entryAdded" => {
                let entry = &params["entry"];
                self.console.push(format!(
                    "log {} {}: {}",
                    text(&entry["source"]),
                    text(&entry["level"]),
                    text(&entry["text"])
                ));
            }
            "Network.requestWillBeSent" => {
                let request = &params["request"];
                let authorization = request["headers"].as_object().and_then(|headers| {
                    headers
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
                        .map(|(_, value)| text(value))
                });
                self.requests.push((text(&request["url"]), authorization));
            }
            _ => {}
        }
    }

    /// The value of a JavaScript expression in the tab.
    #[track_caller]
    fn evaluate(&mut self, expression: &str) -> Value {
        self.try_evaluate(expression)
            .unwrap_or_else(|error| panic!("{expression}: {error}"))
    }

    /// [`Browser::evaluate`], a failure (the page navigating away under it,
    /// an exception) as an `Err`.
    fn try_evaluate(&mut self, expression: &str) -> Result<Value, Value> {
        let result = self.try_call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        )?;
        match result.get("exceptionDetails") {
            Some(details) => Err(details.clone()),
            None => Ok(result["result"]["value"].clone()),
        }
    }

    fn open(&mut self, url: &str) {
        let result = self.call("Page.navigate", json!({"url": url}));
        assert!(result.get("errorText").is_none(), "{url}: {result}");
    }

    /// Reloads the tab (its sessionStorage stays); [`Browser::wait_for`]
    /// then never mistakes the old page for the new one.
    fn reload(&mut self) {
        self.evaluate("window.powerdTestOldPage = true");
        self.call("Page.reload", json!({}));
    }

    /// Polls until `<body>` says `want`: its `data-state` and `data-auth`
    /// ("none" when absent), as "ready sent"; then the page as it is.
    fn wait_for(&mut self, want: &str) -> Page {
        let deadline = Instant::now() + CDP_TIMEOUT;
        loop {
            // Between two pages there may be no page to ask: ask again.
            let seen = self
                .try_evaluate(
                    "window.powerdTestOldPage ? 'the old page' : document.body \
                     ? `${document.body.dataset.state} ${document.body.dataset.auth || 'none'}` \
                     : 'no body yet'",
                )
                .unwrap_or_else(|error| json!(format!("no answer: {error}")));
            if seen == want {
                return self.page();
            }
            if Instant::now() > deadline {
                let page = self.page();
                panic!(
                    "the page did not reach {want:?} within {CDP_TIMEOUT:?}: it says {seen}\n\
                     console: {:#?}\n{}",
                    page.console, page.dom
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The DOM now, and the console so far less the refusals the network
    /// layer logs: over DevTools, Chromium reports every 401 and 403 answer
    /// as a "Failed to load resource" entry of source `network` (the
    /// `--dump-dom` log above shows none, as it shows none for the 404 and
    /// 422 answers of the other tests). Those answers are the point of
    /// these tests and are the server's, not the page's, so exactly those
    /// two lines are left out; anything the page itself logs, or any other
    /// status, stays.
    fn page(&mut self) -> Page {
        let dom = self.evaluate("document.documentElement.outerHTML");
        let refusals = [
            "log network error: Failed to load resource: the server responded with a status of 401 (Unauthorized)",
            "log network error: Failed to load resource: the server responded with a status of 403 (Forbidden)",
        ];
        Page {
            dom: dom.as_str().expect("the DOM as text").to_owned(),
            console: self
                .console
                .iter()
                .filter(|line| !refusals.contains(&line.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// Types `text` into the input `id`, as a user would (focus, then text
    /// input events).
    fn type_into(&mut self, id: &str, text: &str) {
        self.evaluate(&format!("document.getElementById('{id}').focus()"));
        self.call("Input.insertText", json!({"text": text}));
    }

    /// A left click in the middle of the element `id`, as a user's.
    fn click(&mut self, id: &str) {
        let centre = self.evaluate(&format!(
            "(() => {{ const e = document.getElementById('{id}'); e.scrollIntoView({{block: 'center'}}); \
             const r = e.getBoundingClientRect(); \
             return r.width > 0 && r.height > 0 ? [r.x + r.width / 2, r.y + r.height / 2] : null; }})()"
        ));
        assert!(centre.is_array(), "#{id} is not visible");
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": centre[0], "y": centre[1], "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Pastes `token` into the token form and clicks "Use token".
    fn use_token(&mut self, token: &str) {
        self.type_into("token-input", token);
        self.click("token-use");
    }

    /// The API requests (not the page's own files) sent from `from` on.
    fn api_requests(&self, origin: &str, from: usize) -> Vec<(String, Option<String>)> {
        self.requests[from..]
            .iter()
            .filter(|(url, _)| {
                url.strip_prefix(origin).is_some_and(|path| {
                    !matches!(path, "/" | "/dashboard/app.js" | "/dashboard/style.css")
                })
            })
            .cloned()
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask Chromium to close; [`Chromium`] kills it if it does not.
        let _ = self
            .socket
            .send(Message::text(r#"{"id":0,"method":"Browser.close"}"#));
    }
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
    assert_draws_the_seeded_overview(&page);
    // No token was asked for.
    assert!(!page.dom.contains("data-auth="));
    assert!(attribute(page.tag("token-panel"), "hidden").is_some());
    assert!(attribute(page.tag("token-forget"), "hidden").is_some());
}

/// The page without a hash, over the seed: the fleet's last 7 days per
/// hour, the top users, the alerts and the ship search.
#[track_caller]
fn assert_draws_the_seeded_overview(page: &Page) {
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
fn chromium_names_the_days_the_forecast_set_aside() {
    // Eight weeks of a steady ship whose Wednesday 2026-02-18 drew a third
    // of its usual.
    let dir = TempDir::new("dashboard");
    let server = Server::start(&dir.path().join("data"));
    let mut client = Client::connect(server.address).expect("connect to powerd");
    let holiday = 48;
    for day in 0..56 {
        let data: Vec<Value> = (0..96)
            .map(|b| {
                let t = SEED_START_S + day * DAY_S + b * 900;
                let kwh = value(9, b) / if day == holiday { 3.0 } else { 1.0 };
                json!({"datetime": timestamp(t), "value": kwh})
            })
            .collect();
        let body = json!({"spaceship_id": 9, "units": "kWh", "data": data}).to_string();
        let (status, answer) = client
            .request_as(None, "POST", "/data", body.as_bytes())
            .expect("the POST is answered");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    }
    let page = Page::load(&format!("http://{}/#ship=9", server.address));
    page.assert_clean();
    let note = page.element_text("ship-note");
    assert!(
        note.contains(
            "It read one day as unusual and set it aside (a holiday, an outage, a spike): \
             2026-02-18 00:00 UTC."
        ),
        "{note}"
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

// ---- With tokens (`--auth-file`) ----------------------------------------------

/// The five panels, each of which says when its call was refused.
const PANELS: [(&str, &str); 5] = [
    ("fleet-panel", "fleet-note"),
    ("top-panel", "top-note"),
    ("ship-panel", "ship-note"),
    ("ships-panel", "ships-page"),
    ("alerts-panel", "alerts-note"),
];

/// Each of `panels` refused with `status`, its note saying `why`; the
/// token form shown with `message`.
#[track_caller]
fn assert_refused(page: &Page, panels: &[(&str, &str)], status: &str, why: &str, message: &str) {
    assert!(page.console.is_empty(), "console: {:#?}", page.console);
    assert!(
        page.dom.contains(r#"data-errors="0""#),
        "a refusal is not an error: {}",
        page.element_text("status")
    );
    for &(panel, note) in panels {
        assert_eq!(page.attribute(panel, "data-refused"), status, "#{panel}");
        assert_eq!(
            page.element_text(note),
            format!("Refused ({status}): {why}."),
            "#{note}"
        );
    }
    assert!(!page.dom.contains(r#"id="fleet-svg""#));
    assert!(page.tags("<li data-ship=").is_empty());
    assert!(attribute(page.tag("token-panel"), "hidden").is_none());
    assert_eq!(
        attribute(page.tag("token-input"), "type").as_deref(),
        Some("password")
    );
    let shown = page.element_text("token-message");
    assert!(shown.starts_with(message), "#token-message: {shown}");
}

#[test]
fn chromium_without_a_token_asks_for_one_and_every_panel_says_refused() {
    let dir = TempDir::new("dashboard-auth");
    let (server, _) = seeded_binary_with_tokens(&dir);
    // The page's files need no token; the API does.
    let mut client = Client::connect(server.address).expect("connect to powerd");
    for path in ["/", "/dashboard/app.js", "/dashboard/style.css"] {
        let (status, _) = client.request("GET", path, b"").expect("answered");
        assert_eq!(status, 200, "{path}");
    }
    let (status, _) = client.request("GET", "/data/fleet", b"").expect("answered");
    assert_eq!(status, 401);

    // A refused call logs nothing to the console in --dump-dom's log.
    let page = Page::load(&format!("http://{}/", server.address));
    assert!(
        page.dom.contains(r#"data-state="needs-token""#),
        "{}",
        page.dom
    );
    assert_eq!(page.attribute_of_body("data-auth"), "needed");
    assert_refused(
        &page,
        &PANELS,
        "401",
        "needs a read token",
        "This powerd needs a read token (401: authorization: this service needs a token: \
         send `Authorization: Bearer &lt;token&gt;`). Paste one below.",
    );
    // Nothing stored yet: nothing to forget.
    assert!(attribute(page.tag("token-forget"), "hidden").is_some());

    // A view from the hash is refused the same way, panel by panel.
    let page = Page::load(&format!(
        "http://{}/#start=2026-01-20T00:00:00Z&end=2026-01-22T00:00:00Z&step=1h&ship={GAP_SHIP}",
        server.address
    ));
    assert_eq!(page.attribute_of_body("data-auth"), "needed");
    assert_refused(
        &page,
        &PANELS,
        "401",
        "needs a read token",
        "This powerd needs a read token (401: ",
    );
    assert_eq!(page.element_text("ship-title"), "Ship 3");
}

#[test]
fn chromium_takes_a_read_token_once_per_tab_and_sends_it_as_a_header() {
    let dir = TempDir::new("dashboard-auth");
    let (server, secrets) = seeded_binary_with_tokens(&dir);
    let origin = format!("http://{}", server.address);
    let token = secrets.reader.as_str();
    let mut browser = Browser::start();
    browser.open(&format!("{origin}/"));
    browser.wait_for("needs-token needed");
    let asked = browser.requests.len();
    let first = browser.api_requests(&origin, 0);
    assert!(!first.is_empty());
    assert!(first.iter().all(|(_, auth)| auth.is_none()), "{first:#?}");

    // Typed into the form: the panels load with it, as without tokens.
    browser.use_token(token);
    let page = browser.wait_for("ready sent");
    page.assert_clean();
    assert_draws_the_seeded_overview(&page);
    assert!(attribute(page.tag("token-panel"), "hidden").is_some());
    assert!(attribute(page.tag("token-forget"), "hidden").is_none());
    assert!(!page.dom.contains("data-refused"));
    assert_eq!(
        browser.evaluate("sessionStorage.getItem('powerd.token')"),
        token,
        "kept for the tab"
    );
    // Sent as a header on every API call, and nowhere else.
    let bearer = format!("Bearer {token}");
    let with_token = browser.api_requests(&origin, asked);
    assert!(with_token.len() >= 5, "{with_token:#?}");
    for (url, auth) in &with_token {
        assert_eq!(auth.as_deref(), Some(bearer.as_str()), "{url}");
    }
    let href = browser.evaluate("location.href");
    assert!(href.as_str().unwrap().starts_with(&origin), "{href}");
    assert!(!href.as_str().unwrap().contains(token));
    assert!(!page.dom.contains(token), "the token is in the page");
    // The server saw the token: its request log names it, never shows it.
    let log = dir.path().join("powerd.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).expect("the server's log");
        assert!(!text.contains(token), "a secret in the server's log");
        if text
            .lines()
            .any(|line| line.contains("path=/data/fleet ") && line.ends_with("token=dashboard"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no request named the token:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Asked once per tab: a reload uses the kept token without asking.
    let reloaded = browser.requests.len();
    browser.reload();
    let page = browser.wait_for("ready sent");
    page.assert_clean();
    assert_eq!(page.attribute("fleet-line", "data-count"), "168");
    assert!(attribute(page.tag("token-panel"), "hidden").is_some());
    let again = browser.api_requests(&origin, reloaded);
    assert!(!again.is_empty());
    assert!(
        again
            .iter()
            .all(|(_, auth)| auth.as_deref() == Some(bearer.as_str())),
        "{again:#?}"
    );

    // "Forget token": gone from the tab, and the page asks again.
    let forgotten = browser.requests.len();
    browser.click("token-forget");
    let page = browser.wait_for("needs-token needed");
    // No ship is open: the ship panel asks nothing, so nothing is refused.
    assert_refused(
        &page,
        &[PANELS[0], PANELS[1], PANELS[3], PANELS[4]],
        "401",
        "needs a read token",
        "This powerd needs a read token (401: ",
    );
    assert!(attribute(page.tag("token-forget"), "hidden").is_some());
    assert_eq!(
        browser.evaluate("sessionStorage.getItem('powerd.token')"),
        Value::Null
    );
    let after = browser.api_requests(&origin, forgotten);
    assert!(!after.is_empty());
    assert!(after.iter().all(|(_, auth)| auth.is_none()), "{after:#?}");

    // No request of the whole session carried the token in its URL.
    for (url, _) in &browser.requests {
        assert!(!url.contains(token), "the token in a URL: {url}");
    }
}

#[test]
fn chromium_says_a_token_was_refused_or_may_not_read_and_asks_again() {
    let dir = TempDir::new("dashboard-auth");
    let (server, secrets) = seeded_binary_with_tokens(&dir);
    let origin = format!("http://{}", server.address);
    let mut browser = Browser::start();
    browser.open(&format!("{origin}/"));
    browser.wait_for("needs-token needed");

    // A wrong token: refused, and the form asks again (empty).
    let wrong = format!("pwd_{}", "0".repeat(64));
    browser.use_token(&wrong);
    let page = browser.wait_for("needs-token refused");
    assert_refused(
        &page,
        &PANELS,
        "401",
        "the token was refused",
        "The token was refused: revoked or mistyped? (401: authorization: the token is not \
         known here (revoked, or mistyped)). Paste a read token below, or forget this one.",
    );
    assert!(attribute(page.tag("token-forget"), "hidden").is_none());
    assert_eq!(
        browser.evaluate("document.getElementById('token-input').value"),
        ""
    );

    // A token that may write but not read: the server's words.
    browser.use_token(&secrets.ship_42);
    let page = browser.wait_for("needs-token forbidden");
    assert_refused(
        &page,
        &PANELS,
        "403",
        "the token may not read",
        "This token may not read (403: token \"ship-42\" may not read; nothing was done). \
         Paste a token with the read scope below.",
    );

    // The read token, typed in its place, is taken.
    browser.use_token(&secrets.reader);
    let page = browser.wait_for("ready sent");
    page.assert_clean();
    assert_eq!(page.attribute("fleet-line", "data-count"), "168");
    for (url, _) in &browser.requests {
        for secret in [wrong.as_str(), &secrets.ship_42, &secrets.reader] {
            assert!(!url.contains(secret), "a token in a URL: {url}");
        }
    }
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
