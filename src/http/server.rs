//! The accept loop and the per-connection task (mini-redis `server.rs`,
//! hyper-util `server_graceful.rs`).
//!
//! - A semaphore of `max_connections` permits is taken *before* accepting,
//!   so excess clients wait in the kernel backlog instead of costing us
//!   memory.
//! - Accept errors (out of file descriptors, ...) are logged and retried
//!   with exponential backoff rather than ending the server.
//! - Each connection is its own task: a slow, stalled or panicking client
//!   affects nobody else. hyper's `header_read_timeout` bounds how long a
//!   request head may take; [`super::idle`] closes connections that stop
//!   moving bytes; handlers run under [`CatchPanic`].
//! - Shutdown: stop accepting (the listener is dropped, so new connections
//!   are refused), tell every connection to finish its in-flight request and
//!   close, wait up to `shutdown_grace`, then abort whatever is left and
//!   return, so the caller can close the engine.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tracing::{debug, error, info, warn};

use super::cache::ResponseCache;
use super::error::{self, ApiError};
use super::idle::{Activity, IdleIo};
use super::metrics::{Metrics, Route};
use super::panic::CatchPanic;
use super::routes;
use super::state::AppState;
use crate::config::ServerConfig;
use crate::storage::Engine;

/// The tracing target of the one line per request (method, route, path,
/// status, duration): `--log-level info,powerd::http::request=warn` keeps
/// every other info line and drops these.
pub const REQUEST_LOG_TARGET: &str = "powerd::http::request";

/// First and largest pause after a failed `accept`.
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves HTTP on `listener` until `shutdown` resolves, then drains
/// in-flight requests for up to `config.shutdown_grace` and returns. The
/// engine stays open: closing it is the caller's job, after this returns.
pub async fn run(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .keep_alive(true);
    let shared = Arc::new(Shared {
        http,
        app: Arc::new(AppState {
            engine,
            config: config.clone(),
            metrics: Metrics::new(),
            cache: ResponseCache::new(config.response_cache_bytes),
        }),
    });
    let limit = Arc::new(Semaphore::new(config.max_connections));
    let (stop_tx, stop_rx) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF_FIRST;
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(ended) = connections.join_next() => {
                log_connection_end(ended);
                continue;
            }
            permit = Arc::clone(&limit).acquire_owned() => {
                permit.expect("the connection semaphore is never closed")
            }
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(ended) = connections.join_next() => {
                log_connection_end(ended);
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = ACCEPT_BACKOFF_FIRST;
                    accepted
                }
                Err(e) => {
                    warn!(error = %e, "accept failed; retrying in {backoff:?}");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            },
        };
        connections.spawn(serve_connection(
            stream,
            peer,
            Arc::clone(&shared),
            stop_rx.clone(),
            permit,
        ));
    }

    drop(listener);
    let open = connections.len();
    info!(
        open,
        "shutting down: no longer accepting; draining connections"
    );
    // Every connection task watches this channel.
    stop_tx.send_replace(());
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while let Some(ended) = connections.join_next().await {
            log_connection_end(ended);
        }
    })
    .await;
    if drained.is_err() {
        warn!(
            remaining = connections.len(),
            "shutdown grace of {:?} over; closing the remaining connections", config.shutdown_grace
        );
        connections.shutdown().await;
    }
    info!("HTTP server stopped");
}

/// What every connection task shares.
struct Shared {
    /// Configured once; cloned per connection.
    http: http1::Builder,
    app: Arc<AppState>,
}

fn log_connection_end(ended: Result<(), JoinError>) {
    match ended {
        Ok(()) => {}
        Err(e) if e.is_panic() => error!("a connection task panicked; the server carries on"),
        Err(e) => debug!(error = %e, "a connection task was cancelled"),
    }
}

/// Serves one connection until the client closes it, a timeout closes it,
/// or shutdown has let its in-flight request finish. With TLS, the
/// handshake comes first, bounded by the header timeout: a client that
/// speaks plain HTTP (or nothing) to a TLS port is closed without an answer,
/// and one still shaking hands when shutdown begins is closed at once — it
/// has no request in flight to finish.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<()>,
    permit: OwnedSemaphorePermit,
) {
    // Responses are single small writes; don't let Nagle hold them back.
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "could not set TCP_NODELAY");
    }
    let Some(tls) = shared.app.config.tls.clone() else {
        return serve_http(stream, peer, shared, stop, permit).await;
    };
    let timeout = shared.app.config.header_timeout;
    let handshake = tokio::select! {
        handshake = tokio::time::timeout(timeout, tls.acceptor().accept(stream)) => handshake,
        _ = stop.changed() => {
            debug!(%peer, "shutting down during the TLS handshake; closing");
            return;
        }
    };
    match handshake {
        Ok(Ok(stream)) => serve_http(stream, peer, shared, stop, permit).await,
        Ok(Err(e)) => {
            shared.app.metrics.record_tls_failure();
            debug!(%peer, error = %e, "TLS handshake failed; closing");
        }
        Err(_) => {
            shared.app.metrics.record_tls_failure();
            debug!(%peer, "no TLS handshake within {timeout:?}; closing");
        }
    }
}

/// Serves HTTP/1.1 on an established (plain or TLS) connection.
async fn serve_http<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<()>,
    _permit: OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let io = TokioIo::new(IdleIo::new(stream, Arc::clone(&activity)));
    let app = Arc::clone(&shared.app);
    let idle_timeout = app.config.idle_timeout;
    let service_activity = Arc::clone(&activity);
    let service = service_fn(move |request: Request<Incoming>| {
        let busy = service_activity.busy();
        let app = Arc::clone(&app);
        async move {
            let _busy = busy;
            let started = Instant::now();
            let _in_flight = app.metrics.in_flight();
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let route = Route::of(&path);
            let response =
                match CatchPanic::new(routes::handle(request, Arc::clone(&app), route)).await {
                    Ok(response) => response,
                    Err(panic) => {
                        error!(%peer, %method, %path, %panic, "request handler panicked");
                        error::response(ApiError::Panic)
                    }
                };
            let elapsed = started.elapsed();
            let status = response.status().as_u16();
            app.metrics.record(route, &method, status, elapsed);
            let duration_ms = elapsed.as_micros() as f64 / 1e3;
            // The token's name, when the request carried one (a `None`
            // field is left out of the line).
            let token = response.extensions().get::<routes::TokenName>();
            info!(
                target: REQUEST_LOG_TARGET,
                %peer,
                %method,
                route = route.template(),
                %path,
                status,
                duration_ms,
                token = token.map(|t| tracing::field::display(&t.0)),
                "request"
            );
            Ok::<_, Infallible>(response)
        }
    });
    let connection = shared.http.serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    // Timeouts, resets, malformed requests: the client's
                    // problem, worth a line only when debugging.
                    debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = activity.idle(idle_timeout) => {
                debug!(%peer, "closing a connection idle for {idle_timeout:?}");
                return;
            }
            _ = stop.changed(), if !stopping => {
                // Finishes the in-flight request, if any, then closes.
                connection.as_mut().graceful_shutdown();
                stopping = true;
            }
        }
    }
}
