//! Live progress on stderr: role-labelled exchanges, tool calls, verdicts, and a closing
//! summary. Colour only when stderr is a terminal and `NO_COLOR` is unset (anstream decides).

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use anstyle::{AnsiColor, Style};
use infty_core::ProgressReporter;
use infty_core::flow::Terminal;
use infty_signals::{VerifierDecision, VerifierVerdict};

use crate::inspect::one_line;

/// Prints a run's progress to stderr.
pub struct TerminalProgress {
    started: Instant,
    run: Mutex<Option<(String, String)>>,
}

impl TerminalProgress {
    /// A reporter whose clock starts now.
    pub fn new() -> TerminalProgress {
        TerminalProgress {
            started: Instant::now(),
            run: Mutex::new(None),
        }
    }

    /// Remembers the run for the closing summary.
    pub fn set_run(&self, run_id: &str, run_dir: &camino::Utf8Path) {
        if let Ok(mut slot) = self.run.lock() {
            *slot = Some((run_id.to_string(), run_dir.to_string()));
        }
    }

    fn line(&self, from: &str, to: Option<&str>, text: &str) {
        let elapsed = self.started.elapsed().as_secs();
        let stamp = format!(
            "[{:02}:{:02}:{:02}]",
            elapsed / 3600,
            (elapsed / 60) % 60,
            elapsed % 60
        );
        let label = match to {
            Some(to) => format!("{} → {}", paint(from), paint(to)),
            None => paint(from),
        };
        let mut err = anstream::stderr().lock();
        let _ = writeln!(err, "{stamp} {label}  {text}");
    }

    /// The closing summary.
    pub fn summary(&self, run_id: &str, run_dir: &str, status: &str) {
        let elapsed = self.started.elapsed().as_secs();
        let mut err = anstream::stderr().lock();
        let _ = writeln!(
            err,
            "run {run_id} {status} in {}m{:02}s ({run_dir})",
            elapsed / 60,
            elapsed % 60
        );
    }
}

fn role_style(role: &str) -> Style {
    let color = if role == "solver" {
        AnsiColor::Magenta
    } else if role == "director" {
        AnsiColor::Blue
    } else if role.starts_with("verifier") {
        AnsiColor::Green
    } else {
        AnsiColor::Cyan
    };
    Style::new().fg_color(Some(color.into())).bold()
}

fn paint(role: &str) -> String {
    let style = role_style(role);
    format!("{style}{role}{style:#}")
}

impl ProgressReporter for TerminalProgress {
    fn run_started(&self, run_id: &str, run_dir: &camino::Utf8Path, resumed: bool) {
        let verb = if resumed { "resuming" } else { "starting" };
        let mut err = anstream::stderr().lock();
        let _ = writeln!(err, "{verb} run {run_id} in {run_dir}");
    }

    fn objective_posted(&self, objective: &str) {
        self.line(
            "operator",
            Some("solver"),
            &format!("objective: {}", one_line(objective, 100)),
        );
    }

    fn invalid_signal(&self, error: &str, consecutive: u32) {
        self.line(
            "solver",
            None,
            &format!(
                "reply rejected ({consecutive} in a row): {}",
                one_line(error, 100)
            ),
        );
    }

    fn direction_request(&self, prompt: &str) {
        self.line("solver", Some("director"), &one_line(prompt, 120));
    }

    fn directive(&self, directive: &str, rationale: Option<&str>) {
        let text = match rationale {
            Some(rationale) => format!(
                "{} (because: {})",
                one_line(directive, 100),
                one_line(rationale, 60)
            ),
            None => one_line(directive, 120),
        };
        self.line("director", Some("solver"), &text);
    }

    fn final_delivery(&self, deliverable_path: &str, summary: Option<&str>) {
        let summary = summary
            .map(|s| format!(" — {}", one_line(s, 80)))
            .unwrap_or_default();
        self.line(
            "solver",
            Some("verifier"),
            &format!("delivers {deliverable_path}{summary}"),
        );
    }

    fn deliverable_rejected(&self, reason: &str) {
        self.line(
            "operator",
            Some("solver"),
            &format!("delivery refused: {}", one_line(reason, 100)),
        );
    }

    fn verifier_verdict(&self, role: &str, verdict: &VerifierVerdict) {
        let word = if verdict.verdict.is_pass() {
            "pass"
        } else {
            "fail"
        };
        let reasons = if verdict.reasons.is_empty() {
            String::new()
        } else {
            format!(": {}", one_line(&verdict.reasons.join("; "), 100))
        };
        self.line(role, None, &format!("{word}{reasons}"));
    }

    fn verifier_replaced(&self, role: &str, reason: &str) {
        self.line(
            role,
            None,
            &format!(
                "no verdict, replacing the session: {}",
                one_line(reason, 80)
            ),
        );
    }

    fn verification_summary(&self, round: u32, overall: VerifierDecision) {
        let word = if overall.is_pass() { "pass" } else { "fail" };
        self.line("verifier", None, &format!("round {round}: {word}"));
    }

    fn tool_call_started(&self, role: &str, tool: &str, arguments: &str) {
        self.line(role, None, &format!("{tool} {}", one_line(arguments, 100)));
    }

    fn tool_call_finished(&self, role: &str, tool: &str, ok: bool, _output: &str) {
        if !ok {
            self.line(role, None, &format!("{tool} failed"));
        }
    }

    fn budget_warning(&self, reason: &str) {
        self.line(
            "operator",
            Some("solver"),
            &format!("budget nearly spent ({reason}): finalize"),
        );
    }

    fn model_retry(
        &self,
        role: &str,
        attempt: u32,
        max: u32,
        delay: std::time::Duration,
        reason: &str,
    ) {
        self.line(
            role,
            None,
            &format!(
                "retrying {attempt}/{max} in {:.1}s: {}",
                delay.as_secs_f64(),
                one_line(reason, 80)
            ),
        );
    }

    fn interrupted(&self) {
        self.line(
            "operator",
            None,
            "interrupted; stopping cleanly (press Ctrl-C again to exit at once)",
        );
    }

    fn run_finished(&self, terminal: &Terminal) {
        let text = match terminal {
            Terminal::Succeeded {
                deliverable_path, ..
            } => format!("succeeded: {deliverable_path}"),
            Terminal::Failed { reason } => format!("failed: {}", one_line(reason, 120)),
            Terminal::BudgetExhausted { reason } => format!("budget exhausted: {reason}"),
            Terminal::Interrupted => "interrupted".to_string(),
        };
        self.line("run", None, &text);
    }
}

/// Prints an error as one line on stderr (with its causes), the way every command fails.
pub fn print_error(error: &anyhow::Error) {
    let style = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    let mut err = anstream::stderr().lock();
    let _ = writeln!(err, "{style}error:{style:#} {error:#}");
}
