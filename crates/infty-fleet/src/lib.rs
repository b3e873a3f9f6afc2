//! A fleet of infty workers on NATS JetStream.
//!
//! Runs are folders under a runs root that every worker sees (a network filesystem in
//! production). This crate adds only the distribution: a JetStream work-queue stream of run
//! ids ([`Queue`]), and a [`Worker`] that pulls ids, drives up to N runs at once in its own
//! process through the library, keeps each message's lease alive with in-progress
//! heartbeats while its run is driven, acknowledges a run once it has stopped for good, and
//! leaves the rest to JetStream's redelivery: a worker that dies stops heartbeating, its
//! messages come back after the ack wait, and whoever receives them resumes the runs from
//! their folders (resume semantics: nothing done twice).
//!
//! JetStream is the scheduler; this crate never decides who drives what beyond "pull when a
//! slot is free". The run lock (`infty-store`) stays the guarantee of one driver per run: a
//! redelivered run that a live process still drives is released again, never driven twice.
//! This crate must never hold a secret: queue credentials are file paths, model keys come
//! from the worker's environment through the caller's [`ModelFactory`].

mod driver;
mod error;
mod queue;
mod worker;

pub use driver::{CoreRunDriver, ModelFactory, RunModel, RunTools, stops_for_good};
pub use error::FleetError;
pub use queue::{
    DEFAULT_ACK_WAIT, DEFAULT_CONSUMER, DEFAULT_MAX_ACK_PENDING, DEFAULT_MAX_DELIVERIES,
    DEFAULT_STREAM, DEFAULT_SUBJECT, Queue, QueueConfig,
};
pub use worker::{Disposition, RunDriver, Worker, WorkerReport};
