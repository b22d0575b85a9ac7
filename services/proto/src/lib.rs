//! The gochat IM services' wire types: `RepoService` and `LogicService` (gRPC, with tonic
//! servers and clients) and the messages that travel through gochat-mq.
//!
//! ```
//! use gochat_proto::{common::User, prost::Message as _};
//!
//! # fn main() -> Result<(), gochat_proto::prost::DecodeError> {
//! let user = User { id: "42".into(), username: "ann".into(), ..Default::default() };
//! let bytes = user.encode_to_vec();
//! assert_eq!(User::decode(bytes.as_slice())?, user);
//! # Ok(()) }
//! ```

mod auth;
mod remote;
mod tls;

/// The id of the world channel: every user may read and write it.
pub const WORLD: &str = "world";

/// Now, as the wire carries times: milliseconds since the Unix epoch (UTC).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub use auth::{ServiceToken, require_token};
pub use prost;
pub use remote::{DEFAULT_DEADLINE, RemoteLogic, RemoteRepo};
pub use tls::{DEFAULT_SERVER_NAME, GrpcTls, TlsError};
pub use tonic;

/// What tonic-prost-build generates from proto/: documented by the .proto comments, and
/// written as the generator writes it, so the workspace's documentation and style lints are
/// lifted here (and only here).
#[allow(
    missing_docs,
    unreachable_pub,
    unused_qualifications,
    clippy::all,
    clippy::pedantic
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/gochat.rs"));
}

/// Domain types shared by every service.
pub use generated::gochat::common::v1 as common;
/// Payloads on the mq topics `im-upstream`, `im-downstream-{gateway}` and `im-task`.
pub use generated::gochat::events::v1 as events;
/// `LogicService`: the business API.
pub use generated::gochat::logic::v1 as logic;
/// `RepoService`: the database behind the services.
pub use generated::gochat::repo::v1 as repo;

/// Calls `$callback! { name(Request) -> Response; … }` with every `RepoService` RPC, so code
/// that wraps or forwards each call (the service itself, a breaker, a client adapter) is
/// written once per shape, not once per RPC.
#[macro_export]
macro_rules! repo_rpcs {
    ($callback:ident) => {
        $callback! {
            create_user($crate::repo::CreateUserRequest) -> $crate::common::User;
            get_user($crate::repo::GetUserRequest) -> $crate::common::User;
            get_users($crate::repo::GetUsersRequest) -> $crate::repo::Users;
            get_credentials($crate::repo::GetCredentialsRequest) -> $crate::repo::Credentials;
            get_user_by_name($crate::repo::GetUserByNameRequest) -> $crate::common::User;
            update_user($crate::repo::UpdateUserRequest) -> $crate::common::User;
            get_or_create_single($crate::repo::GetOrCreateSingleRequest) -> $crate::common::Conversation;
            get_conversation($crate::repo::GetConversationRequest) -> $crate::common::Conversation;
            list_conversations($crate::repo::ListConversationsRequest) -> $crate::repo::ConversationViews;
            get_member($crate::repo::GetMemberRequest) -> $crate::common::Member;
            list_members($crate::repo::ListMembersRequest) -> $crate::repo::Members;
            update_member($crate::repo::UpdateMemberRequest) -> $crate::common::Member;
            set_read_seq($crate::repo::SetReadSeqRequest) -> $crate::common::Member;
            create_group($crate::repo::CreateGroupRequest) -> $crate::common::Group;
            get_group($crate::repo::GetGroupRequest) -> $crate::common::Group;
            add_members($crate::repo::AddMembersRequest) -> $crate::repo::Members;
            remove_member($crate::repo::RemoveMemberRequest) -> $crate::repo::Empty;
            store_messages($crate::repo::StoreMessagesRequest) -> $crate::repo::StoreMessagesResponse;
            get_messages($crate::repo::GetMessagesRequest) -> $crate::repo::MessagePage;
            max_seq($crate::repo::MaxSeqRequest) -> $crate::repo::MaxSeqResponse;
            unread($crate::repo::UnreadRequest) -> $crate::repo::UnreadResponse;
            revoke_session($crate::repo::RevokeSessionRequest) -> $crate::repo::Empty;
            list_revoked_sessions($crate::repo::ListRevokedSessionsRequest) -> $crate::repo::RevokedSessions;
        }
    };
}

/// Calls `$callback! { name(Request) -> Response; … }` with every `LogicService` RPC.
#[macro_export]
macro_rules! logic_rpcs {
    ($callback:ident) => {
        $callback! {
            register($crate::logic::RegisterRequest) -> $crate::common::User;
            login($crate::logic::LoginRequest) -> $crate::logic::TokenPair;
            refresh($crate::logic::RefreshRequest) -> $crate::logic::TokenPair;
            logout($crate::logic::LogoutRequest) -> $crate::repo::Empty;
            validate_token($crate::logic::ValidateTokenRequest) -> $crate::logic::Session;
            get_profile($crate::logic::UserRef) -> $crate::common::User;
            update_profile($crate::logic::UpdateProfileRequest) -> $crate::common::User;
            get_user($crate::logic::GetUserRequest) -> $crate::common::User;
            find_user($crate::logic::FindUserRequest) -> $crate::common::User;
            create_conversation($crate::logic::CreateConversationRequest) -> $crate::common::Conversation;
            list_conversations($crate::repo::ListConversationsRequest) -> $crate::repo::ConversationViews;
            update_conversation($crate::logic::UpdateConversationRequest) -> $crate::common::Member;
            create_group($crate::logic::CreateGroupRequest) -> $crate::common::Group;
            get_group($crate::logic::GroupRequest) -> $crate::logic::GroupInfo;
            join_group($crate::logic::GroupRequest) -> $crate::repo::Empty;
            leave_group($crate::logic::GroupRequest) -> $crate::repo::Empty;
            add_group_members($crate::logic::AddGroupMembersRequest) -> $crate::repo::Empty;
            remove_group_member($crate::logic::RemoveGroupMemberRequest) -> $crate::repo::Empty;
            send_message($crate::logic::SendMessageRequest) -> $crate::logic::Ack;
            history($crate::logic::HistoryRequest) -> $crate::repo::MessagePage;
            unread($crate::repo::UnreadRequest) -> $crate::repo::UnreadResponse;
            mark_read($crate::logic::MarkReadRequest) -> $crate::repo::Empty;
            presence($crate::logic::PresenceRequest) -> $crate::logic::PresenceResponse;
        }
    };
}
