//! Frames an SSE byte stream into event payloads and drives a decoder over them: an idle
//! timeout on the bytes (so keep-alive comments count as life), caps on one event and on the
//! whole response, and the rule that a stream ending before its terminal event is a failure.
//! Must never retry: that is the client's job.
//!
//! The framing is our own, over bytes, rather than `eventsource-stream`'s: that crate keeps
//! the unparsed text in a `String`, re-parses it from its start whenever a chunk arrives, and
//! copies the rest of the buffer after every line, so one 50 MB `data:` line delivered in
//! 16 KB chunks costs thousands of full re-scans (minutes of CPU). Here every byte is scanned
//! for a line end once (`memchr`), a line's bytes are moved once, and the buffer holds at most
//! one unfinished line and one event, both capped. Only `data` fields matter to the decoders
//! (they dispatch on the JSON `type`), so `event`, `id` and `retry` lines are skipped.

use std::fmt::{self, Display};
use std::time::Duration;

use futures::{Stream, StreamExt};

use crate::provider::StreamLimits;
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

/// Buffer capacity past which a mostly consumed buffer is shrunk rather than kept for reuse.
const RELEASE_ABOVE: usize = 1 << 20;
/// What a shrunk buffer keeps for the chunks to come.
const KEEP_CAPACITY: usize = 64 << 10;

/// Bytes of an unfinished line that may be its field name and separator.
const FIELD_SLACK: usize = 8;

/// The UTF-8 byte order mark, which a stream may start with.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Splits SSE bytes into the `data` of each event (several `data:` lines joined by `\n`),
/// following the WHATWG rules for line ends (LF, CR, CRLF), comments and field values.
#[derive(Debug)]
pub(crate) struct SseFramer {
    /// Bytes not yet consumed; `buf[..start]` is consumed and dropped on the next push.
    buf: Vec<u8>,
    start: usize,
    /// How far past `start` the current line is known to have no line end.
    scanned: usize,
    /// The last line ended with a CR at the end of the buffer: a LF first thing next is
    /// the rest of that CRLF.
    skip_lf: bool,
    /// The event being assembled.
    data: String,
    has_data: bool,
    at_start: bool,
    max_event_bytes: usize,
}

/// An event too large to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventTooLarge {
    pub(crate) limit: usize,
}

impl SseFramer {
    pub(crate) fn new(max_event_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            skip_lf: false,
            data: String::new(),
            has_data: false,
            at_start: true,
            max_event_bytes,
        }
    }

    /// Adds bytes. Call [`SseFramer::next_event`] until it returns `None` after each push.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            // Moves only the unconsumed tail, once per push: never quadratic.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
        if self.at_start {
            if self.buf.len() < BOM.len() && BOM.starts_with(&self.buf) {
                return; // Could still be a BOM: wait for more.
            }
            self.at_start = false;
            if self.buf.starts_with(BOM) {
                self.buf.drain(..BOM.len());
            }
        }
    }

    /// The next complete event's data, if the bytes so far hold one.
    pub(crate) fn next_event(&mut self) -> Result<Option<String>, EventTooLarge> {
        if self.at_start {
            return Ok(None);
        }
        loop {
            if self.skip_lf && self.start < self.buf.len() {
                if self.buf[self.start] == b'\n' {
                    self.start += 1;
                }
                self.skip_lf = false;
            }
            let from = self.start + self.scanned;
            let Some(offset) = memchr::memchr2(b'\n', b'\r', &self.buf[from..]) else {
                self.scanned = self.buf.len() - self.start;
                // The unfinished line still holds its field name (`data: `): allow for it.
                let pending = self.scanned.saturating_sub(FIELD_SLACK);
                if self.data.len().saturating_add(pending) > self.max_event_bytes {
                    return Err(EventTooLarge {
                        limit: self.max_event_bytes,
                    });
                }
                return Ok(None);
            };
            let end = from + offset;
            let line_start = self.start;
            let mut next = end + 1;
            if self.buf[end] == b'\r' {
                match self.buf.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            self.start = next;
            self.scanned = 0;
            if let Some(event) = self.line(line_start, end)? {
                self.release_consumed();
                return Ok(Some(event));
            }
        }
    }

    /// Shrinks a large buffer once most of it is consumed, so a huge event is not held twice
    /// (its bytes here and its data in the decoder) while it is decoded. Moves only the
    /// small unconsumed rest.
    fn release_consumed(&mut self) {
        let rest = self.buf.len() - self.start;
        if self.buf.capacity() > RELEASE_ABOVE && rest < self.buf.capacity() / 4 {
            self.buf.drain(..self.start);
            self.start = 0;
            self.buf.shrink_to(rest.max(KEEP_CAPACITY));
        }
    }

    /// Ends the stream: a last line without its line end, and a last event without its
    /// blank line, still count (a server that forgets them has still sent them).
    pub(crate) fn finish(&mut self) -> Result<Option<String>, EventTooLarge> {
        if self.at_start {
            // Fewer bytes than a BOM arrived: they are not one.
            self.at_start = false;
        }
        if let Some(event) = self.next_event()? {
            return Ok(Some(event));
        }
        let end = self.buf.len();
        if self.start < end {
            let line_start = self.start;
            self.start = end;
            self.scanned = 0;
            if let Some(event) = self.line(line_start, end)? {
                return Ok(Some(event));
            }
        }
        Ok(self.dispatch())
    }

    /// Interprets `buf[from..to]`, one line without its line end.
    fn line(&mut self, from: usize, to: usize) -> Result<Option<String>, EventTooLarge> {
        let line = &self.buf[from..to];
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &line[line.len()..]),
        };
        if field != b"data" {
            return Ok(None);
        }
        let added = value.len() + usize::from(self.has_data);
        if self.data.len().saturating_add(added) > self.max_event_bytes {
            return Err(EventTooLarge {
                limit: self.max_event_bytes,
            });
        }
        if self.has_data {
            self.data.push('\n');
        }
        // Line ends never fall inside a UTF-8 sequence, so each line is valid on its own
        // or not at all; invalid bytes become U+FFFD (and the JSON decoder decides).
        match std::str::from_utf8(value) {
            Ok(text) => self.data.push_str(text),
            Err(_) => self.data.push_str(&String::from_utf8_lossy(value)),
        }
        self.has_data = true;
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<String> {
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(std::mem::take(&mut self.data))
    }
}

/// Reads `body` to its terminal event (or its end) through `decoder`, within `limits`.
pub(crate) async fn decode_stream<S, B, E, D>(
    mut body: S,
    mut decoder: D,
    idle_timeout: Duration,
    limits: StreamLimits,
    events: &(dyn Fn(StreamEvent) + Send + Sync),
) -> Result<ModelResponse, WireFailure>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: Display,
    D: Decoder,
{
    let mut framer = SseFramer::new(limits.max_event_bytes);
    let mut received: u64 = 0;
    let too_large = |limit: usize| {
        WireFailure::TooLarge(format!(
            "one event is over {limit} bytes (the limit of one event)"
        ))
    };
    loop {
        // Each chunk must arrive within the idle timeout; a miss ends the stream.
        let failure = match tokio::time::timeout(idle_timeout, body.next()).await {
            Ok(Some(Ok(chunk))) => {
                let bytes = chunk.as_ref();
                received = received.saturating_add(bytes.len() as u64);
                if received > limits.max_response_bytes {
                    if decoder.has_answer() {
                        break;
                    }
                    return Err(WireFailure::TooLarge(format!(
                        "the response is over {} bytes without its terminal event (the limit of one response)",
                        limits.max_response_bytes
                    )));
                }
                framer.push(bytes);
                while let Some(data) = framer.next_event().map_err(|e| too_large(e.limit))? {
                    if !data.is_empty() && decoder.feed(&data, events)? {
                        return decoder.finish();
                    }
                }
                continue;
            }
            Ok(None) => {
                while let Some(data) = framer.finish().map_err(|e| too_large(e.limit))? {
                    if !data.is_empty() && decoder.feed(&data, events)? {
                        break;
                    }
                }
                break;
            }
            Ok(Some(Err(err))) => ChunkError::Transport(err.to_string()),
            Err(_) => ChunkError::Idle(idle_timeout),
        };
        if decoder.has_answer() {
            break;
        }
        return Err(WireFailure::Interrupted(failure.to_string()));
    }
    decoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `body` pushed in chunks of `chunk` bytes (0 = whole), then finished.
    fn frame(body: &[u8], chunk: usize, max: usize) -> Result<Vec<String>, EventTooLarge> {
        let mut framer = SseFramer::new(max);
        let mut out = Vec::new();
        let pieces: Vec<&[u8]> = if chunk == 0 {
            vec![body]
        } else {
            body.chunks(chunk).collect()
        };
        for piece in pieces {
            framer.push(piece);
            while let Some(event) = framer.next_event()? {
                out.push(event);
            }
        }
        while let Some(event) = framer.finish()? {
            out.push(event);
        }
        Ok(out)
    }

    #[test]
    fn framing_table() {
        let cases: &[(&str, &[u8], &[&str])] = &[
            ("one event", b"data: a\n\n", &["a"]),
            (
                "two data lines join with LF",
                b"data: a\ndata: b\n\n",
                &["a\nb"],
            ),
            ("CRLF", b"data: a\r\n\r\ndata: b\r\n\r\n", &["a", "b"]),
            ("CR only", b"data: a\r\rdata: b\r\r", &["a", "b"]),
            (
                "comment and other fields skipped",
                b": ping\nevent: x\nid: 1\nretry: 5\ndata: a\n\n",
                &["a"],
            ),
            ("no space after colon", b"data:a\n\n", &["a"]),
            ("only the first space is stripped", b"data:  a\n\n", &[" a"]),
            ("field without colon", b"data\n\n", &[""]),
            ("no final blank line", b"data: a", &["a"]),
            ("no final line end at all", b"data: a\n", &["a"]),
            ("BOM", b"\xEF\xBB\xBFdata: a\n\n", &["a"]),
            ("blank lines alone are no event", b"\n\n\n", &[]),
            (
                "multi-byte text",
                "data: Grüße 東京 🚀\n\n".as_bytes(),
                &["Grüße 東京 🚀"],
            ),
            ("invalid UTF-8 replaced", b"data: \xFFa\n\n", &["\u{FFFD}a"]),
        ];
        for (name, body, expected) in cases {
            for chunk in [0, 1, 2, 3, 7] {
                let got = frame(body, chunk, 1 << 20).unwrap();
                assert_eq!(got, *expected, "{name}, chunks of {chunk}");
            }
        }
    }

    #[test]
    fn event_cap_counts_the_unfinished_line_and_the_event() {
        let line = format!("data: {}\n\n", "x".repeat(100));
        assert_eq!(frame(line.as_bytes(), 7, 100).unwrap().len(), 1);
        assert_eq!(
            frame(line.as_bytes(), 7, 99),
            Err(EventTooLarge { limit: 99 })
        );
        // Without any line end, the pending bytes alone trip the cap.
        let endless = "x".repeat(1000);
        assert_eq!(
            frame(endless.as_bytes(), 10, 99),
            Err(EventTooLarge { limit: 99 })
        );
        // Many small data lines add up.
        let many = "data: xxxxxxxxx\n".repeat(20) + "\n";
        assert_eq!(
            frame(many.as_bytes(), 0, 100),
            Err(EventTooLarge { limit: 100 })
        );
    }
}
