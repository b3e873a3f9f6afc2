//! infty's role sessions, tools, orchestration state machine and driver.
pub mod tools;
