//! Idle-connection tracking: hyper has no timeout for a connection that
//! simply stops moving bytes, so we keep one ourselves.
//!
//! [`IdleIo`] wraps a connection's socket and stamps [`Activity`] whenever a
//! read or write makes progress. [`Activity::idle`] resolves once nothing
//! has moved for the idle timeout *and* no request is being handled; the
//! connection task then drops the connection. Requests count as busy so a
//! slow engine commit (no bytes move while the write is fsynced) is never
//! mistaken for an idle client; a client that stalls mid-body is the body
//! reader's business (it answers 408 after the same timeout).
//!
//! Must never know: HTTP. This sees only bytes and a busy count.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When a connection last moved bytes, and how many of its requests are
/// being handled right now.
#[derive(Debug)]
pub(crate) struct Activity {
    /// The connection's start; `last_ms` counts from here. tokio's clock, so
    /// tests with paused time see consistent deadlines.
    start: Instant,
    last_ms: AtomicU64,
    busy_requests: AtomicUsize,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            busy_requests: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let elapsed_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Relaxed: the watcher only needs an approximately recent stamp.
        self.last_ms.store(elapsed_ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// Marks a request as being handled until the guard drops.
    pub(crate) fn busy(self: &Arc<Self>) -> BusyGuard {
        self.busy_requests.fetch_add(1, Ordering::AcqRel);
        BusyGuard(Arc::clone(self))
    }

    /// Resolves once the connection has been idle for `timeout`.
    pub(crate) async fn idle(&self, timeout: Duration) {
        loop {
            if self.busy_requests.load(Ordering::Acquire) > 0 {
                // The guard stamps activity when the request ends, so the
                // idle clock restarts from there.
                tokio::time::sleep(timeout).await;
                continue;
            }
            let deadline = self.last() + timeout;
            if deadline <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// See [`Activity::busy`].
pub(crate) struct BusyGuard(Arc<Activity>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy_requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket that stamps [`Activity`] whenever bytes move.
pub(crate) struct IdleIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> IdleIo<T> {
    pub(crate) fn new(inner: T, activity: Arc<Activity>) -> Self {
        IdleIo { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        // hyper writes head and body with one writev when it can.
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUT: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn quiet_connection_goes_idle_after_the_timeout() {
        let activity = Activity::new();
        let started = Instant::now();
        activity.idle(TIMEOUT).await;
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_moving_restart_the_clock() {
        let activity = Activity::new();
        let (client, server) = tokio::io::duplex(64);
        let mut server = IdleIo::new(server, Arc::clone(&activity));
        let mut client = client;
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(6)).await;
        client.write_all(b"x").await.unwrap();
        let mut byte = [0u8; 1];
        server.read_exact(&mut byte).await.unwrap();
        activity.idle(TIMEOUT).await;
        assert_eq!(started.elapsed(), Duration::from_secs(6) + TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_is_not_idle() {
        let activity = Activity::new();
        let started = Instant::now();
        let guard = activity.busy();
        let release = async {
            tokio::time::sleep(Duration::from_secs(25)).await;
            drop(guard);
        };
        tokio::join!(release, activity.idle(TIMEOUT));
        assert!(started.elapsed() >= Duration::from_secs(25) + TIMEOUT);
    }
}
