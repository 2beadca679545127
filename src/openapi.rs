//! The OpenAPI 3.1 description of the HTTP API, generated from the code.
//!
//! Every handler in [`crate::http`] carries a `#[utoipa::path]` attribute and
//! every request and response type derives `utoipa::ToSchema`; `ApiDoc`
//! gathers them. The description is served, without the admin token (it
//! holds no secret and is the same for every deployment), at
//! `GET /api/openapi.json`. Error answers are all [`ErrorBody`]; the API's
//! routes need the `bearer` security scheme (the `admin_token`).
//!
//! utoipa is a native-only (build-time) concern: building the description at
//! run time cost the component ~0.3 MB of code. The attributes are
//! `cfg_attr(not(target_arch = "wasm32"), ...)`, and every build serves the
//! committed `openapi.json` at the crate root ([`DESCRIPTION`]). A native
//! golden-file test proves that file is byte for byte what utoipa generates
//! from the code; after changing a handler or type, regenerate it with
//! `UPDATE_OPENAPI=1 cargo test --lib openapi`.
//!
//! A unit test below compares the router's `/api` routes with the
//! description's paths and methods: a route added without a
//! `#[utoipa::path]` (or missing from `ApiDoc`'s `paths(...)`) fails it.

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use crate::app::App;
use crate::error::AppError;
#[cfg(not(target_arch = "wasm32"))]
use crate::error::{ErrorBody, ErrorDetail};
use crate::gzipped::gzipped;
#[cfg(not(target_arch = "wasm32"))]
use crate::health::Health;
#[cfg(not(target_arch = "wasm32"))]
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
#[cfg(not(target_arch = "wasm32"))]
use utoipa::{Modify, OpenApi};

/// Where the description is served.
pub const PATH: &str = "/api/openapi.json";

/// The committed description (`openapi.json`); the golden-file test below
/// keeps it equal to [`generate`]'s output. Native only: the component
/// carries it gzipped ([`serve`]).
#[cfg(not(target_arch = "wasm32"))]
pub const DESCRIPTION: &str = include_str!("../openapi.json");

/// The description: every path of the API and the schemas they use.
#[cfg(not(target_arch = "wasm32"))]
#[derive(OpenApi)]
#[openapi(
    info(
        title = "shortener",
        description = "A self-hosted, instrumented URL shortener. Every `/api` route but this \
                       description needs `Authorization: Bearer <key>`: an API key \
                       (`viewer`: every GET; `editor`: also link writes and imports; `admin`: also keys) \
                       or the `admin_token` (an admin key). A role that is not enough is a \
                       403 `forbidden`. Every error answer is \
                       `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        crate::http::links_api::create_link,
        crate::http::links_api::list_links,
        crate::http::links_api::get_link,
        crate::http::links_api::update_link,
        crate::http::links_api::delete_link,
        crate::http::links_api::link_stats,
        crate::http::links_api::link_qr,
        crate::http::keys_api::create_key,
        crate::http::keys_api::list_keys,
        crate::http::keys_api::revoke_key,
        crate::http::transfer_api::export_links,
        crate::http::transfer_api::export_clicks,
        crate::http::transfer_api::import_links,
        crate::http::transfer_api::whoami,
        crate::http::tags_api::list_tags,
        crate::http::tags_api::rename_tag,
        crate::http::tags_api::delete_tag,
        crate::http::redirect,
        crate::http::ops::health,
        crate::http::ops::metrics_endpoint,
        // Orphan visits (`orphans`).
        crate::http::orphans_api::orphan_visits,
        serve,
    ),
    components(schemas(ErrorBody, ErrorDetail, Health)),
    modifiers(&BearerAuth),
    tags(
        (name = "links", description = "Create, list, read, change and delete links; their stats and QR codes."),
        (name = "keys", description = "API keys with roles (admin only), and who the caller is."),
        (name = "transfer", description = "Export links and clicks (CSV or JSON, streamed); import other shorteners' exports."),
        (name = "tags", description = "Tags on links: list them, rename or remove one everywhere."),
        (name = "redirect", description = "The short links themselves."),
        (name = "orphans", description = "Requests to the redirect that found no link."),
        (name = "operations", description = "Health, metrics and this description."),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme (the `admin_token`).
#[cfg(not(target_arch = "wasm32"))]
struct BearerAuth;

#[cfg(not(target_arch = "wasm32"))]
impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (`shk_...`, from `POST /api/keys`) or the `admin_token` Spin variable."))
                    .build(),
            ),
        );
    }
}

/// The description as utoipa generates it from the code (pretty JSON and a
/// final newline): what `openapi.json` must hold.
#[cfg(not(target_arch = "wasm32"))]
pub fn generate() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the description serialises");
    json.push('\n');
    json
}

/// The description's route, to merge into the app's router.
pub fn routes() -> Router<App> {
    Router::new().route(PATH, get(serve))
}

/// `GET /api/openapi.json`: this description.
#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "This OpenAPI description.", content_type = "application/json", body = Object),
    )
))]
pub async fn serve(headers: HeaderMap) -> Result<Response, AppError> {
    gzipped!("openapi.json").respond(&headers, "application/json")
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::collections::BTreeSet;

    use axum::response::IntoResponse;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::error::AppError;
    use crate::native::TestHost;

    fn spec() -> Value {
        serde_json::from_str(&generate()).unwrap()
    }

    #[test]
    fn the_committed_openapi_json_is_byte_identical_to_what_utoipa_generates() {
        let generated = generate();
        if generated == DESCRIPTION {
            return;
        }
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&file, &generated).unwrap();
            panic!(
                "rewrote {} from the code: rebuild and run the tests again, then commit it",
                file.display()
            );
        }
        panic!(
            "{} (served by the component) is not what utoipa generates from the \
             handlers and types: regenerate it with \
             `UPDATE_OPENAPI=1 cargo test --lib openapi`, review the diff and commit it",
            file.display()
        );
    }

    async fn app() -> (axum::Router, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let vars = [("admin_token", "openapi-test-token-0123456789abcdef")];
        let host = TestHost::start(dir.path(), &vars, time::OffsetDateTime::now_utc())
            .await
            .unwrap();
        (host.router(), dir)
    }

    /// The `/api` paths the router serves, from its own route table.
    fn router_api_paths(router: &axum::Router) -> BTreeSet<String> {
        // axum exposes its route table only through `Debug`
        // (`paths: {RouteId(..): "/api/links", ...}`): take every quoted
        // string that starts with `/api`.
        let dump = format!("{router:?}");
        dump.split('"')
            .filter(|s| s.starts_with("/api"))
            .map(str::to_owned)
            .collect()
    }

    const METHODS: [Method; 5] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];

    #[tokio::test]
    async fn every_api_route_of_the_router_is_in_the_description_and_nothing_else() {
        let (router, _dir) = app().await;
        let paths = router_api_paths(&router);
        assert!(
            paths.contains("/api/links") && paths.contains("/api/links/{slug}"),
            "the route table could not be read from Debug: {paths:?}"
        );
        // Methods: what the router does not answer 405 to.
        let mut routed = BTreeSet::new();
        for path in &paths {
            let concrete = path.replace("{slug}", "some-slug");
            for method in METHODS {
                let request = Request::builder()
                    .method(method.clone())
                    .uri(&concrete)
                    .body(Body::empty())
                    .unwrap();
                let response = router.clone().oneshot(request).await.unwrap();
                if response.status() != StatusCode::METHOD_NOT_ALLOWED {
                    routed.insert(format!("{} {path}", method.as_str().to_lowercase()));
                }
            }
        }
        let spec = spec();
        let described: BTreeSet<String> = spec["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(path, _)| path.starts_with("/api"))
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|m| METHODS.iter().any(|x| x.as_str().eq_ignore_ascii_case(m)))
                    .map(move |m| format!("{m} {path}"))
            })
            .collect();
        assert_eq!(
            routed, described,
            "routes under /api (left) and the OpenAPI description (right) differ: \
             add #[utoipa::path] to the handler and list it in ApiDoc's paths(...)"
        );
    }

    #[test]
    fn every_api_operation_but_the_description_needs_the_bearer_token() {
        let spec = spec();
        assert_eq!(
            spec["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let secured = op["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
                let public = !path.starts_with("/api/") || path == "/api/openapi.json";
                assert_eq!(secured, !public, "{method} {path}");
            }
        }
    }

    #[test]
    fn every_error_answer_is_documented_with_the_error_schema() {
        let spec = spec();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    // `/health`'s 503 is its own body, naming the store.
                    let health = path == "/health" && status == "503";
                    if (status.starts_with('4') || status.starts_with('5')) && !health {
                        let schema = &response["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(
                            schema, "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn the_error_schema_is_the_body_every_app_error_writes() {
        let errors = [
            AppError::validation(crate::error::ErrorCode::InvalidUrl, "m"),
            AppError::NoLink,
            AppError::MethodNotAllowed,
            AppError::PayloadTooLarge,
            AppError::UnsupportedMediaType,
            AppError::Internal(anyhow::anyhow!("cause")),
        ];
        for error in errors {
            let response = error.into_response();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
            assert!(
                body.error
                    .code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
    }

    #[tokio::test]
    async fn the_description_is_served_without_a_token() {
        let (router, _dir) = app().await;
        let request = Request::builder().uri(PATH).body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let served: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(served, spec());
        assert_eq!(served["openapi"], "3.1.0");
    }

    #[test]
    fn the_description_names_every_route_of_the_readme() {
        let spec = spec();
        for path in [
            "/api/links",
            "/api/links/{slug}",
            "/api/links/{slug}/stats",
            "/api/links/{slug}/qr",
            "/{slug}",
            "/health",
            "/metrics",
            PATH,
        ] {
            assert!(spec["paths"].get(path).is_some(), "{path}");
        }
    }
}
