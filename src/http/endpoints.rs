//! The one table of endpoints: path, the methods each serves, the handler
//! and what it needs. Dispatch (`routes::handle`), the `route` label of
//! the metrics and the check that every route is in openapi.json all read
//! it, so a new endpoint is one row here. The dashboard's static files are
//! routed by their own table (`dashboard::ASSETS`).

use hyper::Method;

/// What a request may be answered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handler {
    Health,
    OpenApi,
    GetData,
    PostData,
    Fleet,
    TopUsers,
    Forecast,
    Metrics,
    Ships,
    Alerts,
}

/// What a token must allow for a request (with `--auth-file`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// No token needed.
    Public,
    Read,
    /// Some ship; which one is checked once the body names it.
    Write,
    Admin,
}

/// One path and what it serves.
pub(crate) struct Endpoint {
    pub(crate) path: &'static str,
    pub(crate) methods: &'static [(Method, Handler, Scope)],
    /// The `allow` header of a 405 on this path.
    pub(crate) allow: &'static str,
}

pub(crate) const ENDPOINTS: [Endpoint; 9] = [
    Endpoint {
        path: "/data",
        methods: &[
            (Method::GET, Handler::GetData, Scope::Read),
            (Method::POST, Handler::PostData, Scope::Write),
        ],
        allow: "GET, POST",
    },
    Endpoint {
        path: "/data/fleet",
        methods: &[(Method::GET, Handler::Fleet, Scope::Read)],
        allow: "GET",
    },
    Endpoint {
        path: "/topusers",
        methods: &[(Method::GET, Handler::TopUsers, Scope::Read)],
        allow: "GET",
    },
    Endpoint {
        path: "/forecast",
        methods: &[(Method::GET, Handler::Forecast, Scope::Read)],
        allow: "GET",
    },
    Endpoint {
        path: "/health",
        methods: &[(Method::GET, Handler::Health, Scope::Public)],
        allow: "GET",
    },
    Endpoint {
        path: "/metrics",
        methods: &[(Method::GET, Handler::Metrics, Scope::Admin)],
        allow: "GET",
    },
    Endpoint {
        path: "/openapi.json",
        methods: &[(Method::GET, Handler::OpenApi, Scope::Read)],
        allow: "GET",
    },
    Endpoint {
        path: "/ships",
        methods: &[(Method::GET, Handler::Ships, Scope::Read)],
        allow: "GET",
    },
    Endpoint {
        path: "/alerts",
        methods: &[(Method::GET, Handler::Alerts, Scope::Read)],
        allow: "GET",
    },
];

/// The position of `path`'s endpoint in [`ENDPOINTS`].
pub(crate) fn position(path: &str) -> Option<usize> {
    ENDPOINTS.iter().position(|e| e.path == path)
}

/// `(method, path)` of every API route, for the test that holds
/// openapi.json to them.
#[doc(hidden)]
pub fn api_routes() -> Vec<(&'static str, &'static str)> {
    ENDPOINTS
        .iter()
        .flat_map(|e| e.methods.iter().map(|(m, _, _)| (m.as_str(), e.path)))
        .collect()
}
