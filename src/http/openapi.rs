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
    modifiers(&BearerAuth, &CommonResponses, &CompatEnforce),
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

/// The answers any endpoint of a kind can give, added where a handler's own
/// list leaves them out: what every authenticated call can get (401, 403,
/// 429, 503), what a body can get (400, 413, 415 when auth is off, 422) and
/// what query parameters can get (422). `/health` and `/ready` take no
/// credentials.
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::HttpMethod;
        use utoipa::openapi::{Ref, RefOr};
        let error = || RefOr::Ref(Ref::from_schema_name("ErrorBody"));
        let response = |description: &str| {
            utoipa::openapi::ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(error()))
                        .build(),
                )
                .build()
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            let open = matches!(path.as_str(), "/health" | "/ready");
            for (method, op) in [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Post, &mut item.post),
            ] {
                let Some(op) = op else { continue };
                if open {
                    // No credentials: an empty requirement overrides the document's.
                    op.security = Some(vec![
                        utoipa::openapi::security::SecurityRequirement::default(),
                    ]);
                    continue;
                }
                let mut add = |code: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| RefOr::T(response(description)));
                };
                add("401", "Missing or bad credentials");
                add("403", "The key lacks the role");
                add("429", "Rate limited; see Retry-After");
                add("503", "Storage unavailable or not keeping up");
                if method == HttpMethod::Post {
                    add("400", "Unreadable JSON");
                    add("413", "Body over the limit");
                    add(
                        "415",
                        "Not sent as application/json (asked only while auth is off)",
                    );
                    add("422", "Wrong fields");
                }
                let has_query = op.parameters.iter().flatten().any(|p| {
                    matches!(p, RefOr::T(p) if matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
                });
                if has_query {
                    add(
                        "422",
                        "A query parameter that is wrong, repeated or not taken here",
                    );
                }
            }
        }
    }
}

/// `POST /enforce`: the **compat** path of `POST /api/v1/enforce`, the same handler.
struct CompatEnforce;

impl utoipa::Modify for CompatEnforce {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let Some(mut item) = doc.paths.paths.get("/api/v1/enforce").cloned() else {
            return;
        };
        if let Some(op) = item.post.as_mut() {
            op.operation_id = Some("enforce_compat".into());
            op.summary = Some("The same as POST /api/v1/enforce (compat path)".into());
        }
        doc.paths.paths.insert("/enforce".into(), item);
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
