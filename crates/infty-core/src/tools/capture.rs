//! A bounded capture of a byte stream: the first bytes and the last bytes, with a count of
//! what was dropped between them.
//!
//! A command may print gigabytes; the model needs the start (what ran) and the end (how it
//! ended). Memory stays at the budget however much is pushed. This module never holds more
//! than its budget and never splits a UTF-8 character in what it renders.

use std::collections::VecDeque;

/// Keeps the head and the tail of everything pushed into it, within a byte budget.
#[derive(Clone, Debug)]
pub struct OutputCapture {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    total: u64,
}

impl OutputCapture {
    /// A capture keeping at most `budget` bytes: half from the start, half from the end.
    pub fn new(budget: usize) -> Self {
        let head_cap = budget / 2;
        let tail_cap = budget - head_cap;
        OutputCapture {
            head: Vec::with_capacity(head_cap.min(64 * 1024)),
            tail: VecDeque::new(),
            head_cap,
            tail_cap,
            total: 0,
        }
    }

    /// Adds the next chunk of the stream.
    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total = self.total.saturating_add(bytes.len() as u64);
        let room = self.head_cap - self.head.len();
        if room > 0 {
            let take = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if bytes.is_empty() || self.tail_cap == 0 {
            return;
        }
        if bytes.len() >= self.tail_cap {
            self.tail.clear();
            self.tail
                .extend(bytes[bytes.len() - self.tail_cap..].iter().copied());
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.tail.extend(bytes.iter().copied());
    }

    /// How many bytes were pushed in all.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Renders the capture in at most `budget` bytes of content (plus the marker): all of it
    /// when it fits, else its head, `[... N bytes omitted ...]`, and its tail. Invalid UTF-8
    /// is replaced, and cuts fall on character boundaries.
    pub fn render(&self, budget: usize) -> String {
        let kept = self.head.len() + self.tail.len();
        let dropped = self.total - kept as u64;
        let (tail_a, tail_b) = self.tail.as_slices();
        if dropped == 0 && kept <= budget {
            let mut all = Vec::with_capacity(kept);
            all.extend_from_slice(&self.head);
            all.extend_from_slice(tail_a);
            all.extend_from_slice(tail_b);
            return String::from_utf8_lossy(&all).into_owned();
        }
        let head_budget = budget / 2;
        let tail_budget = budget - head_budget;
        // Without a gap the kept bytes are one run, and the tail may reach into the head.
        let contiguous: Vec<u8>;
        let (head_src, tail_src): (&[u8], Vec<u8>) = if dropped == 0 {
            let mut all = Vec::with_capacity(kept);
            all.extend_from_slice(&self.head);
            all.extend_from_slice(tail_a);
            all.extend_from_slice(tail_b);
            contiguous = all;
            let tail_start = contiguous.len() - tail_budget.min(contiguous.len());
            (&contiguous[..], contiguous[tail_start..].to_vec())
        } else {
            let skip = self.tail.len().saturating_sub(tail_budget);
            (
                &self.head[..],
                self.tail.iter().skip(skip).copied().collect(),
            )
        };
        let head = cut_head(&head_src[..head_budget.min(head_src.len())]);
        let tail = cut_tail(&tail_src);
        let (head, tail) = (whole_lines_head(head), whole_lines_tail(tail));
        let omitted = self.total - head.len() as u64 - tail.len() as u64;
        let mut out = String::from_utf8_lossy(head).into_owned();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("[... {omitted} bytes omitted ...]\n"));
        out.push_str(&String::from_utf8_lossy(tail));
        out
    }
}

/// Drops a character cut short at the end of `bytes`.
fn cut_head(bytes: &[u8]) -> &[u8] {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes,
        // An error with no length is an incomplete sequence at the very end: the cut.
        Err(error) if error.error_len().is_none() => &bytes[..error.valid_up_to()],
        Err(_) => bytes,
    }
}

/// Ends `head` after its last newline, unless that would drop more than a quarter of it
/// (one long line is better cut mid-line than lost).
fn whole_lines_head(head: &[u8]) -> &[u8] {
    match head.iter().rposition(|byte| *byte == b'\n') {
        Some(at) if (head.len() - at - 1) * 4 <= head.len() => &head[..=at],
        _ => head,
    }
}

/// Starts `tail` after its first newline, unless that would drop more than a quarter of it.
fn whole_lines_tail(tail: &[u8]) -> &[u8] {
    match tail.iter().position(|byte| *byte == b'\n') {
        Some(at) if (at + 1) * 4 <= tail.len() => &tail[at + 1..],
        _ => tail,
    }
}

/// Drops the continuation bytes of a character cut short at the start of `bytes`.
fn cut_tail(bytes: &[u8]) -> &[u8] {
    let skip = bytes
        .iter()
        .take(3)
        .take_while(|byte| (**byte & 0b1100_0000) == 0b1000_0000)
        .count();
    &bytes[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(budget: usize, chunks: &[&[u8]]) -> OutputCapture {
        let mut capture = OutputCapture::new(budget);
        for chunk in chunks {
            capture.push(chunk);
        }
        capture
    }

    #[test]
    fn keeps_everything_within_budget() {
        let capture = captured(16, &[b"hello ", b"world"]);
        assert_eq!(capture.render(16), "hello world");
        assert_eq!(capture.total_bytes(), 11);
    }

    const LINES: &str = "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\nline 8\nline 9\n\
        line 10\nline 11\nline 12\nline 13\nline 14\nline 15\nline 16\nline 17\nline 18\n\
        line 19\nline 20\n";

    #[test]
    fn keeps_head_and_tail_with_marker() {
        let cases: &[(usize, &[&[u8]], &str)] = &[
            (
                8,
                &[b"0123456789abcdef"],
                "0123\n[... 8 bytes omitted ...]\ncdef",
            ),
            (
                8,
                &[b"01", b"23", b"45", b"67", b"89", b"ab", b"cd", b"ef"],
                "0123\n[... 8 bytes omitted ...]\ncdef",
            ),
            (
                8,
                &[b"0123456", b"789abcdef"],
                "0123\n[... 8 bytes omitted ...]\ncdef",
            ),
            (
                4,
                &[b"ab\n", b"cd\n", b"ef\n"],
                "ab\n[... 5 bytes omitted ...]\nf\n",
            ),
            (0, &[b"abc"], "[... 3 bytes omitted ...]\n"),
            // A newline near the cut: whole lines on both sides.
            (
                100,
                &[LINES.as_bytes()],
                "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\n\
                 [... 54 bytes omitted ...]\n\
                 line 15\nline 16\nline 17\nline 18\nline 19\nline 20\n",
            ),
            // A newline far from the cut: cut mid-line rather than lose most of the head.
            (
                20,
                &[b"ab\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"],
                "ab\nxxxxxxx\n[... 13 bytes omitted ...]\nxxxxxxxxxx",
            ),
        ];
        for (budget, chunks, expected) in cases {
            let capture = captured(*budget, chunks);
            assert_eq!(capture.render(*budget), *expected, "{chunks:?}");
        }
    }

    #[test]
    fn render_with_smaller_budget_trims_further() {
        let capture = captured(8, &[b"0123456789abcdef"]);
        assert_eq!(capture.render(4), "01\n[... 12 bytes omitted ...]\nef");
        let capture = captured(100, &[b"0123456789"]);
        assert_eq!(capture.render(4), "01\n[... 6 bytes omitted ...]\n89");
    }

    #[test]
    fn cuts_on_char_boundaries() {
        // "é" is two bytes; a budget of 5 splits the third and the fifth one.
        let text = "éééééééé".as_bytes();
        let capture = captured(10, &[text]);
        let rendered = capture.render(10);
        assert_eq!(rendered, "éé\n[... 8 bytes omitted ...]\néé");
        assert!(!rendered.contains('\u{FFFD}'));
    }

    #[test]
    fn memory_stays_bounded() {
        let mut capture = OutputCapture::new(1024);
        let chunk = [b'x'; 4096];
        for _ in 0..1000 {
            capture.push(&chunk);
        }
        assert_eq!(capture.head.len() + capture.tail.len(), 1024);
        assert_eq!(capture.total_bytes(), 4096 * 1000);
    }
}
