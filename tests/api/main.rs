//! The HTTP surface, driven natively through the router.

mod auth;
mod concurrency;
mod console;
mod health_metrics;
mod helpers;
mod links;
mod redirect;
mod refusals;
mod stats;
mod telemetry;
