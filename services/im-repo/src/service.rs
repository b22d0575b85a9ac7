//! `RepoService` over gRPC, and in process: each call is the repository method of its name.

use gochat_proto::repo::repo_service_server::RepoService;
use tonic::{Request, Response, Status};

use crate::Repo;

/// One trait method per RPC, each calling the inherent method of the same name.
macro_rules! rpcs {
    ($($name:ident($request:ty) -> $response:ty;)*) => {
        #[tonic::async_trait]
        impl RepoService for Repo {
            $(
                async fn $name(&self, request: Request<$request>) -> Result<Response<$response>, Status> {
                    Ok(Response::new(Repo::$name(self, request.into_inner()).await?))
                }
            )*
        }
    };
}

gochat_proto::repo_rpcs!(rpcs);
