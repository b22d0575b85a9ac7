//! `LogicService` over gRPC (and in process): each RPC is the `Logic` method it names. The
//! gateway authenticates the caller and passes the user id in the request.

use gochat_proto::{
    common::{Conversation, Group, Member, User},
    logic::{self as pb, logic_service_server::LogicService},
    repo::{
        ConversationViews, Empty, ListConversationsRequest, MessagePage, UnreadRequest,
        UnreadResponse,
    },
};
use tonic::{Request, Response, Status};

use crate::Logic;

/// One trait method per RPC: `name(logic, request: Type) -> Answer => future`.
macro_rules! rpcs {
    ($($name:ident($this:ident, $req:ident: $request:ty) -> $response:ty => $call:expr;)*) => {
        #[tonic::async_trait]
        impl LogicService for Logic {
            $(
                async fn $name(&self, request: Request<$request>) -> Result<Response<$response>, Status> {
                    let $this = self;
                    let $req = request.into_inner();
                    Ok(Response::new($call.await.map_err(|e| $this.public(e))?))
                }
            )*
        }
    };
}

/// Turns a call answering `()` into one answering the protocol's `Empty`.
async fn empty(
    call: impl Future<Output = Result<(), crate::Error>>,
) -> Result<Empty, crate::Error> {
    call.await.map(|()| Empty {})
}

rpcs! {
    register(this, req: pb::RegisterRequest) -> User => this.register(req);
    login(this, req: pb::LoginRequest) -> pb::TokenPair => this.login(req);
    refresh(this, req: pb::RefreshRequest) -> pb::TokenPair => this.refresh(&req.refresh_token);
    logout(this, req: pb::LogoutRequest) -> Empty
        => async move { this.logout(&req.access_token).await.map(|_| Empty {}) };
    validate_token(this, req: pb::ValidateTokenRequest) -> pb::Session
        => this.validate_token(&req.access_token);
    get_profile(this, req: pb::UserRef) -> User => this.profile(&req.user_id);
    update_profile(this, req: pb::UpdateProfileRequest) -> User => this.update_profile(req);
    get_user(this, req: pb::GetUserRequest) -> User => this.user(req);
    find_user(this, req: pb::FindUserRequest) -> User => this.find_user(req);
    create_conversation(this, req: pb::CreateConversationRequest) -> Conversation
        => this.create_conversation(req);
    list_conversations(this, req: ListConversationsRequest) -> ConversationViews
        => this.conversation_page(req);
    update_conversation(this, req: pb::UpdateConversationRequest) -> Member
        => this.update_conversation(req);
    create_group(this, req: pb::CreateGroupRequest) -> Group => this.create_group(req);
    get_group(this, req: pb::GroupRequest) -> pb::GroupInfo => this.group(req);
    join_group(this, req: pb::GroupRequest) -> Empty => empty(this.join_group(req));
    leave_group(this, req: pb::GroupRequest) -> Empty => empty(this.leave_group(req));
    add_group_members(this, req: pb::AddGroupMembersRequest) -> Empty
        => empty(this.add_group_members(req));
    remove_group_member(this, req: pb::RemoveGroupMemberRequest) -> Empty
        => empty(this.remove_group_member(req));
    send_message(this, req: pb::SendMessageRequest) -> pb::Ack => this.send(req);
    history(this, req: pb::HistoryRequest) -> MessagePage => this.history(req);
    unread(this, req: UnreadRequest) -> UnreadResponse => this.unread_page(req);
    mark_read(this, req: pb::MarkReadRequest) -> Empty
        => async move { this.mark_read(req).await.map(|_| Empty {}) };
    presence(this, req: pb::PresenceRequest) -> pb::PresenceResponse => this.presence(req);
}
