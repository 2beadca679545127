//! The tutorial's redirect: open the default key-value store, get the slug's
//! URL, answer 302 (or 404). `PUT /{slug}` with the URL as the body seeds a
//! link (the benchmark does it once, before it measures).

use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::key_value::Store;

/// An empty response. The explicit `content-length` matters: without it
/// spin-sdk streams the body chunked, and the final chunk, written apart,
/// waits out the client's delayed ACK (a ~40 ms p99 under load).
fn answer(status: u16, location: Option<&str>) -> http::Response<String> {
    let mut builder = http::Response::builder()
        .status(status)
        .header("content-length", "0");
    if let Some(location) = location {
        builder = builder.header("location", location);
    }
    builder.body(String::new()).unwrap()
}

#[spin_sdk::http_service]
async fn handle(request: Request) -> impl IntoResponse {
    let slug = request.uri().path().trim_start_matches('/').to_owned();
    let Ok(store) = Store::open_default().await else {
        return answer(500, None);
    };
    if request.method() == http::Method::PUT {
        let Ok(url) = request.into_body().bytes().await else {
            return answer(400, None);
        };
        return match store.set(&slug, &url).await {
            Ok(()) => answer(201, None),
            Err(_) => answer(500, None),
        };
    }
    match store.get(&slug).await {
        Ok(Some(url)) => answer(302, std::str::from_utf8(&url).ok()),
        Ok(None) => answer(404, None),
        Err(_) => answer(500, None),
    }
}
