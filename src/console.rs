//! The web console: a static single-page app under `/console/`, its files
//! compiled into the component (no CDN, no download at run time).
//!
//! The page talks to the JSON API with the admin token as a Bearer header;
//! the token lives in the browser's `sessionStorage`, never in a URL or a
//! cookie. Every response under the prefix (assets, redirects, errors)
//! carries [`SECURITY_HEADERS`]: a strict CSP without `'unsafe-inline'`, no
//! framing, no sniffing, no referrer.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::App;
use crate::error::AppError;
use crate::gzipped::{Gzipped, gzipped};

/// Where the console lives (the reserved slug `console`).
pub const PREFIX: &str = "/console";

/// The Content-Security-Policy of every console response. `blob:` images
/// are the QR codes, fetched with the Bearer header and shown from memory.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Headers set on every response under [`PREFIX`].
pub const SECURITY_HEADERS: [(header::HeaderName, &str); 5] = [
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    // Small files, revalidated each time: a new build is seen at once.
    (header::CACHE_CONTROL, "no-cache"),
];

/// One file of the console.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Its path under `/console/` (`""` is the page itself).
    pub path: &'static str,
    /// Its file, relative to the crate root.
    pub file: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes, gzipped at build time.
    pub body: Gzipped,
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:literal) => {
        Asset {
            path: $path,
            file: concat!("console/", $file),
            content_type: $type,
            body: gzipped!(concat!("console/", $file)),
        }
    };
}

/// Every file the console serves.
pub const ASSETS: &[Asset] = &[
    asset!("", "index.html", "text/html; charset=utf-8"),
    asset!("app.js", "app.js", "text/javascript; charset=utf-8"),
    asset!(
        "transfer.js",
        "transfer.js",
        "text/javascript; charset=utf-8"
    ),
    // Redirect options, rules and orphan visits.
    asset!("rules.js", "rules.js", "text/javascript; charset=utf-8"),
    asset!("tags.js", "tags.js", "text/javascript; charset=utf-8"),
    asset!("app.css", "app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "favicon.svg", "image/svg+xml"),
    asset!(
        "vendor/uplot/uPlot.iife.min.js",
        "vendor/uplot/uPlot.iife.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "vendor/uplot/uPlot.min.css",
        "vendor/uplot/uPlot.min.css",
        "text/css; charset=utf-8"
    ),
    asset!(
        "vendor/uplot/LICENSE",
        "vendor/uplot/LICENSE",
        "text/plain; charset=utf-8"
    ),
];

/// The asset at `path` under `/console/`, if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The console's routes, to merge into the app's router.
pub fn routes() -> Router<App> {
    // Each route's own 405, so that it too passes through the headers layer.
    let refuse = async || AppError::MethodNotAllowed;
    Router::new()
        .route(PREFIX, get(to_slash).fallback(refuse))
        .route(
            "/console/",
            get(|headers: HeaderMap| serve(String::new(), headers)).fallback(refuse),
        )
        .route(
            "/console/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| serve(path, headers))
                .fallback(refuse),
        )
        .layer(middleware::map_response(security_headers))
}

/// `/console` -> `console/`: relative, so it also works under a proxy's
/// path prefix, and the page's relative asset paths resolve under it.
async fn to_slash() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, "console/")],
    )
        .into_response()
}

async fn serve(path: String, headers: HeaderMap) -> Result<Response, AppError> {
    let asset = asset(&path).ok_or_else(|| AppError::NoRoute)?;
    asset.body.respond(&headers, asset.content_type)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_path_is_unique_and_non_empty() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.body.bytes().unwrap().is_empty(), "{}", a.path);
            assert!(
                ASSETS[i + 1..].iter().all(|b| b.path != a.path),
                "{}",
                a.path
            );
        }
    }

    #[test]
    fn the_csp_forbids_inline_code_and_framing() {
        assert!(CSP.starts_with("default-src 'self'"));
        assert!(CSP.contains("frame-ancestors 'none'"));
        assert!(!CSP.contains("unsafe-inline"));
        assert!(!CSP.contains("unsafe-eval"));
    }

    #[test]
    fn the_page_loads_no_script_or_style_from_elsewhere_and_has_no_inline_code() {
        let page = String::from_utf8(asset("").unwrap().body.bytes().unwrap()).unwrap();
        for attr in ["src=\"", "href=\""] {
            for part in page.split(attr).skip(1) {
                assert!(!part.split('"').next().unwrap().contains("//"), "{part}");
            }
        }
        assert!(!page.contains("<script>") && !page.contains("<style"));
        assert!(!page.contains(" style=") && !page.contains(" onclick="));
    }
}
