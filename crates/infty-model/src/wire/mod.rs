//! The two wire APIs: how a [`ModelRequest`](crate::ModelRequest) becomes a request body,
//! and how an SSE stream becomes a [`ModelResponse`](crate::ModelResponse).
//!
//! Each API has a body builder (pure: request + capabilities in, JSON out) and a decoder
//! fed one SSE `data` payload at a time. Decoders keep assembled items only, never raw
//! events, so memory follows the size of the answer, not of the stream. Nothing here does
//! IO; the driver in `sse` feeds the decoders.

pub(crate) mod call_ids;
pub(crate) mod chat;
pub(crate) mod responses;
pub(crate) mod usage;

use std::borrow::Cow;

use crate::provider::{Capabilities, WireApi};
use crate::request::ModelRequest;
use crate::response::{ModelResponse, StreamEvent};
use crate::retry::ProviderError;

/// Why a stream did not produce a response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WireFailure {
    /// The provider reported an error inside the stream.
    Provider(ProviderError),
    /// The stream ended or broke before its terminal event.
    Interrupted(String),
    /// One event or the whole response went past its cap.
    TooLarge(String),
}

/// Decodes one response stream, payload by payload.
pub(crate) trait Decoder {
    /// Feeds one SSE `data` payload. `Ok(true)` means the terminal event was seen and the
    /// stream need not be read further.
    fn feed(&mut self, data: &str, events: &dyn Fn(StreamEvent)) -> Result<bool, WireFailure>;

    /// True once enough was seen to answer even if the rest of the stream is lost (Chat:
    /// after `finish_reason`, only usage and `[DONE]` remain).
    fn has_answer(&self) -> bool;

    /// Ends the stream (terminal event seen, or EOF) and assembles the response.
    fn finish(self) -> Result<ModelResponse, WireFailure>;
}

/// Either API's decoder, chosen at run time.
pub(crate) enum AnyDecoder {
    Responses(responses::ResponsesDecoder),
    Chat(chat::ChatDecoder),
}

impl AnyDecoder {
    pub(crate) fn new(wire_api: WireApi) -> Self {
        match wire_api {
            WireApi::Responses => Self::Responses(responses::ResponsesDecoder::default()),
            WireApi::Chat => Self::Chat(chat::ChatDecoder::default()),
        }
    }
}

impl Decoder for AnyDecoder {
    fn feed(&mut self, data: &str, events: &dyn Fn(StreamEvent)) -> Result<bool, WireFailure> {
        match self {
            Self::Responses(d) => d.feed(data, events),
            Self::Chat(d) => d.feed(data, events),
        }
    }

    fn has_answer(&self) -> bool {
        match self {
            Self::Responses(d) => d.has_answer(),
            Self::Chat(d) => d.has_answer(),
        }
    }

    fn finish(self) -> Result<ModelResponse, WireFailure> {
        match self {
            Self::Responses(d) => d.finish(),
            Self::Chat(d) => d.finish(),
        }
    }
}

/// Decodes a complete, non-streamed response body (a server that ignored `stream: true`)
/// by replaying it to the streaming decoder as the events it would have sent.
pub(crate) fn decode_whole(
    wire_api: WireApi,
    body: &str,
    events: &dyn Fn(StreamEvent),
) -> Result<ModelResponse, WireFailure> {
    let value: serde_json::Value = serde_json::from_str(body).map_err(|err| {
        WireFailure::Interrupted(format!("response body is not valid json: {err}"))
    })?;
    if let Some(error) = value
        .get("error")
        .filter(|e| !e.is_null())
        .and_then(|_| ProviderError::from_json(&value))
    {
        return Err(WireFailure::Provider(error));
    }
    let mut decoder = AnyDecoder::new(wire_api);
    let payloads = match wire_api {
        WireApi::Responses => responses::whole_as_events(value),
        WireApi::Chat => chat::whole_as_chunks(value),
    };
    for payload in payloads {
        if decoder.feed(&payload.to_string(), events)? {
            break;
        }
    }
    decoder.finish()
}

/// A past call's arguments as sent back in the history: as the model wrote them when they
/// are a JSON object, else (a call the output cap cut short, a model that wrote prose) a
/// JSON object holding that text under `unparsed_arguments`. Servers that render the
/// history through a chat template parse the arguments (llama.cpp answers 500 to every
/// later request of the turn otherwise); the call's output already told the model why it
/// did not run.
pub(crate) fn sent_arguments(arguments: &str) -> Cow<'_, str> {
    match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(serde_json::Value::Object(_)) => Cow::Borrowed(arguments),
        _ => Cow::Owned(serde_json::json!({ "unparsed_arguments": arguments }).to_string()),
    }
}

/// Builds the JSON request body for `wire_api`.
pub(crate) fn request_body(
    wire_api: WireApi,
    request: &ModelRequest,
    capabilities: &Capabilities,
) -> serde_json::Value {
    match wire_api {
        WireApi::Responses => responses::request_body(request, capabilities),
        WireApi::Chat => chat::request_body(request, capabilities),
    }
}

#[cfg(test)]
mod tests {
    use super::sent_arguments;

    #[test]
    fn arguments_that_are_an_object_are_sent_as_written() {
        let written = "{\"command\":  \"ls\"}";
        assert_eq!(sent_arguments(written), written);
    }

    #[test]
    fn arguments_cut_short_or_not_an_object_are_sent_as_an_object_holding_the_text() {
        for written in ["{\"command\": \"echo hel", "ls -la", "[1]", ""] {
            let sent: serde_json::Value = serde_json::from_str(&sent_arguments(written)).unwrap();
            assert_eq!(sent, serde_json::json!({ "unparsed_arguments": written }));
        }
    }
}
