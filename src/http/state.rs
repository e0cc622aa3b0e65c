//! What every handler may use, and running a handler's engine work off the
//! async workers. A leaf: it imports no handler, so `routes` and the
//! handler modules depend on it and not on each other.

use std::sync::Arc;

use super::error::ApiError;
use crate::config::ServerConfig;
use crate::storage::{Engine, StorageError};

/// What every handler may use.
pub(crate) struct AppState {
    pub(crate) engine: Arc<Engine>,
    pub(crate) config: ServerConfig,
    pub(crate) metrics: super::metrics::Metrics,
    pub(crate) cache: super::cache::ResponseCache,
}

/// Runs `work` (engine reads, a model fit) on the blocking pool, so the
/// async workers keep serving. The one mapping of its join errors: a panic
/// in `work` is a 500 (logged, naming `what`), a task cancelled because
/// the runtime is shutting down a 503.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) if e.is_panic() => {
            tracing::error!("{what} panicked");
            Err(ApiError::Panic)
        }
        Err(_) => Err(ApiError::from(StorageError::Closed)),
    }
}
