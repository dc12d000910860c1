//! Reads that end on the server when their caller stops waiting.
//!
//! When a gRPC caller gives up (a deadline, a disconnect), the server drops the handler's
//! future, but PostgreSQL goes on running the statement it was sent until it ends or
//! `statement_timeout` fires, holding a connection and a core for nobody.
//!
//! A request runs inside [`scope`]; the connections it checks out are [`CancelOnDrop`]
//! guards. When the scope is dropped before it completes, each guard it still holds sends
//! PostgreSQL a cancel request for its connection's backend as it is dropped. A scope that
//! completes, or a guard taken outside any scope (a background job), never cancels anything.
//!
//! A cancelled connection never goes back to the pool: PostgreSQL handles a cancel request on a
//! connection of its own, some time after it was sent, and cancels whatever the backend runs
//! at that moment, so a connection reused at once could lose its next borrower's statement to
//! the late signal. After the request the guard waits (at most [`SETTLE_TIMEOUT`]) for the
//! session to answer what was sent before, so the backend reports the cancel to an open socket,
//! and then closes the connection; the pool opens a new one when it needs it.

use std::{
    future::Future,
    ops::Deref,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use deadpool_postgres::Object;
use tokio::task::futures::TaskLocalFuture;
use tokio_postgres::NoTls;

use crate::{
    StoreError,
    pool::{Client, Pool},
};

/// Longest the cancel request and the abandoned statement's end are waited for before the
/// connection is closed all the same.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

tokio::task_local! {
    /// The abandonment flag of the request being polled, for the guards it checks out.
    static ABANDONED: Arc<AtomicBool>;
}

/// Runs `request` as one caller's request: if the returned future is dropped before it
/// completes, the [`CancelOnDrop`] guards that `request` holds cancel their statements.
pub fn scope<F: Future>(request: F) -> Scope<F> {
    let abandoned = Arc::new(AtomicBool::new(false));
    Scope {
        request: Box::pin(ABANDONED.scope(Arc::clone(&abandoned), request)),
        abandoned,
        completed: false,
    }
}

/// The future of [`scope`].
pub struct Scope<F: Future> {
    request: Pin<Box<TaskLocalFuture<Arc<AtomicBool>, F>>>,
    abandoned: Arc<AtomicBool>,
    completed: bool,
}

impl<F: Future> Future for Scope<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let output = std::task::ready!(self.request.as_mut().poll(cx));
        self.completed = true;
        Poll::Ready(output)
    }
}

impl<F: Future> Drop for Scope<F> {
    fn drop(&mut self) {
        // Runs before the fields are dropped, so the request's guards see the flag when the
        // request itself is dropped right after.
        if !self.completed {
            self.abandoned.store(true, Ordering::Release);
        }
    }
}

/// A pooled connection that cancels its statement on the server when it is dropped because
/// its [`scope`] was abandoned.
///
/// It dereferences to the pooled [`Client`], so the store's query functions take `&guard`.
pub struct CancelOnDrop {
    /// `None` only once the drop has handed the connection to the task that cancels.
    client: Option<Client>,
    /// The flag of the scope the guard was taken in; `None` outside any scope.
    abandoned: Option<Arc<AtomicBool>>,
}

impl CancelOnDrop {
    /// Guards a connection already checked out, for the scope being polled (if any).
    pub fn new(client: Client) -> Self {
        Self {
            client: Some(client),
            abandoned: ABANDONED.try_with(Arc::clone).ok(),
        }
    }

    /// Checks a connection out of `pool` and guards it.
    pub async fn get(pool: &Pool) -> Result<Self, StoreError> {
        Ok(Self::new(pool.get().await?))
    }

    /// True when the guard was taken inside a [`scope`] that has been abandoned.
    pub fn is_abandoned(&self) -> bool {
        self.abandoned
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Acquire))
    }
}

impl Deref for CancelOnDrop {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the connection is taken only when the guard is dropped")
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.is_abandoned() {
            return; // Back to the pool as it is.
        }
        let Some(client) = self.client.take() else {
            return;
        };
        // Detached from the pool now: whatever happens next, it is never handed out again.
        let client = Object::take(client);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(cancel_and_close(client));
        }
    }
}

/// Sends the cancel request for `client`'s backend, waits until the session has answered what
/// was sent before (a trivial statement queued behind the abandoned one), then closes it.
async fn cancel_and_close(client: deadpool_postgres::ClientWrapper) {
    tracing::debug!("cancelling the statement of a caller that stopped waiting");
    let settled = tokio::time::timeout(SETTLE_TIMEOUT, async {
        client
            .cancel_token()
            .cancel_query(NoTls)
            .await
            .map_err(StoreError::from)?;
        match client
            .simple_query("SELECT 1")
            .await
            .map_err(StoreError::from)
        {
            // A cancel that arrives late cancels this statement instead: as good.
            Err(e) if !e.is_timeout() => Err(e),
            _ => Ok(()),
        }
    })
    .await;
    match settled {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot cancel an abandoned statement"),
        Err(_) => tracing::warn!(
            timeout = ?SETTLE_TIMEOUT,
            "an abandoned statement did not end after its cancel request"
        ),
    }
    drop(client);
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// Reports, as it is dropped, whether its scope counted as abandoned at that moment.
    struct Probe(Option<Arc<AtomicBool>>, mpsc::Sender<Option<bool>>);

    impl Drop for Probe {
        fn drop(&mut self) {
            let _ = self
                .1
                .send(self.0.as_ref().map(|flag| flag.load(Ordering::Acquire)));
        }
    }

    fn probe(tx: mpsc::Sender<Option<bool>>) -> Probe {
        Probe(ABANDONED.try_with(Arc::clone).ok(), tx)
    }

    #[tokio::test]
    async fn a_scope_is_abandoned_only_when_dropped_before_completing() {
        let (tx, rx) = mpsc::channel();
        // Completed: the request's locals are dropped with the flag down.
        let sender = tx.clone();
        scope(async move {
            let _probe = probe(sender);
            tokio::task::yield_now().await;
        })
        .await;
        assert_eq!(rx.try_recv().ok(), Some(Some(false)));
        // Dropped half-way: the flag is up by the time the request's locals are dropped.
        let sender = tx.clone();
        let request = scope(async move {
            let _probe = probe(sender);
            std::future::pending::<()>().await;
        });
        let timed_out = tokio::time::timeout(Duration::from_millis(10), request).await;
        assert!(timed_out.is_err());
        assert_eq!(rx.try_recv().ok(), Some(Some(true)));
        // Outside a scope there is no flag.
        drop(probe(tx));
        assert_eq!(rx.try_recv().ok(), Some(None));
    }
}
