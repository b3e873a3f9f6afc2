//! `infty send`: queue an operator message in a run's inbox.
//!
//! The message is written atomically to `inbox/`; a driver running the run delivers it with
//! the role's next turn, and a stopped run gets it when resumed. Each message is journaled
//! when delivered, and delivered once.

use anyhow::Result;
use camino::Utf8Path;
use infty_store::RunStore;

use crate::Coded;
use crate::args::SendArgs;

/// Queues the message and says where it went.
pub(crate) fn send(runs_root: &Utf8Path, args: &SendArgs) -> Result<u8> {
    infty_store::validate_run_id(&args.run_id).map_err(|error| Coded::usage(error.to_string()))?;
    if args.message.trim().is_empty() {
        return Err(Coded::usage("the message is empty"));
    }
    let store = RunStore::open_id(runs_root, &args.run_id)?;
    let status = store.metadata().status;
    if status == infty_store::RunStatus::Succeeded {
        anyhow::bail!(
            "run {} already succeeded; a message would never be delivered",
            args.run_id
        );
    }
    let message = store.inbox().enqueue(&args.role.role(), &args.message)?;
    println!(
        "queued message {} for the {} of run {} ({status}); it is delivered with the {}'s next turn",
        message.id,
        args.role.role(),
        args.run_id,
        args.role.role()
    );
    Ok(0)
}
