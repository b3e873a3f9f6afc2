//! The fleet's errors, named for what the caller does next.

/// What can go wrong talking to the queue.
#[derive(thiserror::Error, Debug)]
pub enum FleetError {
    /// The NATS server could not be reached or refused the connection; check the URL,
    /// credentials and TLS settings.
    #[error("cannot connect to the queue at {url}: {reason}")]
    Connect {
        /// The server URL as given.
        url: String,
        /// Why.
        reason: String,
    },
    /// A credentials or certificate file could not be read.
    #[error("cannot read {path}: {reason}")]
    Credentials {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The stream or consumer could not be created or opened (JetStream off on the
    /// server, or an existing one with incompatible settings).
    #[error("queue setup failed for {what}: {reason}")]
    Setup {
        /// `stream NAME` or `consumer NAME`.
        what: String,
        /// The server's answer.
        reason: String,
    },
    /// Publishing a run id failed or was not confirmed by JetStream.
    #[error("cannot submit run {run_id} to the queue: {reason}")]
    Publish {
        /// The run.
        run_id: String,
        /// Why.
        reason: String,
    },
}
