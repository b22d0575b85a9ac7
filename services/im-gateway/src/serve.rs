//! The HTTP server under the router: HTTP/1.1 connections (upgradable to WebSockets) with a
//! header-read timeout, a cap on open connections, the client's address on every request
//! (`ConnectInfo<SocketAddr>`), and a graceful drain.
//!
//! A connection holds its place under the cap for as long as its socket is open, upgraded
//! WebSockets included: the place is part of the connection's I/O object, which an upgraded
//! socket keeps.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, atomic::Ordering::Relaxed},
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use gochat_clog::Logger;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower_service::Service;

use crate::{error::code::INTERNAL, registry::Counters};

/// What the server needs besides the router.
pub(crate) struct Limits {
    /// Open connections at most.
    pub(crate) max_connections: usize,
    /// How long a request's headers may take.
    pub(crate) header_read_timeout: Duration,
}

/// The answer to a connection over the cap, written without reading its request.
fn full_answer() -> String {
    let body = format!(
        r#"{{"code":{INTERNAL},"message":"the gateway is at its connection limit; retry later"}}"#
    );
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Accept errors that concern one connection only (the listener is fine).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves `router` on `listener` until `signal` completes; then stops accepting, lets every
/// HTTP connection finish its request under way, and returns once they are all closed
/// (upgraded WebSockets are the gateway's to close).
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    log: &Logger,
    counters: &Counters,
    signal: impl Future<Output = ()>,
) {
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let stop = CancellationToken::new();
    let connections = TaskTracker::new();
    let full = full_answer();
    tokio::pin!(signal);
    loop {
        let accepted = tokio::select! {
            () = &mut signal => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of files or memory: wait for some to come back.
                log.warn(format!("im-gateway: accepting a connection failed: {e}"));
                tokio::select! {
                    () = &mut signal => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            counters.refused_connections.fetch_add(1, Relaxed);
            // A fresh socket's send buffer is empty, so this short answer fits at once; if it
            // does not, the client just sees the connection close.
            let _ = stream.try_write(full.as_bytes());
            continue;
        };
        let io = Counted {
            io: stream,
            _place: place,
        };
        connections.spawn(connection(
            io,
            addr,
            router.clone(),
            limits.header_read_timeout,
            stop.clone(),
        ));
    }
    drop(listener);
    stop.cancel();
    connections.close();
    connections.wait().await;
}

/// One HTTP connection, until it closes or is upgraded.
async fn connection(
    io: Counted,
    addr: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    stop: CancellationToken,
) {
    let service = service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(addr));
        router.clone().call(request)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        // Errors here are the client's (a header timeout, a reset): nothing to do.
        _ = conn.as_mut() => return,
        () = stop.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

/// A TCP stream holding its place under the connection cap until it is dropped.
struct Counted {
    io: TcpStream,
    _place: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_answer_is_a_complete_response_with_the_error_body() {
        let answer = full_answer();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], INTERNAL);
    }
}
