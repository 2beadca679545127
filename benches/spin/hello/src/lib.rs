//! Hello world: the cost of Spin's HTTP path and an instance, nothing else.

use spin_sdk::http::{IntoResponse, Request};

#[spin_sdk::http_service]
async fn handle(_request: Request) -> impl IntoResponse {
    http::Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        // Without it spin-sdk streams the body chunked, and the final chunk,
        // written apart, waits out the client's delayed ACK (~40 ms p99).
        .header("content-length", "5")
        .body("hello".to_string())
        .unwrap()
}
