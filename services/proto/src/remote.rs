//! The services over the network: tonic clients that implement the service traits, so callers
//! hold one `Arc<dyn RepoService>` (or `LogicService`) whether the service is in process or
//! remote.

use tonic::{Request, Response, Status, transport::Channel};

use crate::{
    logic::{logic_service_client::LogicServiceClient, logic_service_server::LogicService},
    repo::{repo_service_client::RepoServiceClient, repo_service_server::RepoService},
};

/// A remote repository behind `channel` (e.g. gochat-coord's balanced channel to `im-repo`).
#[derive(Clone, Debug)]
pub struct RemoteRepo {
    client: RepoServiceClient<Channel>,
}

impl RemoteRepo {
    /// Calls go through `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: RepoServiceClient::new(channel),
        }
    }
}

/// A remote im-logic behind `channel` (e.g. gochat-coord's balanced channel to `im-logic`).
#[derive(Clone, Debug)]
pub struct RemoteLogic {
    client: LogicServiceClient<Channel>,
}

impl RemoteLogic {
    /// Calls go through `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: LogicServiceClient::new(channel),
        }
    }
}

/// `impl $service for $remote`: one trait method per RPC, each the client's call of the same
/// name.
macro_rules! forward {
    ($service:ident for $remote:ident: $($name:ident($request:ty) -> $response:ty;)*) => {
        #[tonic::async_trait]
        impl $service for $remote {
            $(
                async fn $name(&self, request: Request<$request>) -> Result<Response<$response>, Status> {
                    self.client.clone().$name(request).await
                }
            )*
        }
    };
}

macro_rules! forward_repo {
    ($($rpcs:tt)*) => { forward!(RepoService for RemoteRepo: $($rpcs)*); };
}

macro_rules! forward_logic {
    ($($rpcs:tt)*) => { forward!(LogicService for RemoteLogic: $($rpcs)*); };
}

crate::repo_rpcs!(forward_repo);
crate::logic_rpcs!(forward_logic);
