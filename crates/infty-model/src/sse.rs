//! Drives a decoder over an SSE byte stream: framing by `eventsource-stream` (comments,
//! CRLF, split UTF-8), an idle timeout on the bytes (so keep-alive comments count as
//! life), and the rule that a stream ending before its terminal event is a failure.
//! Must never retry: that is the client's job.

use std::fmt::{self, Display};
use std::time::Duration;

use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};

use crate::response::{ModelResponse, StreamEvent};
use crate::wire::{Decoder, WireFailure};

/// Why the byte stream stopped early.
#[derive(Debug)]
enum ChunkError {
    Idle(Duration),
    Transport(String),
}

impl Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Idle(timeout) => {
                write!(f, "no data for {} ms (idle timeout)", timeout.as_millis())
            }
            Self::Transport(message) => f.write_str(message),
        }
    }
}

/// A chunk of the body, or the blank line added at its end: `eventsource-stream` drops a
/// last event that lacks its closing blank line, and a server that forgets it has still
/// sent a complete event. (A truncated event stays truncated JSON and is skipped.)
enum Chunk<B> {
    Body(B),
    Tail,
}

impl<B: AsRef<[u8]>> AsRef<[u8]> for Chunk<B> {
    fn as_ref(&self) -> &[u8] {
        match self {
            Self::Body(bytes) => bytes.as_ref(),
            Self::Tail => b"\n\n",
        }
    }
}

/// Reads `body` to its terminal event (or its end) through `decoder`.
pub(crate) async fn decode_stream<S, B, E, D>(
    body: S,
    mut decoder: D,
    idle_timeout: Duration,
    events: &(dyn Fn(StreamEvent) + Send + Sync),
) -> Result<ModelResponse, WireFailure>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: Display,
    D: Decoder,
{
    // Each chunk must arrive within the idle timeout; a miss ends the stream with an error.
    let timed = futures::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        match tokio::time::timeout(idle_timeout, body.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(Chunk::Body(chunk)), Some(body))),
            Ok(Some(Err(err))) => Some((Err(ChunkError::Transport(err.to_string())), None)),
            Ok(None) => Some((Ok(Chunk::Tail), None)),
            Err(_) => Some((Err(ChunkError::Idle(idle_timeout)), None)),
        }
    });
    let mut stream = Box::pin(timed).eventsource();
    while let Some(next) = stream.next().await {
        let event = match next {
            Ok(event) => event,
            Err(_) if decoder.has_answer() => break,
            Err(EventStreamError::Transport(err)) => {
                return Err(WireFailure::Interrupted(err.to_string()));
            }
            Err(err) => return Err(WireFailure::Interrupted(err.to_string())),
        };
        if event.data.is_empty() {
            continue;
        }
        if decoder.feed(&event.data, events)? {
            break;
        }
    }
    decoder.finish()
}
