//! The endpoints: one `match (method, path)` and one function per endpoint.
//!
//! Each endpoint parses with [`crate::wire`] and [`params`](super::params),
//! asks [`crate::normalise`], [`crate::query`] or the engine, and renders
//! JSON. Any error goes back through [`error::response`], the one place
//! statuses are decided.

use std::sync::Arc;

use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, StatusCode};
use tokio::sync::oneshot;

use super::body;
use super::cache;
use super::endpoints::{Handler, Scope};
use super::error::{self, ApiError, HttpResponse};
use super::metrics::{Refusal, Route};
use super::params::{ceil_bucket, window_order_error, Query};
use super::state::{blocking, AppState};
use crate::auth::{AuthFile, Token, WriteScope};
use crate::model::{bucket_of, NanoKwh, Reading, ShipId, Span, BUCKET_SECONDS};
use crate::normalise::{self, NormaliseError};
use crate::storage::{Engine, StorageError};
use crate::wire::{self, FieldError};

/// The first and the end (exclusive) bucket of an unbounded query. Chosen
/// so that `bucket * 900` cannot overflow an `i64`.
const FIRST_BUCKET: i64 = i64::MIN / BUCKET_SECONDS;
const END_BUCKET: i64 = i64::MAX / BUCKET_SECONDS;

/// Routes one request by [`super::endpoints::ENDPOINTS`] (and the dashboard's assets).
/// With tokens (`--auth-file`), authentication comes first and from the
/// headers alone: no body is read, and unknown paths and wrong methods get
/// 401 too, before a scope is checked. Never fails: errors become JSON
/// error responses.
/// `route`: what the request's path was already found to be (for the
/// metrics).
pub(crate) async fn handle(
    request: Request<Incoming>,
    state: Arc<AppState>,
    route: Route,
) -> HttpResponse {
    let mut token_name = None;
    let result = match admit(&request, &state, route, &mut token_name) {
        Ok(Admitted::Asset(asset)) => Ok(super::dashboard::serve(&request, asset)),
        Ok(Admitted::Endpoint { handler, writes }) => {
            dispatch(handler, request, &state, writes.as_ref()).await
        }
        Err(e) => Err(e),
    };
    let mut response = result.unwrap_or_else(error::response);
    if let Some(name) = token_name {
        response.extensions_mut().insert(TokenName(name));
    }
    response
}

/// What a request was let through to.
enum Admitted {
    Asset(&'static super::dashboard::Asset),
    Endpoint {
        handler: Handler,
        /// The ships the token may write; `None`: tokens are off.
        writes: Option<WriteScope>,
    },
}

/// Finds what the request asks for, and checks its token when tokens are
/// on: authentication first (401 whatever the path or method), then the
/// path and method (404, 405), then the scope (403). Counts the request
/// under the scope it needs, and any refusal under its reason.
fn admit(
    request: &Request<Incoming>,
    state: &AppState,
    route: Route,
    token_name: &mut Option<String>,
) -> Result<Admitted, ApiError> {
    let method = request.method();
    let endpoint = route.endpoint();
    let asset = match endpoint {
        Some(_) => None,
        None => super::dashboard::find(request.uri().path()),
    };
    let route = endpoint.and_then(|e| e.methods.iter().find(|(m, _, _)| m == method));
    let scope = match (asset, route) {
        (Some(_), _) if method == Method::GET => Some(Scope::Public),
        (_, Some(&(_, _, scope))) => Some(scope),
        _ => None,
    };
    state.metrics.record_scope(scope);

    let auth = match (&state.config.auth, scope) {
        (Some(tokens), scope) if scope != Some(Scope::Public) => Some(tokens.current()),
        _ => None,
    };
    let token = match &auth {
        None => None,
        Some(auth) => match authenticate(request, auth) {
            Ok(token) => {
                *token_name = Some(token.name.clone());
                Some(token)
            }
            Err(refusal) => {
                state.metrics.record_refusal(refusal);
                return Err(ApiError::Unauthorized(refusal.message()));
            }
        },
    };
    if let Some(asset) = asset {
        return match method == Method::GET {
            true => Ok(Admitted::Asset(asset)),
            false => Err(ApiError::MethodNotAllowed { allow: "GET" }),
        };
    }
    let endpoint = endpoint.ok_or(ApiError::UnknownPath)?;
    let &(_, handler, scope) = route.ok_or(ApiError::MethodNotAllowed {
        allow: endpoint.allow,
    })?;
    if let Some(token) = token {
        permitted(token, scope).inspect_err(|_| state.metrics.record_refusal(Refusal::Scope))?;
    }
    Ok(Admitted::Endpoint {
        handler,
        writes: token.map(|t| t.write.clone()),
    })
}

/// The name of the token a request was answered for, for the request log
/// (never the token itself).
#[derive(Clone, Debug)]
pub(crate) struct TokenName(pub(crate) String);

/// The token a request carries in `Authorization: Bearer <token>`.
fn authenticate<'a>(request: &Request<Incoming>, auth: &'a AuthFile) -> Result<&'a Token, Refusal> {
    let header = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .ok_or(Refusal::NoToken)?;
    let secret = header
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, secret)| secret.trim())
        .ok_or(Refusal::Malformed)?;
    auth.find(secret).ok_or(Refusal::UnknownToken)
}

/// Whether `token` allows `scope`.
fn permitted(token: &Token, scope: Scope) -> Result<(), ApiError> {
    let (allowed, what) = match scope {
        Scope::Public => (true, ""),
        Scope::Read => (token.read, "read"),
        Scope::Write => (token.write != WriteScope::None, "write"),
        Scope::Admin => (token.admin, "read the metrics"),
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            field: None,
            message: format!("token {:?} may not {what}; nothing was done", token.name),
        })
    }
}

/// `writes`: the ships the request's token may write (`None`: tokens off).
async fn dispatch(
    handler: Handler,
    request: Request<Incoming>,
    state: &Arc<AppState>,
    writes: Option<&WriteScope>,
) -> Result<HttpResponse, ApiError> {
    match handler {
        Handler::Health => Ok(health(state)),
        Handler::OpenApi => Ok(openapi()),
        Handler::GetData => get_data(&request, state),
        Handler::PostData => post_data(request, state, writes).await,
        Handler::Fleet => get_fleet(&request, state).await,
        Handler::TopUsers => get_top_users(&request, state).await,
        Handler::Forecast => super::forecast::get_forecast(&request, state).await,
        Handler::Metrics => super::metrics::get_metrics(state).await,
        Handler::Ships => super::ships::get_ships(&request, state).await,
        Handler::Alerts => super::alerts::get_alerts(&request, state).await,
    }
}

/// `GET /health`: 200 `{"status":"ok"}` while the service takes writes;
/// 503 `{"status":"degraded","reason":...}` while storage refuses them (a
/// full disk, failing I/O), though reads are still served.
fn health(state: &AppState) -> HttpResponse {
    match state.engine.refusing_writes() {
        None => error::json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec()),
        Some(reason) => {
            let body = serde_json::json!({ "status": "degraded", "reason": reason });
            let mut response = error::json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::to_vec(&body).expect("a JSON value always serialises"),
            );
            response.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from_static(error::STORAGE_RETRY_AFTER_S),
            );
            response
        }
    }
}

/// `GET /openapi.json`: the OpenAPI 3.1 description of every endpoint,
/// compiled in; `tests/openapi.rs` holds the server's answers to it.
fn openapi() -> HttpResponse {
    error::json(
        StatusCode::OK,
        include_str!("openapi.json").as_bytes().to_vec(),
    )
}

/// Most buckets one `POST /data` may touch. Readings can be spaced up to 7
/// days apart, so a body within the size limit could otherwise make one
/// write touch hundreds of millions of buckets, and the rollup index work
/// (and memory) that goes with them.
const MAX_BUCKETS_PER_POST: u64 = 1_000_000;

/// `POST /data[?spaceship_id=]`: parse, normalise, write, and answer once
/// the engine says the write is durable. Nothing is written unless every
/// reading is valid, and a `spaceship_id` in the query is the body's.
async fn post_data(
    request: Request<Incoming>,
    state: &AppState,
    writes: Option<&WriteScope>,
) -> Result<HttpResponse, ApiError> {
    // A sharding proxy routes a write by this, not by the body it does not
    // read (deploy/nginx-shards.conf): the two must name the same ship, or
    // the ship would be stored on a node that does not own it.
    let routed_as = Query::parse(request.uri().query()).optional_ship_id("spaceship_id")?;
    let bytes = body::read_limited(
        request,
        state.config.max_body_bytes,
        state.config.idle_timeout,
    )
    .await?;
    let post = wire::parse_post_body(&bytes)?;
    drop(bytes);
    if let Some(routed) = routed_as.filter(|&ship| ship != post.spaceship_id) {
        return Err(FieldError::new(
            "spaceship_id",
            format!(
                "the query names ship {routed} but the body ship {}: they must be the same \
                 (a proxy routes the write by the query); nothing was written",
                post.spaceship_id
            ),
        )
        .into());
    }
    if writes.is_some_and(|scope| !scope.allows(post.spaceship_id)) {
        state.metrics.record_refusal(Refusal::Ship);
        return Err(ApiError::Forbidden {
            field: Some("spaceship_id"),
            message: format!(
                "this token may not write ship {}; nothing was written",
                post.spaceship_id
            ),
        });
    }
    let spans = normalise::normalise(post.units, &post.readings, post.interval_s)
        .map_err(|e| normalise_error(e, &post.readings))?;
    let reading_count = post.readings.len();
    let bucket_count = touched_bucket_count(&spans);
    if bucket_count > MAX_BUCKETS_PER_POST {
        return Err(FieldError::new(
            "data",
            format!(
                "covers {bucket_count} fifteen-minute buckets; one request may cover at most \
                 {MAX_BUCKETS_PER_POST} (about 28 years): split it"
            ),
        )
        .into());
    }

    let (done_tx, done_rx) = oneshot::channel();
    state.engine.submit(
        post.spaceship_id,
        spans,
        // The receiver is gone only if the client hung up; the write still
        // happens, nobody is left to tell.
        Box::new(move |result| drop(done_tx.send(result))),
    );
    // A dropped callback means the engine shut down without running it.
    done_rx.await.unwrap_or(Err(StorageError::Closed))?;
    state
        .metrics
        .record_write(reading_count as u64, bucket_count);

    let body = format!(
        r#"{{"spaceship_id":{},"readings":{reading_count},"buckets":{bucket_count}}}"#,
        post.spaceship_id
    );
    Ok(error::json(StatusCode::OK, body.into_bytes()))
}

/// Names the reading a normaliser error is about.
fn normalise_error(error: NormaliseError, readings: &[Reading]) -> ApiError {
    match error {
        NormaliseError::DuplicateTimestamp { first, second } => {
            let mut when = Vec::new();
            if let Some(reading) = readings.iter().find(|r| r.index == second) {
                wire::write_timestamp(&mut when, reading.time_s);
            }
            let when = String::from_utf8_lossy(&when);
            FieldError::new(
                format!("data[{second}].datetime"),
                format!("{when} is the same instant as data[{first}].datetime"),
            )
            .into()
        }
        NormaliseError::Empty => {
            FieldError::new("data", "must contain at least one reading").into()
        }
    }
}

/// How many distinct buckets the sorted, disjoint `spans` touch.
fn touched_bucket_count(spans: &[Span]) -> u64 {
    let mut count = 0u64;
    let mut last_counted: Option<i64> = None;
    for span in spans.iter().filter(|span| span.end_s > span.start_s) {
        let first = bucket_of(span.start_s);
        let last = bucket_of(span.end_s - 1);
        // Neighbouring spans may share a bucket; count it once.
        let from = match last_counted {
            Some(counted) if counted >= first => counted + 1,
            _ => first,
        };
        if last >= from {
            count += (last - from + 1) as u64;
            last_counted = Some(last);
        }
    }
    count
}

/// `GET /data?spaceship_id=&start=&end=`: the ship's stored buckets whose
/// start lies in `[start, end)`, ascending. A partial bucket carries
/// `coverage`, its covered seconds (below 900); a complete one has exactly
/// SPEC.md's `{"datetime", "value"}` shape.
fn get_data(request: &Request<Incoming>, state: &AppState) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(request.uri().query());
    let ship = query.ship_id("spaceship_id")?;
    let start_s = query.timestamp("start")?;
    let end_s = query.timestamp("end")?;
    let (first_bucket, end_bucket) = bucket_window(start_s, end_s)?;
    let key = cache::Key {
        ship,
        first_bucket,
        end_bucket,
    };
    let version = state
        .engine
        .ship_version(ship)
        .ok_or(ApiError::UnknownShip(ship))?;
    if let Some(body) = state.cache.get(&key, version) {
        return Ok(error::json(StatusCode::OK, body));
    }
    let (version, buckets) =
        crate::query::ship_buckets_versioned(&state.engine, ship, first_bucket, end_bucket)?
            .ok_or(ApiError::UnknownShip(ship))?;
    let body = Bytes::from(ship_data_body(ship, &buckets));
    state.cache.insert(key, version, body.clone());
    Ok(error::json(StatusCode::OK, body))
}

/// The body of a `GET /data` answer.
fn ship_data_body(ship: ShipId, buckets: &[crate::model::Bucket]) -> Vec<u8> {
    // Built by hand: a year is 35,040 buckets, and this is the hot path.
    const BUCKET_JSON_BYTES: usize = 72;
    // Room for one more stack-assembled item, appended whole then trimmed.
    let mut body = Vec::with_capacity(64 + buckets.len() * BUCKET_JSON_BYTES + 128);
    body.extend_from_slice(br#"{"spaceship_id":"#);
    body.extend_from_slice(itoa::Buffer::new().format(ship).as_bytes());
    body.extend_from_slice(br#","units":"kWh","data":["#);
    let mut digits = itoa::Buffer::new();
    let mut timestamps = wire::TimestampWriter::default();
    let data_start = body.len();
    for bucket in buckets {
        let start_s = bucket.index * BUCKET_SECONDS;
        let Some(stamp) = timestamps.stamp(start_s) else {
            write_bucket_slowly(&mut body, bucket);
            continue;
        };
        // The whole item is assembled on the stack and appended with one
        // fixed-size copy, then trimmed: far cheaper than a dozen appends.
        const DATETIME: &[u8] = br#",{"datetime":""#;
        const VALUE: &[u8] = br#"","value":"#;
        const COVERAGE: &[u8] = br#","coverage":"#;
        let mut item = [0u8; 128];
        let mut len = DATETIME.len();
        item[..len].copy_from_slice(DATETIME);
        item[len..len + 20].copy_from_slice(&stamp);
        len += 20;
        item[len..len + VALUE.len()].copy_from_slice(VALUE);
        len += VALUE.len();
        let number: &mut [u8; wire::NANOKWH_MAX_LEN] = (&mut item
            [len..len + wire::NANOKWH_MAX_LEN])
            .try_into()
            .expect("the item has room for the longest number");
        len += wire::format_nanokwh(number, bucket.energy);
        // SPEC.md's shape for complete buckets; partial ones say how much
        // of the bucket is covered.
        if bucket.coverage_s != 900 {
            item[len..len + COVERAGE.len()].copy_from_slice(COVERAGE);
            len += COVERAGE.len();
            let coverage = digits.format(bucket.coverage_s).as_bytes();
            item[len..len + coverage.len()].copy_from_slice(coverage);
            len += coverage.len();
        }
        item[len] = b'}';
        len += 1;
        let at = body.len();
        body.extend_from_slice(&item);
        body.truncate(at + len);
    }
    // Every item was written with a leading comma; the first must not have one.
    if !buckets.is_empty() {
        body.remove(data_start);
    }
    body.extend_from_slice(b"]}");
    body
}

/// Most ships `GET /topusers` lists.
const MAX_TOP_USERS: usize = 1000;

/// `GET /data/fleet?start=&end=&step=`: the fleet's energy per interval
/// (`step` 15m, 1h or 1d; default 15m), with the number of ships with data
/// and their mean. Fleet-wide work runs off the async workers.
async fn get_fleet(
    request: &Request<Incoming>,
    state: &Arc<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(request.uri().query());
    let (start_s, end_s) = (query.timestamp("start")?, query.timestamp("end")?);
    let step = query.step("step")?.unwrap_or(1);
    let (first_bucket, end_bucket) = bucket_window(start_s, end_s)?;
    let (intervals, stored) = fleet_question(state, start_s, end_s, move |engine| {
        crate::query::fleet(engine, first_bucket, end_bucket, step)
    })
    .await?;
    let mut body = Vec::with_capacity(96 + intervals.len() * 96);
    body.extend_from_slice(br#"{"units":"kWh","start":"#);
    write_window_edge(&mut body, start_s, stored.map(|(first, _)| first));
    body.extend_from_slice(br#","end":"#);
    write_window_edge(&mut body, end_s, stored.map(|(_, end)| end));
    body.extend_from_slice(br#","step":""#);
    body.extend_from_slice(match step {
        crate::model::BUCKETS_PER_HOUR => b"1h",
        crate::model::BUCKETS_PER_DAY => b"1d",
        _ => b"15m",
    });
    body.extend_from_slice(br#"","data":["#);
    for (position, interval) in intervals.iter().enumerate() {
        if position > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"datetime":""#);
        wire::write_timestamp(&mut body, interval.first_bucket * BUCKET_SECONDS);
        body.extend_from_slice(br#"","sum":"#);
        wire::write_nanokwh(&mut body, interval.sum);
        body.extend_from_slice(br#","avg":"#);
        // Rounded to the nearest nano-kWh, half up (energies are >= 0).
        let ships = NanoKwh::from(interval.ships.max(1));
        wire::write_nanokwh(&mut body, (2 * interval.sum + ships) / (2 * ships));
        body.extend_from_slice(br#","ships":"#);
        body.extend_from_slice(itoa::Buffer::new().format(interval.ships).as_bytes());
        body.push(b'}');
    }
    body.extend_from_slice(b"]}");
    Ok(error::json(StatusCode::OK, body))
}

/// `GET /topusers?count=&start=&end=`: the `count` ships (default 3, at most
/// 1000) with the most energy in the window (default: all stored time),
/// descending, ties by id.
async fn get_top_users(
    request: &Request<Incoming>,
    state: &Arc<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(request.uri().query());
    let count = query.count("count", MAX_TOP_USERS)?.unwrap_or(3);
    let (start_s, end_s) = (query.timestamp("start")?, query.timestamp("end")?);
    let (first_bucket, end_bucket) = bucket_window(start_s, end_s)?;
    let (ships, stored) = fleet_question(state, start_s, end_s, move |engine| {
        crate::query::top_users(engine, first_bucket, end_bucket, count)
    })
    .await?;
    let mut body = Vec::with_capacity(64 + ships.len() * 48);
    body.extend_from_slice(br#"{"start":"#);
    write_window_edge(&mut body, start_s, stored.map(|(first, _)| first));
    body.extend_from_slice(br#","end":"#);
    write_window_edge(&mut body, end_s, stored.map(|(_, end)| end));
    body.extend_from_slice(br#","ships":["#);
    for (position, (ship, consumption)) in ships.iter().enumerate() {
        if position > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"spaceship_id":"#);
        body.extend_from_slice(itoa::Buffer::new().format(*ship).as_bytes());
        body.extend_from_slice(br#","consumption":"#);
        wire::write_nanokwh(&mut body, *consumption);
        body.push(b'}');
    }
    body.extend_from_slice(b"]}");
    Ok(error::json(StatusCode::OK, body))
}

/// Runs a fleet-wide question off the async workers, and, when the window
/// is open on either side, reads the stored range it stood for.
async fn fleet_question<T: Send + 'static>(
    state: &Arc<AppState>,
    start_s: Option<i64>,
    end_s: Option<i64>,
    question: impl FnOnce(&Engine) -> Result<T, StorageError> + Send + 'static,
) -> Result<(T, Option<(i64, i64)>), ApiError> {
    let app = Arc::clone(state);
    blocking("a fleet question", move || {
        let answer = question(&app.engine)?;
        let stored = match (start_s, end_s) {
            (Some(_), Some(_)) => None,
            _ => crate::query::stored_range(&app.engine)?,
        };
        Ok((answer, stored))
    })
    .await
}

/// A window edge as asked for, or, when the request left it open, the
/// edge of the stored data (bucket `stored`); `null` when nothing is stored.
fn write_window_edge(body: &mut Vec<u8>, asked_s: Option<i64>, stored: Option<i64>) {
    wire::write_quoted_timestamp(
        body,
        asked_s.or(stored.map(|bucket| bucket * BUCKET_SECONDS)),
    );
}

/// One `data` item of [`get_data`] with plain appends, for bucket times
/// whose year needs more than four digits.
fn write_bucket_slowly(body: &mut Vec<u8>, bucket: &crate::model::Bucket) {
    body.extend_from_slice(br#",{"datetime":""#);
    wire::write_timestamp(body, bucket.index * BUCKET_SECONDS);
    body.extend_from_slice(br#"","value":"#);
    wire::write_nanokwh(body, bucket.energy);
    if bucket.coverage_s != 900 {
        body.extend_from_slice(br#","coverage":"#);
        body.extend_from_slice(itoa::Buffer::new().format(bucket.coverage_s).as_bytes());
    }
    body.push(b'}');
}

/// The buckets whose start `t` satisfies `start <= t < end`: from
/// `ceil(start / 900)` to `ceil(end / 900)` exclusive. Missing bounds are
/// the beginning and the end of time.
fn bucket_window(start_s: Option<i64>, end_s: Option<i64>) -> Result<(i64, i64), ApiError> {
    if let (Some(start_s), Some(end_s)) = (start_s, end_s) {
        if start_s > end_s {
            return Err(window_order_error("is after end", start_s, ">", end_s).into());
        }
    }
    let first = start_s.map_or(FIRST_BUCKET, ceil_bucket);
    let end = end_s.map_or(END_BUCKET, ceil_bucket);
    Ok((first, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start_s: i64, end_s: i64) -> Span {
        Span {
            start_s,
            end_s,
            power_kw: 1.0,
        }
    }

    #[test]
    fn ceil_bucket_rounds_up_also_before_the_epoch() {
        assert_eq!(ceil_bucket(0), 0);
        assert_eq!(ceil_bucket(1), 1);
        assert_eq!(ceil_bucket(900), 1);
        assert_eq!(ceil_bucket(901), 2);
        assert_eq!(ceil_bucket(-1), 0);
        assert_eq!(ceil_bucket(-900), -1);
        assert_eq!(ceil_bucket(-901), -1);
        assert_eq!(ceil_bucket(i64::MAX), END_BUCKET);
        assert_eq!(ceil_bucket(i64::MIN), FIRST_BUCKET);
    }

    #[test]
    fn unbounded_windows_do_not_overflow() {
        let (first, end) = bucket_window(None, None).unwrap();
        assert!(first.checked_mul(BUCKET_SECONDS).is_some());
        assert!(end.checked_mul(BUCKET_SECONDS).is_some());
        assert!(bucket_window(Some(901), Some(900)).is_err());
        assert_eq!(bucket_window(Some(900), Some(900)).unwrap(), (1, 1));
    }

    #[test]
    fn touched_buckets_count_shared_buckets_once() {
        assert_eq!(touched_bucket_count(&[]), 0);
        assert_eq!(touched_bucket_count(&[span(0, 3600)]), 4);
        // 00:00-00:10 and 00:10-00:20 share bucket 0.
        assert_eq!(touched_bucket_count(&[span(0, 600), span(600, 1200)]), 2);
        // A gap: 00:00-00:15 and 01:00-01:05.
        assert_eq!(touched_bucket_count(&[span(0, 900), span(3600, 3900)]), 2);
        assert_eq!(touched_bucket_count(&[span(-900, -1)]), 1);
    }
}
