//! Ended sessions close their sockets, from outside: on every gateway, however the socket's
//! upgrade and the logout interleave, and on the socket's next frame.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt, future::join_all};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{
    Client, Socket, User,
    scenarios::{Target, code},
};

/// A generous bound on a kicked socket closing: a failure past it, never a measurement.
const CLOSES_WITHIN: Duration = Duration::from_secs(10);

/// A new session of `name`, waiting out the login limits (the loops below log in often).
async fn session(c: &Client, name: &str) -> User {
    loop {
        let (status, body) = c
            .post(
                "/api/v1/auth/login",
                None,
                json!({"username": name, "password": "correct horse"}),
            )
            .await;
        if status == 429 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        assert_eq!(status, 200, "login {name}: {body}");
        return User {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            name: name.to_owned(),
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        };
    }
}

async fn logout(c: &Client, user: &User) {
    let (status, body) = c
        .post("/api/v1/auth/logout", Some(&user.access), json!({}))
        .await;
    assert_eq!(status, 204, "logout: {body}");
}

/// Reads until the server closes the socket, within [`CLOSES_WITHIN`]; the kick's reason.
async fn closes(socket: &mut Socket, what: &str) -> Option<String> {
    tokio::time::timeout(CLOSES_WITHIN, socket.closed())
        .await
        .unwrap_or_else(|_| panic!("{what} stayed open after its session ended"))
}

/// Logging out closes every socket of the session on both gateways, with the reason
/// `logout`, and no socket of the user's other session.
pub(crate) async fn logout_closes_every_socket_of_the_session(t: &Target) {
    let ann = t.a.user("ann").await;
    let other = session(&t.b, &ann.name).await;
    let mut sockets = Vec::new();
    for gateway in [&t.a, &t.b, &t.a, &t.b, &t.a, &t.b] {
        sockets.push(gateway.socket(&ann).await);
    }
    let mut kept = t.b.socket(&other).await;
    logout(&t.a, &ann).await;
    let reasons = join_all(sockets.iter_mut().map(|s| closes(s, "a socket"))).await;
    for reason in reasons {
        assert_eq!(reason.as_deref(), Some("logout"));
    }
    kept.send(json!({"type": "ping"})).await;
    kept.expect("pong").await;
    let (status, body) = t.b.get("/api/v1/users/profile", &other.access).await;
    assert_eq!(status, 200, "the other session lives on: {body}");
}

/// A frame sent on a socket of an ended session gets it kicked with `logout` and closed,
/// never answered. (From outside this cannot be told apart from the kick im-logic sends; the
/// gateway's own check of each frame is what catches a socket that kick missed.)
pub(crate) async fn a_frame_of_an_ended_session_is_kicked(t: &Target) {
    let bob = t.a.user("bob").await;
    let mut socket = t.b.socket(&bob).await;
    logout(&t.a, &bob).await;
    // One frame at once (more could meet a socket closed already, and a refused write can
    // hide the kick frame read after it): it is not served past the kick.
    socket.send(json!({"type": "ping"})).await;
    assert_eq!(
        closes(&mut socket, "a socket sending frames")
            .await
            .as_deref(),
        Some("logout")
    );
}

/// The same for a session ended by its refresh token being used twice.
pub(crate) async fn refresh_reuse_closes_the_sessions_sockets(t: &Target) {
    let cid = t.a.user("cid").await;
    let mut sockets = [t.a.socket(&cid).await, t.b.socket(&cid).await];
    for _ in 0..2 {
        let _ =
            t.b.post(
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": cid.refresh}),
            )
            .await;
    }
    let reasons = join_all(sockets.iter_mut().map(|s| closes(s, "a socket"))).await;
    for reason in reasons {
        assert_eq!(reason.as_deref(), Some("logout"));
    }
}

/// How one socket opened while its session was logged out ended.
enum Raced {
    /// The upgrade was refused: the logout came first.
    Refused,
    /// The socket opened, then was kicked with this reason and closed.
    Closed(Option<String>),
}

/// Opens a socket with `token` and reads it until the server closes it.
async fn open_and_wait(base: &str, token: &str) -> Raced {
    let url = format!("{}/ws?token={token}", base.replace("http://", "ws://"));
    let mut ws = match tokio_tungstenite::connect_async(url).await {
        Ok((ws, _)) => ws,
        Err(WsError::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401, "{response:?}");
            return Raced::Refused;
        }
        Err(e) => panic!("the upgrade failed: {e}"),
    };
    let _ = ws
        .send(Message::text(json!({"type": "ping"}).to_string()))
        .await;
    let mut reason = None;
    let read = async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                if frame["type"] == "kick" {
                    reason = frame["data"]["reason"].as_str().map(str::to_owned);
                }
            }
        }
    };
    tokio::time::timeout(CLOSES_WITHIN, read)
        .await
        .unwrap_or_else(|_| panic!("a socket opened during a logout stayed open"));
    Raced::Closed(reason)
}

/// Sockets opened while their session logs out, many times over: every one is refused or
/// closed (with `logout`), wherever the upgrade's check, the registration and the kick fall.
pub(crate) async fn sockets_racing_a_logout_all_close(t: &Target, rounds: usize) {
    let dan = t.a.user("dan").await;
    let mut opened = 0;
    for round in 0..rounds {
        let user = session(&t.a, &dan.name).await;
        let (gateway, other) = if round % 2 == 0 {
            (&t.a, &t.b)
        } else {
            (&t.b, &t.a)
        };
        let sockets = join_all([
            open_and_wait(&gateway.base, &user.access),
            open_and_wait(&other.base, &user.access),
            open_and_wait(&gateway.base, &user.access),
        ]);
        let (raced, ()) = tokio::join!(sockets, logout(other, &user));
        for outcome in raced {
            match outcome {
                Raced::Refused => {}
                Raced::Closed(reason) => {
                    opened += 1;
                    assert_eq!(reason.as_deref(), Some("logout"), "round {round}");
                }
            }
        }
        let (status, body) = gateway.get("/api/v1/users/profile", &user.access).await;
        assert_eq!((status, code(&body)), (401, 1002), "{body}");
    }
    // Not a timing assertion: the rounds are only worth something if sockets got through.
    eprintln!(
        "{opened} of {} racing sockets opened before the logout",
        rounds * 3
    );
}
