//! Everything that can go wrong with a request, and the one place that
//! decides its status code ([`status`]) and body ([`response`]).
//!
//! Every error body has the same shape:
//! `{"error": "<field>: <message>", "field": "<field>"}`, with `"field": null`
//! (and just the message) when no single field is to blame. Storage failures
//! are logged in full for the operator; clients get a short message without
//! paths.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};

use crate::model::ShipId;
use crate::storage::StorageError;
use crate::wire::FieldError;

/// The response type of every endpoint.
pub(crate) type HttpResponse = Response<Full<Bytes>>;

#[derive(Debug)]
pub(crate) enum ApiError {
    /// Malformed input: a body or query field that is missing, mistyped or
    /// out of range.
    BadInput(FieldError),
    /// The request body could not be read (the client went away, or sent a
    /// broken chunked encoding).
    BadBody(String),
    /// The ship has never been written.
    UnknownShip(ShipId),
    /// Well-formed, but the stored data cannot answer it: a forecast from
    /// too little history. The message says how much is needed and how
    /// much there is.
    NotEnoughData(FieldError),
    /// No endpoint has this path.
    UnknownPath,
    /// The path exists, but not for this method; `allow` lists the methods
    /// that do work, for the `allow` header.
    MethodNotAllowed { allow: &'static str },
    /// The client stopped sending its body for the idle timeout.
    BodyTimeout,
    /// The body is larger than the configured limit.
    BodyTooLarge { limit_bytes: usize },
    /// The engine could not do its part.
    Storage(StorageError),
    /// The handler panicked; the panic message is logged, not sent.
    Panic,
    /// No token, or one the auth file does not know.
    Unauthorized(&'static str),
    /// A known token without the scope the request needs.
    Forbidden {
        field: Option<&'static str>,
        message: String,
    },
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::BadInput(e)
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::Storage(e)
    }
}

/// Seconds a client is asked to wait (`retry-after`) after a storage
/// refusal: the engine retries preparing log space every second.
pub(crate) const STORAGE_RETRY_AFTER_S: &str = "5";

/// The one mapping from errors to status codes.
pub(crate) fn status(error: &ApiError) -> StatusCode {
    match error {
        ApiError::BadInput(_) | ApiError::BadBody(_) => StatusCode::BAD_REQUEST,
        ApiError::UnknownShip(_) | ApiError::UnknownPath => StatusCode::NOT_FOUND,
        ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
        ApiError::NotEnoughData(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        // Closed means shutting down (or the log stopped after an I/O
        // failure): nothing was acknowledged, and retrying against a healthy
        // instance is the right move.
        ApiError::Storage(StorageError::Closed) => StatusCode::SERVICE_UNAVAILABLE,
        // Nothing was written, and both clear by themselves once space is
        // freed or the device recovers.
        ApiError::Storage(e) if e.is_disk_full() => StatusCode::INSUFFICIENT_STORAGE,
        ApiError::Storage(StorageError::Io { .. } | StorageError::Failed(_)) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        // Damaged or missing data: not something a retry fixes.
        ApiError::Storage(_) | ApiError::Panic => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The field to blame, if any, and the message for the client.
fn field_and_message(error: &ApiError) -> (Option<&str>, String) {
    match error {
        ApiError::BadInput(e) if e.field.is_empty() => (None, e.message.clone()),
        ApiError::BadInput(e) | ApiError::NotEnoughData(e) => (Some(&e.field), e.message.clone()),
        ApiError::BadBody(why) => (None, format!("the request body could not be read: {why}")),
        ApiError::UnknownShip(ship) => (
            Some("spaceship_id"),
            format!("no data has been stored for ship {ship}"),
        ),
        ApiError::UnknownPath => (None, "no such endpoint".to_owned()),
        ApiError::Unauthorized(why) => (Some("authorization"), (*why).to_owned()),
        ApiError::Forbidden { field, message } => (*field, message.clone()),
        ApiError::MethodNotAllowed { allow } => {
            (None, format!("method not allowed here; allowed: {allow}"))
        }
        ApiError::BodyTimeout => (
            None,
            "the request body stopped arriving; nothing was written".to_owned(),
        ),
        ApiError::BodyTooLarge { limit_bytes } => (
            None,
            format!("the request body is larger than the limit of {limit_bytes} bytes"),
        ),
        ApiError::Storage(StorageError::Closed) => (
            None,
            "the service is shutting down; nothing was written, retry later".to_owned(),
        ),
        ApiError::Storage(e) if e.is_disk_full() => (
            None,
            "the disk is full: nothing was written; retry once space is freed".to_owned(),
        ),
        ApiError::Storage(StorageError::Io { .. } | StorageError::Failed(_)) => (
            None,
            "storage is failing: nothing was written; retry later".to_owned(),
        ),
        ApiError::Storage(_) => (None, "internal storage error".to_owned()),
        ApiError::Panic => (None, "internal error".to_owned()),
    }
}

/// Renders `error` as a JSON response, logging what the operator needs.
pub(crate) fn response(error: ApiError) -> HttpResponse {
    let status = status(&error);
    if let ApiError::Storage(e) = &error {
        tracing::error!(error = %e, "storage error answered with {status}");
    }
    let (field, message) = field_and_message(&error);
    let text = match field {
        Some(field) => format!("{field}: {message}"),
        None => message,
    };
    let body = serde_json::json!({ "error": text, "field": field });
    let mut response = json(
        status,
        serde_json::to_vec(&body).expect("a JSON value always serialises"),
    );
    let headers = response.headers_mut();
    match &error {
        ApiError::MethodNotAllowed { allow } => {
            headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        ApiError::Unauthorized(_) => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        ApiError::Storage(StorageError::Closed) => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        ApiError::Storage(StorageError::Io { .. } | StorageError::Failed(_)) => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(STORAGE_RETRY_AFTER_S));
        }
        _ => {}
    }
    response
}

/// A JSON response with `body`.
pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(response: HttpResponse) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn field_errors_name_the_field() {
        let response = response(FieldError::new("data[1].datetime", "bad").into());
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body_json(response).await,
            serde_json::json!({"error": "data[1].datetime: bad", "field": "data[1].datetime"})
        );
    }

    #[tokio::test]
    async fn whole_body_errors_have_a_null_field() {
        let response = response(FieldError::new("", "not JSON").into());
        assert_eq!(
            body_json(response).await,
            serde_json::json!({"error": "not JSON", "field": null})
        );
    }

    #[tokio::test]
    async fn storage_errors_say_what_a_client_can_do() {
        let answer = |e: StorageError| {
            let r = response(ApiError::Storage(e));
            let retry = r
                .headers()
                .get(RETRY_AFTER)
                .map(|v| v.to_str().unwrap().to_owned());
            (r.status(), retry, r)
        };
        let (status, retry, _) = answer(StorageError::Closed);
        assert_eq!(
            (status, retry.as_deref()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("1"))
        );
        // ENOSPC and EDQUOT: 507, saying the disk is full.
        for code in [28, 122] {
            let full = StorageError::io("/x", "append to", std::io::Error::from_raw_os_error(code));
            let (status, _, r) = answer(full);
            assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE);
            let body = body_json(r).await;
            assert!(
                body["error"].as_str().unwrap().contains("disk is full"),
                "{body}"
            );
        }
        // EIO: 503 with retry-after, never a bare 500.
        let eio = StorageError::io("/x", "sync", std::io::Error::from_raw_os_error(5));
        let (status, retry, _) = answer(eio);
        assert_eq!(
            (status, retry.as_deref()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("5"))
        );
        // Damage is not something a retry fixes.
        let damaged = StorageError::corrupted("/x", 7, "bad CRC");
        assert_eq!(answer(damaged).0, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn method_not_allowed_lists_the_allowed_methods() {
        let response = response(ApiError::MethodNotAllowed { allow: "GET, POST" });
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[ALLOW], "GET, POST");
    }
}
