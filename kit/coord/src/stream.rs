//! The stream type returned by every watch of this crate.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use tokio::sync::mpsc;

/// A stream of watch events: `next().await`, or use it as a `futures::Stream`. Dropping it
/// stops the watch.
#[derive(Debug)]
pub struct WatchStream<T> {
    rx: mpsc::Receiver<T>,
}

impl<T> WatchStream<T> {
    pub(crate) fn new(rx: mpsc::Receiver<T>) -> Self {
        Self { rx }
    }

    /// The next event; `None` once the provider is closed.
    pub async fn next(&mut self) -> Option<T> {
        self.rx.recv().await
    }
}

impl<T> futures_core::Stream for WatchStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}

/// Maps a receiver's items on a small task, for the typed watches.
pub(crate) fn map_stream<A, B>(
    ctx: &gochat_core::Context,
    mut rx: mpsc::Receiver<A>,
    mut f: impl FnMut(A) -> Option<B> + Send + 'static,
) -> WatchStream<B>
where
    A: Send + 'static,
    B: Send + 'static,
{
    let (tx, out) = mpsc::channel(64);
    ctx.spawn(async move {
        loop {
            let item = tokio::select! {
                item = rx.recv() => item,
                () = tx.closed() => return,
            };
            let Some(item) = item else { return };
            if let Some(mapped) = f(item)
                && tx.send(mapped).await.is_err()
            {
                return;
            }
        }
    });
    WatchStream::new(out)
}
