//! wasi:otel bridge (placeholder until the bridge lands).

/// Initialises tracing export once per instance.
pub fn init() {}
