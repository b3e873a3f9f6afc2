//! The work queue: one JetStream stream of run ids and one durable pull consumer shared by
//! every worker.
//!
//! Both are created on first use (by `submit` or a worker) with the settings below and then
//! left as they are: an existing stream or consumer is opened, never reconfigured, so an
//! operator's own tuning (replicas, limits) survives. The stream uses work-queue retention
//! (a message is gone once acknowledged) and file storage (it survives a server restart).
//! Each message's id is the run id, so a publish retried after a lost confirmation is
//! deduplicated by the server instead of queueing the run twice.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::error::FleetError;

/// The stream's default name.
pub const DEFAULT_STREAM: &str = "INFTY_RUNS";
/// The subject run ids are published on.
pub const DEFAULT_SUBJECT: &str = "infty.runs";
/// The durable consumer every worker pulls from.
pub const DEFAULT_CONSUMER: &str = "infty-workers";
/// How long a delivered run may go without a heartbeat before JetStream hands it to
/// another worker.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(60);
/// Deliveries of one run before the fleet gives up on it and marks it failed.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;
/// Runs delivered and not yet acknowledged, across all workers.
pub const DEFAULT_MAX_ACK_PENDING: i64 = 10_000;

/// Where the queue is and how it is laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// The server, e.g. `nats://127.0.0.1:4222` (a comma-separated list for a cluster).
    pub url: String,
    /// A NATS credentials file (`.creds`: user JWT and NKey seed).
    pub credentials: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for TLS; TLS is then required.
    pub tls_ca: Option<PathBuf>,
    /// Require TLS even without a custom CA (`tls://` URLs require it anyway).
    pub require_tls: bool,
    /// The stream's name.
    pub stream: String,
    /// The subject of run ids.
    pub subject: String,
    /// The durable consumer's name.
    pub consumer: String,
    /// The lease: a delivered run without a heartbeat for this long is redelivered.
    pub ack_wait: Duration,
    /// Deliveries of one run before it is marked failed.
    pub max_deliveries: u32,
    /// Runs delivered and not yet acknowledged, across all workers.
    pub max_ack_pending: i64,
}

impl QueueConfig {
    /// The default layout on the server at `url`.
    pub fn new(url: impl Into<String>) -> QueueConfig {
        QueueConfig {
            url: url.into(),
            credentials: None,
            tls_ca: None,
            require_tls: false,
            stream: DEFAULT_STREAM.to_string(),
            subject: DEFAULT_SUBJECT.to_string(),
            consumer: DEFAULT_CONSUMER.to_string(),
            ack_wait: DEFAULT_ACK_WAIT,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            max_ack_pending: DEFAULT_MAX_ACK_PENDING,
        }
    }
}

/// A connection to the work queue.
#[derive(Debug, Clone)]
pub struct Queue {
    jetstream: jetstream::Context,
    config: QueueConfig,
}

impl Queue {
    /// Connects and makes sure the stream exists.
    pub async fn connect(config: QueueConfig) -> Result<Queue, FleetError> {
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("infty {}", env!("CARGO_PKG_VERSION")))
            .connection_timeout(Duration::from_secs(10))
            // Keep reconnecting for ever: a restarted server must not end a worker.
            .max_reconnects(None);
        if let Some(path) = &config.credentials {
            options =
                options
                    .credentials_file(path)
                    .await
                    .map_err(|error| FleetError::Credentials {
                        path: path.display().to_string(),
                        reason: error.to_string(),
                    })?;
        }
        if let Some(path) = &config.tls_ca {
            if !path.is_file() {
                return Err(FleetError::Credentials {
                    path: path.display().to_string(),
                    reason: "no such file".to_string(),
                });
            }
            options = options
                .add_root_certificates(path.clone())
                .require_tls(true);
        } else if config.require_tls {
            options = options.require_tls(true);
        }
        let client = options
            .connect(config.url.as_str())
            .await
            .map_err(|error| FleetError::Connect {
                url: config.url.clone(),
                reason: error.to_string(),
            })?;
        let queue = Queue {
            jetstream: jetstream::new(client),
            config,
        };
        queue.stream().await?;
        Ok(queue)
    }

    /// The settings in use.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Publishes `run_id` and waits for JetStream to confirm it is stored. Returns the
    /// message's sequence in the stream.
    pub async fn submit(&self, run_id: &str) -> Result<u64, FleetError> {
        let fail = |reason: String| FleetError::Publish {
            run_id: run_id.to_string(),
            reason,
        };
        let message = jetstream::message::PublishMessage::build()
            .payload(run_id.as_bytes().to_vec().into())
            .message_id(run_id);
        let ack = self
            .jetstream
            .send_publish(self.config.subject.clone(), message)
            .await
            .map_err(|error| fail(error.to_string()))?
            .await
            .map_err(|error| fail(error.to_string()))?;
        Ok(ack.sequence)
    }

    /// The number of runs waiting in the stream (delivered or not, not yet acknowledged).
    pub async fn pending(&self) -> Result<u64, FleetError> {
        let mut stream = self.stream().await?;
        let info = stream.info().await.map_err(|error| FleetError::Setup {
            what: format!("stream {}", self.config.stream),
            reason: error.to_string(),
        })?;
        Ok(info.state.messages)
    }

    async fn stream(&self) -> Result<stream::Stream, FleetError> {
        self.jetstream
            .get_or_create_stream(stream::Config {
                name: self.config.stream.clone(),
                subjects: vec![self.config.subject.clone()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..stream::Config::default()
            })
            .await
            .map_err(|error| FleetError::Setup {
                what: format!("stream {}", self.config.stream),
                reason: error.to_string(),
            })
    }

    /// The shared durable pull consumer. JetStream's own delivery limit is off: the worker
    /// counts deliveries itself (`max_deliveries`), so that the last one can mark the run
    /// failed with a reason instead of leaving it queued for ever.
    pub(crate) async fn consumer(&self) -> Result<consumer::PullConsumer, FleetError> {
        let stream = self.stream().await?;
        stream
            .get_or_create_consumer(
                &self.config.consumer,
                consumer::pull::Config {
                    durable_name: Some(self.config.consumer.clone()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.config.ack_wait,
                    max_deliver: -1,
                    max_ack_pending: self.config.max_ack_pending,
                    ..consumer::pull::Config::default()
                },
            )
            .await
            .map_err(|error| FleetError::Setup {
                what: format!("consumer {}", self.config.consumer),
                reason: error.to_string(),
            })
    }
}
