//! Every JSON request body of im-gateway's HTTP API, read by the handlers' own `Body`
//! extractor: the first byte picks an endpoint that takes a body (all of them, found in the
//! OpenAPI document), the rest is the body. im-logic is replaced by `AnyToken`, which takes any
//! token and answers every call "not found", so a body either is refused (4xx) or reaches it;
//! never a panic or a 5xx.
#![no_main]
// The harness's own setup (runtime, in-memory providers, the OpenAPI document it reads) panics
// with `expect` when it cannot start: that is a broken harness, never an input under test.

use std::{any::Any, net::SocketAddr, sync::Arc, sync::OnceLock};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{Method, Request, Response, header},
};
use gochat_core::{Context, Env};
use gochat_proto::logic::{Session, logic_service_server::LogicService};
use im_gateway::{Deps, Gateway};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tower_service::Service as _;

/// im-logic as the fuzz target needs it: any token is user 1's session, every other call is
/// "not found".
struct AnyToken;

fn answer<T: 'static>() -> Result<tonic::Response<T>, tonic::Status> {
    let session: Box<dyn Any> = Box::new(Session {
        user_id: "1".into(),
        token_id: "s1".into(),
        expires_at_ms: i64::MAX,
    });
    match session.downcast::<T>() {
        Ok(session) => Ok(tonic::Response::new(*session)),
        Err(_) => Err(tonic::Status::not_found(
            "nothing here: the fuzz target's im-logic",
        )),
    }
}

macro_rules! any_token {
    ($($name:ident($request:ty) -> $response:ty;)*) => {
        #[tonic::async_trait]
        impl LogicService for AnyToken {
            $(
                async fn $name(
                    &self,
                    _: tonic::Request<$request>,
                ) -> Result<tonic::Response<$response>, tonic::Status> {
                    answer()
                }
            )*
        }
    };
}

gochat_proto::logic_rpcs!(any_token);

struct Api {
    runtime: Runtime,
    router: Router,
    /// Every (method, path) whose operation has a request body, path parameters filled in.
    endpoints: Vec<(Method, String)>,
    _ctx: Context,
}

async fn call(router: &Router, request: Request<Body>) -> Response<Body> {
    match router.clone().call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let ctx = Context::new();
        let (router, endpoints) = runtime.block_on(async {
            let cache = gochat_cache::new(
                &ctx,
                gochat_cache::Config::for_env(Env::Development),
                Default::default(),
            )
            .await
            .expect("the memory cache");
            let mq = gochat_mq::new(
                &ctx,
                gochat_mq::Config::for_env(Env::Development),
                Default::default(),
            )
            .await
            .expect("the memory mq");
            let deps = Deps::new(
                Arc::new(AnyToken),
                cache,
                mq,
                gochat_clog::Logger::current(),
            );
            let gateway = Gateway::new(&ctx, "fuzz", deps, im_gateway::Config::default())
                .await
                .expect("a gateway");
            let router = gateway.router();
            let request = Request::get("/api/v1/openapi.json").body(Body::empty());
            let response = call(&router, request.expect("a request")).await;
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await;
            let document: serde_json::Value =
                serde_json::from_slice(&bytes.expect("the document")).expect("JSON");
            (router, endpoints(&document))
        });
        assert!(
            endpoints.len() >= 10,
            "too few body endpoints: {endpoints:?}"
        );
        Api {
            runtime,
            router,
            endpoints,
            _ctx: ctx,
        }
    })
}

/// The operations of an OpenAPI document that take a request body, in the document's order.
fn endpoints(document: &serde_json::Value) -> Vec<(Method, String)> {
    let mut found = Vec::new();
    let paths = document["paths"].as_object().expect("paths");
    for (path, item) in paths {
        let path: Vec<&str> = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "1"
                } else {
                    segment
                }
            })
            .collect();
        for (method, operation) in item.as_object().expect("a path item") {
            if operation.get("requestBody").is_some() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
                found.push((method, path.join("/")));
            }
        }
    }
    found
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let api = api();
    let (method, path) = &api.endpoints[usize::from(pick) % api.endpoints.len()];
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer fuzz")
        .body(Body::from(body.to_vec()))
        .expect("a request");
    let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = api.runtime.block_on(call(&api.router, request));
    let status = response.status();
    assert!(
        !status.is_server_error(),
        "{method} {path} answered {status} to {:?}",
        String::from_utf8_lossy(body)
    );
});
