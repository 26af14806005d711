//! The host's one error type: what went wrong, and where.

use std::path::PathBuf;
use std::time::Duration;

use crate::GuestError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The component refused the request and said why (a WIT `error` value). The instance is fine.
    #[error("{}", describe_guest_error(.0))]
    Guest(GuestError),

    /// The component trapped (a guest panic, running out of memory, the timeout). The instance was
    /// discarded and a fresh one started: the runtime is usable, but models loaded before are gone.
    #[error(
        "the component trapped: {reason}{}; a new instance was started ({})",
        guest_output_suffix(.guest_stderr),
        .recovered.as_deref().unwrap_or("empty: models must be loaded again")
    )]
    Trap {
        reason: String,
        /// What the runtime restored into the new instance (models, the data directory's graph).
        recovered: Option<String>,
        /// The call ran past [`RuntimeOptions::timeout`](crate::RuntimeOptions::timeout).
        timed_out: bool,
        /// What the guest wrote to stderr during the call (a panic message, usually).
        guest_stderr: String,
        /// Wasmtime's full error chain, with the wasm backtrace.
        details: String,
    },

    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "the llmkg component was not found (looked at: {}); build it with `scripts/build`, \
         or point --component / $LLMKG_COMPONENT at llmkg_component.wasm",
        join_paths(.searched)
    )]
    ComponentNotFound { searched: Vec<PathBuf> },

    /// Compiling, linking or instantiating the component failed (not a trap inside a call).
    #[error("wasmtime: {0:#}")]
    Wasmtime(wasmtime::Error),

    #[error("model `{spec}` not found ({reason})")]
    ModelNotFound { spec: String, reason: String },

    #[error("could not fetch model `{model}`: {reason}")]
    Fetch { model: String, reason: String },

    /// Composing the HTTP front with the engine failed (they do not fit together).
    #[error("composing {what}: {reason}")]
    Compose { what: String, reason: String },

    /// Pre-initializing (snapshotting) a component failed.
    #[error("pre-initializing: {0}")]
    Preinit(String),

    /// The data directory's graph cannot be loaded as it is.
    #[error("the graph in {} cannot be loaded: {problem}; `llmkg kg repair --data-dir {}` sets the damaged changes aside", .path.display(), .path.display())]
    DataDir { path: PathBuf, problem: String },

    /// The engine linked natively (the `bench` baseline) refused the request.
    #[error("native engine: {0}")]
    Native(String),
}

impl Error {
    /// A trap built from the error wasmtime returned for a call.
    pub(crate) fn trap(
        err: wasmtime::Error,
        timeout: Option<Duration>,
        guest_stderr: String,
    ) -> Self {
        let code = err.downcast_ref::<wasmtime::Trap>().copied();
        let timed_out = code == Some(wasmtime::Trap::Interrupt);
        let reason = match (code, timeout) {
            (Some(wasmtime::Trap::Interrupt), Some(t)) => {
                format!("the call exceeded the {t:?} timeout")
            }
            (Some(code), _) => code.to_string(),
            (None, _) => format!("{:#}", err.root_cause()),
        };
        Error::Trap {
            reason,
            recovered: None,
            timed_out,
            guest_stderr,
            details: format!("{err:?}"),
        }
    }

    /// The guest's error, when the component refused the request.
    pub fn guest(&self) -> Option<&GuestError> {
        match self {
            Error::Guest(e) => Some(e),
            _ => None,
        }
    }

    pub fn is_trap(&self) -> bool {
        matches!(self, Error::Trap { .. })
    }
}

/// The WIT case name and the message, e.g. `invalid-input: prompt has 3000 tokens, ...`.
pub fn describe_guest_error(e: &GuestError) -> String {
    let (case, message) = guest_error_parts(e);
    format!("{case}: {message}")
}

/// The WIT case name of a guest error and its message.
pub fn guest_error_parts(e: &GuestError) -> (&'static str, &str) {
    match e {
        GuestError::InvalidModel(m) => ("invalid-model", m),
        GuestError::Unsupported(m) => ("unsupported", m),
        GuestError::InvalidInput(m) => ("invalid-input", m),
        GuestError::NotFound(m) => ("not-found", m),
        GuestError::ResourceExhausted(m) => ("resource-exhausted", m),
        GuestError::QuerySyntax(m) => ("query-syntax", m),
        GuestError::Internal(m) => ("internal", m),
    }
}

/// The guest's stderr on one line, minus Rust's boilerplate: `panicked at src/x.rs:1:2: message`.
fn guest_output_suffix(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(
            |line| match (line.starts_with("thread '"), line.find("panicked at")) {
                (true, Some(at)) => &line[at..],
                _ => line,
            },
        )
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(" ({})", lines.join(" "))
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nowhere: no path given and the executable's location is unknown".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_errors_display_as_wit_case_and_message() {
        let e = Error::Guest(GuestError::InvalidInput(
            "prompt has 3000 tokens, the context holds 2048".into(),
        ));
        assert_eq!(
            e.to_string(),
            "invalid-input: prompt has 3000 tokens, the context holds 2048"
        );
    }

    #[test]
    fn io_errors_name_the_file() {
        let e = Error::Io {
            path: "/models/x.gguf".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(e.to_string().starts_with("/models/x.gguf: "), "{e}");
    }

    #[test]
    fn traps_say_a_new_instance_was_started() {
        let e = Error::Trap {
            reason: "wasm `unreachable` instruction executed".into(),
            recovered: None,
            timed_out: false,
            guest_stderr: "thread '<unnamed>' (1) panicked at src/lib.rs:1:1:\nboom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n".into(),
            details: String::new(),
        };
        let text = e.to_string();
        assert!(text.contains("trapped: wasm `unreachable`"), "{text}");
        assert!(
            text.contains("(panicked at src/lib.rs:1:1: boom)"),
            "{text}"
        );
        assert!(text.contains("new instance was started"), "{text}");
    }
}
