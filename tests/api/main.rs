//! The HTTP surface, driven natively through the router.

mod auth;
mod concurrency;
mod console;
mod corrupt;
mod health_metrics;
mod helpers;
mod keys;
mod links;
mod outbox;
mod redirect;
mod redirect_options;
mod refusals;
mod resilience;
mod stats;
mod tags;
mod telemetry;
mod transfer;
