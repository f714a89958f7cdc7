//! JSON logs on stdout, one object per line, fields at the top level, so a
//! log shipper (CloudWatch, Loki) can index `request_id` and `status`
//! without parsing nested objects.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber; `filter` is a tracing directive such as `info`
/// or `retainwise_proxy=debug,info`.
pub fn init(filter: &str) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(filter).map_err(|err| format!("setting log (PROXY_LOG): {err}"))?;
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init()
        .map_err(|err| format!("cannot install the logger: {err}"))
}
