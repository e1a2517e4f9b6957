//! `GET /openapi.json`: the OpenAPI document, generated from the handlers'
//! annotations, so it cannot drift from the routes it describes.

use axum::Json;
use utoipa::OpenApi;

use super::{approvals, enforce, error, ops, policy, sessions};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tame", description = "The policy decision server for AI agents: allow, deny or approve each tool call, with a tamper-evident audit log."),
    paths(
        enforce::enforce, enforce::report_result, enforce::test_post, enforce::test_get,
        sessions::list, sessions::logs_of, sessions::summary, sessions::logs, sessions::export,
        policy::current, policy::validate, policy::reload, policy::versions, policy::version,
        approvals::list, approvals::show, approvals::approve, approvals::deny,
        ops::health, ops::ready, ops::status, ops::metrics, ops::verify, ops::events,
    ),
    components(schemas(enforce::EnforceRequest, enforce::EnforceResponse, error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
