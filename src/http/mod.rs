//! The HTTP layer: hyper server, routing, limits, and the mapping from
//! errors to status codes. Placeholder until it lands.
