//! Breakers under paused time: classic transitions, SRE throttling with a seeded RNG, hot
//! reload from coord, the tower layer. Test names say which policy they exercise.

use std::{
    future::{Ready, ready},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context as TaskContext, Poll},
    time::Duration,
};

use gochat_breaker::{BreakerError, BreakerLayer, Breakers, Config, Options, Policy, State};
use gochat_core::{Context, Env, ErrorKind, KitError};
use tokio::time::{advance, sleep};
use tower_layer::Layer;
use tower_service::Service;

#[derive(Debug, thiserror::Error)]
#[error("{0:?}")]
struct Failure(ErrorKind);

impl KitError for Failure {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

const DOWN: Failure = Failure(ErrorKind::Unavailable);

fn classic(failures: u32, half_open_successes: u32) -> Policy {
    let mut config = Config::default();
    config.default = Policy::Classic {
        failures,
        open_timeout: Duration::from_secs(10),
        half_open_successes,
    };
    config.default
}

async fn breakers(policy: Policy) -> Breakers {
    let mut config = Config::for_env(Env::Development);
    config.default = policy;
    gochat_breaker::new(&Context::new(), config, Options::default().seed(7))
        .await
        .unwrap()
}

async fn fail(breaker: &gochat_breaker::Breaker) -> Result<(), BreakerError<Failure>> {
    breaker.call(|| async { Err::<(), _>(DOWN) }).await
}

async fn succeed(breaker: &gochat_breaker::Breaker) -> Result<(), BreakerError<Failure>> {
    breaker.call(|| async { Ok::<_, Failure>(()) }).await
}

#[tokio::test(start_paused = true)]
async fn classic_opens_after_consecutive_failures_and_closes_after_trial_successes() {
    let repo = breakers(classic(3, 2)).await.get("im-repo");
    fail(&repo).await.unwrap_err();
    fail(&repo).await.unwrap_err();
    succeed(&repo).await.unwrap();
    fail(&repo).await.unwrap_err();
    fail(&repo).await.unwrap_err();
    assert_eq!(repo.state(), State::Closed, "failures must be consecutive");
    fail(&repo).await.unwrap_err();
    assert_eq!(repo.state(), State::Open);
    let Err(BreakerError::Open { retry_after, .. }) = succeed(&repo).await else {
        panic!("an open breaker rejects")
    };
    assert_eq!(retry_after, Some(Duration::from_secs(10)));

    advance(Duration::from_secs(10)).await;
    // Two trial calls at once; a third waits its turn.
    let first = repo.try_acquire::<Failure>().unwrap();
    let second = repo.try_acquire::<Failure>().unwrap();
    assert!(repo.try_acquire::<Failure>().is_err(), "only two trials");
    assert_eq!(repo.state(), State::HalfOpen);
    first.success();
    assert_eq!(
        repo.state(),
        State::HalfOpen,
        "one success of the two needed"
    );
    second.success();
    assert_eq!(repo.state(), State::Closed);

    for _ in 0..3 {
        fail(&repo).await.unwrap_err();
    }
    advance(Duration::from_secs(10)).await;
    fail(&repo).await.unwrap_err();
    assert_eq!(repo.state(), State::Open, "a failed trial opens it again");
    let stats = repo.stats();
    // closed→open, open→half-open, half-open→closed, closed→open, open→half-open,
    // half-open→open.
    assert_eq!((stats.transitions, stats.rejected), (6, 2), "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn classic_counts_only_temporary_errors_by_default() {
    let repo = breakers(classic(1, 1)).await.get("im-repo");
    for _ in 0..5 {
        let bad = repo
            .call(|| async { Err::<(), _>(Failure(ErrorKind::InvalidArgument)) })
            .await;
        assert!(matches!(bad, Err(BreakerError::Inner(_))));
    }
    assert_eq!(
        repo.state(),
        State::Closed,
        "a caller's mistake is not the resource failing"
    );
    let counted = repo
        .call_with(
            || async { Err::<(), _>(Failure(ErrorKind::InvalidArgument)) },
            |_| true,
        )
        .await;
    assert!(matches!(counted, Err(BreakerError::Inner(_))));
    assert_eq!(repo.state(), State::Open);
    let answer = repo
        .call_or_fallback(
            || async { Ok::<_, Failure>("fresh") },
            || async { Ok("cached") },
        )
        .await
        .unwrap();
    assert_eq!(answer, "cached", "the fallback answers while open");
}

fn sre(k: f64) -> Policy {
    Policy::Sre {
        k,
        window: Duration::from_secs(10),
    }
}

#[tokio::test(start_paused = true)]
async fn sre_lets_everything_through_while_the_backend_succeeds() {
    let repo = breakers(sre(2.0)).await.get("im-repo");
    for _ in 0..1_000 {
        succeed(&repo).await.unwrap();
    }
    assert_eq!(repo.stats().rejected, 0);
    assert_eq!(repo.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn sre_rejects_nearly_every_call_while_the_backend_fails_then_forgets() {
    let repo = breakers(sre(2.0)).await.get("im-repo");
    let mut rejected = 0;
    for _ in 0..1_000 {
        if matches!(fail(&repo).await, Err(BreakerError::Open { .. })) {
            rejected += 1;
        }
    }
    // With no successes the i-th call is rejected with probability (i-1)/i: about
    // 1000 - H(1000) ≈ 992.5 of 1000 expected.
    assert!((970..1_000).contains(&rejected), "{rejected} rejected");
    let State::Throttling(p) = repo.state() else {
        panic!("throttling: {:?}", repo.state())
    };
    assert!(p > 0.99, "{p}");

    advance(Duration::from_secs(11)).await;
    assert_eq!(repo.state(), State::Closed, "the window forgets");
    succeed(&repo).await.unwrap();
}

/// Calls through an SRE breaker (k = 2) to a backend where one tried call in `every` fails
/// (`fail_most` turns it around: one in `every` succeeds); returns how many were rejected.
async fn sre_rejections(every: u32, fail_most: bool) -> u32 {
    let repo = breakers(sre(2.0)).await.get("im-repo");
    let (mut tried, mut rejected) = (0u32, 0u32);
    for _ in 0..2_000 {
        let outcome = repo
            .call(|| {
                tried += 1;
                let ok = (tried % every == 0) == fail_most;
                async move { if ok { Ok(()) } else { Err(DOWN) } }
            })
            .await;
        if matches!(outcome, Err(BreakerError::Open { .. })) {
            rejected += 1;
        }
    }
    assert_eq!(tried + rejected, 2_000);
    rejected
}

#[tokio::test(start_paused = true)]
async fn sre_throttles_by_the_share_of_calls_that_succeed() {
    // 3 in 4 succeed: k·accepts (1.5 per call) outgrows requests, so nothing is rejected.
    let mostly_up = sre_rejections(4, false).await;
    assert!(mostly_up < 20, "{mostly_up} of 2000 rejected");
    // 1 in 4 succeeds: k·accepts (0.5 per call) falls behind and rejection climbs towards 1.
    let mostly_down = sre_rejections(4, true).await;
    assert!(
        (1_500..2_000).contains(&mostly_down),
        "{mostly_down} of 2000 rejected"
    );
}

#[tokio::test(start_paused = true)]
async fn classic_and_sre_policies_hot_reload_from_coord() {
    let mut coord_config = gochat_coord::Config::for_env(Env::Development);
    coord_config.backend =
        gochat_coord::Backend::Memory(gochat_coord::MemoryConfig::named("breaker-hot-reload"));
    let coord = gochat_coord::new(&Context::new(), coord_config, Default::default())
        .await
        .unwrap();
    let mut config = Config::for_env(Env::Development);
    config.default = classic(5, 1);
    config.coord_service = Some("im-logic".to_owned());
    let breakers = gochat_breaker::new(
        &Context::new(),
        config,
        Options::default().coord(coord.clone()),
    )
    .await
    .unwrap();
    let repo = breakers.get("im-repo");
    let scope = coord.config().scope("im-logic", "breaker").unwrap();

    scope.put("im-repo", &classic(1, 1)).await.unwrap();
    while repo.policy() != classic(1, 1) {
        sleep(Duration::from_millis(10)).await;
    }
    fail(&repo).await.unwrap_err();
    assert_eq!(repo.state(), State::Open, "one failure opens it now");

    scope.put("im-repo", &sre(3.0)).await.unwrap();
    while repo.policy() != sre(3.0) {
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(repo.state(), State::Closed, "a new policy starts afresh");
    scope.delete("im-repo").await.unwrap();
    while repo.policy() != classic(5, 1) {
        sleep(Duration::from_millis(10)).await;
    }
}

/// A service that always fails, counting its calls.
#[derive(Clone)]
struct Flaky(Arc<AtomicUsize>);

impl Service<&'static str> for Flaky {
    type Response = &'static str;
    type Error = &'static str;
    type Future = Ready<Result<&'static str, &'static str>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: &'static str) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        ready(Err("backend down"))
    }
}

#[tokio::test(start_paused = true)]
async fn classic_layer_returns_the_open_error_without_calling_the_service() {
    let breakers = breakers(classic(2, 1)).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let mut service = BreakerLayer::new(breakers.get("flaky")).layer(Flaky(calls.clone()));
    for _ in 0..2 {
        let outcome = service.call("ping").await;
        assert!(matches!(outcome, Err(BreakerError::Inner("backend down"))));
    }
    let outcome = service.call("ping").await;
    assert!(matches!(outcome, Err(BreakerError::Open { ref resource, .. }) if resource == "flaky"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the open breaker did not call the service"
    );
}
