//! A closed standard output or error ends the command quietly.
//!
//! Rust ignores `SIGPIPE`, so `println!` into a pipe whose reader left (`infty show RUN |
//! head`) panics with "failed printing to stdout: Broken pipe". Restoring the default signal
//! action would need `unsafe`, and would also kill the process on a write to a closed
//! socket or to a tool's closed stdin. Instead a panic hook recognises exactly that panic and
//! exits with status 0, as if the output had been read to its end; any other panic goes to
//! the previous hook. The hook covers every command and every print, including ones added
//! later. This module must never swallow a panic that is not a closed-pipe print.

use std::panic::PanicHookInfo;

/// Installs the hook; call once, first thing in `main`.
pub(crate) fn exit_quietly_on_closed_pipe() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if is_closed_pipe_print(info) {
            std::process::exit(0);
        }
        previous(info);
    }));
}

fn is_closed_pipe_print(info: &PanicHookInfo<'_>) -> bool {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    is_closed_pipe_message(message)
}

/// The message std's print macros panic with when the stream's reader is gone.
fn is_closed_pipe_message(message: &str) -> bool {
    (message.starts_with("failed printing to stdout")
        || message.starts_with("failed printing to stderr"))
        && message.contains("Broken pipe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_closed_pipe_prints_match() {
        let cases = [
            ("failed printing to stdout: Broken pipe (os error 32)", true),
            ("failed printing to stderr: Broken pipe (os error 32)", true),
            ("failed printing to stdout: No space left on device", false),
            ("index out of bounds: Broken pipe", false),
            ("", false),
        ];
        for (message, expected) in cases {
            assert_eq!(is_closed_pipe_message(message), expected, "{message}");
        }
    }
}
