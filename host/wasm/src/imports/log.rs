//! Log: a line in the run's log.

use super::super::bindings::LogLevel;
use super::super::ctx::RunCtx;
use super::errors::trap;
use crate::engine::HostCall;
use wasmtime::Result as Wt;

pub async fn log(cx: &mut RunCtx, level: LogLevel, message: String) -> Wt<()> {
    // Kept as given, NUL included: the line is stored inside the `log`
    // event's JSON payload, where it is escaped, not in a text column.
    cx.check_size("log line", &message)?;
    let level = match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    cx.say(format!("log {level}: {message}"));
    let call = HostCall::Log {
        level: level.into(),
        message,
    };
    cx.run.call(call).await.map(|_| ()).map_err(trap)
}
