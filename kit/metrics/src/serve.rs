//! A scrape listener of its own: `GET /metrics` over HTTP/1.1, one request per connection.
//! Anything fancier belongs in the service's HTTP server, which can mount
//! [`Metrics::scrape`](crate::Metrics::scrape) instead.

use std::net::SocketAddr;

use gochat_core::Context;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{CONTENT_TYPE, Error, Metrics};

pub(crate) async fn serve(
    metrics: Metrics,
    address: SocketAddr,
    ctx: &Context,
) -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| Error::Listen {
            address,
            reason: e.to_string(),
        })?;
    let bound = listener.local_addr().map_err(|e| Error::Listen {
        address,
        reason: e.to_string(),
    })?;
    gochat_clog::info!(metrics.log(), address = %bound, "serving /metrics");
    let stop = ctx.clone();
    ctx.spawn(async move {
        while let Some(accepted) = stop.run_until_cancelled(listener.accept()).await {
            let stream = match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, say: keep serving once the moment has passed.
                Err(e) => {
                    gochat_clog::warn!(metrics.log(), error = %e, "accepting a scrape failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                // A client that goes away mid-answer is not worth a log line.
                let _ = answer(&metrics, stream).await;
            });
        }
    });
    Ok(bound)
}

async fn answer(metrics: &Metrics, mut stream: TcpStream) -> std::io::Result<()> {
    let mut request = vec![0u8; 4096];
    let n = stream.read(&mut request).await?;
    let line = String::from_utf8_lossy(&request[..n]);
    let line = line.lines().next().unwrap_or_default();
    let (status, content_type, body) = if line.starts_with("GET /metrics ") {
        match metrics.scrape() {
            Ok(text) => ("200 OK", CONTENT_TYPE, text),
            Err(e) => ("500 Internal Server Error", "text/plain", e.to_string()),
        }
    } else {
        ("404 Not Found", "text/plain", "GET /metrics\n".to_owned())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
