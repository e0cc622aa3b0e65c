//! The HTTP layer: the hyper server, routing, request limits, and the one
//! mapping from errors to status codes.
//!
//! Owns: sockets and connections (`server`), per-connection idle tracking
//! (`idle`), reading bodies under a size limit (`body`), query strings
//! (`params`), finished `GET /data` answers kept for asking again
//! (`cache`), endpoints (`routes`, and `forecast` for `GET /forecast`,
//! `ships` and `alerts` for the dashboard's questions, `dashboard` for the
//! page itself), error bodies and status codes (`error`),
//! keeping a panicking handler from taking its connection down (`panic`),
//! and request counters, latencies and `GET /metrics` (`metrics`).
//!
//! Architecture invariants:
//! - This layer turns bytes into calls on [`crate::wire`],
//!   [`crate::normalise`], [`crate::query`] and the public
//!   [`crate::storage::Engine`] API, and answers back. It never reaches into
//!   storage internals, and nothing below it knows about HTTP: the engine
//!   reports [`crate::storage::StorageError`]s and this layer alone decides
//!   what status they become (`error::status`).
//! - A request is acknowledged with 200 only after the engine reports the
//!   write durable.
//! - No input can make the server panic or stall other clients: every
//!   connection is its own task, bounded by the header timeout, the idle
//!   timeout, the body limit and the connection limit in
//!   [`crate::config::ServerConfig`].

mod alerts;
mod body;
mod cache;
mod dashboard;
mod endpoints;
mod error;
mod forecast;
mod idle;
mod metrics;
mod panic;
mod params;
mod routes;
mod server;
mod ships;
mod state;

pub use endpoints::api_routes;
pub use server::{run, REQUEST_LOG_TARGET};
