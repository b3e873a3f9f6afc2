//! `infty ui`: serves the web dashboard of `infty-ui` over the runs root until Ctrl-C.
//!
//! The URL it prints carries the access token: it goes to stdout (the person who started
//! the command), never to the log file.

use std::io::Write;

use anyhow::{Context, Result};
use camino::Utf8Path;
use infty_ui::{Dashboard, UiOptions};

use crate::args::UiArgs;
use crate::config;

/// `infty ui`.
pub(crate) fn ui(runs_root: &Utf8Path, args: &UiArgs) -> Result<u8> {
    let infty_exe = std::env::current_exe().context("cannot find the infty executable")?;
    let log_dir = config::infty_home()?.join("logs");
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let dashboard = Dashboard::bind(UiOptions {
            runs_root: runs_root.to_owned(),
            port: args.port,
            infty_exe,
            log_dir,
        })
        .await?;
        let url = dashboard.url().to_owned();
        // A closed stdout must not stop the server: the URL was for whoever reads it.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "infty ui: serving {runs_root} at {url}");
        let _ = writeln!(
            out,
            "(the address carries the access token; press Ctrl-C to stop)"
        );
        let _ = out.flush();
        drop(out);
        tracing::info!(runs_root = %runs_root, "dashboard started");
        if args.open
            && let Err(error) = open::that_detached(&url)
        {
            eprintln!("warning: cannot open a browser: {error}");
        }
        // Live pages keep connections open, so Ctrl-C stops at once rather than waiting
        // for them to close.
        tokio::select! {
            served = dashboard.run(std::future::pending()) => served?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok::<_, anyhow::Error>(0)
    })
}
