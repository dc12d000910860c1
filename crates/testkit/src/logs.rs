//! `TEST_LOG`: the logs of the services a test runs in its own process, printed through a
//! tracing subscriber when asked for, and nothing otherwise.

use std::{io::IsTerminal, sync::Once};

use tracing_subscriber::EnvFilter;

/// The variable that turns the logs on: `1` (or `true`) for `info`, or a filter directive
/// such as `pulse_worker=debug,info`.
pub const LOG_ENV: &str = "TEST_LOG";

/// Installs the process's log subscriber when `TEST_LOG` is set; does nothing otherwise, and
/// nothing after the first call. Lines go through libtest's capture: shown with a failing
/// test, or as they come with `-- --nocapture`.
pub fn logs() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let Some(setting) = std::env::var(LOG_ENV).ok().filter(|v| !v.is_empty()) else {
            return;
        };
        let directive = match setting.as_str() {
            "1" | "true" => "info",
            directive => directive,
        };
        // Another subscriber installed first (a test's own) wins; that is not an error.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(directive))
            .with_ansi(std::io::stdout().is_terminal())
            .with_test_writer()
            .try_init();
    });
}
