//! The repository on every database and cache it runs on: SQLite with the in-process cache
//! (standalone), PostgreSQL with Redis and MariaDB with the in-process cache, both with
//! messages sharded into four tables (distributed). Each case gets databases of its own.

use std::sync::atomic::{AtomicU64, Ordering};

use gochat_core::{Context, Env};
use gochat_db::{
    sea_orm::{ConnectionTrait, Database},
    sea_orm_migration::MigratorTrait,
};
use gochat_proto::{
    common::{Message, Role},
    repo::{self as pb, repo_service_server::RepoService},
};
use gochat_testkit::{Engine, Fixture, behaviour_suite, endpoint};
use im_repo::{Config, Migrator, Repo};
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
        let mut options = gochat_db::Options::default().migrator::<Migrator>();
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

/// A message as im-logic hands it over: no seq, a message id of its own (a resend gets a new
/// one, as a real resend does).
fn draft(conversation: &str, from: &str, client: &str) -> Message {
    static IDS: AtomicU64 = AtomicU64::new(0);
    let n = IDS.fetch_add(1, Ordering::Relaxed);
    Message {
        seq: 0,
        message_id: format!("{conversation}-{from}-{client}-{n}"),
        ..message(conversation, from, 0, client)
    }
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
        .map(|i| draft(&chat, &ann, &format!("c{i}")))
        .collect();
    let answer = store(burst.clone()).await.unwrap().into_inner();
    assert_eq!(answer.resent, vec![false; 5]);
    let seqs: Vec<i64> = answer.stored.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "seqs are assigned in request order");
    for (stored, sent) in answer.stored.iter().zip(&burst) {
        assert_eq!(
            stored,
            &Message {
                seq: stored.seq,
                ..sent.clone()
            }
        );
    }
    let first = answer.stored;

    // A resend of c3 (under a new message id), a new message, and that new message again in
    // the same request: the resend and the repeat are answered with the message stored first
    // and take no seq.
    let fresh = draft(&chat, &bob, "b1");
    let answer = store(vec![
        draft(&chat, &ann, "c3"),
        fresh.clone(),
        draft(&chat, &bob, "b1"),
    ])
    .await
    .unwrap()
    .into_inner();
    assert_eq!(answer.resent, [true, false, true]);
    assert_eq!(answer.stored[0], first[2]);
    assert_eq!(answer.stored[1], Message { seq: 6, ..fresh });
    assert_eq!(answer.stored[2], answer.stored[1]);

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

/// A conversation's stored messages, oldest first (up to 100).
async fn history(repo: &Repo, conversation: &str) -> Vec<Message> {
    repo.get_messages(Request::new(pb::GetMessagesRequest {
        conversation_id: conversation.to_owned(),
        after_seq: Some(0),
        limit: 100,
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner()
    .messages
}

async fn group_chat(repo: &Repo, owner: &str, name: &str) -> String {
    repo.create_group(Request::new(pb::CreateGroupRequest {
        name: name.into(),
        owner_id: owner.to_owned(),
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner()
    .conversation_id
}

async fn seqs_are_contiguous_across_batches_and_concurrent_stores(cluster: Cluster, _fx: Fixture) {
    let repo = cluster.repo().await;
    let (ann, bob) = (user(&repo, "ann").await, user(&repo, "bob").await);
    let (a, b) = (
        group_chat(&repo, &ann, "a").await,
        group_chat(&repo, &bob, "b").await,
    );
    // One burst to both: each conversation counts on its own; a seq given is not used.
    let mut given = draft(&a, &ann, "given");
    given.seq = 99;
    let burst = vec![draft(&b, &bob, "b0"), given, draft(&a, &ann, "a0")];
    let answer = repo
        .store_messages(Request::new(pb::StoreMessagesRequest { messages: burst }))
        .await
        .unwrap()
        .into_inner();
    let seqs: Vec<i64> = answer.stored.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 1, 2]);

    // Eight callers at once, each a burst to both conversations, and each with the same
    // client_msg_id of ann's in `a` (a client resending to several instances).
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8 {
        let repo = repo.clone();
        let burst = vec![
            draft(&a, &ann, &format!("t{t}-1")),
            draft(&b, &bob, &format!("t{t}")),
            draft(&a, &ann, "shared"),
            draft(&a, &ann, &format!("t{t}-2")),
        ];
        tasks.spawn(async move {
            repo.store_messages(Request::new(pb::StoreMessagesRequest { messages: burst }))
                .await
                .map(tonic::Response::into_inner)
        });
    }
    let mut shared = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap().unwrap();
        assert_eq!(answer.stored.len(), 4);
        assert!(
            answer.stored[0].seq < answer.stored[3].seq,
            "request order within a conversation"
        );
        assert!(
            !answer.resent[0] && !answer.resent[3],
            "their own messages are new"
        );
        shared.push((answer.stored[2].clone(), answer.resent[2]));
    }
    let firsts: Vec<_> = shared.iter().filter(|(_, resent)| !resent).collect();
    assert_eq!(firsts.len(), 1, "one caller stored the shared message");
    assert!(
        shared.iter().all(|(m, _)| *m == firsts[0].0),
        "every other caller was answered with it"
    );

    // Stored: a 2 + 8 × 2 + 1, b 1 + 8; seqs 1..=n with no hole and no repeat.
    for (chat, n) in [(&a, 19), (&b, 9)] {
        let stored = history(&repo, chat).await;
        let seqs: Vec<i64> = stored.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=n).collect::<Vec<i64>>());
    }
    let shared_stored = history(&repo, &a)
        .await
        .into_iter()
        .filter(|m| m.client_msg_id == "shared")
        .count();
    assert_eq!(shared_stored, 1);
    cluster.finish(repo).await;
}

async fn a_failed_store_takes_no_seq(cluster: Cluster, _fx: Fixture) {
    let repo = cluster.repo().await;
    let ann = user(&repo, "ann").await;
    let chat = group_chat(&repo, &ann, "a").await;
    let store = |messages: Vec<Message>| {
        repo.store_messages(Request::new(pb::StoreMessagesRequest { messages }))
    };
    store(vec![draft(&chat, &ann, "m1")]).await.unwrap();

    // The conversation's counter is advanced first (ids sort before `~`), then the unknown
    // conversation fails the transaction: all of it rolls back.
    let failed = store(vec![
        draft(&chat, &ann, "m2"),
        draft("~no-such-conversation", &ann, "x"),
    ])
    .await
    .unwrap_err();
    assert_eq!(failed.code(), Code::NotFound);
    // Refused before any statement.
    let mut bad = draft(&chat, &ann, "m3");
    bad.client_msg_id.clear();
    let refused = store(vec![draft(&chat, &ann, "m4"), bad])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);

    let answer = store(vec![draft(&chat, &ann, "m2")])
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.resent,
        [false],
        "m2 was not stored by the failed call"
    );
    assert_eq!(answer.stored[0].seq, 2, "and the failed calls took no seq");
    let stored: Vec<(i64, String)> = history(&repo, &chat)
        .await
        .into_iter()
        .map(|m| (m.seq, m.client_msg_id))
        .collect();
    assert_eq!(stored, [(1, "m1".to_owned()), (2, "m2".to_owned())]);
    cluster.finish(repo).await;
}

/// A message stored with a seq the counter has not reached (a writer from before the counter,
/// during a rolling upgrade): the clash rolls the burst back, the counter is moved past it,
/// and the burst is stored on its next try after it.
async fn a_seq_taken_behind_the_counter_is_stepped_over(cluster: Cluster, _fx: Fixture) {
    let (repo, db) = cluster.repo_and_db().await;
    let ann = user(&repo, "ann").await;
    let chat = group_chat(&repo, &ann, "a").await;
    let table = db
        .shard("messages", chat.as_str())
        .map_or("messages".to_owned(), |shard| shard.name().to_owned());
    db.connection()
        .execute_unprepared(&format!(
            "INSERT INTO {table} (id, conversation_id, seq, from_user_id, content, message_type, \
             client_msg_id, created_at_ms) VALUES ('old-1', '{chat}', 1, '{ann}', 'hi', 'text', \
             'old', 0)"
        ))
        .await
        .unwrap();
    let answer = repo
        .store_messages(Request::new(pb::StoreMessagesRequest {
            messages: vec![draft(&chat, &ann, "new"), draft(&chat, &ann, "newer")],
        }))
        .await
        .unwrap()
        .into_inner();
    let seqs: Vec<i64> = answer.stored.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(answer.resent, [false, false]);
    let stored: Vec<String> = history(&repo, &chat)
        .await
        .into_iter()
        .map(|m| m.client_msg_id)
        .collect();
    assert_eq!(stored, ["old", "new", "newer"]);
    cluster.finish(repo).await;
}

async fn the_migration_sets_counters_from_stored_messages(cluster: Cluster, _fx: Fixture) {
    // The schema as it was before the counters, with messages in it.
    let before = Database::connect(cluster.db.primary.as_str())
        .await
        .unwrap();
    Migrator::up(&before, Some(4)).await.unwrap();
    let ctx = Context::new();
    let mut config = cluster.db.clone();
    config.auto_migrate = false;
    let sharded = config.sharding.tables.contains_key("messages");
    let mut options = gochat_db::Options::default();
    if sharded {
        options = options.shard_schema(im_repo::messages_shards());
    }
    // No migrator: this makes the shard tables only.
    let tables = gochat_db::new(&ctx, config, options).await.unwrap();
    tables.migrate().await.unwrap();
    let table_of = |conversation: &str| {
        tables
            .shard("messages", conversation)
            .map_or("messages".to_owned(), |shard| shard.name().to_owned())
    };
    let insert = |table: String, conversation: &str, seq: i64| {
        format!(
            "INSERT INTO {table} (id, conversation_id, seq, from_user_id, content, message_type, \
             client_msg_id, created_at_ms) VALUES ('{conversation}-{seq}', '{conversation}', \
             {seq}, 'u', 'hi', 'text', 'old-{seq}', 0)"
        )
    };
    let mut statements = Vec::new();
    for chat in ["c-a", "c-b", "c-c"] {
        statements.push(format!(
            "INSERT INTO conversations (id, kind, name, created_at_ms) \
             VALUES ('{chat}', 2, '{chat}', 0)"
        ));
    }
    for seq in 1..=3 {
        statements.push(insert(table_of("c-a"), "c-a", seq));
    }
    for seq in [2, 7] {
        statements.push(insert(table_of("c-b"), "c-b", seq));
    }
    if sharded {
        // A row left in `messages` from before sharding counts too.
        statements.push(insert("messages".to_owned(), "c-b", 9));
    }
    for statement in statements {
        before.execute_unprepared(&statement).await.unwrap();
    }
    Migrator::up(&before, None).await.unwrap();
    before.close().await.unwrap();
    tables.close().await;

    let repo = cluster.repo().await;
    let next = if sharded { 10 } else { 8 };
    for (chat, expected) in [("c-a", 4), ("c-b", next), ("c-c", 1)] {
        let answer = repo
            .store_messages(Request::new(pb::StoreMessagesRequest {
                messages: vec![draft(chat, "u", "new")],
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.stored[0].seq, expected, "the next seq of {chat}");
    }
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
        seqs_are_contiguous_across_batches_and_concurrent_stores,
        a_failed_store_takes_no_seq,
        a_seq_taken_behind_the_counter_is_stepped_over,
        the_migration_sets_counters_from_stored_messages,
    ],
}
