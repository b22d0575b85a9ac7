//! Running a case on a backend, and the macro that writes one test per pair.

use std::future::Future;

use crate::Fixture;

/// Runs `fut` to completion on a fresh two-worker tokio runtime (the shape production uses).
///
/// # Panics
/// When the runtime cannot be built (no threads left), which fails the test.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        // Test support: failing to make a runtime (no threads left) must fail the test loudly.
        .expect("building a tokio runtime for the test")
        .block_on(fut)
}

/// Runs one case on one backend: `setup` builds the provider (or returns `None` to skip,
/// having said why), then `case` exercises it. What [`behaviour_suite!`](crate::behaviour_suite)
/// expands to.
pub fn run_case<P, S, SF, C, CF>(case_name: &'static str, backend: &'static str, setup: S, case: C)
where
    S: FnOnce(Fixture) -> SF,
    SF: Future<Output = Option<P>>,
    C: FnOnce(P, Fixture) -> CF,
    CF: Future<Output = ()>,
{
    block_on(async {
        let fixture = Fixture::new(case_name, backend);
        let Some(provider) = setup(fixture.clone()).await else {
            return;
        };
        case(provider, fixture).await;
    });
}

/// Writes one `#[test]` per (case, backend): `mod {case} { fn {backend}() }`.
///
/// - `backends`: names of `async fn(Fixture) -> Option<P>` in the calling module; the name
///   becomes the test's last path segment.
/// - `cases`: names of `async fn(P, Fixture)` in the calling module.
///
/// See the [crate docs](crate) for an example.
#[macro_export]
macro_rules! behaviour_suite {
    (
        backends: $backends:tt,
        cases: [$($case:ident),+ $(,)?] $(,)?
    ) => {
        $( $crate::__behaviour_case!($case, $backends); )+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __behaviour_case {
    ($case:ident, [$($backend:ident),+ $(,)?]) => {
        mod $case {
            $(
                #[test]
                fn $backend() {
                    $crate::run_case(
                        stringify!($case),
                        stringify!($backend),
                        super::$backend,
                        super::$case,
                    );
                }
            )+
        }
    };
}
