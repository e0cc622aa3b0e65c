//! `GET /metrics`: the service's counters in the Prometheus text format
//! (version 0.0.4), and the registry the request wrapper in
//! [`super::server`] records every request into.
//!
//! - The request path only adds to atomics (relaxed; no locks): one counter
//!   per (route, method, status), one latency bucket, the latency sum, and
//!   the in-flight gauge. Labels come from fixed tables, so the number of
//!   series is bounded whatever clients send: the route is the endpoint's
//!   template (`/data`; `/dashboard/*` for the dashboard's assets), never
//!   the raw path; unknown paths are `other`, unusual methods `other`, unusual statuses their class
//!   (`4xx`).
//! - Storage numbers come from [`Engine::stats`] at scrape time; the engine
//!   keeps counters and knows nothing of this format. The data directory's
//!   size is a walk of the directory, done at most every
//!   [`DIR_SIZE_MAX_AGE`] off the async workers.
//! - Text is rendered by hand: a few dozen lines, no client library needed.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};

use super::cache::CacheStats;
use super::endpoints::{Scope, ENDPOINTS};
use super::error::{ApiError, HttpResponse};
use super::state::{blocking, AppState};
use crate::storage::{Engine, CHECKPOINT_DURATION_BOUNDS_MS};

/// The `route` label: the API's endpoints (`endpoints::ENDPOINTS`, in
/// order), then the dashboard's page and assets, then `other` for every
/// path nothing serves.
const ROUTE_COUNT: usize = ENDPOINTS.len() + EXTRA_ROUTES.len();
const EXTRA_ROUTES: [&str; 3] = ["/", "/dashboard/*", "other"];
const ROUTE_PAGE: usize = ENDPOINTS.len();
const ROUTE_ASSETS: usize = ENDPOINTS.len() + 1;
const ROUTE_OTHER: usize = ENDPOINTS.len() + 2;

fn route_name(index: usize) -> &'static str {
    match ENDPOINTS.get(index) {
        Some(endpoint) => endpoint.path,
        None => EXTRA_ROUTES[index - ENDPOINTS.len()],
    }
}

/// The `method` label: the standard methods, then `other`.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other",
];

/// Statuses counted under their own code (sorted); any other is counted
/// under its class, `1xx` to `5xx`, or `other` beyond 599.
const STATUSES: [u16; 30] = [
    200, 201, 204, 206, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 406, 408, 409, 411, 413,
    414, 415, 416, 422, 429, 431, 500, 501, 502, 503, 504,
];
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];
const STATUS_SLOTS: usize = STATUSES.len() + STATUS_CLASSES.len();

/// Upper bounds of the request latency histogram, in seconds, and the same
/// in nanoseconds for the request path.
const LATENCY_BOUNDS: [&str; 16] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "10",
];
const LATENCY_BOUNDS_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];
/// Latency slots per route: one per bound, and one above the last.
const LATENCY_SLOTS: usize = LATENCY_BOUNDS.len() + 1;

/// How long a measured data directory size is served before the directory
/// is walked again.
pub(crate) const DIR_SIZE_MAX_AGE: Duration = Duration::from_secs(5);

/// The `Content-Type` of the Prometheus text format.
const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `scope` label: what a request needed (`endpoints::Scope`), or
/// `none` when it matched no endpoint and method.
const SCOPES: [&str; 5] = ["public", "read", "write", "admin", "none"];

fn scope_slot(scope: Option<Scope>) -> usize {
    match scope {
        Some(Scope::Public) => 0,
        Some(Scope::Read) => 1,
        Some(Scope::Write) => 2,
        Some(Scope::Admin) => 3,
        None => 4,
    }
}

/// Why a request was refused for its token: the `reason` label of
/// `powerd_http_auth_refusals_total`. Never the token or its name: a fleet
/// may hold 10,000 ship tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No `Authorization` header (401).
    NoToken,
    /// An `Authorization` header that is not `Bearer <token>` (401).
    Malformed,
    /// A token the auth file does not hold (401).
    UnknownToken,
    /// A known token without the endpoint's scope (403).
    Scope,
    /// A write token for other ships than the one the body names (403).
    Ship,
}

impl Refusal {
    const ALL: [Refusal; 5] = [
        Refusal::NoToken,
        Refusal::Malformed,
        Refusal::UnknownToken,
        Refusal::Scope,
        Refusal::Ship,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::NoToken => "no_token",
            Refusal::Malformed => "malformed",
            Refusal::UnknownToken => "unknown_token",
            Refusal::Scope => "scope",
            Refusal::Ship => "ship",
        }
    }

    /// What the 401 says.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::NoToken => "this service needs a token: send `Authorization: Bearer <token>`",
            Refusal::Malformed => "the authorization header must be `Bearer <token>`",
            Refusal::UnknownToken => "the token is not known here (revoked, or mistyped)",
            Refusal::Scope | Refusal::Ship => "the token may not do this",
        }
    }
}

/// An endpoint, as the `route` label names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route(usize);

impl Route {
    /// The route `path` belongs to; never the path itself.
    pub(crate) fn of(path: &str) -> Route {
        let index = match super::endpoints::position(path) {
            Some(index) => index,
            None if path == "/" => ROUTE_PAGE,
            None if path.starts_with("/dashboard/") && super::dashboard::find(path).is_some() => {
                ROUTE_ASSETS
            }
            None => ROUTE_OTHER,
        };
        Route(index)
    }

    /// The route's label value: its template, or `other`.
    pub(crate) fn template(self) -> &'static str {
        route_name(self.0)
    }

    /// The API endpoint this route is, if it is one.
    pub(crate) fn endpoint(self) -> Option<&'static super::endpoints::Endpoint> {
        ENDPOINTS.get(self.0)
    }
}

fn method_slot(method: &Method) -> usize {
    let name = method.as_str();
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|&m| m == name)
        .unwrap_or(METHODS.len() - 1)
}

fn status_slot(status: u16) -> usize {
    match STATUSES.binary_search(&status) {
        Ok(slot) => slot,
        Err(_) => STATUSES.len() + status_class(status),
    }
}

fn status_label(slot: usize) -> String {
    match STATUSES.get(slot) {
        Some(code) => code.to_string(),
        None => STATUS_CLASSES[slot - STATUSES.len()].to_owned(),
    }
}

/// The status class (`2xx`, ...) a latency histogram is kept per: classes
/// rather than codes, to keep route × status × bucket series few.
fn status_class(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 6) - 1
}

fn latency_slot(elapsed: Duration) -> usize {
    let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    LATENCY_BOUNDS_NS
        .iter()
        .position(|&bound| ns <= bound)
        .unwrap_or(LATENCY_BOUNDS_NS.len())
}

/// The registry: one per server.
pub(crate) struct Metrics {
    /// Requests by route × method × status slot.
    requests: Box<[AtomicU64]>,
    /// Requests by route × status class × latency slot (not cumulative).
    latency: Box<[AtomicU64]>,
    /// Latency sums per route × status class, in nanoseconds.
    latency_ns: Box<[AtomicU64]>,
    in_flight: AtomicU64,
    readings_written: AtomicU64,
    buckets_written: AtomicU64,
    /// Requests by the scope they needed ([`SCOPES`]).
    scopes: [AtomicU64; SCOPES.len()],
    /// Token refusals by [`Refusal`] (in `Refusal::ALL` order).
    refusals: [AtomicU64; Refusal::ALL.len()],
    tls_failures: AtomicU64,
    /// When the registry (the server) started, seconds since the epoch.
    started_s: f64,
    dir_size: DirSizeCache,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn zeros(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        Metrics {
            requests: zeros(ROUTE_COUNT * METHODS.len() * STATUS_SLOTS),
            latency: zeros(ROUTE_COUNT * STATUS_CLASSES.len() * LATENCY_SLOTS),
            latency_ns: zeros(ROUTE_COUNT * STATUS_CLASSES.len()),
            in_flight: AtomicU64::new(0),
            readings_written: AtomicU64::new(0),
            buckets_written: AtomicU64::new(0),
            scopes: Default::default(),
            refusals: Default::default(),
            tls_failures: AtomicU64::new(0),
            started_s: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            dir_size: DirSizeCache::default(),
        }
    }

    /// Counts a request as in flight until the guard is dropped.
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(&self.in_flight)
    }

    /// Records one answered request.
    pub(crate) fn record(&self, route: Route, method: &Method, status: u16, elapsed: Duration) {
        let slot = (route.0 * METHODS.len() + method_slot(method)) * STATUS_SLOTS;
        self.requests[slot + status_slot(status)].fetch_add(1, Relaxed);
        let series = route.0 * STATUS_CLASSES.len() + status_class(status);
        self.latency[series * LATENCY_SLOTS + latency_slot(elapsed)].fetch_add(1, Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.latency_ns[series].fetch_add(ns, Relaxed);
    }

    /// Counts a request under the scope it needs (`None`: no endpoint).
    pub(crate) fn record_scope(&self, scope: Option<Scope>) {
        self.scopes[scope_slot(scope)].fetch_add(1, Relaxed);
    }

    /// Counts a request refused for its token.
    pub(crate) fn record_refusal(&self, refusal: Refusal) {
        self.refusals[refusal as usize].fetch_add(1, Relaxed);
    }

    /// Counts a connection closed for a failed or missing TLS handshake.
    pub(crate) fn record_tls_failure(&self) {
        self.tls_failures.fetch_add(1, Relaxed);
    }

    /// Records an acknowledged `POST /data`: its readings and the buckets
    /// they touched, as its answer reports them.
    pub(crate) fn record_write(&self, readings: u64, buckets: u64) {
        self.readings_written.fetch_add(readings, Relaxed);
        self.buckets_written.fetch_add(buckets, Relaxed);
    }

    /// The whole exposition. Blocking: it may walk the data directory.
    pub(crate) fn render(
        &self,
        engine: &Engine,
        cache: &CacheStats,
        lake: Option<&crate::lake::LakeStatus>,
    ) -> String {
        let mut out = String::with_capacity(8 << 10);
        self.render_http(&mut out);
        render_cache(&mut out, cache);
        if let Some(lake) = lake {
            render_lake(&mut out, lake);
        }
        render_storage(&mut out, engine, self.dir_size.get(engine.data_dir()));
        family(
            &mut out,
            "powerd_readings_written_total",
            "counter",
            "Readings of acknowledged POST /data requests.",
        );
        sample(
            &mut out,
            "powerd_readings_written_total",
            "",
            self.readings_written.load(Relaxed),
        );
        family(
            &mut out,
            "powerd_buckets_written_total",
            "counter",
            "15-minute buckets touched by acknowledged POST /data requests, as each answer \
             reports them (a bucket written twice counts twice).",
        );
        sample(
            &mut out,
            "powerd_buckets_written_total",
            "",
            self.buckets_written.load(Relaxed),
        );
        family(
            &mut out,
            "powerd_build_info",
            "gauge",
            "Always 1; the version label says which powerd runs.",
        );
        let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
        sample(&mut out, "powerd_build_info", &version, 1);
        family(
            &mut out,
            "powerd_start_time_seconds",
            "gauge",
            "When the HTTP server started, in seconds since the Unix epoch.",
        );
        sample(&mut out, "powerd_start_time_seconds", "", self.started_s);
        out
    }

    fn render_http(&self, out: &mut String) {
        family(
            out,
            "powerd_http_requests_total",
            "counter",
            "HTTP requests answered, by route template (`other`: no such endpoint), method \
             and status.",
        );
        for (route, route_name) in (0..ROUTE_COUNT).map(|r| (r, route_name(r))) {
            for (method, method_name) in METHODS.iter().enumerate() {
                let base = (route * METHODS.len() + method) * STATUS_SLOTS;
                for status in 0..STATUS_SLOTS {
                    let count = self.requests[base + status].load(Relaxed);
                    if count > 0 {
                        let labels = format!(
                            "route=\"{route_name}\",method=\"{method_name}\",status=\"{}\"",
                            status_label(status)
                        );
                        sample(out, "powerd_http_requests_total", &labels, count);
                    }
                }
            }
        }
        family(
            out,
            "powerd_http_request_duration_seconds",
            "histogram",
            "Time from a request's head arriving to its response being ready, by route \
             template and status class.",
        );
        let series = (0..ROUTE_COUNT)
            .map(route_name)
            .flat_map(|name| STATUS_CLASSES.iter().map(move |class| (name, class)));
        for (index, (name, class)) in series.enumerate() {
            let slots = &self.latency[index * LATENCY_SLOTS..(index + 1) * LATENCY_SLOTS];
            let counts: Vec<u64> = slots.iter().map(|c| c.load(Relaxed)).collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BOUNDS.iter().zip(&counts) {
                cumulative += count;
                let labels = format!("route=\"{name}\",status=\"{class}\",le=\"{bound}\"");
                sample(
                    out,
                    "powerd_http_request_duration_seconds_bucket",
                    &labels,
                    cumulative,
                );
            }
            // `+Inf` and `_count` from the same loads: always equal.
            let labels = format!("route=\"{name}\",status=\"{class}\",le=\"+Inf\"");
            sample(
                out,
                "powerd_http_request_duration_seconds_bucket",
                &labels,
                total,
            );
            let labels = format!("route=\"{name}\",status=\"{class}\"");
            let sum_s = self.latency_ns[index].load(Relaxed) as f64 / 1e9;
            sample(
                out,
                "powerd_http_request_duration_seconds_sum",
                &labels,
                sum_s,
            );
            sample(
                out,
                "powerd_http_request_duration_seconds_count",
                &labels,
                total,
            );
        }
        family(
            out,
            "powerd_http_requests_by_scope_total",
            "counter",
            "HTTP requests by the token scope their endpoint needs (public, read, write, \
             admin; none: no such endpoint or method), whether tokens are on or not.",
        );
        for (name, count) in SCOPES.iter().zip(&self.scopes) {
            let labels = format!("scope=\"{name}\"");
            sample(
                out,
                "powerd_http_requests_by_scope_total",
                &labels,
                count.load(Relaxed),
            );
        }
        family(
            out,
            "powerd_http_auth_refusals_total",
            "counter",
            "Requests refused for their token, by reason: no_token, malformed, unknown_token \
             (401); scope, ship (403).",
        );
        for refusal in Refusal::ALL {
            let labels = format!("reason=\"{}\"", refusal.label());
            let count = self.refusals[refusal as usize].load(Relaxed);
            sample(out, "powerd_http_auth_refusals_total", &labels, count);
        }
        family(
            out,
            "powerd_tls_handshake_failures_total",
            "counter",
            "Connections closed because their TLS handshake failed or did not finish within \
             the header timeout (plain HTTP to a TLS port, for one).",
        );
        sample(
            out,
            "powerd_tls_handshake_failures_total",
            "",
            self.tls_failures.load(Relaxed),
        );
        family(
            out,
            "powerd_http_requests_in_flight",
            "gauge",
            "Requests being handled right now (this scrape included).",
        );
        sample(
            out,
            "powerd_http_requests_in_flight",
            "",
            self.in_flight.load(Relaxed),
        );
    }
}

/// Keeps a request counted in `powerd_http_requests_in_flight`.
pub(crate) struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

fn render_storage(out: &mut String, engine: &Engine, dir_bytes: u64) {
    let stats = engine.stats();
    let counters: [(&str, &str, u64); 7] = [
        (
            "powerd_storage_writes_total",
            "Batches (one per acknowledged POST /data) committed to the log.",
            stats.writes,
        ),
        (
            "powerd_storage_spans_written_total",
            "Spans (constant-power stretches the readings became) committed to the log.",
            stats.spans_written,
        ),
        (
            "powerd_storage_log_written_bytes_total",
            "Bytes appended to the write-ahead log.",
            stats.log_bytes_written,
        ),
        (
            "powerd_storage_fsyncs_total",
            "Log syncs (fdatasync); one per group of concurrent commits.",
            stats.fsyncs,
        ),
        (
            "powerd_storage_checkpoints_total",
            "Checkpoints completed (the log folded into block files).",
            stats.checkpoints,
        ),
        (
            "powerd_storage_checkpoint_failures_total",
            "Checkpoints that failed; the log is kept and the next one retries.",
            stats.checkpoint_failures,
        ),
        (
            "powerd_storage_segments_abandoned_total",
            "Log segments given up after a failed write or sync (never retried on \
             the same data; writes go on in a new segment).",
            stats.segments_abandoned,
        ),
    ];
    for (name, help, value) in counters {
        family(out, name, "counter", help);
        sample(out, name, "", value);
    }
    let name = "powerd_storage_writes_refused_total";
    family(
        out,
        name,
        "counter",
        "Writes (POST /data) refused by storage, by reason: disk_full (507) or io_error (503).",
    );
    sample(
        out,
        name,
        "reason=\"disk_full\"",
        stats.writes_refused_disk_full,
    );
    sample(
        out,
        name,
        "reason=\"io_error\"",
        stats.writes_refused_io_error,
    );

    let name = "powerd_storage_checkpoint_duration_seconds";
    family(
        out,
        name,
        "histogram",
        "How long completed checkpoints took.",
    );
    let mut cumulative = 0;
    for (bound_ms, count) in CHECKPOINT_DURATION_BOUNDS_MS
        .iter()
        .zip(&stats.checkpoint_duration_counts)
    {
        cumulative += count;
        let labels = format!("le=\"{}\"", *bound_ms as f64 / 1e3);
        sample(
            out,
            "powerd_storage_checkpoint_duration_seconds_bucket",
            &labels,
            cumulative,
        );
    }
    let total: u64 = stats.checkpoint_duration_counts.iter().sum();
    let sum_s = stats.checkpoint_micros_total as f64 / 1e6;
    sample(
        out,
        "powerd_storage_checkpoint_duration_seconds_bucket",
        "le=\"+Inf\"",
        total,
    );
    sample(
        out,
        "powerd_storage_checkpoint_duration_seconds_sum",
        "",
        sum_s,
    );
    sample(
        out,
        "powerd_storage_checkpoint_duration_seconds_count",
        "",
        total,
    );

    let gauges: [(&str, &str, f64); 8] = [
        (
            "powerd_storage_refusing_writes",
            "1 while storage refuses writes (a full disk, failing I/O; GET /health \
             answers 503), 0 while it takes them.",
            if stats.refusing_writes.is_some() {
                1.0
            } else {
                0.0
            },
        ),
        (
            "powerd_storage_last_checkpoint_duration_seconds",
            "How long the last completed checkpoint took (0 before the first).",
            stats.last_checkpoint_ms as f64 / 1e3,
        ),
        (
            "powerd_ships_stored",
            "Ships with stored data.",
            stats.ships as f64,
        ),
        (
            "powerd_storage_block_files",
            "Sealed block files the manifest uses.",
            stats.block_files as f64,
        ),
        (
            "powerd_storage_chunks",
            "Per-(ship, partition) chunks in the block files.",
            stats.chunks as f64,
        ),
        (
            "powerd_storage_rollup_file_bytes",
            "Size of the rollup index file the last checkpoint wrote.",
            stats.rollup_file_bytes as f64,
        ),
        (
            "powerd_rollup_index_enabled",
            "1 when the rollup index answers fleet questions, 0 when they fall back to \
             scanning every ship.",
            if stats.rollup_index { 1.0 } else { 0.0 },
        ),
        (
            "powerd_data_dir_bytes",
            "Bytes of all files under the data directory (log, blocks, manifest, index), \
             measured at most every 5 s.",
            dir_bytes as f64,
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, "gauge", help);
        sample(out, name, "", value);
    }
}

/// `# HELP` and `# TYPE` of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // HELP text escapes only `\` and newlines; ours has neither.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line. Label values come from fixed tables: nothing to escape.
fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// The data directory's size, remeasured when older than
/// [`DIR_SIZE_MAX_AGE`].
#[derive(Default)]
struct DirSizeCache {
    measured: Mutex<Option<(Instant, u64)>>,
}

impl DirSizeCache {
    fn get(&self, dir: &Path) -> u64 {
        self.get_at(dir, Instant::now())
    }

    fn get_at(&self, dir: &Path, now: Instant) -> u64 {
        // Held while walking, so concurrent scrapes walk once.
        let mut measured = self.measured.lock().unwrap_or_else(|e| e.into_inner());
        match *measured {
            Some((at, bytes)) if now.saturating_duration_since(at) < DIR_SIZE_MAX_AGE => bytes,
            _ => {
                let bytes = dir_bytes(dir);
                *measured = Some((now, bytes));
                bytes
            }
        }
    }
}

/// Bytes of the regular files under `dir`, recursively. Files that vanish
/// mid-walk (a checkpoint removing segments) are skipped, not errors.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            total += dir_bytes(&entry.path());
        } else if kind.is_file() {
            total += entry.metadata().map_or(0, |m| m.len());
        }
    }
    total
}

/// The response cache's series.
fn render_cache(out: &mut String, cache: &CacheStats) {
    let series: [(&str, &str, &str, u64); 6] = [
        (
            "powerd_response_cache_hits_total",
            "counter",
            "GET /data answers served from the response cache.",
            cache.hits,
        ),
        (
            "powerd_response_cache_misses_total",
            "counter",
            "GET /data answers computed because the cache had none for the ship's current \
             data (a write to a ship makes its cached answers stale).",
            cache.misses,
        ),
        (
            "powerd_response_cache_evictions_total",
            "counter",
            "Cached answers dropped to stay within --response-cache-mib.",
            cache.evictions,
        ),
        (
            "powerd_response_cache_entries",
            "gauge",
            "Answers in the response cache.",
            cache.entries,
        ),
        (
            "powerd_response_cache_bytes",
            "gauge",
            "Bytes the response cache holds, bodies and bookkeeping.",
            cache.bytes,
        ),
        (
            "powerd_response_cache_budget_bytes",
            "gauge",
            "The response cache's budget (--response-cache-mib); 0: off.",
            cache.budget_bytes,
        ),
    ];
    for (name, kind, help, value) in series {
        family(out, name, kind, help);
        sample(out, name, "", value);
    }
}

/// The continuous lake export's series (`serve --lake`).
fn render_lake(out: &mut String, lake: &crate::lake::LakeStatus) {
    let counters: [(&str, &str, &AtomicU64); 6] = [
        (
            "powerd_lake_passes_total",
            "Export passes run (each looks at the days written since the previous one).",
            &lake.passes,
        ),
        (
            "powerd_lake_failures_total",
            "Export passes that failed (logged; the next pass tries again).",
            &lake.failures,
        ),
        (
            "powerd_lake_files_written_total",
            "Day files written to the lake (new or replaced).",
            &lake.files_written,
        ),
        (
            "powerd_lake_files_removed_total",
            "Day files removed from the lake (no data left that day).",
            &lake.files_removed,
        ),
        (
            "powerd_lake_rows_written_total",
            "Rows (buckets) in the day files written.",
            &lake.rows_written,
        ),
        (
            "powerd_lake_bytes_written_total",
            "Bytes of the day files written.",
            &lake.bytes_written,
        ),
    ];
    for (name, help, value) in counters {
        family(out, name, "counter", help);
        sample(out, name, "", value.load(Relaxed));
    }
    family(
        out,
        "powerd_lake_lag_seconds",
        "gauge",
        "How far the lake may be behind: seconds since the start of the last export pass \
         that succeeded (every write acknowledged before it is in the lake).",
    );
    sample(out, "powerd_lake_lag_seconds", "", lake.lag_seconds());
}

/// `GET /metrics`: renders off the async workers (it may walk the data
/// directory).
pub(crate) async fn get_metrics(state: &Arc<AppState>) -> Result<HttpResponse, ApiError> {
    let app = Arc::clone(state);
    let text = blocking("rendering the metrics", move || {
        Ok(app
            .metrics
            .render(&app.engine, &app.cache.stats(), app.config.lake.as_deref()))
    })
    .await?;
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates_never_raw_paths() {
        assert_eq!(Route::of("/data").template(), "/data");
        assert_eq!(Route::of("/data/fleet").template(), "/data/fleet");
        assert_eq!(Route::of("/").template(), "/");
        assert_eq!(Route::of("/dashboard/app.js").template(), "/dashboard/*");
        assert_eq!(Route::of("/dashboard/nope.js").template(), "other");
        assert_eq!(Route::of("/data/").template(), "other");
        assert_eq!(Route::of("/secret/../x").template(), "other");
        assert_eq!(Route::of("").template(), "other");
        for (index, template) in (0..ROUTE_COUNT).map(|r| (r, route_name(r))) {
            if !template.ends_with('*') {
                assert_eq!(Route::of(template), Route(index), "{template}");
            }
        }
    }

    #[test]
    fn statuses_and_methods_have_bounded_labels() {
        assert_eq!(status_label(status_slot(200)), "200");
        assert_eq!(status_label(status_slot(422)), "422");
        assert_eq!(status_label(status_slot(418)), "4xx");
        assert_eq!(status_label(status_slot(100)), "1xx");
        assert_eq!(status_label(status_slot(599)), "5xx");
        assert_eq!(status_label(status_slot(999)), "other");
        assert!(STATUSES.windows(2).all(|w| w[0] < w[1]), "sorted");
        assert_eq!(METHODS[method_slot(&Method::POST)], "POST");
        let odd = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(METHODS[method_slot(&odd)], "other");
    }

    #[test]
    fn latency_bounds_are_inclusive_and_agree() {
        for (text, ns) in LATENCY_BOUNDS.iter().zip(LATENCY_BOUNDS_NS) {
            let seconds: f64 = text.parse().unwrap();
            assert_eq!((seconds * 1e9).round() as u64, ns);
        }
        assert_eq!(latency_slot(Duration::ZERO), 0);
        assert_eq!(latency_slot(Duration::from_micros(100)), 0);
        assert_eq!(latency_slot(Duration::from_nanos(100_001)), 1);
        assert_eq!(latency_slot(Duration::from_secs(10)), 15);
        assert_eq!(latency_slot(Duration::from_secs(11)), 16);
    }

    /// What the request wrapper adds per request: two clock reads, the
    /// route lookup, the in-flight guard and `record`, on one thread and on
    /// two threads hitting the same counters (powerd runs two workers on
    /// this box). `cargo test --release --lib wrapper_cost -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn wrapper_cost() {
        const N: u32 = 2_000_000;
        let metrics = Metrics::new();
        let run = |metrics: &Metrics| {
            let started = Instant::now();
            for i in 0..N {
                let t = Instant::now();
                let _guard = metrics.in_flight();
                let route = Route::of(if i % 2 == 0 { "/data" } else { "/data/fleet" });
                metrics.record(route, &Method::GET, 200, t.elapsed());
            }
            started.elapsed().as_nanos() as f64 / f64::from(N)
        };
        println!("one thread: {:.1} ns per request", run(&metrics));
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| run(&metrics));
            let b = scope.spawn(|| run(&metrics));
            (a.join().unwrap(), b.join().unwrap())
        });
        println!("two threads, shared counters: {a:.1} / {b:.1} ns per request");
    }

    #[test]
    fn the_directory_size_is_cached_for_a_while() {
        let dir = std::env::temp_dir().join(format!("powerd-dirsize-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a"), [0u8; 100]).unwrap();
        std::fs::write(dir.join("sub/b"), [0u8; 23]).unwrap();
        let cache = DirSizeCache::default();
        let t0 = Instant::now();
        assert_eq!(cache.get_at(&dir, t0), 123);
        std::fs::write(dir.join("sub/c"), [0u8; 7]).unwrap();
        assert_eq!(
            cache.get_at(&dir, t0 + Duration::from_secs(1)),
            123,
            "cached"
        );
        assert_eq!(cache.get_at(&dir, t0 + DIR_SIZE_MAX_AGE), 130, "remeasured");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
