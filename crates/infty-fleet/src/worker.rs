//! The worker loop: pull a run id when a slot is free, drive it with a heartbeat, then
//! acknowledge, release or give up.
//!
//! The lease is JetStream's ack wait: while a run is driven its message gets an in-progress
//! heartbeat every third of the ack wait, so a live worker keeps it however long the run
//! takes, and a dead one loses it one ack wait after its last heartbeat. The worker asks
//! for exactly as many messages as it has free slots, so no message waits in a local
//! buffer with its lease running down.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::FleetError;
use crate::queue::Queue;

/// What to do with a delivered run once its handling ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The run stopped for good (succeeded, failed, budget exhausted, blocked) or needs
    /// no driving: acknowledge, so it is never delivered again.
    Finished,
    /// Not finished here (interrupted by a drain, driven by another live process, a
    /// transient error): hand it back, to be delivered again after `delay` (at once when
    /// `None`).
    Release {
        /// How long JetStream should wait before delivering it again.
        delay: Option<Duration>,
        /// Why, for the log.
        reason: String,
    },
    /// The message does not name a run this worker can ever drive (not a run id, no such
    /// folder): terminate its delivery.
    Reject(String),
}

/// Drives one delivered run. Implemented over the library by [`crate::CoreRunDriver`];
/// tests substitute their own.
pub trait RunDriver: Send + Sync + 'static {
    /// Drives `run_id` until it stops. Cancelling `cancel` (a drain) must interrupt the
    /// run cleanly, leaving it resumable, and return [`Disposition::Release`].
    fn drive(&self, run_id: String, cancel: CancellationToken) -> BoxFuture<'static, Disposition>;

    /// The run was delivered more often than allowed without stopping for good (its
    /// drivers keep dying): mark it failed with `reason`, unless a live process drives it.
    fn give_up(&self, run_id: String, reason: String) -> BoxFuture<'static, Disposition>;
}

/// What a worker did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Runs acknowledged (stopped for good).
    pub finished: u64,
    /// Runs handed back to the queue.
    pub released: u64,
    /// Runs given up on after too many deliveries.
    pub given_up: u64,
    /// Messages rejected as not naming a run.
    pub rejected: u64,
}

/// Pulls runs from a [`Queue`] and drives up to `concurrency` of them at once.
pub struct Worker<D> {
    queue: Queue,
    driver: Arc<D>,
    concurrency: usize,
}

impl<D: RunDriver> Worker<D> {
    /// A worker over `queue` driving with `driver`, `concurrency` runs at once (at least 1).
    pub fn new(queue: Queue, driver: D, concurrency: usize) -> Worker<D> {
        Worker {
            queue,
            driver: Arc::new(driver),
            concurrency: concurrency.max(1),
        }
    }

    /// Works until `shutdown` is cancelled, then drains: pulls nothing more, interrupts the
    /// runs in progress through the driver, hands them back for redelivery, and returns.
    pub async fn run(self, shutdown: CancellationToken) -> Result<WorkerReport, FleetError> {
        let mut consumer = self.queue.consumer().await?;
        let ack_wait = consumer.cached_info().config.ack_wait;
        let max_deliveries = i64::from(self.queue.config().max_deliveries.max(1));
        let mut report = WorkerReport::default();
        let mut tasks: JoinSet<Outcome> = JoinSet::new();
        tracing::info!(
            concurrency = self.concurrency,
            ack_wait_secs = ack_wait.as_secs_f64(),
            "worker started"
        );
        while !shutdown.is_cancelled() {
            while let Some(done) = tasks.try_join_next() {
                tally(&mut report, done);
            }
            let free = self.concurrency - tasks.len();
            if free == 0 {
                tokio::select! {
                    done = tasks.join_next() => if let Some(done) = done { tally(&mut report, done) },
                    () = shutdown.cancelled() => break,
                }
                continue;
            }
            let batch = tokio::select! {
                batch = consumer
                    .batch()
                    .max_messages(free)
                    .expires(Duration::from_secs(2))
                    .messages() => batch,
                () = shutdown.cancelled() => break,
            };
            let mut messages = match batch {
                Ok(messages) => messages,
                Err(error) => {
                    // The server is away (restart, network): the client reconnects by
                    // itself; try again shortly.
                    tracing::warn!(%error, "cannot pull from the queue");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = shutdown.cancelled() => break,
                    }
                    if let Ok(fresh) = self.queue.consumer().await {
                        consumer = fresh;
                    }
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    next = messages.next() => next,
                    () = shutdown.cancelled() => break,
                };
                match next {
                    None => break,
                    Some(Ok(message)) => {
                        let driver = self.driver.clone();
                        let cancel = shutdown.child_token();
                        tasks.spawn(handle(message, driver, cancel, ack_wait, max_deliveries));
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "pull from the queue failed");
                        break;
                    }
                }
            }
        }
        tracing::info!(running = tasks.len(), "worker draining");
        while let Some(done) = tasks.join_next().await {
            tally(&mut report, done);
        }
        tracing::info!(?report, "worker stopped");
        Ok(report)
    }
}

/// How one message's handling ended.
enum Outcome {
    Finished,
    Released,
    GivenUp,
    Rejected,
}

fn tally(report: &mut WorkerReport, done: Result<Outcome, tokio::task::JoinError>) {
    match done {
        Ok(Outcome::Finished) => report.finished += 1,
        Ok(Outcome::Released) => report.released += 1,
        Ok(Outcome::GivenUp) => report.given_up += 1,
        Ok(Outcome::Rejected) => report.rejected += 1,
        Err(error) => tracing::error!(%error, "a run's task panicked"),
    }
}

async fn handle<D: RunDriver>(
    message: jetstream::Message,
    driver: Arc<D>,
    cancel: CancellationToken,
    ack_wait: Duration,
    max_deliveries: i64,
) -> Outcome {
    let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
    let Ok(run_id) = std::str::from_utf8(&message.payload).map(str::to_string) else {
        settle(&message, "?", Disposition::Reject("not UTF-8".to_string())).await;
        return Outcome::Rejected;
    };
    let given_up = delivered > max_deliveries;
    let work = if given_up {
        let reason = format!(
            "delivered {delivered} times without stopping for good (its drivers kept dying); \
             the fleet gave up after {max_deliveries} deliveries"
        );
        tracing::warn!(run_id, delivered, "giving up on the run");
        driver.give_up(run_id.clone(), reason)
    } else {
        tracing::info!(run_id, delivered, "driving the run");
        driver.drive(run_id.clone(), cancel)
    };
    let disposition = tokio::select! {
        disposition = work => disposition,
        never = heartbeat(&message, ack_wait) => match never {},
    };
    let outcome = match (&disposition, given_up) {
        (Disposition::Finished, true) => Outcome::GivenUp,
        (Disposition::Finished, false) => Outcome::Finished,
        (Disposition::Release { .. }, _) => Outcome::Released,
        (Disposition::Reject(_), _) => Outcome::Rejected,
    };
    settle(&message, &run_id, disposition).await;
    outcome
}

/// Tells JetStream the run is still being worked on, every third of the ack wait, for as
/// long as it is polled.
async fn heartbeat(message: &jetstream::Message, ack_wait: Duration) -> std::convert::Infallible {
    let period = (ack_wait / 3).max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval(period);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(error) = message.ack_with(AckKind::Progress).await {
            // A lost heartbeat costs at most a redelivery, which the run lock makes safe.
            tracing::warn!(%error, "heartbeat failed");
        }
    }
}

async fn settle(message: &jetstream::Message, run_id: &str, disposition: Disposition) {
    let result = match &disposition {
        // Confirmed by the server, so a run is not left delivered after it finished.
        Disposition::Finished => message.double_ack().await,
        Disposition::Release { delay, reason } => {
            tracing::info!(run_id, reason, "releasing the run");
            message.ack_with(AckKind::Nak(*delay)).await
        }
        Disposition::Reject(reason) => {
            tracing::warn!(run_id, reason, "rejecting the message");
            message.ack_with(AckKind::Term).await
        }
    };
    if let Err(error) = result {
        // The run is then delivered again; a finished run is acknowledged on arrival.
        tracing::warn!(run_id, %error, "cannot settle the message");
    }
}
