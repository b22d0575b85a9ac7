//! `balanced_channel` follows the registry: real gRPC servers (the standard health service)
//! come and go, and calls go where the registry says. Server A answers SERVING, server B
//! NOT_SERVING, so each answer tells which instance served it.

use std::time::Duration;

use gochat_coord::{Backend, Config, Instance, MemoryConfig, Options};
use gochat_core::{Context, Env};
use gochat_testkit::{Fixture, block_on};
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::{
    ServingStatus,
    pb::{HealthCheckRequest, health_check_response, health_client::HealthClient},
};

const PATIENCE: Duration = Duration::from_secs(60);

/// A gRPC server whose health service reports `status`; returns its address.
async fn health_server(status: ServingStatus) -> String {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter.set_service_status("", status).await;
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    tokio::spawn(async move {
        let _keep_reporting = reporter;
        Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    addr.to_string()
}

#[test]
fn calls_follow_instances_as_they_come_and_go() {
    block_on(async {
        let fx = Fixture::new("balanced_channel", "memory");
        let mut config = Config::for_env(Env::Development);
        config.root = fx.prefix().trim_end_matches('_').to_owned();
        config.backend = Backend::Memory(MemoryConfig::named(fx.prefix()));
        let coord = gochat_coord::new(&Context::new(), config, Options::default())
            .await
            .unwrap();

        let a = health_server(ServingStatus::Serving).await;
        let b = health_server(ServingStatus::NotServing).await;
        let ttl = Duration::from_secs(10);
        let reg_a = coord
            .registry()
            .register(Instance::new("im-repo", "a", a), ttl)
            .await
            .unwrap();

        let channel = coord.registry().balanced_channel("im-repo").unwrap();
        let mut client = HealthClient::new(channel);
        let mut check = async || {
            let response = tokio::time::timeout(
                PATIENCE,
                client.check(HealthCheckRequest {
                    service: String::new(),
                }),
            )
            .await
            .expect("a call answers in time")
            .expect("a call succeeds");
            response.into_inner().status()
        };
        assert_eq!(
            check().await,
            health_check_response::ServingStatus::Serving,
            "only A is registered"
        );

        let _reg_b = coord
            .registry()
            .register(Instance::new("im-repo", "b", b), ttl)
            .await
            .unwrap();
        reg_a.deregister().await;
        // The channel learns of both changes from the registry watch; once it has, every
        // call lands on B.
        tokio::time::timeout(PATIENCE, async {
            while check().await != health_check_response::ServingStatus::NotServing {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("calls move to B");
        for _ in 0..20 {
            assert_eq!(
                check().await,
                health_check_response::ServingStatus::NotServing,
                "A is gone"
            );
        }
        coord.close().await;
    });
}
