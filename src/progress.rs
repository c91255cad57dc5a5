//! Progress output shared by every stage: the log set-up, and the
//! collapsible log group each pipeline stage opens when the run is a GitHub
//! Action (`::group::` / `::endgroup::`). The front-end turns groups on
//! ([`enable_groups`]); stages only call [`stage`]. Like ripgrep's shared
//! output state, this is process-wide and sits at the bottom: stages never
//! call up into a front-end to report progress. Imports nothing of this
//! crate.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether pipeline stages print `::group::` markers (set by the action run).
static GROUPS: AtomicBool = AtomicBool::new(false);
/// Whether a stage group is open.
static OPEN: AtomicBool = AtomicBool::new(false);

/// Starts a collapsible log group for a pipeline stage (closing the previous
/// one) when groups are on; does nothing on the command line.
pub fn stage(name: &str) {
    if !GROUPS.load(Ordering::SeqCst) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if OPEN.swap(true, Ordering::SeqCst) {
        let _ = writeln!(out, "::endgroup::");
    }
    let _ = writeln!(out, "::group::{}", escape(name));
    let _ = out.flush();
}

/// Turns stage groups on; the front-end has opened (and titled) the first
/// group itself.
pub fn enable_groups() {
    OPEN.store(true, Ordering::SeqCst);
    GROUPS.store(true, Ordering::SeqCst);
}

/// Closes the open stage group, if any, and stops printing stage groups.
pub fn end_groups() {
    GROUPS.store(false, Ordering::SeqCst);
    if OPEN.swap(false, Ordering::SeqCst) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "::endgroup::");
        let _ = out.flush();
    }
}

fn escape(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Libraries that hold credentials and print them in their own debug logs
/// (opendal's S3 backend prints its credential provider with the secret key,
/// seen with `ANALYTICS_LOG=debug`): never logged below `info`, whatever
/// `ANALYTICS_LOG` asks.
const CAPPED_AT_INFO: &[&str] = &[
    "opendal",
    "reqsign",
    "reqsign_core",
    "reqsign_aws_v4",
    "iceberg",
    "iceberg_catalog_rest",
    "reqwest",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "octocrab",
    "tower",
];

/// Logs (level from `ANALYTICS_LOG`, default `info`) to `writer`.
pub fn init_logging_to<W>(writer: W, ansi: bool)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("ANALYTICS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for target in CAPPED_AT_INFO {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi)
        .without_time()
        .try_init();
}
