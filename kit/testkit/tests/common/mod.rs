//! A minimal RESP client for the harness's own tests, so they need no Redis crate.

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Sends one command and returns the raw reply (one read; replies here are small).
pub(crate) async fn redis_command(url: &str, args: &[&str]) -> String {
    let addr = url.split_once("://").map_or(url, |(_, rest)| rest);
    let addr = addr.split(['/', '?']).next().unwrap_or(addr);
    let mut stream = TcpStream::connect(addr).await.expect("connecting to Redis");
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream
        .write_all(request.as_bytes())
        .await
        .expect("sending to Redis");
    let mut reply = vec![0; 4096];
    let n = stream.read(&mut reply).await.expect("reading from Redis");
    String::from_utf8_lossy(&reply[..n]).into_owned()
}
