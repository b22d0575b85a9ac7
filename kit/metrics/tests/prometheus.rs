//! Scraping: what a counter and a histogram look like on `/metrics`, with the resource labels.

use gochat_core::Context;
use gochat_metrics::{Config, Options, opentelemetry::KeyValue};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

async fn get(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    reply
}

#[tokio::test]
async fn prometheus_scrape_shows_counters_histograms_and_who_we_are() {
    let mut config = Config::default();
    config.service_name = "im-gateway".to_owned();
    config.instance_id = Some("gw-7".to_owned());
    config.listen = Some("127.0.0.1:0".parse().unwrap());
    let metrics = gochat_metrics::new(&Context::new(), config, Options::default()).unwrap();
    let meter = metrics.meter("im");
    let sent = meter.u64_counter("messages_sent").build();
    sent.add(2, &[KeyValue::new("kind", "text")]);
    sent.add(1, &[KeyValue::new("kind", "image")]);
    let latency = meter.f64_histogram("send_seconds").build();
    latency.record(0.02, &[]);

    let address = metrics.serve().await.unwrap();
    let reply = get(address, "/metrics").await;
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.contains("text/plain; version=0.0.4"), "{reply}");
    assert!(
        reply.contains(r#"messages_sent_total{kind="text"} 2"#),
        "{reply}"
    );
    assert!(
        reply.contains(r#"messages_sent_total{kind="image"} 1"#),
        "{reply}"
    );
    assert!(reply.contains("send_seconds_count 1"), "{reply}");
    let target = reply
        .lines()
        .find(|l| l.starts_with("target_info{"))
        .unwrap_or_else(|| panic!("no target_info in {reply}"));
    assert!(
        target.contains(r#"service_name="im-gateway""#)
            && target.contains(r#"service_instance_id="gw-7""#),
        "{target}"
    );
    assert!(get(address, "/other").await.starts_with("HTTP/1.1 404"));
    metrics.close().await;
}
