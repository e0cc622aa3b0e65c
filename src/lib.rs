//! powerd — the Spaceship Power Service.
//!
//! Ships POST meter readings in kW or kWh at any spacing; powerd normalises
//! them to energy per 15-minute bucket, keeps them in its own embedded
//! engine, and answers questions about ships and the fleet over HTTP.
//!
//! Module map, in the order data flows through it:
//! - [`wire`]: the JSON wire format — request bodies, timestamps, durations,
//!   number printing. Knows nothing of storage.
//! - [`normalise`]: readings → [`model::Span`]s (constant-power pieces),
//!   per the span and gap rules of SPEC.md.
//! - [`storage`]: the embedded engine — segment log, memtable, columnar
//!   blocks, checkpoints, offline check. Knows nothing of HTTP or JSON.
//! - [`forecast`]: a ship's future energy from its own bucket history — a
//!   pure model (buckets in, expected curve, total and interval out).
//! - [`query`]: questions answered from the engine (a ship's buckets, ...).
//! - [`http`]: the hyper server, routing, limits, and the one mapping from
//!   errors to status codes.
//! - [`config`]: validated settings and their documented defaults.
//! - [`auth`]: access tokens and the auth file (`powerd token`).
//! - [`tls`]: the certificate and the TLS acceptor of `serve --tls-cert`.
//! - [`model`]: the shared vocabulary (ships, spans, buckets).

pub mod auth;
pub mod config;
pub mod forecast;
pub mod http;
pub mod lake;
pub mod model;
pub mod normalise;
pub mod query;
pub mod storage;
pub mod tls;
pub mod wire;
