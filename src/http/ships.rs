//! `GET /ships?prefix=&page=&per_page=`: a page of stored ship ids, for the
//! dashboard's ship search. It never reads a ship's data, so it stays cheap
//! with 10,000 ships stored.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::error::{self, ApiError, HttpResponse};
use super::params::Query;
use super::state::{blocking, AppState};
use crate::wire::FieldError;

/// Most ids one page lists.
pub(crate) const MAX_PER_PAGE: usize = 1000;
/// Ids per page when `per_page` is absent.
const DEFAULT_PER_PAGE: usize = 50;
/// Longest prefix: `u64::MAX` has 20 digits.
const MAX_PREFIX_DIGITS: usize = 20;

pub(crate) async fn get_ships(
    request: &Request<Incoming>,
    state: &Arc<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(request.uri().query());
    let prefix = query
        .digits("prefix", MAX_PREFIX_DIGITS)?
        .unwrap_or_default();
    let page = query.count("page", usize::MAX / MAX_PER_PAGE)?.unwrap_or(1);
    let per_page = query
        .count("per_page", MAX_PER_PAGE)?
        .unwrap_or(DEFAULT_PER_PAGE);
    let app = Arc::clone(state);
    let found = {
        let prefix = prefix.clone();
        blocking("a ships page", move || {
            Ok(crate::query::ships_page(
                &app.engine,
                &prefix,
                page,
                per_page,
            ))
        })
        .await?
    };
    let mut body = Vec::with_capacity(96 + found.ships.len() * 8);
    body.extend_from_slice(br#"{"prefix":"#);
    serde_json::to_writer(&mut body, &prefix).expect("a string always serialises");
    let mut digits = itoa::Buffer::new();
    for (name, value) in [
        ("page", page),
        ("per_page", per_page),
        ("total", found.total),
        ("pages", found.total.div_ceil(per_page)),
    ] {
        body.extend_from_slice(format!(r#","{name}":"#).as_bytes());
        body.extend_from_slice(digits.format(value).as_bytes());
    }
    body.extend_from_slice(br#","ships":["#);
    for (position, ship) in found.ships.iter().enumerate() {
        if position > 0 {
            body.push(b',');
        }
        body.extend_from_slice(digits.format(*ship).as_bytes());
    }
    body.extend_from_slice(b"]}");
    Ok(error::json(StatusCode::OK, body))
}

impl Query<'_> {
    /// An optional string of at most `max_len` ASCII digits.
    pub(crate) fn digits(&self, name: &str, max_len: usize) -> Result<Option<String>, FieldError> {
        let Some(text) = self.text(name)? else {
            return Ok(None);
        };
        if text.len() > max_len || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(
                name,
                format!("{text:?} is not a ship id prefix (at most {max_len} digits 0-9)"),
            ));
        }
        Ok(Some(text.into_owned()))
    }
}
