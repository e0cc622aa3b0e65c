//! Reading a request body whole, under a size limit and an idle timeout.
//!
//! The limit is checked twice: against `Content-Length` before reading a
//! byte (so an honest oversized upload is refused at once, and a client
//! that sent `Expect: 100-continue` never gets the go-ahead), and while
//! reading (`Limited`), for chunked bodies and lying headers.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::Request;

use super::error::ApiError;

/// The whole body of `request`, at most `limit_bytes` long. Fails with 408
/// if no data arrives for `idle_timeout` (a stalled upload is not the idle
/// watcher's business: the request counts as busy while its body is read).
pub(crate) async fn read_limited(
    request: Request<Incoming>,
    limit_bytes: usize,
    idle_timeout: Duration,
) -> Result<Bytes, ApiError> {
    let declared_bytes = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if let Some(declared_bytes) = declared_bytes {
        if declared_bytes > limit_bytes as u64 {
            return Err(ApiError::BodyTooLarge { limit_bytes });
        }
    }
    let capacity = declared_bytes.map_or(0, |n| n as usize);
    let mut body = Limited::new(request.into_body(), limit_bytes);
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    loop {
        let frame = match tokio::time::timeout(idle_timeout, body.frame()).await {
            Err(_elapsed) => return Err(ApiError::BodyTimeout),
            Ok(None) => break,
            Ok(Some(Err(e))) if e.is::<LengthLimitError>() => {
                return Err(ApiError::BodyTooLarge { limit_bytes })
            }
            Ok(Some(Err(e))) => return Err(ApiError::BadBody(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers carry nothing we read
        };
        // A body that arrives in one frame is passed on without a copy.
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            None => joined.extend_from_slice(&data),
            Some(earlier) => {
                joined.reserve(capacity.max(earlier.len() + data.len()));
                joined.extend_from_slice(&earlier);
                joined.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}
