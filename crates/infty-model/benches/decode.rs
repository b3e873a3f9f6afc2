//! Decoding speed and memory of large recorded streams.
//!
//! Speed: infty-model's decoder (framing, typed parsing, assembly, events) against a bare
//! baseline that only frames with `eventsource-stream` and parses every payload into a
//! `serde_json::Value`. Target: at least 0.8x the baseline's throughput.
//!
//! Large events: one SSE event of 5, 10 and 50 MB (a single `data:` line arriving in 16 KB
//! chunks, the case that was quadratic with `eventsource-stream`'s framing), and an endless
//! stream that never sends its terminal event, which must end at the response cap. Time and
//! peak heap growth are printed once per size, then measured by criterion.
//!
//! Memory: a counting global allocator records the peak heap growth while decoding.
//! Printed before the timings: growth relative to the raw stream and to the answer, for
//! streams of growing length, and for streams whose answer stays fixed while their length
//! grows (keep-alive comments and ignored events), where growth must stay flat.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use infty_model::test_support::{ChatSse, ResponsesSse, decode_chunks, decode_chunks_within};
use infty_model::{StreamLimits, WireApi};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to the system allocator with the caller's arguments; the
// counters are plain atomics and never affect the returned memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let now = CURRENT.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CHUNK: usize = 16 * 1024;

fn words(count: usize) -> String {
    let vocabulary = [
        "stream", "model", "token", "delta", "verifier", "Grüße", "東京", "plan", "🚀", "tool",
    ];
    let mut text = String::new();
    for i in 0..count {
        text.push_str(vocabulary[i % vocabulary.len()]);
        text.push(' ');
    }
    text
}

/// A long answer: reasoning, a long message, two tool calls.
fn responses_stream(word_count: usize) -> (String, usize) {
    let text = words(word_count);
    let body = ResponsesSse::new("resp_bench")
        .reasoning("Plan the answer in steps.")
        .text(&text)
        .function_call(
            "call_1",
            "write_file",
            r#"{"path":"deliverable/answer.md","content":"done"}"#,
        )
        .function_call("call_2", "shell", r#"{"command":"ls -la"}"#)
        .usage(1000, 2000)
        .build();
    (body, text.len())
}

fn chat_stream(word_count: usize) -> (String, usize) {
    let text = words(word_count);
    let body = ChatSse::new("chatcmpl-bench")
        .reasoning("Plan the answer in steps.")
        .text(&text)
        .function_call(
            "call_1",
            "write_file",
            r#"{"path":"deliverable/answer.md","content":"done"}"#,
        )
        .usage(1000, 2000)
        .build();
    (body, text.len())
}

/// A fixed short answer behind `padding` keep-alive comments and ignored events.
fn padded_stream(padding: usize) -> String {
    let full = ResponsesSse::new("resp_pad")
        .text("short answer")
        .usage(1, 2)
        .build();
    let split = full.find("event: response.completed").unwrap();
    let mut body = full[..split].to_owned();
    for i in 0..padding {
        body.push_str(": keep-alive\n\n");
        body.push_str(&format!(
            "event: response.in_progress\ndata: {{\"type\":\"response.in_progress\",\"sequence_number\":{i},\"response\":{{\"id\":\"resp_pad\",\"status\":\"in_progress\"}}}}\n\n"
        ));
    }
    body.push_str(&full[split..]);
    body
}

fn chunks(body: &str) -> Vec<Vec<u8>> {
    body.as_bytes().chunks(CHUNK).map(<[u8]>::to_vec).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

async fn decode(wire_api: WireApi, chunks: &[Vec<u8>]) -> usize {
    let response = decode_chunks(
        wire_api,
        futures::stream::iter(chunks.iter().map(Vec::as_slice)),
        Duration::from_secs(60),
        &|event| {
            black_box(event);
        },
    )
    .await
    .unwrap();
    response.items.len()
}

async fn baseline(chunks: &[Vec<u8>]) -> usize {
    let mut events = futures::stream::iter(chunks.iter().map(Vec::as_slice))
        .map(Ok::<_, std::convert::Infallible>)
        .eventsource();
    let mut count = 0;
    while let Some(event) = events.next().await {
        let event = event.unwrap();
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&event.data) {
            black_box(value);
            count += 1;
        }
    }
    count
}

/// Peak heap growth while decoding `body`; its chunks are allocated beforehand and stay
/// alive (borrowed), so freeing them cannot hide growth.
fn peak_growth(rt: &tokio::runtime::Runtime, wire_api: WireApi, body: &str) -> usize {
    let input = chunks(body);
    let start = CURRENT.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    rt.block_on(decode(wire_api, &input));
    let peak = PEAK.load(Ordering::Relaxed) - start;
    drop(input);
    peak
}

fn report_memory() {
    let rt = runtime();
    println!("memory: peak heap growth while decoding (chunks of {CHUNK} bytes)");
    for words in [5_000, 20_000, 80_000] {
        let (body, answer) = responses_stream(words);
        let peak = peak_growth(&rt, WireApi::Responses, &body);
        println!(
            "  responses {:>9} B stream, {:>7} B answer: peak +{:>8} B = {:.3} x stream, {:.2} x answer",
            body.len(),
            answer,
            peak,
            peak as f64 / body.len() as f64,
            peak as f64 / answer as f64
        );
    }
    for words in [5_000, 20_000, 80_000] {
        let (body, answer) = chat_stream(words);
        let peak = peak_growth(&rt, WireApi::Chat, &body);
        println!(
            "  chat      {:>9} B stream, {:>7} B answer: peak +{:>8} B = {:.3} x stream, {:.2} x answer",
            body.len(),
            answer,
            peak,
            peak as f64 / body.len() as f64,
            peak as f64 / answer as f64
        );
    }
    for padding in [1_000, 10_000, 100_000] {
        let body = padded_stream(padding);
        let peak = peak_growth(&rt, WireApi::Responses, &body);
        println!(
            "  fixed answer, {:>9} B stream ({padding} padding events): peak +{peak} B",
            body.len()
        );
    }
}

/// A Responses stream whose one text delta is `bytes` long.
fn large_event_stream(bytes: usize) -> String {
    let delta = "x".repeat(bytes);
    format!(
        "event: response.created\ndata: {{\"type\":\"response.created\",\"response\":{{\"id\":\"resp_big\"}}}}\n\n\
         event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"output_index\":0,\"delta\":\"{delta}\"}}\n\n\
         event: response.completed\ndata: {{\"type\":\"response.completed\",\"response\":{{\"id\":\"resp_big\"}}}}\n\n"
    )
}

/// Cap on the endless stream in these benchmarks (the default is 256 MiB).
const ENDLESS_CAP: u64 = 64 << 20;

/// An endless stream of small text deltas, produced as it is read (never held whole).
fn endless_stream() -> impl futures::Stream<Item = Vec<u8>> + Unpin {
    let head = b"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_endless\"}}\n\n".to_vec();
    let event = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"output_index\":0,\"delta\":\"more text \"}\n\n";
    let chunk = event.repeat(CHUNK / event.len()).into_bytes();
    futures::stream::iter(std::iter::once(head).chain(std::iter::repeat(chunk)))
}

async fn decode_endless() -> String {
    let limits = StreamLimits {
        max_response_bytes: ENDLESS_CAP,
        ..StreamLimits::default()
    };
    let result = decode_chunks_within(
        WireApi::Responses,
        endless_stream(),
        Duration::from_secs(60),
        limits,
        &|event| {
            black_box(event);
        },
    )
    .await;
    result.err().map(|e| e.to_string()).unwrap_or_default()
}

fn report_large_events() {
    let rt = runtime();
    println!("large events: one-shot time and peak heap growth (chunks of {CHUNK} bytes)");
    for mb in [5usize, 10, 50] {
        let body = large_event_stream(mb << 20);
        let input = chunks(&body);
        let start = CURRENT.load(Ordering::Relaxed);
        PEAK.store(start, Ordering::Relaxed);
        let began = std::time::Instant::now();
        rt.block_on(decode(WireApi::Responses, &input));
        let elapsed = began.elapsed();
        let peak = PEAK.load(Ordering::Relaxed) - start;
        println!(
            "  one {mb:>2} MB event: {elapsed:>10.3?}, peak +{peak:>10} B = {:.2} x event",
            peak as f64 / (mb << 20) as f64
        );
    }
    let start = CURRENT.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let began = std::time::Instant::now();
    let error = rt.block_on(decode_endless());
    let elapsed = began.elapsed();
    let peak = PEAK.load(Ordering::Relaxed) - start;
    println!(
        "  endless stream, cap {} MiB: {elapsed:>10.3?}, peak +{peak} B, ends with: {error}",
        ENDLESS_CAP >> 20
    );
}

fn bench_large_events(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("large_event");
    group.sample_size(10);
    for mb in [5usize, 10, 50] {
        let body = large_event_stream(mb << 20);
        let input = chunks(&body);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("{mb}MB"), |b| {
            b.iter(|| rt.block_on(decode(WireApi::Responses, &input)))
        });
    }
    group.throughput(Throughput::Bytes(ENDLESS_CAP));
    group.bench_function("endless_to_cap", |b| {
        b.iter(|| rt.block_on(decode_endless()))
    });
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    report_large_events();
    report_memory();
    let rt = runtime();
    let (responses, _) = responses_stream(40_000);
    let (chat, _) = chat_stream(40_000);
    for (name, wire_api, body) in [
        ("responses", WireApi::Responses, &responses),
        ("chat", WireApi::Chat, &chat),
    ] {
        let input = chunks(body);
        let mut group = c.benchmark_group(format!("decode/{name}"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function("baseline_eventsource_serde_json", |b| {
            b.iter(|| rt.block_on(baseline(&input)))
        });
        group.bench_function("infty_model", |b| {
            b.iter(|| rt.block_on(decode(wire_api, &input)))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench_decode, bench_large_events
}
criterion_main!(benches);
