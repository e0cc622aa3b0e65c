//! `GET /forecast?spaceship_id=&start=&end=`: a ship's expected energy in a
//! window, from [`crate::forecast`] fitted on the ship's stored history
//! before `start`.
//!
//! - The window is widened to whole 15-minute buckets (`start` rounded
//!   down, `end` up); the answer's `start` and `end` are the widened window.
//!   It must hold 1 to [`MAX_HORIZON_BUCKETS`] buckets (28 days).
//! - Only buckets before `start` are read, whatever else is stored, so a
//!   window in the past gets what the model would have said at `start`;
//!   `model.backtest` is `true` when `start` is before the server's clock.
//! - Too little history is 422 (the request is fine; the data cannot answer
//!   it yet), with how much is needed and how much there is.
//! - Nothing is cached: reading up to 168 days of buckets and fitting takes
//!   a millisecond or two, and a cache would have to be invalidated by every
//!   write to the ship.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::error::{self, ApiError, HttpResponse};
use super::params::{window_order_error, Query};
use super::state::{blocking, AppState};
use crate::forecast::{
    self, ComponentWeight, Forecast, ForecastError, LOOKBACK_DAYS, MAX_HORIZON_BUCKETS,
};
use crate::model::BUCKET_SECONDS;
use crate::wire::{self, FieldError};

pub(crate) async fn get_forecast(
    request: &Request<Incoming>,
    state: &Arc<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(request.uri().query());
    let ship = query.ship_id("spaceship_id")?;
    let start_s = query
        .timestamp("start")?
        .ok_or_else(|| FieldError::new("start", "is required"))?;
    let end_s = query
        .timestamp("end")?
        .ok_or_else(|| FieldError::new("end", "is required"))?;
    let (origin, horizon) = window(start_s, end_s)?;
    let app = Arc::clone(state);
    let answer = blocking("a forecast", move || {
        let history = crate::query::forecast_history(&app.engine, ship, origin)?;
        Ok(history.map(|h| forecast::forecast(&h, origin, horizon)))
    })
    .await?;
    let forecast = match answer {
        None => return Err(ApiError::UnknownShip(ship)),
        Some(Err(ForecastError::InsufficientHistory {
            needed_buckets,
            covered_buckets,
        })) => {
            let mut text = b"not enough history before ".to_vec();
            wire::write_timestamp(&mut text, origin * BUCKET_SECONDS);
            let message = format!(
                "{} to forecast: need at least {needed_buckets} usable 15-minute buckets \
                 ({} hours) within the {LOOKBACK_DAYS} days before it, have {covered_buckets}",
                String::from_utf8_lossy(&text),
                needed_buckets / 4,
            );
            return Err(ApiError::NotEnoughData(FieldError::new("start", message)));
        }
        // `window` has checked the horizon already.
        Some(Err(e @ ForecastError::HorizonOutOfRange { .. })) => {
            return Err(FieldError::new("end", e.to_string()).into())
        }
        Some(Ok(forecast)) => forecast,
    };
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Ok(error::json(
        StatusCode::OK,
        render(ship, &forecast, start_s < now_s),
    ))
}

/// The window's first bucket and its length in buckets: `start` rounded
/// down and `end` up to bucket boundaries, 1 to [`MAX_HORIZON_BUCKETS`].
fn window(start_s: i64, end_s: i64) -> Result<(i64, usize), FieldError> {
    if start_s >= end_s {
        return Err(window_order_error(
            "must be before end",
            start_s,
            ">=",
            end_s,
        ));
    }
    let first = start_s.div_euclid(BUCKET_SECONDS);
    let end = end_s.div_euclid(BUCKET_SECONDS) + i64::from(end_s.rem_euclid(BUCKET_SECONDS) != 0);
    // Timestamps lie within years 1..=9999: no overflow.
    let buckets = (end - first) as u64;
    if buckets > MAX_HORIZON_BUCKETS as u64 {
        return Err(FieldError::new(
            "end",
            format!(
                "the window spans {buckets} 15-minute buckets (start rounded down, end up); \
                 a forecast covers at most {MAX_HORIZON_BUCKETS} ({} days)",
                MAX_HORIZON_BUCKETS / 96
            ),
        ));
    }
    Ok((first, buckets as usize))
}

/// The response body; numbers and times in the wire format of `GET /data`.
fn render(ship: u64, forecast: &Forecast, backtest: bool) -> Vec<u8> {
    let origin = forecast.origin_bucket;
    let horizon = forecast.values_kwh.len() as i64;
    let mut body = Vec::with_capacity(1024 + forecast.values_kwh.len() * 96);
    body.extend_from_slice(br#"{"spaceship_id":"#);
    body.extend_from_slice(itoa::Buffer::new().format(ship).as_bytes());
    body.extend_from_slice(br#","units":"kWh","start":"#);
    write_time(&mut body, origin);
    body.extend_from_slice(br#","end":"#);
    write_time(&mut body, origin + horizon);
    body.extend_from_slice(br#","expected_consumption":"#);
    wire::write_number(&mut body, forecast.total_kwh);
    body.extend_from_slice(br#","interval":{"low":"#);
    wire::write_number(&mut body, forecast.interval.low_kwh);
    body.extend_from_slice(br#","high":"#);
    wire::write_number(&mut body, forecast.interval.high_kwh);
    body.extend_from_slice(br#","level":"#);
    wire::write_number(&mut body, forecast.interval.level);
    body.extend_from_slice(br#"},"data":["#);
    let mut timestamps = wire::TimestampWriter::default();
    for (i, &value) in forecast.values_kwh.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"datetime":""#);
        timestamps.write(&mut body, (origin + i as i64) * BUCKET_SECONDS);
        body.extend_from_slice(br#"","value":"#);
        wire::write_number(&mut body, value);
        body.extend_from_slice(br#","low":"#);
        wire::write_number(&mut body, forecast.low_kwh[i]);
        body.extend_from_slice(br#","high":"#);
        wire::write_number(&mut body, forecast.high_kwh[i]);
        body.push(b'}');
    }
    let model = &forecast.model;
    body.extend_from_slice(br#"],"model":{"method":"#);
    write_string(&mut body, model.method);
    body.extend_from_slice(br#","backtest":"#);
    body.extend_from_slice(if backtest { b"true" } else { b"false" });
    body.extend_from_slice(br#","history_start":"#);
    write_time(&mut body, model.history_start_bucket);
    body.extend_from_slice(br#","history_end":"#);
    write_time(&mut body, model.history_end_bucket);
    for (name, count) in [
        ("history_buckets", model.history_buckets_used),
        ("imputed_buckets", model.imputed_buckets),
        ("partial_buckets_scaled", model.partial_buckets_scaled),
        ("partial_buckets_dropped", model.partial_buckets_dropped),
        ("validation_origins", model.validation_origins),
        ("interval_errors", model.interval_errors),
    ] {
        body.extend_from_slice(format!(r#","{name}":{count}"#).as_bytes());
    }
    body.extend_from_slice(br#","unusual_days":["#);
    for (i, &day) in model.unusual_days.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        write_time(&mut body, day);
    }
    body.push(b']');
    body.extend_from_slice(br#","level_weights":"#);
    write_weights(&mut body, &model.level_weights);
    body.extend_from_slice(br#","shape_weights":"#);
    write_weights(&mut body, &model.shape_weights);
    body.extend_from_slice(br#","intraday_persistence":{"weight":"#);
    wire::write_number(&mut body, model.intraday_persistence.weight);
    body.extend_from_slice(br#","decay_per_bucket":"#);
    wire::write_number(&mut body, model.intraday_persistence.decay_per_bucket);
    body.extend_from_slice(br#","long_weight":"#);
    wire::write_number(&mut body, model.intraday_persistence.long_weight);
    body.extend_from_slice(br#","long_decay_per_bucket":"#);
    wire::write_number(&mut body, model.intraday_persistence.long_decay_per_bucket);
    body.extend_from_slice(br#"},"profile_drift_gain":"#);
    wire::write_number(&mut body, model.profile_drift_gain);
    body.extend_from_slice(br#","total_scale":"#);
    wire::write_number(&mut body, model.total_scale);
    body.extend_from_slice(br#","fallbacks":["#);
    for (i, fallback) in model.fallbacks.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        write_string(&mut body, &fallback.to_string());
    }
    body.extend_from_slice(b"]}}");
    body
}

/// `"<timestamp of bucket>"`.
fn write_time(body: &mut Vec<u8>, bucket: i64) {
    wire::write_quoted_timestamp(body, Some(bucket * BUCKET_SECONDS));
}

/// `{"name": weight, ...}`.
fn write_weights(body: &mut Vec<u8>, weights: &[ComponentWeight]) {
    body.push(b'{');
    for (i, component) in weights.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        write_string(body, component.name);
        body.push(b':');
        wire::write_number(body, component.weight);
    }
    body.push(b'}');
}

fn write_string(body: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *body, text).expect("a string always serialises");
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_S: i64 = 86_400;

    #[test]
    fn the_window_is_widened_to_whole_buckets() {
        assert_eq!(window(0, 900), Ok((0, 1)));
        assert_eq!(window(1, 2), Ok((0, 1)));
        assert_eq!(window(899, 901), Ok((0, 2)));
        assert_eq!(window(-1, 0), Ok((-1, 1)));
        assert_eq!(window(DAY_S, 2 * DAY_S), Ok((96, 96)));
    }

    #[test]
    fn the_window_holds_one_bucket_to_28_days() {
        assert_eq!(window(0, 28 * DAY_S), Ok((0, 2688)));
        assert_eq!(window(0, 28 * DAY_S + 1).unwrap_err().field, "end");
        // 28 days, but not on bucket boundaries: 2689 buckets.
        assert_eq!(window(1, 28 * DAY_S + 1).unwrap_err().field, "end");
        assert_eq!(window(5, 5).unwrap_err().field, "start");
        assert_eq!(window(6, 5).unwrap_err().field, "start");
    }
}
