//! Drives a decoder over an SSE byte stream: framing by `eventsource-stream` (comments,
//! CRLF, split UTF-8), an idle timeout between events, and the rule that a stream ending
//! before its terminal event is a failure. Must never retry: that is the client's job.

use std::fmt::Display;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};

use crate::response::{ModelResponse, StreamEvent};
use crate::wire::{Decoder, WireFailure};

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
    let mut stream = body.eventsource();
    loop {
        let event = match tokio::time::timeout(idle_timeout, stream.next()).await {
            Err(_) if decoder.has_answer() => return decoder.finish(),
            Err(_) => {
                return Err(WireFailure::Interrupted(format!(
                    "no data for {} ms (idle timeout)",
                    idle_timeout.as_millis()
                )));
            }
            Ok(None) => return decoder.finish(),
            Ok(Some(Err(_))) if decoder.has_answer() => return decoder.finish(),
            Ok(Some(Err(err))) => return Err(WireFailure::Interrupted(err.to_string())),
            Ok(Some(Ok(event))) => event,
        };
        if event.data.is_empty() {
            continue;
        }
        if decoder.feed(&event.data, events)? {
            return decoder.finish();
        }
    }
}
