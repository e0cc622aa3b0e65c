//! `GET /alerts?start=&end=&after=&per_page=&limit=`: data-quality alerts
//! (missing and partial intervals, outliers) per ship, from
//! [`crate::query::alerts`], one page of ships at a time.
//!
//! - The window holds the buckets starting in `[start, end)`, at most
//!   [`ALERT_WINDOW_MAX_BUCKETS`] (7 days). Without `start` and `end`: the
//!   last day of the fleet's stored data; with one of them, one day from or
//!   to it.
//! - Ships are examined in ascending id after `after`, `per_page` of them
//!   (default 1000, at most 10,000), stopping once `limit` ships with
//!   findings are listed (default 100, at most 1000); `next_after` is the
//!   cursor for the next page, `null` after the last. Each examined ship
//!   costs one read of the window plus the 7 days before it, so a page's
//!   cost is bounded whatever the fleet's size.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::error::{self, ApiError, HttpResponse};
use super::params::{ceil_bucket, window_order_error, Query};
use super::state::{blocking, AppState};
use crate::model::BUCKETS_PER_DAY as DAY_BUCKETS;
use crate::model::BUCKET_SECONDS;
use crate::query::{AlertPage, BucketRun, ALERT_WINDOW_MAX_BUCKETS};
use crate::wire::{self, FieldError};

/// Most ships one page examines.
pub(crate) const MAX_PER_PAGE: usize = 10_000;
const DEFAULT_PER_PAGE: usize = 1000;
/// Most ships with findings one page lists.
pub(crate) const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;

pub(crate) async fn get_alerts(
    request: &Request<Incoming>,
    state: &Arc<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(request.uri().query());
    let start_s = query.timestamp("start")?;
    let end_s = query.timestamp("end")?;
    let after = match query.text("after")? {
        Some(_) => Some(query.ship_id("after")?),
        None => None,
    };
    let per_page = query
        .count("per_page", MAX_PER_PAGE)?
        .unwrap_or(DEFAULT_PER_PAGE);
    let limit = query.count("limit", MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let asked = window(start_s, end_s)?;
    let app = Arc::clone(state);
    let (window, page) = blocking("an alerts query", move || {
        let window = match asked {
            Some(window) => Some(window),
            None => {
                crate::query::stored_range(&app.engine)?.map(|(_, end)| (end - DAY_BUCKETS, end))
            }
        };
        let page = match window {
            Some((first, end)) => {
                crate::query::alerts(&app.engine, first, end, after, per_page, limit)?
            }
            None => AlertPage::default(),
        };
        Ok((window, page))
    })
    .await?;
    Ok(error::json(StatusCode::OK, render(window, &page)))
}

/// The window's first and end (exclusive) bucket: those starting in
/// `[start, end)`. `None` when neither edge is given (the caller takes the
/// last day of stored data); one edge alone gets a day from or to it.
fn window(start_s: Option<i64>, end_s: Option<i64>) -> Result<Option<(i64, i64)>, FieldError> {
    let (first, end) = match (start_s, end_s) {
        (None, None) => return Ok(None),
        (Some(start_s), None) => (ceil_bucket(start_s), ceil_bucket(start_s) + DAY_BUCKETS),
        (None, Some(end_s)) => (ceil_bucket(end_s) - DAY_BUCKETS, ceil_bucket(end_s)),
        (Some(start_s), Some(end_s)) => {
            if start_s >= end_s {
                return Err(window_order_error(
                    "must be before end",
                    start_s,
                    ">=",
                    end_s,
                ));
            }
            (ceil_bucket(start_s), ceil_bucket(end_s))
        }
    };
    if end - first > ALERT_WINDOW_MAX_BUCKETS {
        return Err(FieldError::new(
            "end",
            format!(
                "the window holds {} 15-minute buckets; alerts cover at most {} (7 days)",
                end - first,
                ALERT_WINDOW_MAX_BUCKETS
            ),
        ));
    }
    Ok(Some((first, end)))
}

fn render(window: Option<(i64, i64)>, page: &AlertPage) -> Vec<u8> {
    let mut body = Vec::with_capacity(256 + page.ships.len() * 512);
    let mut digits = itoa::Buffer::new();
    body.extend_from_slice(br#"{"start":"#);
    write_time(&mut body, window.map(|(first, _)| first));
    body.extend_from_slice(br#","end":"#);
    write_time(&mut body, window.map(|(_, end)| end));
    body.extend_from_slice(br#","data_end":"#);
    write_time(&mut body, page.data_end_bucket);
    for (name, value) in [
        ("ships_total", page.ships_total),
        ("ships_examined", page.ships_examined),
        ("ships_active", page.ships_active),
    ] {
        body.extend_from_slice(format!(r#","{name}":"#).as_bytes());
        body.extend_from_slice(digits.format(value).as_bytes());
    }
    body.extend_from_slice(br#","next_after":"#);
    match page.next_after {
        Some(ship) => body.extend_from_slice(digits.format(ship).as_bytes()),
        None => body.extend_from_slice(b"null"),
    }
    body.extend_from_slice(br#","ships":["#);
    for (position, ship) in page.ships.iter().enumerate() {
        if position > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"spaceship_id":"#);
        body.extend_from_slice(digits.format(ship.ship).as_bytes());
        for (name, value) in [
            ("expected_buckets", ship.expected_buckets),
            ("missing_buckets", ship.missing_buckets),
            ("partial_buckets", ship.partial_buckets),
            ("partial_missing_seconds", ship.partial_missing_s),
            ("judged_buckets", ship.judged_buckets),
            ("outlier_buckets", ship.outlier_buckets),
        ] {
            body.extend_from_slice(format!(r#","{name}":"#).as_bytes());
            body.extend_from_slice(digits.format(value).as_bytes());
        }
        body.extend_from_slice(br#","missing":"#);
        write_runs(&mut body, &ship.missing, false);
        body.extend_from_slice(br#","partial":"#);
        write_runs(&mut body, &ship.partial, true);
        body.extend_from_slice(br#","outliers":["#);
        for (position, outlier) in ship.outliers.iter().enumerate() {
            if position > 0 {
                body.push(b',');
            }
            body.extend_from_slice(br#"{"datetime":"#);
            write_time(&mut body, Some(outlier.bucket));
            body.extend_from_slice(br#","value":"#);
            wire::write_nanokwh(&mut body, outlier.energy);
            body.extend_from_slice(br#","expected":"#);
            wire::write_number(&mut body, outlier.expected_kwh);
            body.extend_from_slice(br#","score":"#);
            wire::write_number(&mut body, (outlier.score * 100.0).round() / 100.0);
            body.push(b'}');
        }
        body.extend_from_slice(b"]}");
    }
    body.extend_from_slice(b"]}");
    body
}

/// `[{"start", "end", "buckets"(, "covered_seconds")}, ...]`.
fn write_runs(body: &mut Vec<u8>, runs: &[BucketRun], with_coverage: bool) {
    let mut digits = itoa::Buffer::new();
    body.push(b'[');
    for (position, run) in runs.iter().enumerate() {
        if position > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"start":"#);
        write_time(body, Some(run.first_bucket));
        body.extend_from_slice(br#","end":"#);
        write_time(body, Some(run.end_bucket));
        body.extend_from_slice(br#","buckets":"#);
        body.extend_from_slice(digits.format(run.end_bucket - run.first_bucket).as_bytes());
        if with_coverage {
            body.extend_from_slice(br#","covered_seconds":"#);
            body.extend_from_slice(digits.format(run.covered_s).as_bytes());
        }
        body.push(b'}');
    }
    body.push(b']');
}

/// `"<timestamp of bucket>"`, or `null`.
fn write_time(body: &mut Vec<u8>, bucket: Option<i64>) {
    wire::write_quoted_timestamp(body, bucket.map(|bucket| bucket * BUCKET_SECONDS));
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_S: i64 = 86_400;

    #[test]
    fn windows_hold_up_to_seven_days() {
        assert_eq!(window(None, None), Ok(None));
        assert_eq!(window(Some(0), Some(7 * DAY_S)), Ok(Some((0, 672))));
        assert_eq!(window(Some(0), None), Ok(Some((0, 96))));
        assert_eq!(window(None, Some(DAY_S)), Ok(Some((0, 96))));
        assert_eq!(window(Some(1), Some(900)), Ok(Some((1, 1))));
        assert_eq!(
            window(Some(0), Some(7 * DAY_S + 1)).unwrap_err().field,
            "end"
        );
        assert_eq!(window(Some(5), Some(5)).unwrap_err().field, "start");
    }
}
