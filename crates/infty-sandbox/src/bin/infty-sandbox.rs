//! The sandbox helper on its own: `infty-sandbox __sandbox POLICY -- PROGRAM ARGS...`.
//!
//! For library users and tests that do not want to dispatch the helper from their own
//! binary. It must never do anything but apply a policy and run the command.

fn main() {
    infty_sandbox::run_helper_if_requested();
    eprintln!("infty-sandbox: this is infty's sandbox helper; it is started by infty itself");
    std::process::exit(2);
}
