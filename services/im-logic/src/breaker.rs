//! A circuit breaker around the repository: when im-repo keeps failing (unreachable, timing
//! out, erroring), calls fail fast with UNAVAILABLE instead of piling up behind it.

use std::sync::Arc;

use gochat_breaker::{Breaker, BreakerError};
use gochat_proto::repo::repo_service_server::RepoService;
use tonic::{Code, Request, Response, Status};

use crate::RepoHandle;

/// `repo` behind `breaker`: failures that say the repository is in trouble (unavailable,
/// deadline exceeded, internal, unknown) count; refusals (not found, invalid) do not.
pub fn guarded(repo: RepoHandle, breaker: Breaker) -> RepoHandle {
    Arc::new(Guarded { repo, breaker })
}

struct Guarded {
    repo: RepoHandle,
    breaker: Breaker,
}

fn is_failure(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Internal | Code::Unknown
    )
}

fn open(error: BreakerError<Status>) -> Status {
    match error {
        BreakerError::Inner(status) => status,
        open => Status::unavailable(open.to_string()),
    }
}

/// One trait method per RPC, each the inner repository's call through the breaker.
macro_rules! guard {
    ($($name:ident($request:ty) -> $response:ty;)*) => {
        #[tonic::async_trait]
        impl RepoService for Guarded {
            $(
                async fn $name(&self, request: Request<$request>) -> Result<Response<$response>, Status> {
                    self.breaker
                        .call_with(|| self.repo.$name(request), is_failure)
                        .await
                        .map_err(open)
                }
            )*
        }
    };
}

gochat_proto::repo_rpcs!(guard);
