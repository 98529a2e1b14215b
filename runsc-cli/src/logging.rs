//! Logging set-up for each cordon process, and error reports.
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use tracing_subscriber::EnvFilter;

use crate::Cli;

/// Sends `tracing` output of this process to `<debug-log>/<role>.<pid>.log`,
/// or to stderr at warning level when there is no debug log.
pub fn init(cli: &Cli, role: &str) {
    let default = if cli.debug {
        "debug"
    } else if cli.strace {
        "error,sentry::syscall=info"
    } else {
        "error"
    };
    let filter = EnvFilter::try_from_env("CORDON_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let filter = if cli.debug_log.is_some() && std::env::var_os("CORDON_LOG").is_none() {
        EnvFilter::new(if cli.strace { "debug,sentry::syscall=info" } else { "debug" })
    } else {
        filter
    };
    if let Some(dir) = &cli.debug_log {
        let _ = std::fs::create_dir_all(dir);
        let path = dir.join(format!("{role}.{}.log", std::process::id()));
        if let Ok(f) = OpenOptions::new().create(true).append(true).open(&path) {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::sync::Mutex::new(f))
                .with_ansi(false)
                .try_init();
            return;
        }
    }
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(true).try_init();
}

/// Reports a failed command: one line on stderr, and in `--log` (as JSON
/// with `--log-format json`, like runc).
pub fn report_error(cli: &Cli, e: &anyhow::Error) {
    let msg = format!("{e:#}");
    eprintln!("cordon: {msg}");
    if let Some(log) = &cli.log {
        append_log(log, &cli.log_format, &msg);
    }
}

fn append_log(path: &Path, format: &str, msg: &str) {
    let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) else { return };
    let line = if format == "json" {
        serde_json::json!({"level": "error", "msg": msg, "time": crate::state::rfc3339_now()}).to_string()
    } else {
        format!("time=\"{}\" level=error msg=\"{}\"", crate::state::rfc3339_now(), msg.replace('"', "\\\""))
    };
    let _ = writeln!(f, "{line}");
}
