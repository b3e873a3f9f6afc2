//! `infty ui`: a local web dashboard over a runs root, to watch runs live and steer them
//! from a browser (DESIGN §5.4).
//!
//! One axum server, bound to 127.0.0.1 only, serving server-rendered HTML (maud, which
//! escapes every interpolated value), SVG charts and two embedded assets (a style sheet and
//! a small script for live updates over server-sent events). Every request must carry the
//! access token printed with the URL ([`auth`]); the writing endpoints also need a CSRF
//! value from the page itself.
//!
//! It reads the store (run catalog, journal pages and tail, rollouts, the deliverable) and
//! writes exactly three things: a message in a run's inbox, SIGINT to the process that holds
//! a run's lock, and a detached `infty resume`. It must never write a run folder otherwise,
//! never serve a file outside a deliverable, and never render text unescaped: everything a
//! run holds may have been written by a hostile model.

mod assets;
pub mod auth;
mod chart;
mod digest;
mod error;
mod files;
mod live;
mod page;
mod rollouts;
mod run_page;
mod runs_page;
mod server;
mod steer;
mod timeline;

pub use error::UiError;
pub use server::{AppOptions, Dashboard, UiOptions, app};
