//! The services over the network: tonic clients that implement the service traits, so callers
//! hold one `Arc<dyn RepoService>` (or `LogicService`) whether the service is in process or
//! remote.

use std::{error::Error, time::Duration};

use tonic::{Code, Extensions, Request, Response, Status, transport::Channel};

use crate::{
    ServiceToken,
    logic::{logic_service_client::LogicServiceClient, logic_service_server::LogicService},
    repo::{repo_service_client::RepoServiceClient, repo_service_server::RepoService},
};

/// How long a call may take, connection retries included, unless set otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// A remote repository behind `channel` (e.g. gochat-coord's balanced channel to `im-repo`).
#[derive(Clone, Debug)]
pub struct RemoteRepo {
    client: RepoServiceClient<Channel>,
    token: Option<ServiceToken>,
    deadline: Duration,
}

impl RemoteRepo {
    /// Calls go through `channel`, each bounded by [`DEFAULT_DEADLINE`].
    pub fn new(channel: Channel) -> Self {
        Self {
            client: RepoServiceClient::new(channel),
            token: None,
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// Every call carries `token` (the server's [`crate::require_token`] checks it).
    #[must_use]
    pub fn with_token(mut self, token: Option<ServiceToken>) -> Self {
        self.token = token;
        self
    }

    /// Every call is answered within `deadline` (see [`RemoteLogic::with_deadline`]).
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
}

/// A remote im-logic behind `channel` (e.g. gochat-coord's balanced channel to `im-logic`).
#[derive(Clone, Debug)]
pub struct RemoteLogic {
    client: LogicServiceClient<Channel>,
    token: Option<ServiceToken>,
    deadline: Duration,
}

impl RemoteLogic {
    /// Calls go through `channel`, each bounded by [`DEFAULT_DEADLINE`].
    pub fn new(channel: Channel) -> Self {
        Self {
            client: LogicServiceClient::new(channel),
            token: None,
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// Every call carries `token` (the server's [`crate::require_token`] checks it).
    #[must_use]
    pub fn with_token(mut self, token: Option<ServiceToken>) -> Self {
        self.token = token;
        self
    }

    /// Every call is answered within `deadline`, connection retries included: when it runs
    /// out — no instance registered, none answering — the call is dropped (the server sees
    /// its stream reset and stops) and fails with `DEADLINE_EXCEEDED`. Each request also
    /// carries the time left as its `grpc-timeout`.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
}

/// Attempts of a call whose connection was refused.
const ATTEMPTS: u32 = 8;

/// Whether a call failed before anything was sent: the connection was refused (an instance
/// that died and is still registered until its lease runs out). Such a call is safe to try
/// again, whatever it does; the balancer may pick a live instance next time.
fn never_sent(status: &Status) -> bool {
    if status.code() != Code::Unavailable {
        return false;
    }
    let mut cause: Option<&(dyn Error + 'static)> = status.source();
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cause = error.source();
    }
    status.message() == "tcp connect error"
}

/// `impl $service for $remote`: one trait method per RPC, each the client's call of the same
/// name, tried again (up to [`ATTEMPTS`], backing off) while connections are refused, all
/// within the remote's deadline.
macro_rules! forward {
    ($service:ident for $remote:ident: $($name:ident($request:ty) -> $response:ty;)*) => {
        #[tonic::async_trait]
        impl $service for $remote {
            $(
                async fn $name(&self, request: Request<$request>) -> Result<Response<$response>, Status> {
                    let (mut metadata, _, message) = request.into_parts();
                    if let Some(token) = &self.token {
                        token.sign(&mut metadata);
                    }
                    let until = tokio::time::Instant::now() + self.deadline;
                    let call = async {
                        let mut attempt = 1;
                        loop {
                            let mut request = Request::from_parts(metadata.clone(), Extensions::default(), message.clone());
                            request.set_timeout(until.saturating_duration_since(tokio::time::Instant::now()));
                            match self.client.clone().$name(request).await {
                                Err(status) if attempt < ATTEMPTS && never_sent(&status) => {
                                    tokio::time::sleep(Duration::from_millis(20) * attempt).await;
                                    attempt += 1;
                                }
                                answer => return answer,
                            }
                        }
                    };
                    tokio::time::timeout_at(until, call).await.unwrap_or_else(|_| {
                        Err(Status::deadline_exceeded(format!(
                            concat!(stringify!($name), " not answered within {:?}"),
                            self.deadline
                        )))
                    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::UserRef;

    #[tokio::test]
    async fn a_refused_connection_is_tried_again_then_reported() {
        // Nothing listens on port 1: every attempt is refused, and the last answer is given.
        let channel = Channel::from_static("http://127.0.0.1:1").connect_lazy();
        let remote = RemoteLogic::new(channel);
        let request = Request::new(UserRef {
            user_id: "1".into(),
        });
        let status = remote.get_profile(request).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(never_sent(&status), "{status:?}");
        assert!(!never_sent(&Status::unavailable("the database is down")));
        assert!(!never_sent(&Status::internal("tcp connect error")));
    }

    #[tokio::test]
    async fn a_call_with_no_instance_to_take_it_ends_at_its_deadline() {
        // A balanced channel no instance was ever added to: without a deadline, a call
        // waits for one forever.
        let (channel, _changes) = Channel::balance_channel::<String>(1);
        let remote = RemoteLogic::new(channel).with_deadline(Duration::from_millis(200));
        let request = Request::new(UserRef {
            user_id: "1".into(),
        });
        let status = remote.get_profile(request).await.unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert!(status.message().contains("get_profile"), "{status:?}");
    }
}
