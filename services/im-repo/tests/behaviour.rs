//! The repository on every database and cache it runs on: SQLite with the in-process cache
//! (standalone), PostgreSQL with Redis and MariaDB with the in-process cache, both with
//! messages sharded into four tables (distributed). Each case gets databases of its own.

use gochat_core::{Context, Env};
use gochat_db::sea_orm::{ConnectionTrait, Database};
use gochat_proto::{
    common::{Message, Role},
    repo::{self as pb, repo_service_server::RepoService},
};
use gochat_testkit::{Engine, Fixture, behaviour_suite, endpoint};
use im_repo::{Config, Repo};
use tonic::{Code, Request};

struct Cluster {
    db: gochat_db::Config,
    cache: gochat_cache::Config,
    /// The server and database made for the case, dropped at its end.
    created: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Cluster {
    async fn repo(&self) -> Repo {
        self.repo_and_db().await.0
    }

    /// The repository and its database handle (whose statement counter tests read).
    async fn repo_and_db(&self) -> (Repo, gochat_db::Db) {
        let ctx = Context::new();
        let mut options = gochat_db::Options::default().migrator::<im_repo::Migrator>();
        if self.db.sharding.tables.contains_key("messages") {
            options = options.shard_schema(im_repo::messages_shards());
        }
        let db = gochat_db::new(&ctx, self.db.clone(), options)
            .await
            .unwrap();
        let cache = gochat_cache::new(&ctx, self.cache.clone(), Default::default())
            .await
            .unwrap();
        let ids = gochat_uid::new(
            &ctx,
            gochat_uid::Config::for_env(Env::Development),
            Default::default(),
        )
        .await
        .unwrap();
        let mut config = Config::default();
        config.max_group_members = 4;
        let repo = Repo::new(db.clone(), cache, ids, config).await.unwrap();
        (repo, db)
    }

    async fn finish(self, repo: Repo) {
        repo.close().await;
        if let Some((server, name)) = self.created {
            let admin = Database::connect(server.as_str()).await.unwrap();
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
                .await
                .unwrap();
        }
    }
}

fn memory_cache(fx: &Fixture) -> gochat_cache::Config {
    let mut config = gochat_cache::Config::for_env(Env::Development);
    config.backend = gochat_cache::Backend::Memory(gochat_cache::MemoryConfig::named(fx.prefix()));
    config.key_prefix = format!("{}:", fx.prefix());
    config
}

async fn sqlite(fx: Fixture) -> Option<Cluster> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("gochat.db").display()
    );
    Some(Cluster {
        db: gochat_db::Config::with_primary(Env::Development, url),
        cache: memory_cache(&fx),
        created: None,
        _dir: Some(dir),
    })
}

/// A fresh database on the server at `url`, messages sharded into four tables.
async fn server(fx: &Fixture, url: String, cache: gochat_cache::Config) -> Cluster {
    let name = fx.name("repo");
    let admin = Database::connect(url.as_str()).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    let mut db = gochat_db::Config::with_primary(Env::Development, format!("{base}/{name}"));
    db.sharding.tables.insert("messages".into(), 4);
    Cluster {
        db,
        cache,
        created: Some((url, name)),
        _dir: None,
    }
}

async fn postgres_redis(fx: Fixture) -> Option<Cluster> {
    let url = endpoint(Engine::Postgres).await?;
    let redis = endpoint(Engine::Redis).await?;
    let mut cache = memory_cache(&fx);
    cache.backend = gochat_cache::Backend::Redis(Box::new(gochat_cache::RedisConfig::with_url(
        Env::Development,
        redis,
    )));
    Some(server(&fx, url, cache).await)
}

async fn mysql(fx: Fixture) -> Option<Cluster> {
    let url = endpoint(Engine::Mysql).await?;
    let cache = memory_cache(&fx);
    Some(server(&fx, url, cache).await)
}

async fn user(repo: &Repo, name: &str) -> String {
    repo.create_user(Request::new(pb::CreateUserRequest {
        username: name.into(),
        password_hash: format!("hash-of-{name}"),
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner()
    .id
}

fn message(conversation: &str, from: &str, seq: i64, client: &str) -> Message {
    Message {
        message_id: format!("{conversation}-{seq}-{client}"),
        conversation_id: conversation.into(),
        seq,
        from_user_id: from.into(),
        content: format!("hello {seq}"),
        message_type: "text".into(),
        client_msg_id: client.into(),
        created_at_ms: 1_700_000_000_000 + seq,
    }
}

async fn users_are_unique_and_read_through_the_cache(cluster: Cluster, _fx: Fixture) {
    let repo = cluster.repo().await;
    let ann = user(&repo, "ann").await;
    let taken = repo
        .create_user(Request::new(pb::CreateUserRequest {
            username: "ann".into(),
            password_hash: "x".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);

    let get = |id: &str| {
        repo.get_user(Request::new(pb::GetUserRequest {
            user_id: id.to_owned(),
        }))
    };
    assert_eq!(get(&ann).await.unwrap().into_inner().nickname, "ann");
    repo.update_user(Request::new(pb::UpdateUserRequest {
        user_id: ann.clone(),
        nickname: Some("Ann".into()),
        avatar: None,
    }))
    .await
    .unwrap();
    assert_eq!(
        get(&ann).await.unwrap().into_inner().nickname,
        "Ann",
        "the write invalidated the cached user"
    );
    assert_eq!(get("404").await.unwrap_err().code(), Code::NotFound);
    let credentials = repo
        .get_credentials(Request::new(pb::GetCredentialsRequest {
            username: "ann".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(credentials.password_hash, "hash-of-ann");
    let by_name = repo
        .get_user_by_name(Request::new(pb::GetUserByNameRequest {
            username: "ann".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        by_name.id, ann,
        "the user, and no credentials in the answer"
    );
    let unknown = repo
        .get_user_by_name(Request::new(pb::GetUserByNameRequest {
            username: "nobody".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    cluster.finish(repo).await;
}

async fn a_pair_has_one_single_conversation(cluster: Cluster, _fx: Fixture) {
    let repo = cluster.repo().await;
    let (ann, bob, eve) = (
        user(&repo, "ann").await,
        user(&repo, "bob").await,
        user(&repo, "eve").await,
    );
    let open = |user: &str, peer: &str| {
        repo.get_or_create_single(Request::new(pb::GetOrCreateSingleRequest {
            user_id: user.to_owned(),
            peer_user_id: peer.to_owned(),
        }))
    };
    // Both sides at once: one conversation.
    let (a, b) = tokio::join!(open(&ann, &bob), open(&bob, &ann));
    let (a, b) = (a.unwrap().into_inner(), b.unwrap().into_inner());
    assert_eq!(a.id, b.id);
    assert_eq!(open(&ann, &bob).await.unwrap().into_inner().id, a.id);
    let members = repo
        .list_members(Request::new(pb::ListMembersRequest {
            conversation_id: a.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(members.len(), 2);
    let outsider = repo
        .get_member(Request::new(pb::GetMemberRequest {
            conversation_id: a.id.clone(),
            user_id: eve,
        }))
        .await
        .unwrap_err();
    assert_eq!(outsider.code(), Code::NotFound);
    assert_eq!(
        open(&ann, &ann).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    cluster.finish(repo).await;
}

async fn messages_are_stored_once_and_paged_by_seq(cluster: Cluster, _fx: Fixture) {
    let repo = cluster.repo().await;
    let (ann, bob) = (user(&repo, "ann").await, user(&repo, "bob").await);
    let chat = repo
        .get_or_create_single(Request::new(pb::GetOrCreateSingleRequest {
            user_id: ann.clone(),
            peer_user_id: bob.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .id;
    let store = |messages: Vec<Message>| {
        repo.store_messages(Request::new(pb::StoreMessagesRequest { messages }))
    };
    let burst: Vec<Message> = (1..=5)
        .map(|seq| message(&chat, &ann, seq, &format!("c{seq}")))
        .collect();
    let stored = store(burst.clone()).await.unwrap().into_inner().stored;
    assert_eq!(stored, burst);

    // A resend (same client_msg_id, a new seq) in a batch with a new message: the resend is
    // answered with what was stored first, the new one is stored.
    let resend = message(&chat, &ann, 6, "c3");
    let fresh = message(&chat, &bob, 6, "b1");
    let stored = store(vec![resend, fresh.clone()])
        .await
        .unwrap()
        .into_inner()
        .stored;
    assert_eq!(stored[0], burst[2]);
    assert_eq!(stored[1], fresh);
    // Another message with a taken seq is refused, not silently merged.
    let clash = store(vec![message(&chat, &bob, 6, "b2")])
        .await
        .unwrap_err();
    assert_eq!(clash.code(), Code::AlreadyExists);

    let page = |before: Option<i64>, after: Option<i64>, limit: i32| {
        repo.get_messages(Request::new(pb::GetMessagesRequest {
            conversation_id: chat.clone(),
            before_seq: before,
            after_seq: after,
            limit,
            from_seq: 0,
        }))
    };
    let seqs = |page: pb::MessagePage| {
        (
            page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
            page.has_more,
        )
    };
    assert_eq!(
        seqs(page(None, None, 2).await.unwrap().into_inner()),
        (vec![5, 6], true)
    );
    assert_eq!(
        seqs(page(Some(5), None, 10).await.unwrap().into_inner()),
        (vec![1, 2, 3, 4], false)
    );
    assert_eq!(
        seqs(page(None, Some(2), 2).await.unwrap().into_inner()),
        (vec![3, 4], true)
    );
    let max = repo
        .max_seq(Request::new(pb::MaxSeqRequest {
            conversation_id: chat.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .seq;
    assert_eq!(max, 6);

    // Unread is last seq − read seq, and the read pointer only moves forward.
    let read = |seq: i64| {
        repo.set_read_seq(Request::new(pb::SetReadSeqRequest {
            conversation_id: chat.clone(),
            user_id: bob.clone(),
            seq,
        }))
    };
    assert_eq!(read(4).await.unwrap().into_inner().read_seq, 4);
    assert_eq!(read(2).await.unwrap().into_inner().read_seq, 4);
    let unread = repo
        .unread(Request::new(pb::UnreadRequest {
            user_id: bob.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unread.total, 2);
    let views = repo
        .list_conversations(Request::new(pb::ListConversationsRequest {
            user_id: bob,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .conversations;
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].last_seq, 6);
    cluster.finish(repo).await;
}

async fn groups_keep_to_their_size(cluster: Cluster, _fx: Fixture) {
    let repo = cluster.repo().await;
    let mut users = Vec::new();
    for name in ["owner", "m1", "m2", "m3", "m4"] {
        users.push(user(&repo, name).await);
    }
    let group = repo
        .create_group(Request::new(pb::CreateGroupRequest {
            name: "team".into(),
            owner_id: users[0].clone(),
            member_ids: vec![users[1].clone(), users[1].clone(), users[2].clone()],
            max_members: 4,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        group.member_count, 3,
        "the owner and two members, once each"
    );
    let owner = repo
        .get_member(Request::new(pb::GetMemberRequest {
            conversation_id: group.conversation_id.clone(),
            user_id: users[0].clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(owner.role, i32::from(Role::Owner));

    let add = |ids: Vec<String>| {
        repo.add_members(Request::new(pb::AddMembersRequest {
            conversation_id: group.conversation_id.clone(),
            user_ids: ids,
            role: 0,
            self_join: false,
        }))
    };
    assert_eq!(
        add(vec![users[3].clone()])
            .await
            .unwrap()
            .into_inner()
            .members
            .len(),
        1
    );
    let full = add(vec![users[4].clone()]).await.unwrap_err();
    assert_eq!(full.code(), Code::FailedPrecondition);
    let unknown = add(vec!["404".into()]).await.unwrap_err();
    assert_eq!(
        unknown.code(),
        Code::FailedPrecondition,
        "full before unknown"
    );

    let remove = |ban: bool| {
        repo.remove_member(Request::new(pb::RemoveMemberRequest {
            conversation_id: group.conversation_id.clone(),
            user_id: users[3].clone(),
            ban,
        }))
    };
    let join = || {
        repo.add_members(Request::new(pb::AddMembersRequest {
            conversation_id: group.conversation_id.clone(),
            user_ids: vec![users[3].clone()],
            role: 0,
            self_join: true,
        }))
    };
    // Leaving (no ban) lets one join again; removal by an admin bans until an admin adds.
    remove(false).await.unwrap();
    join().await.unwrap();
    remove(true).await.unwrap();
    assert_eq!(
        join().await.unwrap_err().code(),
        Code::FailedPrecondition,
        "a removed member cannot join again by themselves"
    );
    add(vec![users[3].clone()]).await.unwrap();
    remove(false).await.unwrap();
    join().await.unwrap();
    remove(true).await.unwrap();
    assert_eq!(remove(true).await.unwrap_err().code(), Code::NotFound);
    let fetched = repo
        .get_group(Request::new(pb::GetGroupRequest {
            group_id: group.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        fetched.member_count, 3,
        "the cached member list was invalidated"
    );
    cluster.finish(repo).await;
}

/// Every conversation id of `user`'s list, walked `limit` at a time, checking that each page
/// takes a fixed number of statements.
async fn walk_conversations(
    repo: &Repo,
    db: &gochat_db::Db,
    user: &str,
    limit: i32,
) -> Vec<String> {
    let (mut ids, mut cursor) = (Vec::new(), String::new());
    loop {
        let before = db.stats().queries;
        let page = repo
            .list_conversations(Request::new(pb::ListConversationsRequest {
                user_id: user.into(),
                cursor: cursor.clone(),
                limit,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let statements = db.stats().queries - before;
        assert!(statements <= 4, "{statements} statements for one page");
        assert!(page.conversations.len() <= limit as usize);
        ids.extend(
            page.conversations
                .iter()
                .map(|v| v.conversation.clone().unwrap().id),
        );
        if page.next_cursor.is_empty() {
            return ids;
        }
        assert_eq!(
            page.conversations.len(),
            limit as usize,
            "only the last page is short"
        );
        cursor = page.next_cursor;
    }
}

async fn conversation_lists_are_paged(cluster: Cluster, _fx: Fixture) {
    let (repo, db) = cluster.repo_and_db().await;
    let ann = user(&repo, "ann").await;
    let bob = user(&repo, "bob").await;
    // Seven groups of ann's (bob in each), and one single chat.
    let mut chats = Vec::new();
    for i in 0..7 {
        let group = repo
            .create_group(Request::new(pb::CreateGroupRequest {
                name: format!("g{i}"),
                owner_id: ann.clone(),
                member_ids: vec![bob.clone()],
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        chats.push(group.conversation_id);
    }
    let single = repo
        .get_or_create_single(Request::new(pb::GetOrCreateSingleRequest {
            user_id: ann.clone(),
            peer_user_id: bob.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .id;
    chats.push(single.clone());
    // Conversation i gets i + 1 messages, its latest at time 1000 · (i + 1); the last group
    // (index 6) gets none.
    let store = |chat: &str, seq: i64, at: i64| {
        let mut m = message(chat, &bob, seq, &format!("m{seq}-{at}"));
        m.created_at_ms = at;
        repo.store_messages(Request::new(pb::StoreMessagesRequest { messages: vec![m] }))
    };
    for (i, chat) in chats.iter().enumerate() {
        if i == 6 {
            continue;
        }
        for seq in 1..=(i as i64 + 1) {
            store(chat, seq, 1000 * seq).await.unwrap();
        }
    }
    // Pinned first (chat 2), then by latest message, the silent group last.
    repo.update_member(Request::new(pb::UpdateMemberRequest {
        conversation_id: chats[2].clone(),
        user_id: ann.clone(),
        pinned: Some(true),
        ..Default::default()
    }))
    .await
    .unwrap();
    let order: Vec<String> = [2, 7, 5, 4, 3, 1, 0, 6]
        .iter()
        .map(|&i| chats[i].clone())
        .collect();
    for limit in [1, 3, 8, 50] {
        assert_eq!(
            walk_conversations(&repo, &db, &ann, limit).await,
            order,
            "limit {limit}"
        );
    }

    // A page has the last message and the read pointer of each conversation.
    let list = |cursor: &str, limit: i32| {
        repo.list_conversations(Request::new(pb::ListConversationsRequest {
            user_id: ann.clone(),
            cursor: cursor.to_owned(),
            limit,
            ..Default::default()
        }))
    };
    let first = list("", 3).await.unwrap().into_inner();
    let single_view = &first.conversations[1];
    assert_eq!(single_view.last_seq, 8);
    assert_eq!(single_view.last_message.as_ref().unwrap().seq, 8);
    assert_eq!(single_view.member.as_ref().unwrap().user_id, ann);

    // The cursor is the sort key: the same page again, and activity elsewhere never repeats
    // what was seen (a conversation that became the latest moves ahead of the cursor).
    let second = |cursor: String| async move { list(&cursor, 3).await };
    let ids = |views: &pb::ConversationViews| -> Vec<String> {
        views
            .conversations
            .iter()
            .map(|v| v.conversation.clone().unwrap().id)
            .collect()
    };
    let again = second(first.next_cursor.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&again), order[3..6]);
    assert_eq!(
        again,
        second(first.next_cursor.clone())
            .await
            .unwrap()
            .into_inner()
    );
    store(&chats[0], 2, 99_000).await.unwrap();
    let moved = second(first.next_cursor.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ids(&moved),
        [order[3].clone(), order[4].clone(), order[5].clone()]
    );
    let rest = second(moved.next_cursor.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ids(&rest),
        [order[7].clone()],
        "chat 0 moved ahead: not listed twice"
    );

    // One conversation's view, whatever the cursor.
    let one = repo
        .list_conversations(Request::new(pb::ListConversationsRequest {
            user_id: ann.clone(),
            cursor: "not hex".into(),
            conversation_ids: vec![chats[4].clone()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&one), [chats[4].clone()]);

    // Unread: by conversation id, the total over all pages in every page.
    for (i, chat) in chats.iter().enumerate().take(3) {
        repo.set_read_seq(Request::new(pb::SetReadSeqRequest {
            conversation_id: chat.clone(),
            user_id: ann.clone(),
            seq: i as i64,
        }))
        .await
        .unwrap();
    }
    // Stored: chat 0 has 2, chat i (1 ≤ i ≤ 5) i + 1, chat 6 none, the single chat 8; read:
    // chat 0 up to 0, chat 1 to 1, chat 2 to 2.
    let total = 2 + (2 - 1) + (3 - 2) + 4 + 5 + 6 + 8;
    let (mut seen, mut sum, mut cursor) = (Vec::new(), 0, String::new());
    loop {
        let before = db.stats().queries;
        let page = repo
            .unread(Request::new(pb::UnreadRequest {
                user_id: ann.clone(),
                cursor: cursor.clone(),
                limit: 3,
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(
            db.stats().queries - before <= 3,
            "a fixed number of statements"
        );
        assert_eq!(page.total, total, "the total over every conversation");
        sum += page.conversations.iter().map(|c| c.unread).sum::<i64>();
        seen.extend(page.conversations.into_iter().map(|c| c.conversation_id));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(sum, total);
    let mut sorted = chats.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "every conversation once, by id");

    // A malformed cursor, or a page over 200, is refused.
    let bad = repo
        .unread(Request::new(pb::UnreadRequest {
            user_id: ann.clone(),
            cursor: first.next_cursor.clone(),
            limit: 3,
        }))
        .await
        .unwrap_err();
    assert_eq!(
        bad.code(),
        Code::InvalidArgument,
        "a list's cursor is not unread's"
    );
    let big = list("", 201).await.unwrap_err();
    assert_eq!(big.code(), Code::InvalidArgument);
    cluster.finish(repo).await;
}

behaviour_suite! {
    backends: [sqlite, postgres_redis, mysql],
    cases: [
        users_are_unique_and_read_through_the_cache,
        a_pair_has_one_single_conversation,
        messages_are_stored_once_and_paged_by_seq,
        groups_keep_to_their_size,
        conversation_lists_are_paged,
    ],
}
