//! The TLS and auth settings of the etcd backend are really applied: against an etcd that
//! requires client certificates and passwords (`scripts/engines` runs one), the right settings
//! work and each wrong one fails with an error that says what is wrong.

use std::path::PathBuf;

use gochat_coord::{Backend, Config, Error, EtcdConfig, Options, TlsConfig};
use gochat_core::{Context, Env, HealthStatus, Secret};
use gochat_testkit::{Engine, Fixture, block_on, endpoint};

/// What `scripts/engines` set up: the endpoints and the certificate directory.
async fn secure_etcd() -> Option<(String, PathBuf)> {
    let endpoints = endpoint(Engine::EtcdTls).await?;
    let dir = std::env::var("GOCHAT_TEST_ETCD_TLS_DIR")
        .expect("GOCHAT_TEST_ETCD_TLS_DIR is set with the endpoints");
    Some((endpoints, PathBuf::from(dir)))
}

fn config(
    fx: &Fixture,
    endpoints: &str,
    dir: &std::path::Path,
    password: &str,
    client_cert: bool,
) -> Config {
    let mut etcd = EtcdConfig::with_endpoints(Env::Production, endpoints);
    etcd.username = Some("gochat".to_owned());
    etcd.password = Some(Secret::from(password));
    let mut tls = TlsConfig::default();
    tls.ca_file = Some(dir.join("ca.pem"));
    if client_cert {
        tls.cert_file = Some(dir.join("client.pem"));
        tls.key_file = Some(dir.join("client.key"));
    }
    etcd.tls = Some(tls);
    etcd.dial_timeout = std::time::Duration::from_secs(3);
    let mut config = Config::for_env(Env::Production);
    config.root = fx.prefix().trim_end_matches('_').to_owned();
    config.backend = Backend::Etcd(Box::new(etcd));
    config
}

#[test]
fn tls_with_client_certificates_and_a_password_works() {
    block_on(async {
        let Some((endpoints, dir)) = secure_etcd().await else {
            return;
        };
        let fx = Fixture::new("etcd_tls_ok", "etcd-tls");
        let coord = gochat_coord::new(
            &Context::new(),
            config(&fx, &endpoints, &dir, "gochat", true),
            Options::default(),
        )
        .await
        .expect("the right TLS files and password connect");
        let scope = coord.config().scope("svc", "tls").unwrap();
        scope.put("k", &42).await.unwrap();
        assert_eq!(scope.get::<u32>("k").await.unwrap(), Some(42));
        assert_eq!(coord.health().await.status, HealthStatus::Up);
        coord.close().await;
    });
}

#[test]
fn a_wrong_password_is_refused_with_a_clear_error() {
    block_on(async {
        let Some((endpoints, dir)) = secure_etcd().await else {
            return;
        };
        let fx = Fixture::new("etcd_tls_password", "etcd-tls");
        let err = gochat_coord::new(
            &Context::new(),
            config(&fx, &endpoints, &dir, "wrong", true),
            Options::default(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("authentication failed"), "{err}");
    });
}

#[test]
fn tls_settings_that_do_not_fit_the_server_fail_at_start() {
    block_on(async {
        let Some((endpoints, dir)) = secure_etcd().await else {
            return;
        };
        let fx = Fixture::new("etcd_tls_mismatch", "etcd-tls");

        // The server requires a client certificate.
        let no_cert = gochat_coord::new(
            &Context::new(),
            config(&fx, &endpoints, &dir, "gochat", false),
            Options::default(),
        )
        .await;
        assert!(
            matches!(no_cert, Err(Error::Unavailable(_) | Error::Timeout(_))),
            "{no_cert:?}"
        );

        // Plain HTTP to a TLS port.
        let plain = endpoints.replace("https://", "http://");
        let mut config_plain = config(&fx, &plain, &dir, "gochat", true);
        if let Backend::Etcd(etcd) = &mut config_plain.backend {
            etcd.tls = None;
        }
        let plain = gochat_coord::new(&Context::new(), config_plain, Options::default()).await;
        assert!(
            matches!(plain, Err(Error::Unavailable(_) | Error::Timeout(_))),
            "{plain:?}"
        );

        // A CA file that does not exist is a config error naming the field.
        let mut missing = config(&fx, &endpoints, &dir, "gochat", true);
        if let Backend::Etcd(etcd) = &mut missing.backend {
            etcd.tls.as_mut().unwrap().ca_file = Some(dir.join("no-such-ca.pem"));
        }
        let err = gochat_coord::new(&Context::new(), missing, Options::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config(c) if c.field == "backend.etcd.tls"),
            "{err}"
        );
        assert!(err.to_string().contains("no-such-ca.pem"), "{err}");
    });
}
