//! The one integration-test binary of infty-model: the client against scripted mockito
//! servers (retries, stream failures, quirks), request-body snapshots, and decoding of
//! recorded streams.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scripted;
