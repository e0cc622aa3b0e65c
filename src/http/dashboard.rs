//! `GET /`: the dashboard, a single page whose assets are compiled into the
//! binary (no CDN, works offline). The page itself asks the JSON API:
//! `/data/fleet`, `/topusers`, `/data`, `/forecast`, `/ships`, `/alerts`.
//!
//! Every asset is sent with `cache-control: no-cache` and a strong `etag`
//! (CRC-32 and length of its bytes): browsers revalidate and get a `304`
//! while the binary is unchanged, and a new binary's assets at once. A
//! content security policy allows only this origin's scripts and styles.

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Request, Response, StatusCode};

use super::error::HttpResponse;

/// One compiled-in file.
pub(crate) struct Asset {
    pub(crate) path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

pub(crate) const ASSETS: [Asset; 3] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("dashboard/index.html"),
    },
    Asset {
        path: "/dashboard/app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("dashboard/app.js"),
    },
    Asset {
        path: "/dashboard/style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("dashboard/style.css"),
    },
];

const CSP: &str = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The asset at `path`, if any.
pub(crate) fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

/// The asset, or `304 Not Modified` when the client holds this version.
pub(crate) fn serve(request: &Request<Incoming>, asset: &'static Asset) -> HttpResponse {
    static ETAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    let etags = ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let tag = format!(
                    "\"{:08x}-{:x}\"",
                    crc32fast::hash(asset.bytes),
                    asset.bytes.len()
                );
                HeaderValue::from_str(&tag).expect("hex digits and quotes make a header value")
            })
            .collect()
    });
    let position = ASSETS
        .iter()
        .position(|a| a.path == asset.path)
        .expect("the asset is one of ASSETS");
    let etag = &etags[position];
    let fresh = request
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',').any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag.trim_start_matches("W/").as_bytes() == etag.as_bytes()
            })
        });
    let mut response = if fresh {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(Full::new(Bytes::from_static(asset.bytes)));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        response
    };
    let headers = response.headers_mut();
    headers.insert(ETAG, etag.clone());
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response
}
