//! The process log on standard error: `RUST_LOG` filters (default `info`), `log.format`
//! chooses text or one JSON object per line, colour only on a terminal (never in the journal
//! or a file), and the `log` records of libraries (cryptoki) are forwarded with their levels
//! put right.

use hutong::config::LogFormat;
use std::io::IsTerminal;

/// Installs the subscriber and the `log` bridge; before any command runs.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            tracing::subscriber::set_global_default(builder.with_ansi(colour).finish())
        }
        LogFormat::Json => tracing::subscriber::set_global_default(
            builder.json().flatten_event(true).with_ansi(false).finish(),
        ),
    };
    if installed.is_ok() && log::set_logger(&LOG_BRIDGE).is_ok() {
        // `log` hands every record up to this level to the bridge without asking `enabled`:
        // at `Trace` each request paid for formatting the trace records of sled and rustls
        // only for the filter to drop them. [`level`] never makes a record less verbose, so
        // the filter's most verbose level is the bound.
        use tracing_log::AsLog;
        log::set_max_level(tracing::level_filters::LevelFilter::current().as_log());
    }
}

static LOG_BRIDGE: LogBridge = LogBridge;

/// Forwards `log` records into tracing (as `tracing_log::LogTracer` does), after [`level`].
struct LogBridge;

/// The level a library's record is logged at. cryptoki logs at `error` every value a PKCS#11
/// module reports that it has no name for (dozens of mechanisms at each start against
/// SoftHSM2) while converting enumerations; nothing failed, so those are debug. Its other
/// records (a session that did not close) are warnings: the failures that matter come back
/// to hutong as errors and are logged there.
fn level(target: &str, level: log::Level) -> log::Level {
    let cryptoki = target == "cryptoki" || target.starts_with("cryptoki::");
    if !cryptoki || level > log::Level::Warn {
        return level;
    }
    let conversion = ["cryptoki::mechanism", "cryptoki::object"]
        .iter()
        .any(|m| target.starts_with(m));
    if conversion {
        log::Level::Debug
    } else {
        log::Level::Warn
    }
}

impl log::Log for LogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        use tracing_log::AsTrace;
        level(metadata.target(), metadata.level()).as_trace()
            <= tracing::level_filters::LevelFilter::current()
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = level(record.target(), record.level());
        let _ = tracing_log::format_trace(
            &log::Record::builder()
                .args(*record.args())
                .level(level)
                .target(record.target())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::level;
    use log::Level;

    #[test]
    fn cryptokis_conversion_noise_is_debug_and_other_libraries_keep_their_levels() {
        assert_eq!(level("cryptoki::mechanism", Level::Error), Level::Debug);
        assert_eq!(level("cryptoki::object", Level::Error), Level::Debug);
        assert_eq!(
            level("cryptoki::session::session_management", Level::Error),
            Level::Warn
        );
        assert_eq!(level("cryptoki::context", Level::Info), Level::Info);
        assert_eq!(level("cryptokitten", Level::Error), Level::Error);
        assert_eq!(level("rustls::conn", Level::Error), Level::Error);
    }
}
