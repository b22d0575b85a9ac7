//! The OpenAPI 3.1 document of the HTTP API, made from the handlers' own descriptions and
//! served at `GET /api/v1/openapi.json`.

use axum::Json;
use utoipa::{
    Modify, OpenApi,
    openapi::{
        ContentBuilder, RefOr, ResponseBuilder,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use super::{auth, conversations, groups, messages, tickets, users};
use crate::error::ErrorBody;

/// The API's description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "gochat",
        description = "The HTTP API of im-gateway (CONTRACT.md). Errors are `{code, message}`; WebSocket frames are described in docs/services.md.",
    ),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout,
        users::profile, users::update_profile, users::user, users::search,
        conversations::create, conversations::list, conversations::update,
        groups::create, groups::get, groups::join, groups::leave, groups::add_members,
        groups::remove_member,
        messages::send, messages::history, messages::unread, messages::read,
        tickets::issue,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Contract),
)]
pub(crate) struct ApiDoc;

/// What every operation shares: the bearer scheme, and the errors any call can get.
struct Contract;

impl Modify for Contract {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        let error = |description: &str| {
            let content = ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorBody",
                ))))
                .build();
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", content)
                    .build(),
            )
        };
        for item in api.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let secured = operation.security.is_some();
                let responses = &mut operation.responses.responses;
                let mut shared = vec![
                    (
                        "400",
                        "Invalid params: a malformed, mistyped or oversized request (1001)",
                    ),
                    ("429", "Rate limited, with Retry-After (1006)"),
                    ("500", "Internal (1004)"),
                ];
                if secured {
                    shared.push(("401", "No valid access token (1002)"));
                }
                for (status, description) in shared {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error(description));
                }
            }
        }
    }
}

/// `GET /api/v1/openapi.json`.
pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_of_the_contract_is_described() {
        let api = ApiDoc::openapi();
        let json = serde_json::to_value(&api).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        let contract = [
            ("post", "/api/v1/users/register"),
            ("post", "/api/v1/auth/login"),
            ("post", "/api/v1/auth/refresh"),
            ("post", "/api/v1/auth/logout"),
            ("get", "/api/v1/users/profile"),
            ("put", "/api/v1/users/profile"),
            ("get", "/api/v1/users/{id}"),
            ("get", "/api/v1/users/search"),
            ("post", "/api/v1/conversations/create"),
            ("get", "/api/v1/conversations"),
            ("put", "/api/v1/conversations/{id}"),
            ("post", "/api/v1/groups/create"),
            ("get", "/api/v1/groups/{id}"),
            ("post", "/api/v1/groups/{id}/join"),
            ("post", "/api/v1/groups/{id}/leave"),
            ("post", "/api/v1/groups/{id}/members"),
            ("delete", "/api/v1/groups/{id}/members/{user_id}"),
            ("post", "/api/v1/messages/send"),
            ("get", "/api/v1/messages/history"),
            ("get", "/api/v1/messages/unread"),
            ("post", "/api/v1/messages/read"),
            ("post", "/api/v1/ws/ticket"),
        ];
        let paths = json["paths"].as_object().unwrap();
        let described: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(described, contract.len(), "{:?}", paths.keys());
        for (method, path) in contract {
            let operation = &json["paths"][path][method];
            assert!(operation.is_object(), "{method} {path} is not described");
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("400") && responses.contains_key("500"));
            // Every call but registering can be refused for its credentials.
            let register = path.ends_with("register");
            assert_eq!(responses.contains_key("401"), !register, "{method} {path}");
        }
        let register = &json["paths"]["/api/v1/users/register"]["post"];
        assert_eq!(
            register["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/RegisterBody"
        );
        assert!(json["components"]["securitySchemes"]["bearer"].is_object());
    }

    #[test]
    fn both_conversation_lists_are_paged() {
        let json = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (path, body) in [
            ("/api/v1/conversations", "ConversationsBody"),
            ("/api/v1/messages/unread", "UnreadBody"),
        ] {
            let params = json["paths"][path]["get"]["parameters"].as_array().unwrap();
            let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
            assert_eq!(names, ["cursor", "limit"], "{path}");
            let schema = &json["components"]["schemas"][body];
            assert!(schema["properties"]["next_cursor"].is_object(), "{body}");
            let required = schema["required"].as_array().unwrap();
            assert!(!required.iter().any(|r| r == "next_cursor"), "{body}");
        }
    }
}
