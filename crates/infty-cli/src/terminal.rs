//! Live progress on stderr while a run is driven: role-coloured exchanges, tool calls with
//! their outcome, verdicts, compactions, optional streamed model text, a spinner with the
//! elapsed time and tokens while a role thinks, and a closing summary.
//!
//! Two modes. *Live* (stderr is a terminal, `NO_COLOR` unset, `TERM` not `dumb`): colours
//! and one spinner line redrawn in place, always cleared before any other line is printed.
//! *Plain* (anything else, e.g. a log file or a test): the same lines, no colour, no
//! spinner, no cursor movement. Everything here goes to stderr; stdout is for results. A
//! reporter runs on the driver's task, so every callback only formats and writes a line.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anstyle::{AnsiColor, Style};
use camino::Utf8Path;
use infty_core::events::{CompactionCause, Note, Terminal};
use infty_core::tools::{Plan, StepStatus};
use infty_core::{Progress, ProgressReporter};
use infty_signals::VerifierDecision;
use infty_store::{Role, TokenUsage};

use crate::inspect::one_line;

/// How the progress of this process is shown; set once by `main` before a run is driven.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TerminalOptions {
    /// Print the models' text as it streams.
    pub stream: bool,
}

static OPTIONS: OnceLock<TerminalOptions> = OnceLock::new();

/// Sets the options of every reporter this process creates (the first call wins).
pub(crate) fn configure(options: TerminalOptions) {
    let _ = OPTIONS.set(options);
}

/// How often the spinner redraws.
const FRAME: Duration = Duration::from_millis(100);
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// Erase the current terminal line and return to its start.
const CLEAR_LINE: &str = "\r\x1b[2K";

/// Prints a run's progress to stderr.
pub(crate) struct TerminalProgress {
    started: Instant,
    stream: bool,
    screen: Arc<Mutex<Screen>>,
    stop: Arc<AtomicBool>,
    spinner: Mutex<Option<JoinHandle<()>>>,
}

/// What is on (or about to be on) the terminal, shared with the spinner thread.
#[derive(Default)]
struct Screen {
    /// What each busy role is doing, and since when.
    activity: BTreeMap<String, (String, Instant)>,
    /// The spinner line is drawn and must be cleared before anything else is written.
    drawn: bool,
    /// The role whose streamed text is mid-line.
    streaming: Option<String>,
    /// Tokens per role during this drive.
    usage: BTreeMap<String, TokenUsage>,
    /// Cost in US dollars per role during this drive.
    cost: BTreeMap<String, f64>,
    /// Run id and folder.
    run: Option<(String, String)>,
    /// The accepted deliverable, relative to the run folder.
    deliverable: Option<String>,
    /// The closing summary was printed.
    summarized: bool,
    /// The last tool call each role started, summarised, for its outcome line.
    tool_calls: BTreeMap<String, String>,
    frame: usize,
}

impl Screen {
    /// Makes room for a full line: clears the spinner, ends a streamed line.
    fn make_room(&mut self, err: &mut impl Write) {
        if self.drawn {
            let _ = err.write_all(CLEAR_LINE.as_bytes());
            self.drawn = false;
        }
        if self.streaming.take().is_some() {
            let _ = err.write_all(b"\n");
        }
    }
}

impl TerminalProgress {
    /// A reporter whose clock starts now; live when stderr is an interactive terminal.
    pub(crate) fn new() -> TerminalProgress {
        let options = OPTIONS.get().copied().unwrap_or_default();
        TerminalProgress::with_mode(live_terminal(), options)
    }

    fn with_mode(live: bool, options: TerminalOptions) -> TerminalProgress {
        let screen = Arc::new(Mutex::new(Screen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let spinner = live.then(|| spawn_spinner(screen.clone(), stop.clone()));
        TerminalProgress {
            started: Instant::now(),
            stream: options.stream,
            screen,
            stop,
            spinner: Mutex::new(spinner),
        }
    }

    /// Remembers the run for the closing summary.
    pub(crate) fn set_run(&self, run_id: &str, run_dir: &Utf8Path) {
        self.with_screen(|screen| screen.run = Some((run_id.to_string(), run_dir.to_string())));
    }

    fn with_screen<T>(&self, f: impl FnOnce(&mut Screen) -> T) -> Option<T> {
        self.screen.lock().ok().map(|mut screen| f(&mut screen))
    }

    fn stamp(&self) -> String {
        let elapsed = self.started.elapsed().as_secs();
        format!(
            "[{:02}:{:02}:{:02}]",
            elapsed / 3600,
            (elapsed / 60) % 60,
            elapsed % 60
        )
    }

    /// One progress line: `[hh:mm:ss] from → to  text`.
    fn line(&self, from: &str, to: Option<&str>, text: &str) {
        let label = match to {
            Some(to) => format!("{} → {}", paint(from), paint(to)),
            None => paint(from),
        };
        self.raw_line(&format!("{} {label}  {text}", self.stamp()));
    }

    fn raw_line(&self, text: &str) {
        self.with_screen(|screen| {
            let mut err = anstream::stderr().lock();
            screen.make_room(&mut std::io::stderr());
            let _ = writeln!(err, "{text}");
        });
    }

    fn set_activity(&self, role: &str, what: Option<String>) {
        self.with_screen(|screen| match what {
            Some(what) => {
                screen
                    .activity
                    .insert(role.to_string(), (what, Instant::now()));
            }
            None => {
                screen.activity.remove(role);
            }
        });
    }

    /// The closing summary: run, folder, deliverable, duration, tokens per role. Printed
    /// once, when the run ends; a later call (after success) prints it only if it was not.
    pub(crate) fn summary(&self, run_id: &str, run_dir: &str, ending: &Terminal) {
        let status = ending.label();
        let elapsed = self.started.elapsed().as_secs();
        self.stop_spinner();
        self.with_screen(|screen| {
            if screen.summarized {
                return;
            }
            screen.summarized = true;
            screen.activity.clear();
            let mut err = anstream::stderr().lock();
            screen.make_room(&mut std::io::stderr());
            let style = ending_style(ending);
            let _ = writeln!(
                err,
                "{style}run {run_id} {status}{style:#} in {}m{:02}s",
                elapsed / 60,
                elapsed % 60
            );
            let _ = writeln!(err, "  folder:      {run_dir}");
            if let Some(deliverable) = &screen.deliverable {
                let _ = writeln!(
                    err,
                    "  deliverable: {}",
                    Utf8Path::new(run_dir).join(deliverable)
                );
            }
            if !screen.usage.is_empty() {
                let _ = writeln!(err, "  tokens:      {}", usage_line(&screen.usage));
            }
            if !screen.cost.is_empty() {
                let _ = writeln!(err, "  cost:        {}", cost_line(&screen.cost));
            }
        });
    }

    /// Says the run waits for a usage limit to lift (`--wait-on-limit`).
    pub(crate) fn waiting_on_limit(&self, run_id: &str, until: time::OffsetDateTime) {
        self.line(
            "operator",
            None,
            &format!(
                "run {run_id} waits for the usage limit to lift at {} (Ctrl-C stops waiting)",
                crate::inspect::timestamp(until)
            ),
        );
    }

    /// Lets the next drive of the same process print its own closing summary.
    pub(crate) fn rearm(&self) {
        self.with_screen(|screen| screen.summarized = false);
    }

    fn stop_spinner(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.spinner.lock().ok().and_then(|mut slot| slot.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        self.with_screen(|screen| screen.make_room(&mut std::io::stderr()));
    }
}

impl Default for TerminalProgress {
    fn default() -> Self {
        TerminalProgress::new()
    }
}

impl Drop for TerminalProgress {
    fn drop(&mut self) {
        self.stop_spinner();
    }
}

/// Whether stderr gets the live display.
fn live_terminal() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var("TERM").is_ok_and(|term| term == "dumb");
    std::io::stderr().is_terminal() && !no_color && !dumb
}

fn spawn_spinner(screen: Arc<Mutex<Screen>>, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(FRAME);
            let Ok(mut screen) = screen.lock() else {
                return;
            };
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if screen.streaming.is_some() {
                continue;
            }
            let Some(text) = spinner_text(&screen) else {
                if screen.drawn {
                    let _ = std::io::stderr().write_all(CLEAR_LINE.as_bytes());
                    screen.drawn = false;
                }
                continue;
            };
            screen.frame = (screen.frame + 1) % SPINNER.len();
            let frame = SPINNER[screen.frame];
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{CLEAR_LINE}{frame} {text}");
            let _ = err.flush();
            screen.drawn = true;
        }
    })
}

/// `solver thinking… 00:42 · 12.3k tokens`, or `None` when no role is busy.
fn spinner_text(screen: &Screen) -> Option<String> {
    let since = screen.activity.values().map(|(_, since)| *since).min()?;
    let doing: Vec<String> = screen
        .activity
        .iter()
        .map(|(role, (what, _))| format!("{role} {what}"))
        .collect();
    let secs = since.elapsed().as_secs();
    // TokenUsage adds with saturation: an absurd report cannot overflow the display.
    let total = screen
        .usage
        .values()
        .fold(TokenUsage::default(), |sum, u| sum + *u)
        .total_tokens;
    let cost: f64 = screen.cost.values().fold(0.0, |total, usd| total + usd);
    let cost = if cost > 0.0 {
        format!(" · ${cost:.2}")
    } else {
        String::new()
    };
    Some(format!(
        "{}… {:02}:{:02} · {} tokens{cost}",
        one_line(&doing.join(", "), 60),
        secs / 60,
        secs % 60,
        compact_count(total)
    ))
}

/// `solver $0.0123, director $0.0010 (total $0.0133)`.
pub(crate) fn cost_line(cost: &BTreeMap<String, f64>) -> String {
    let mut roles: Vec<(&String, &f64)> = cost.iter().collect();
    roles.sort_by_key(|(role, _)| (role_rank(role), (*role).clone()));
    let parts: Vec<String> = roles
        .iter()
        .map(|(role, usd)| format!("{role} ${usd:.4}"))
        .collect();
    let total: f64 = cost.values().fold(0.0, |total, usd| total + usd);
    format!("{} (total ${total:.4})", parts.join(", "))
}

/// `950`, `12.3k`, `4.1M`.
fn compact_count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// `solver 300 in / 60 out, director 100 in / 20 out (total 480)`.
fn usage_line(usage: &BTreeMap<String, TokenUsage>) -> String {
    let mut roles: Vec<(&String, &TokenUsage)> = usage.iter().collect();
    // Solver first, then the Director, then Verifiers by name.
    roles.sort_by_key(|(role, _)| (role_rank(role), (*role).clone()));
    let parts: Vec<String> = roles
        .iter()
        .map(|(role, u)| format!("{role} {} in / {} out", u.input_tokens, u.output_tokens))
        .collect();
    let total = usage
        .values()
        .fold(TokenUsage::default(), |sum, u| sum + *u)
        .total_tokens;
    format!("{} (total {total})", parts.join(", "))
}

fn role_rank(role: &str) -> u8 {
    match role {
        Role::SOLVER => 0,
        Role::DIRECTOR => 1,
        _ => 2,
    }
}

/// The colour of a line's role; labels that are no role (`run`, `operator`, `check`) and the
/// Verifiers as a group (`verifier`) get their own.
fn role_style(role: &str) -> Style {
    let color = match Role::parse(role) {
        Ok(Role::Solver) => AnsiColor::Magenta,
        Ok(Role::Director) => AnsiColor::Blue,
        Ok(Role::Verifier(_)) => AnsiColor::Green,
        Err(_) => AnsiColor::Cyan,
    };
    Style::new().fg_color(Some(color.into())).bold()
}

fn ending_style(ending: &Terminal) -> Style {
    let color = match ending {
        Terminal::Succeeded { .. } => AnsiColor::Green,
        Terminal::Interrupted
        | Terminal::BudgetExhausted { .. }
        | Terminal::Blocked { .. }
        | Terminal::UsageLimited { .. } => AnsiColor::Yellow,
        Terminal::Failed { .. } => AnsiColor::Red,
    };
    Style::new().fg_color(Some(color.into())).bold()
}

fn paint(role: &str) -> String {
    let style = role_style(role);
    format!("{style}{role}{style:#}")
}

/// The argument people want to see for a tool call: the command, the path, or the JSON.
fn tool_summary(tool: &str, arguments: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(arguments).unwrap_or_default();
    let key = match tool {
        "shell" => "command",
        "read_file" | "write_file" | "edit_file" | "list_dir" => "path",
        _ => "",
    };
    match value.get(key).and_then(|v| v.as_str()) {
        Some(text) => format!("{tool} {}", one_line(text, 100)),
        None => format!("{tool} {}", one_line(arguments, 100)),
    }
}

/// What each event shows: the one mapping from the progress vocabulary to the screen.
impl ProgressReporter for TerminalProgress {
    fn report(&self, event: &Progress<'_>) {
        match *event {
            Progress::RunStarted {
                run_id,
                run_dir,
                resumed,
            } => self.run_started(run_id, run_dir, resumed),
            Progress::Noted(note) => self.noted(note),
            Progress::RoleThinking { role } => self.role_thinking(role),
            Progress::TextDelta { role, delta } => self.text_delta(role, delta),
            Progress::RoleMessage { role, text } => self.role_message(role, text),
            Progress::ToolCallStarted {
                role,
                tool,
                arguments,
            } => self.tool_call_started(role, tool, arguments),
            Progress::ToolCallFinished {
                role,
                tool,
                ok,
                output,
            } => self.tool_call_finished(role, tool, ok, output),
            Progress::PlanUpdated { role, plan } => self.plan_updated(role, plan),
            Progress::Usage {
                role,
                usage,
                cost_usd,
            } => {
                self.usage(role, usage);
                self.cost(role, cost_usd);
            }
            Progress::ModelRetry {
                role,
                attempt,
                max,
                delay,
                reason,
            } => self.model_retry(role, attempt, max, delay, reason),
            Progress::RunFinished(terminal) => self.run_finished(terminal),
        }
    }
}

impl TerminalProgress {
    /// A journaled note; the tool calls and retries are shown from their richer events.
    fn noted(&self, note: &Note) {
        match note {
            Note::ObjectivePosted { objective } => self.objective_posted(objective),
            Note::InvalidSignal { error, consecutive } => {
                self.invalid_signal(error, *consecutive);
            }
            Note::DirectionRequested { prompt } => self.direction_request(prompt),
            Note::DirectiveIssued {
                directive,
                rationale,
                ..
            } => self.directive(directive, rationale.as_deref()),
            Note::FinalDelivery {
                deliverable_path,
                summary,
            } => self.final_delivery(deliverable_path, summary.as_deref()),
            Note::DeliverableRejected { reason } => self.deliverable_rejected(reason),
            Note::VerdictRecorded {
                role,
                verdict,
                reasons,
                ..
            } => self.verifier_verdict(role.as_str(), verdict.is_pass(), reasons),
            Note::VerifierNoVerdict { role, error } => self.verifier_replaced(role.as_str(), error),
            Note::VerificationSummary { round, overall, .. } => {
                self.verification_summary(*round, *overall);
            }
            Note::BudgetWarning { reason } => self.budget_warning(reason),
            Note::Compacted {
                role,
                prompt_tokens,
                kept_items,
                cause,
            } => self.compaction(role.as_str(), *prompt_tokens, *kept_items, *cause),
            Note::Ended(Terminal::Interrupted) => self.interrupted(),
            Note::CheckFinished {
                name,
                passed,
                exit_code,
                timed_out,
                ..
            } => self.check_finished(name, *passed, *exit_code, *timed_out),
            Note::StallDetected {
                evidence,
                escalation,
            } => self.stall_detected(evidence, *escalation),
            Note::HandoffRequested { reason } => self.handoff_requested(reason),
            Note::OutputCapped {
                role,
                max_output_tokens,
            } => self.output_capped(role.as_str(), *max_output_tokens),
            Note::SandboxOff { roles } => self.sandbox_off(roles),
            Note::RecordEditAccepted { broken } => self.record_edit_accepted(broken),
            Note::VerdictsVoided { round, changed } => self.verdicts_voided(*round, changed),
            Note::DriverStarted { .. }
            | Note::DirectorReasked { .. }
            | Note::DirectorFailed { .. }
            | Note::VerificationStarted { .. }
            | Note::VerifierReplaced { .. }
            | Note::ToolCallStarted { .. }
            | Note::ToolCallFinished { .. }
            | Note::ModelRetry { .. }
            | Note::Ended(_)
            | Note::RecordSealed => {}
        }
    }

    fn run_started(&self, run_id: &str, run_dir: &Utf8Path, resumed: bool) {
        self.set_run(run_id, run_dir);
        let verb = if resumed { "resuming" } else { "starting" };
        self.raw_line(&format!("{verb} run {run_id} in {run_dir}"));
    }

    fn objective_posted(&self, objective: &str) {
        self.line(
            "operator",
            Some(Role::SOLVER),
            &format!("objective: {}", one_line(objective, 100)),
        );
    }

    fn role_thinking(&self, role: &str) {
        self.set_activity(role, Some("thinking".to_string()));
    }

    fn text_delta(&self, role: &str, delta: &str) {
        if !self.stream {
            return;
        }
        let stamp = self.stamp();
        self.with_screen(|screen| {
            let mut err = anstream::stderr().lock();
            if screen.streaming.as_deref() != Some(role) {
                screen.make_room(&mut std::io::stderr());
                let _ = write!(err, "{stamp} {} ▸ ", paint(role));
                screen.streaming = Some(role.to_string());
            } else if screen.drawn {
                let _ = std::io::stderr().write_all(CLEAR_LINE.as_bytes());
                screen.drawn = false;
            }
            let dim = Style::new().dimmed();
            let _ = write!(err, "{dim}{delta}{dim:#}");
            let _ = err.flush();
        });
    }

    fn role_message(&self, role: &str, _text: &str) {
        self.set_activity(role, None);
        self.with_screen(|screen| {
            if screen.streaming.as_deref() == Some(role) {
                screen.make_room(&mut std::io::stderr());
            }
        });
    }

    fn invalid_signal(&self, error: &str, consecutive: u32) {
        self.line(
            Role::SOLVER,
            None,
            &format!(
                "reply rejected ({consecutive} in a row): {}",
                one_line(error, 100)
            ),
        );
    }

    fn direction_request(&self, prompt: &str) {
        self.line(Role::SOLVER, Some(Role::DIRECTOR), &one_line(prompt, 120));
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
        self.line(Role::DIRECTOR, Some(Role::SOLVER), &text);
    }

    fn final_delivery(&self, deliverable_path: &str, summary: Option<&str>) {
        let summary = summary
            .map(|s| format!(" — {}", one_line(s, 80)))
            .unwrap_or_default();
        self.line(
            Role::SOLVER,
            Some("verifier"),
            &format!("delivers {deliverable_path}{summary}"),
        );
    }

    fn deliverable_rejected(&self, reason: &str) {
        self.line(
            "operator",
            Some(Role::SOLVER),
            &format!("delivery refused: {}", one_line(reason, 100)),
        );
    }

    fn verifier_verdict(&self, role: &str, pass: bool, reasons: &[String]) {
        let word = if pass { "pass" } else { "fail" };
        let reasons = if reasons.is_empty() {
            String::new()
        } else {
            format!(": {}", one_line(&reasons.join("; "), 100))
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
        let summary = tool_summary(tool, arguments);
        self.with_screen(|screen| {
            screen.tool_calls.insert(role.to_string(), summary.clone());
            screen.activity.insert(
                role.to_string(),
                (format!("running {tool}"), Instant::now()),
            );
        });
    }

    fn tool_call_finished(&self, role: &str, tool: &str, ok: bool, output: &str) {
        let summary = self
            .with_screen(|screen| {
                screen
                    .activity
                    .insert(role.to_string(), ("thinking".to_string(), Instant::now()));
                screen.tool_calls.remove(role)
            })
            .flatten()
            .unwrap_or_else(|| tool.to_string());
        if tool == "update_plan" && ok {
            // `plan_updated` says it better.
            return;
        }
        let outcome = if ok {
            "ok".to_string()
        } else {
            format!("failed: {}", one_line(output, 100))
        };
        self.line(role, None, &format!("{summary} → {outcome}"));
    }

    fn plan_updated(&self, role: &str, plan: &Plan) {
        let now = plan
            .steps
            .iter()
            .find(|step| step.status == StepStatus::InProgress)
            .map(|step| format!("; now: {}", one_line(&step.step, 80)))
            .unwrap_or_default();
        self.line(
            role,
            None,
            &format!(
                "plan: {}/{} steps done{now}",
                plan.completed(),
                plan.steps.len()
            ),
        );
    }

    fn compaction(
        &self,
        role: &str,
        prompt_tokens: u64,
        kept_items: usize,
        cause: CompactionCause,
    ) {
        self.line(
            role,
            None,
            &format!(
                "history compacted {} (kept the last {kept_items} items)",
                cause.explain(prompt_tokens)
            ),
        );
    }

    fn output_capped(&self, role: &str, max_output_tokens: u32) {
        self.line(
            role,
            None,
            &format!("response cut at its output cap of {max_output_tokens} tokens"),
        );
    }

    fn usage(&self, role: &str, usage: &TokenUsage) {
        self.with_screen(|screen| {
            *screen.usage.entry(role.to_string()).or_default() += *usage;
        });
    }

    fn cost(&self, role: &str, cost_usd: f64) {
        if cost_usd > 0.0 {
            self.with_screen(|screen| {
                *screen.cost.entry(role.to_string()).or_default() += cost_usd;
            });
        }
    }

    fn check_finished(&self, name: &str, passed: bool, exit_code: Option<i32>, timed_out: bool) {
        let outcome = match (passed, timed_out, exit_code) {
            (true, _, _) => "passed".to_string(),
            (false, true, _) => "timed out".to_string(),
            (false, false, Some(code)) => format!("failed (exit code {code})"),
            (false, false, None) => "failed (killed)".to_string(),
        };
        self.line("check", None, &format!("{name}: {outcome}"));
    }

    fn stall_detected(&self, evidence: &str, escalation: u32) {
        self.line(
            "operator",
            Some(Role::DIRECTOR),
            &format!("escalation {escalation}: {}", one_line(evidence, 140)),
        );
    }

    fn handoff_requested(&self, reason: &str) {
        self.line(
            "operator",
            Some(Role::SOLVER),
            &format!("budget spent ({reason}): last turn, write the hand-off"),
        );
    }

    fn budget_warning(&self, reason: &str) {
        self.line(
            "operator",
            Some(Role::SOLVER),
            &format!("budget nearly spent ({reason}): finalize"),
        );
    }

    fn verdicts_voided(&self, round: u32, changed: &[String]) {
        self.line(
            "operator",
            Some(Role::SOLVER),
            &format!(
                "round {round} verdicts void: the deliverable changed during verification ({})",
                one_line(&changed.join(", "), 100)
            ),
        );
    }

    fn record_edit_accepted(&self, broken: &[infty_store::BrokenLine]) {
        let found: Vec<String> = broken.iter().map(ToString::to_string).collect();
        self.line(
            "operator",
            None,
            &format!(
                "warning: continuing from a record changed outside infty, as accepted ({})",
                one_line(&found.join("; "), 120)
            ),
        );
    }

    fn model_retry(&self, role: &str, attempt: u32, max: u32, delay: Duration, reason: &str) {
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

    fn sandbox_off(&self, roles: &[Role]) {
        self.line(
            "operator",
            None,
            &format!(
                "warning: no sandbox for {}: their tools run with your rights (--sandbox off)",
                roles
                    .iter()
                    .map(Role::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
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
        if let Terminal::Succeeded {
            deliverable_path, ..
        } = terminal
        {
            self.with_screen(|screen| screen.deliverable = Some(deliverable_path.clone()));
        }
        let status = terminal.label();
        let text = match (terminal, terminal.reason()) {
            (
                Terminal::Succeeded {
                    deliverable_path, ..
                },
                _,
            ) => format!("{status}: {deliverable_path}"),
            (Terminal::UsageLimited { resume_after, .. }, Some(reason)) => format!(
                "{status} until {}: {}",
                crate::inspect::timestamp(*resume_after),
                one_line(reason, 120)
            ),
            (_, Some(reason)) => format!("{status}: {}", one_line(reason, 120)),
            (_, None) => status.to_string(),
        };
        self.line("run", None, &text);
        let run = self.with_screen(|screen| screen.run.clone()).flatten();
        if let Some((run_id, run_dir)) = run {
            self.summary(&run_id, &run_dir, terminal);
        }
    }
}

/// Prints an error as one line on stderr (with its causes), the way every command fails.
pub(crate) fn print_error(error: &anyhow::Error) {
    let style = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    let mut err = anstream::stderr().lock();
    let _ = writeln!(err, "{style}error:{style:#} {error:#}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_compact() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1_000, "1.0k"),
            (12_345, "12.3k"),
            (4_100_000, "4.1M"),
        ];
        for (n, expected) in cases {
            assert_eq!(compact_count(n), expected);
        }
    }

    #[test]
    fn tool_calls_show_their_main_argument() {
        let cases = [
            (
                "shell",
                r#"{"command":"cargo test","timeout_ms":1}"#,
                "shell cargo test",
            ),
            (
                "write_file",
                r#"{"path":"a.md","content":"x"}"#,
                "write_file a.md",
            ),
            ("list_dir", r#"{"path":".","depth":2}"#, "list_dir ."),
            ("custom", r#"{"x":1}"#, r#"custom {"x":1}"#),
            ("shell", "not json", "shell not json"),
        ];
        for (tool, arguments, expected) in cases {
            assert_eq!(tool_summary(tool, arguments), expected);
        }
    }

    #[test]
    fn usage_lists_solver_director_then_verifiers() {
        let usage = |input, output| TokenUsage {
            input_tokens: input,
            output_tokens: output,
            total_tokens: input + output,
            ..TokenUsage::default()
        };
        let roles = BTreeMap::from([
            ("verifier-1".to_string(), usage(5, 1)),
            ("director".to_string(), usage(10, 2)),
            ("solver".to_string(), usage(100, 20)),
        ]);
        assert_eq!(
            usage_line(&roles),
            "solver 100 in / 20 out, director 10 in / 2 out, verifier-1 5 in / 1 out (total 138)"
        );
    }

    #[test]
    fn spinner_names_the_busy_roles() {
        let mut screen = Screen::default();
        assert_eq!(spinner_text(&screen), None);
        screen
            .activity
            .insert("solver".into(), ("running shell".into(), Instant::now()));
        screen
            .activity
            .insert("verifier-1".into(), ("thinking".into(), Instant::now()));
        screen.usage.insert(
            "solver".into(),
            TokenUsage {
                total_tokens: 1500,
                ..TokenUsage::default()
            },
        );
        assert_eq!(
            spinner_text(&screen).unwrap(),
            "solver running shell, verifier-1 thinking… 00:00 · 1.5k tokens"
        );
    }
}
