//! `GET /openapi.json` kept true: every endpoint driven over real HTTP, each
//! answer checked against the served description.
//!
//! For every request here, the status must be one the spec lists for that
//! path and method (404 for unknown paths and 405 for wrong methods are
//! documented once, in `info.description`, with the common error schema),
//! the content type must be the one documented for that status, and a JSON
//! body must satisfy the response schema. At the end, every documented
//! (path, method, status) must have been seen, apart from the few listed in
//! [`NOT_REACHABLE_HERE`] with the reason. The routes in
//! `src/http/routes.rs` must all be in the spec.
//!
//! The validator is a small one for the JSON Schema the spec uses; a
//! keyword it does not know fails the test, so the spec cannot drift into
//! constructs nobody checks.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};

use crate::util::{
    at, post_body, start_server, start_server_on, start_server_with, Reply, TempDir, TestServer,
};
use powerd::auth::{AuthFile, Tokens, WriteScope};
use powerd::config::ServerConfig;
use powerd::storage::Engine;

/// Documented statuses this test cannot provoke, and why.
const NOT_REACHABLE_HERE: &[(&str, &str, u16, &str)] = &[
    // 500 needs a failing disk or a panicking handler; the mapping is unit
    // tested in src/http/error.rs and the body is the common error schema.
    ("/data", "post", 500, "storage failure"),
    ("/data", "get", 500, "storage failure"),
    ("/data/fleet", "get", 500, "storage failure"),
    ("/topusers", "get", 500, "storage failure"),
    ("/forecast", "get", 500, "storage failure"),
    // Reads go on after the engine closes (the blocks stay mapped): a read
    // gets 503 only when shutdown cancels it mid-way. It is the same error
    // body as the 503 of POST /data, which is checked.
    ("/data", "get", 503, "shutdown race"),
    ("/data/fleet", "get", 503, "shutdown race"),
    ("/topusers", "get", 503, "shutdown race"),
    ("/forecast", "get", 503, "shutdown race"),
    ("/alerts", "get", 503, "shutdown race"),
    ("/metrics", "get", 503, "shutdown race"),
    ("/ships", "get", 500, "a panicking handler"),
    ("/ships", "get", 503, "shutdown race"),
    ("/metrics", "get", 500, "a panicking handler"),
    ("/alerts", "get", 500, "storage failure"),
];

/// The spec as served, and which documented answers have been seen.
struct Checker {
    spec: Value,
    seen: BTreeSet<(String, String, u16)>,
}

impl Checker {
    async fn new(server: &TestServer) -> Checker {
        let reply = server.get("/openapi.json").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.headers["content-type"], "application/json");
        let spec = reply.json();
        assert_eq!(spec["openapi"], "3.1.0");
        // The document is the file compiled in, byte for byte.
        assert_eq!(reply.text(), include_str!("../src/http/openapi.json"));
        let mut checker = Checker {
            spec,
            seen: BTreeSet::new(),
        };
        checker.check("/openapi.json", &Method::GET, &reply);
        checker
    }

    /// Sends a request and checks the answer has `status` and matches the spec.
    async fn expect(
        &mut self,
        server: &TestServer,
        method: Method,
        path_and_query: &str,
        body: impl Into<Vec<u8>>,
        status: u16,
    ) -> Reply {
        self.expect_as(None, server, method, path_and_query, body, status)
            .await
    }

    /// [`Checker::expect`] with `Authorization: Bearer <token>`.
    async fn expect_as(
        &mut self,
        token: Option<&str>,
        server: &TestServer,
        method: Method,
        path_and_query: &str,
        body: impl Into<Vec<u8>>,
        status: u16,
    ) -> Reply {
        let reply = server
            .request_as(token, method.clone(), path_and_query, body.into())
            .await;
        assert_eq!(
            reply.status,
            status,
            "{method} {path_and_query}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let path = path_and_query.split('?').next().unwrap_or_default();
        self.check(path, &method, &reply);
        reply
    }

    /// Checks `reply` to `method path` against the spec.
    #[track_caller]
    fn check(&mut self, path: &str, method: &Method, reply: &Reply) {
        let method = method.as_str().to_ascii_lowercase();
        let what = format!("{method} {path} -> {}", reply.status);
        let operation = &self.spec["paths"][path][&method];
        let response = if operation.is_object() {
            let response = &operation["responses"][reply.status.to_string()];
            assert!(
                response.is_object(),
                "{what}: the spec does not list this status; body: {}",
                String::from_utf8_lossy(&reply.body)
            );
            self.seen
                .insert((path.to_owned(), method.clone(), reply.status));
            self.resolve(response).clone()
        } else {
            // Not an operation: only the documented 404 (unknown path) and
            // 405 (known path, other method) may answer.
            let known_path = self.spec["paths"][path].is_object();
            let expected = if known_path { 405 } else { 404 };
            assert_eq!(reply.status, expected, "{what}: an undocumented answer");
            if known_path {
                let allow = reply.headers["allow"].to_str().unwrap();
                let documented: BTreeSet<String> = self.spec["paths"][path]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                let allowed: BTreeSet<String> = allow.split(", ").map(|m| m.to_owned()).collect();
                assert_eq!(allowed, documented, "{what}: allow header {allow}");
            }
            json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
        };
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            let header = self.resolve(header);
            let value = reply
                .headers
                .get(name.as_str())
                .unwrap_or_else(|| panic!("{what}: no {name} header"));
            let value = value.to_str().unwrap();
            let value = if self.resolve(&header["schema"])["type"] == "integer" {
                serde_json::from_str(value)
                    .unwrap_or_else(|_| panic!("{what}: header {name}: {value:?} is not a number"))
            } else {
                Value::String(value.to_owned())
            };
            self.validate_all(&what, &header["schema"], &value);
        }
        if response.get("content").is_none() {
            assert!(
                reply.body.is_empty(),
                "{what}: a body where none is documented"
            );
            return;
        }
        let content_type = reply.headers["content-type"].to_str().unwrap();
        let media_type = content_type.split(';').next().unwrap().trim();
        let content = &response["content"][media_type];
        assert!(
            content.is_object(),
            "{what}: content type {content_type} is not documented for this status"
        );
        if media_type == "application/json" {
            let body = reply.json();
            self.validate_all(&what, &content["schema"], &body);
        }
    }

    fn validate_all(&self, what: &str, schema: &Value, value: &Value) {
        let mut errors = Vec::new();
        self.validate(schema, value, "$", &mut errors);
        assert!(
            errors.is_empty(),
            "{what}: the answer contradicts the spec:\n  {}\nvalue: {value}",
            errors.join("\n  ")
        );
    }

    /// Follows a local `$ref` (`#/components/...`).
    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        while let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("only local references: {reference}"));
            node = self
                .spec
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling reference {reference}"));
        }
        node
    }

    /// JSON Schema (2020-12) validation for the keywords the spec's
    /// response schemas use. Errors are pushed as "<json path>: <problem>".
    fn validate(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        let Some(keywords) = schema.as_object() else {
            errors.push(format!("{at}: the schema is not an object: {schema}"));
            return;
        };
        for (keyword, arg) in keywords {
            let mut fail = |problem: String| errors.push(format!("{at}: {problem}"));
            match keyword.as_str() {
                // Annotations.
                "description" | "example" | "default" | "title" => {}
                "type" => {
                    let types: Vec<&str> = match arg {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                        _ => panic!("bad type {arg}"),
                    };
                    if !types.iter().any(|t| has_type(value, t)) {
                        fail(format!("{value} is not of type {arg}"));
                    }
                }
                "const" if value != arg => fail(format!("{value} is not {arg}")),
                "enum" if !arg.as_array().unwrap().contains(value) => {
                    fail(format!("{value} is not one of {arg}"))
                }
                "const" | "enum" => {}
                "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                    if let (Some(x), Some(bound)) = (value.as_f64(), arg.as_f64()) {
                        let ok = match keyword.as_str() {
                            "minimum" => x >= bound,
                            "maximum" => x <= bound,
                            "exclusiveMinimum" => x > bound,
                            _ => x < bound,
                        };
                        if !ok {
                            fail(format!("{value} violates {keyword} {arg}"));
                        }
                    }
                }
                "minLength" | "maxLength" => {
                    if let Some(text) = value.as_str() {
                        let (n, bound) = (text.chars().count() as u64, arg.as_u64().unwrap());
                        if (keyword == "minLength" && n < bound)
                            || (keyword == "maxLength" && n > bound)
                        {
                            fail(format!("{value} violates {keyword} {arg}"));
                        }
                    }
                }
                "minItems" | "maxItems" => {
                    if let Some(items) = value.as_array() {
                        let (n, bound) = (items.len() as u64, arg.as_u64().unwrap());
                        if (keyword == "minItems" && n < bound)
                            || (keyword == "maxItems" && n > bound)
                        {
                            fail(format!("{} items violate {keyword} {arg}", items.len()));
                        }
                    }
                }
                "pattern" => {
                    if let Some(text) = value.as_str() {
                        // No regex engine here: the patterns response
                        // schemas use are checked by hand.
                        let matches = match arg.as_str().unwrap() {
                            TIMESTAMP_PATTERN => is_printed_timestamp(text),
                            ETAG_PATTERN => is_etag(text),
                            other => panic!("{at}: a pattern the validator cannot check: {other}"),
                        };
                        if !matches {
                            fail(format!("{value} does not match {arg}"));
                        }
                    }
                }
                "format" => {
                    match (arg.as_str().unwrap(), value) {
                        ("date-time", Value::String(text)) => {
                            if chrono::DateTime::parse_from_rfc3339(text).is_err() {
                                fail(format!("{value} is not an RFC 3339 date-time"));
                            }
                        }
                        ("uint64", Value::Number(n)) => {
                            if !n.is_u64() {
                                fail(format!("{value} is not a uint64"));
                            }
                        }
                        ("date-time" | "uint64", _) => {} // other types: `type` decides
                        (format, _) => {
                            panic!("{at}: a format the validator does not know: {format}")
                        }
                    }
                }
                "required" => {
                    if let Some(object) = value.as_object() {
                        for name in arg.as_array().unwrap() {
                            if !object.contains_key(name.as_str().unwrap()) {
                                fail(format!("required property {name} is missing"));
                            }
                        }
                    }
                }
                "properties" => {
                    if let Some(object) = value.as_object() {
                        for (name, sub) in arg.as_object().unwrap() {
                            if let Some(item) = object.get(name) {
                                self.validate(sub, item, &format!("{at}.{name}"), errors);
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    if let Some(object) = value.as_object() {
                        let declared = schema["properties"].as_object();
                        for (name, item) in object {
                            if declared.is_some_and(|d| d.contains_key(name)) {
                                continue;
                            }
                            match arg {
                                Value::Bool(true) => {}
                                Value::Bool(false) => {
                                    errors.push(format!("{at}: undocumented property {name:?}"))
                                }
                                sub => self.validate(sub, item, &format!("{at}.{name}"), errors),
                            }
                        }
                    }
                }
                "items" => {
                    for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                        self.validate(arg, item, &format!("{at}[{i}]"), errors);
                    }
                }
                other => panic!("{at}: a keyword the validator does not know: {other}"),
            }
        }
    }
}

/// The pattern of `#/components/schemas/Timestamp`.
const TIMESTAMP_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$";

/// The pattern of the dashboard assets' `ETag`.
const ETAG_PATTERN: &str = r#"^"[0-9a-f]{8}-[0-9a-f]+"$"#;

/// `"<8 hex digits>-<hex digits>"`.
fn is_etag(text: &str) -> bool {
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.split_once('-'))
        .is_some_and(|(crc, len)| crc.len() == 8 && hex(crc) && hex(len))
}

/// `YYYY-MM-DDTHH:MM:SSZ`, digits where the pattern says so.
fn is_printed_timestamp(text: &str) -> bool {
    let shape = b"0000-00-00T00:00:00Z";
    text.len() == shape.len()
        && text.bytes().zip(shape).all(|(b, s)| match s {
            b'0' => b.is_ascii_digit(),
            _ => b == *s,
        })
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.is_u64() || value.is_i64(),
        other => panic!("unknown type {other}"),
    }
}

/// `count` 15-minute kWh readings ending just before 2018-08-24T00:00:00Z.
fn history(ship: u64, count: i64) -> String {
    let end = chrono::DateTime::parse_from_rfc3339(&at("00:00")).unwrap();
    let readings: Vec<(String, f64)> = (1..=count)
        .map(|i| {
            let t = end - chrono::Duration::minutes(15 * i);
            (
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                1.0 + (i % 96) as f64 / 10.0,
            )
        })
        .collect();
    post_body(ship, "kWh", &readings)
}

/// A body for `method path`: a valid one for `POST /data`, none else.
fn body_for(method: &str, path: &str) -> Vec<u8> {
    match (method, path) {
        ("post", "/data") => history(1, 4).into_bytes(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn every_answer_matches_the_served_openapi_description() {
    use Method as M;
    let server = start_server().await;
    let mut c = Checker::new(&server).await;
    let s = &server;

    // Nothing stored yet: open windows stand for nothing (null edges).
    let fleet = c.expect(s, M::GET, "/data/fleet", "", 200).await.json();
    assert!(fleet["start"].is_null() && fleet["data"] == json!([]));
    let top = c.expect(s, M::GET, "/topusers", "", 200).await.json();
    assert!(top["end"].is_null() && top["ships"] == json!([]));

    // POST /data.
    let example_1 = post_body(
        1,
        "kWh",
        &[
            (at("00:00"), 12.0),
            (at("01:00"), 26.0),
            (at("02:00"), 18.0),
        ],
    );
    c.expect(s, M::POST, "/data", example_1, 200).await;
    let example_2 = post_body(
        2,
        "kW",
        &[
            (at("00:00"), 22.0),
            (at("00:05"), 24.0),
            (at("00:10"), 23.0),
            (at("00:30"), 8.0),
        ],
    );
    c.expect(s, M::POST, "/data", example_2, 200).await;
    let with_interval = r#"{"spaceship_id":3,"units":"kwh","interval":"PT1H","data":[{"datetime":"2018-08-24T00-00-00Z","value":1}]}"#;
    c.expect(s, M::POST, "/data", with_interval, 200).await;
    c.expect(s, M::POST, "/data", history(5, 3 * 96), 200).await;
    for bad in [
        "",
        "not json",
        "[]",
        r#"{"units":"kW","data":[{"datetime":"2018-08-24T00:00:00Z","value":1}]}"#,
        r#"{"spaceship_id":-1,"units":"kW","data":[{"datetime":"2018-08-24T00:00:00Z","value":1}]}"#,
        r#"{"spaceship_id":1,"units":"W","data":[{"datetime":"2018-08-24T00:00:00Z","value":1}]}"#,
        r#"{"spaceship_id":1,"units":"kW","data":[]}"#,
        r#"{"spaceship_id":1,"units":"kW","data":[{"datetime":"2019-01-05T04:42:00ZZ","value":1}]}"#,
        r#"{"spaceship_id":1,"units":"kW","data":[{"datetime":"2018-08-24T00:00:00Z","value":-1}]}"#,
        r#"{"spaceship_id":1,"units":"kW","interval":"P1M","data":[{"datetime":"2018-08-24T00:00:00Z","value":1}]}"#,
        r#"{"spaceship_id":1,"units":"kW","data":[{"datetime":"2018-08-24T00:00:00Z","value":1},{"datetime":"2018-08-24T00:00:00.5Z","value":1}]}"#,
    ] {
        c.expect(s, M::POST, "/data", bad, 400).await;
    }
    // The ship again in the query, for a sharding proxy: equal, or 400.
    c.expect(s, M::POST, "/data?spaceship_id=3", with_interval, 200)
        .await;
    for query in ["/data?spaceship_id=4", "/data?spaceship_id=x"] {
        c.expect(s, M::POST, query, with_interval, 400).await;
    }

    // GET /data: complete and partial buckets, both spellings, errors.
    let ship_2 = c
        .expect(s, M::GET, "/data?spaceship_id=2", "", 200)
        .await
        .json();
    assert_eq!(
        ship_2["data"][1]["coverage"], 300,
        "a partial bucket: {ship_2}"
    );
    let query = "/data?spaceship_id=1&start=2018-08-24T00-00-00Z&end=2018-08-24T01:00:00%2B00:00";
    assert_eq!(c.expect(s, M::GET, query, "", 200).await.buckets().len(), 4);
    c.expect(
        s,
        M::GET,
        "/data?spaceship_id=1&start=2030-01-01T00:00:00Z",
        "",
        200,
    )
    .await;
    for bad in [
        "/data",
        "/data?spaceship_id=x",
        "/data?spaceship_id=18446744073709551616",
        "/data?spaceship_id=1&start=yesterday",
        "/data?spaceship_id=1&start=2018-08-25T00:00:00Z&end=2018-08-24T00:00:00Z",
        "/data?spaceship_id=1&spaceship_id=2",
    ] {
        c.expect(s, M::GET, bad, "", 400).await;
    }
    c.expect(s, M::GET, "/data?spaceship_id=77", "", 404).await;

    // GET /data/fleet.
    for query in [
        "/data/fleet",
        "/data/fleet?step=1h",
        "/data/fleet?step=1d&start=2018-08-24T00-00-00Z",
        "/data/fleet?start=2018-08-24T00:00:00Z&end=2018-08-24T01:00:00Z&step=15m",
        "/data/fleet?start=&end=",
    ] {
        let fleet = c.expect(s, M::GET, query, "", 200).await.json();
        assert!(!fleet["data"].as_array().unwrap().is_empty(), "{fleet}");
    }
    for bad in [
        "/data/fleet?step=5m",
        "/data/fleet?start=2018-08-25T00:00:00Z&end=2018-08-24T00:00:00Z",
        "/data/fleet?end=2018-02-30T00:00:00Z",
    ] {
        c.expect(s, M::GET, bad, "", 400).await;
    }

    // GET /topusers.
    for query in [
        "/topusers",
        "/topusers?count=1",
        "/topusers?count=1000&start=2018-08-24T00:00:00Z&end=2018-08-25T00:00:00Z",
    ] {
        let top = c.expect(s, M::GET, query, "", 200).await.json();
        assert!(!top["ships"].as_array().unwrap().is_empty(), "{top}");
    }
    for bad in [
        "/topusers?count=0",
        "/topusers?count=1001",
        "/topusers?count=three",
        "/topusers?start=2018-08-25T00:00:00Z&end=2018-08-24T00:00:00Z",
    ] {
        c.expect(s, M::GET, bad, "", 400).await;
    }

    // GET /forecast.
    let forecast = "/forecast?spaceship_id=5&start=2018-08-24T00:00:00Z&end=2018-08-25T00:00:00Z";
    let answer = c.expect(s, M::GET, forecast, "", 200).await.json();
    assert_eq!(answer["data"].as_array().unwrap().len(), 96);
    let stale = "/forecast?spaceship_id=5&start=2018-09-20T00:07:00Z&end=2018-09-20T00:08:00Z";
    c.expect(s, M::GET, stale, "", 200).await;
    let too_little = "/forecast?spaceship_id=1&start=2018-08-25T00:00:00Z&end=2018-08-26T00:00:00Z";
    c.expect(s, M::GET, too_little, "", 422).await;
    c.expect(
        s,
        M::GET,
        "/forecast?spaceship_id=77&start=2018-08-25T00:00:00Z&end=2018-08-26T00:00:00Z",
        "",
        404,
    )
    .await;
    for bad in [
        "/forecast?spaceship_id=5&end=2018-08-26T00:00:00Z",
        "/forecast?spaceship_id=5&start=2018-08-26T00:00:00Z",
        "/forecast?start=2018-08-25T00:00:00Z&end=2018-08-26T00:00:00Z",
        "/forecast?spaceship_id=5&start=2018-08-26T00:00:00Z&end=2018-08-26T00:00:00Z",
        "/forecast?spaceship_id=5&start=2018-08-01T00:00:00Z&end=2018-09-01T00:00:00Z",
    ] {
        c.expect(s, M::GET, bad, "", 400).await;
    }

    // The small endpoints, unknown paths and wrong methods.
    c.expect(s, M::GET, "/health", "", 200).await;
    c.expect(s, M::GET, "/openapi.json", "", 200).await;
    c.expect(s, M::GET, "/nowhere", "", 404).await;
    c.expect(s, M::DELETE, "/data", "", 405).await;
    c.expect(s, M::PUT, "/health", "", 405).await;
    c.expect(s, M::POST, "/openapi.json", "", 405).await;
    c.expect(s, M::PATCH, "/forecast", "", 405).await;
    let metrics = c.expect(s, M::GET, "/metrics", "", 200).await;
    assert!(metrics.text().contains("# TYPE"), "{}", metrics.text());
    c.expect(s, M::POST, "/metrics", "", 405).await;
    for asset in ["/", "/dashboard/app.js", "/dashboard/style.css"] {
        let reply = c.expect(s, M::GET, asset, "", 200).await;
        let etag = reply.headers["etag"].to_str().unwrap().to_owned();
        c.expect(s, M::DELETE, asset, "", 405).await;
        let mut client = s.raw().await;
        let request = format!("GET {asset} HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n");
        client.send(request.as_bytes()).await;
        let reply = client.read_response().await;
        assert_eq!(reply.status, 304, "GET {asset} with If-None-Match: {etag}");
        c.check(asset, &M::GET, &reply);
    }

    // GET /ships.
    for query in [
        "/ships",
        "/ships?prefix=",
        "/ships?prefix=1&page=1&per_page=1",
        "/ships?page=99",
    ] {
        c.expect(s, M::GET, query, "", 200).await;
    }
    for bad in [
        "/ships?prefix=x",
        "/ships?per_page=1001",
        "/ships?page=0",
        "/ships?prefix=123456789012345678901",
    ] {
        c.expect(s, M::GET, bad, "", 400).await;
    }

    // GET /alerts: ship 2 has a gap and a partial bucket.
    let alerts = c
        .expect(
            s,
            M::GET,
            "/alerts?start=2018-08-24T00:00:00Z&end=2018-08-25T00:00:00Z",
            "",
            200,
        )
        .await
        .json();
    assert!(!alerts["ships"].as_array().unwrap().is_empty(), "{alerts}");
    for query in [
        "/alerts",
        "/alerts?end=2018-08-25T00-00-00Z&after=1&per_page=1&limit=1",
        "/alerts?after=",
    ] {
        c.expect(s, M::GET, query, "", 200).await;
    }
    for bad in [
        "/alerts?start=2018-08-24T00:00:00Z&end=2018-09-24T00:00:00Z",
        "/alerts?start=2018-08-24T00:00:00Z&end=2018-08-24T00:00:00Z",
        "/alerts?limit=0",
        "/alerts?per_page=10001",
        "/alerts?after=-1",
    ] {
        c.expect(s, M::GET, bad, "", 400).await;
    }

    // 503: the engine shuts down under a running server.
    server.engine.close().unwrap();
    let reply = c.expect(s, M::POST, "/data", history(6, 4), 503).await;
    assert_eq!(reply.headers["retry-after"], "1");
    for query in [
        "/data?spaceship_id=1",
        "/data/fleet",
        "/topusers",
        "/forecast?spaceship_id=5&start=2018-08-24T00:00:00Z&end=2018-08-25T00:00:00Z",
        "/alerts",
        "/metrics",
    ] {
        // 200 (reads go on) or 503; either way, as documented.
        let reply = s.get(query).await;
        c.check(query.split('?').next().unwrap(), &M::GET, &reply);
    }

    // 507 and a degraded /health: the disk fills under a running server
    // (a simulated file system whose log writes fail with ENOSPC).
    let fs = powerd::storage::sim::SimFs::new(7);
    let engine = powerd::storage::Engine::open_with(
        std::sync::Arc::new(fs.clone()),
        std::path::Path::new("/data"),
        Default::default(),
    )
    .unwrap();
    let full = start_server_on(
        engine,
        ServerConfig::default(),
        TempDir::new("openapi-full"),
    )
    .await;
    c.expect(&full, M::POST, "/data", history(1, 4), 200).await;
    c.expect(&full, M::GET, "/health", "", 200).await;
    fs.set_fault(Some(Box::new(|op| {
        (op.kind == powerd::storage::sim::OpKind::Write).then(powerd::storage::sim::disk_full)
    })));
    let reply = c.expect(&full, M::POST, "/data", history(2, 4), 507).await;
    assert!(reply.text().contains("disk is full"), "{}", reply.text());
    let reply = c.expect(&full, M::GET, "/health", "", 503).await;
    assert_eq!(reply.json()["status"], "degraded");
    c.expect(&full, M::GET, "/data?spaceship_id=1", "", 200)
        .await;
    fs.set_fault(None);
    c.expect(&full, M::POST, "/data", history(2, 4), 200).await;
    c.expect(&full, M::GET, "/health", "", 200).await;
    full.stop().await;

    // 408 and 413 need other limits.
    let slow = start_server_with(ServerConfig {
        idle_timeout: Duration::from_millis(300),
        max_body_bytes: 1024,
        ..ServerConfig::default()
    })
    .await;
    let mut client = slow.raw().await;
    client
        .send(b"POST /data HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"spaceship_id\"")
        .await;
    let reply = client.read_response().await;
    assert_eq!(reply.status, 408);
    c.check("/data", &M::POST, &reply);
    c.expect(&slow, M::POST, "/data", vec![b' '; 2048], 413)
        .await;
    slow.stop().await;

    // 401 and 403, with tokens on. Every operation the spec secures needs
    // the role it names; the public ones answer without a token.
    let mut auth = AuthFile::default();
    let reader = auth.add("reader", WriteScope::None, true, false).unwrap();
    let ship_1 = auth
        .add("ship-1", WriteScope::parse("1").unwrap(), false, false)
        .unwrap();
    let dir = TempDir::new("openapi-auth");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("auth.json");
    auth.store(&file).unwrap();
    let engine = Engine::open(&dir.path().join("data"), Default::default()).unwrap();
    let tokens = ServerConfig {
        auth: Some(Arc::new(Tokens::load(&file).unwrap())),
        ..ServerConfig::default()
    };
    let guarded = start_server_on(engine, tokens, dir).await;
    let operations: Vec<(String, String, Value)> = c.spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .iter()
                .map(|(method, op)| (path.clone(), method.clone(), op["security"].clone()))
        })
        .collect();
    for (path, method, security) in operations {
        let m: Method = method.to_ascii_uppercase().parse().unwrap();
        let roles = &security[0]["bearerAuth"];
        if security == json!([]) {
            let reply = guarded.request_as(None, m.clone(), &path, Vec::new()).await;
            assert!(
                reply.status < 400,
                "{method} {path} is public: {}",
                reply.status
            );
            continue;
        }
        assert_eq!(security.as_array().unwrap().len(), 1, "{method} {path}");
        for token in [None, Some("pwd_0")] {
            c.expect_as(
                token,
                &guarded,
                m.clone(),
                &path,
                body_for(&method, &path),
                401,
            )
            .await;
        }
        // A token without the role: the ship's for reads and metrics, the
        // reader's for writes.
        let (lacking, allowed) = match roles[0].as_str().unwrap() {
            "write" => (&reader, &ship_1),
            "read" | "admin" => (&ship_1, &reader),
            role => panic!("{method} {path}: unknown role {role}"),
        };
        c.expect_as(
            Some(lacking),
            &guarded,
            m.clone(),
            &path,
            body_for(&method, &path),
            403,
        )
        .await;
        if roles[0] != "admin" {
            let reply = guarded
                .request_as(Some(allowed), m.clone(), &path, body_for(&method, &path))
                .await;
            assert!(
                reply.status != 401 && reply.status != 403,
                "{method} {path} with a {roles} token: {}",
                reply.text()
            );
        }
    }
    // A write token for another ship: 403 naming spaceship_id.
    let reply = c
        .expect_as(
            Some(&ship_1),
            &guarded,
            M::POST,
            "/data",
            history(2, 4),
            403,
        )
        .await;
    assert_eq!(reply.json()["field"], "spaceship_id");
    guarded.stop().await;

    // Every documented answer was seen (or is listed as out of reach).
    let mut missing = Vec::new();
    for (path, item) in c.spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in operation["responses"].as_object().unwrap().keys() {
                let status: u16 = status.parse().unwrap();
                let key = (path.clone(), method.clone(), status);
                let exempt = NOT_REACHABLE_HERE
                    .iter()
                    .any(|(p, m, s, _)| (*p, *m, *s) == (path.as_str(), method.as_str(), status));
                if !c.seen.contains(&key) && !exempt {
                    missing.push(format!("{method} {path} {status}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "documented but never seen: {missing:?}");
}

/// Every route of the endpoint table (`http::endpoints`) is in the spec.
#[test]
fn every_route_is_described() {
    let spec: Value = serde_json::from_str(include_str!("../src/http/openapi.json")).unwrap();
    let mut found = 0;
    for (method, path) in powerd::http::api_routes() {
        let method = method.to_ascii_lowercase();
        assert!(
            spec["paths"][path][&method].is_object(),
            "{method} {path} is routed but not in src/http/openapi.json"
        );
        found += 1;
    }
    // The dashboard's assets are routed by table.
    let dashboard = include_str!("../src/http/dashboard.rs");
    for piece in dashboard.split("path: \"").skip(1) {
        let path = piece.split('"').next().unwrap();
        assert!(
            spec["paths"][path]["get"].is_object(),
            "the dashboard asset {path} is not in src/http/openapi.json"
        );
        found += 1;
    }
    assert!(found >= 13, "found only {found} routes");
}
