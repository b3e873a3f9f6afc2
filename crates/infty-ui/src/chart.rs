//! The usage chart: total tokens (solid) and cost (dashed, when priced) over time as
//! server-rendered SVG lines.
//!
//! Plain SVG elements with presentation attributes only (no inline style, no script), so
//! the Content-Security-Policy holds. This module must never draw more than a few hundred
//! points, however long the run.

use std::fmt::Write;

use maud::{Markup, html};

use crate::digest::UsagePoint;
use crate::page::{tokens, when};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;
const MAX_DRAWN: usize = 300;

/// The chart of `points` (oldest first).
pub(crate) fn token_chart(points: &[UsagePoint]) -> Markup {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return html! { p.muted { "no tokens used yet" } };
    };
    let t0 = first.at.unix_timestamp_nanos() as f64;
    let span = (last.at.unix_timestamp_nanos() as f64 - t0).max(1.0);
    let top = last.total.max(1) as f64;
    let step = points.len().div_ceil(MAX_DRAWN).max(1);
    let top_cost = last.cost_usd.max(f64::MIN_POSITIVE);
    let mut line = String::from("0,160");
    let mut cost_line = String::from("0,160");
    let drawn = points
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i == points.len() - 1);
    for (_, point) in drawn {
        let x = if points.len() == 1 {
            WIDTH
        } else {
            (point.at.unix_timestamp_nanos() as f64 - t0) / span * WIDTH
        };
        let y = HEIGHT - point.total as f64 / top * (HEIGHT - 8.0);
        let _ = write!(line, " {x:.1},{y:.1}");
        let y = HEIGHT - point.cost_usd / top_cost * (HEIGHT - 8.0);
        let _ = write!(cost_line, " {x:.1},{y:.1}");
    }
    let priced = last.cost_usd > 0.0;
    let label = if priced {
        format!("{} tokens, ${:.4}", tokens(last.total), last.cost_usd)
    } else {
        format!("{} tokens", tokens(last.total))
    };
    html! {
        figure.chart {
            svg viewBox="-4 -4 608 172" role="img" aria-label={ "tokens over time, " (label) } {
                line x1="0" y1="160" x2="600" y2="160" stroke="currentColor" stroke-opacity="0.3" {}
                polyline points=(line) fill="none" stroke="#3b82f6" stroke-width="2" {}
                @if priced {
                    polyline points=(cost_line) fill="none" stroke="#f59e0b" stroke-width="2" stroke-dasharray="6 4" {}
                }
            }
            figcaption {
                span { (when(first.at)) }
                strong { (label) }
                span { (when(last.at)) }
            }
        }
    }
}
