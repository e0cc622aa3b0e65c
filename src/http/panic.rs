//! Turns a panicking request handler into an error value.
//!
//! A panic inside a hyper service unwinds through the connection task; tokio
//! contains it to that task, so the server lives on, but the client would
//! see a reset connection instead of an answer. Catching it here lets the
//! connection answer 500 and carry on.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Wraps a future; resolves to `Err(panic message)` if polling it panicked.
pub(crate) struct CatchPanic<F> {
    // Boxed so that `CatchPanic` is `Unpin` and needs no pin projection.
    inner: Pin<Box<F>>,
}

impl<F: Future> CatchPanic<F> {
    pub(crate) fn new(inner: F) -> Self {
        CatchPanic {
            inner: Box::pin(inner),
        }
    }
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.get_mut().inner;
        // AssertUnwindSafe: after a panic the inner future is never polled
        // again (this future has completed), and the state it shares with
        // others (the engine) protects itself with poisoning locks.
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_results_through() {
        assert_eq!(CatchPanic::new(async { 7 }).await, Ok(7));
    }

    #[tokio::test]
    async fn catches_a_panic_after_a_suspension() {
        let result = CatchPanic::new(async {
            tokio::task::yield_now().await;
            if true {
                panic!("handler bug {}", 42);
            }
            7
        })
        .await;
        assert_eq!(result, Err("handler bug 42".to_owned()));
    }
}
