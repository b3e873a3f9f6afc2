//! A role's conversation: instructions, history, a model, a tool set and a rollout file.
//!
//! A turn posts one user message and loops model ↔ tools until the model answers with text
//! and no tool call; that text is the role's reply. Every item is appended to the role's
//! rollout before the next step, so a crash loses at most the step in flight, and a session
//! can be rebuilt from its rollout alone ([`RoleSession::restore`]). A tool call found in the
//! rollout without its output is never re-run: the model is told it was interrupted and that
//! its effects are unknown (at-most-once).
//!
//! When the last response's prompt reached a share of the model's context window, the session
//! compacts before its next model call: the model writes a hand-off summary (its tokens count
//! with the turn's), and the history restarts from the summary, the turn's own message when
//! the kept tail no longer holds it, and the last few items, widened so that no tool output is
//! kept without its call. The new history is recorded in the rollout
//! ([`RolloutEntry::Compacted`]) and reported to the observer. An empty summary compacts
//! nothing.
//!
//! When the provider refuses a prompt as longer than the context window (whether or not the
//! window is known), the session compacts the same way and asks again, keeping fewer items
//! verbatim each time, down to the summary and the turn's message; only when even that does
//! not fit does the turn fail, with the provider's refusal. Then the summary is asked of the
//! dropped items alone (their later half, and so on, if they do not fit either), and a note
//! that they were dropped stands in for a summary the model could not write. This module
//! must never drop a call from its output nor leave a call unanswered.

use std::sync::Arc;

use camino::Utf8Path;
use std::collections::HashSet;

use infty_model::{
    Item, ModelApi, ModelError, ModelRequest, OutputSchema, Role, StreamEvent, ToolChoice,
    ToolSpec, Usage,
};
use infty_store::{JsonlWriter, StoreError, TokenUsage, read_jsonl};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::events::CompactionCause;
use crate::prompts;
use crate::telemetry;
use crate::tools::{ToolResult, ToolSet};

/// Told to a model about a tool call whose outcome was lost in a crash.
pub const INTERRUPTED_TOOL_OUTPUT: &str = "interrupted: the run stopped while this tool call was in flight, so its effects are unknown. Check the current state (files, processes) before doing it again.";

/// Told to a model about a tool call it made after the turn's tool-step limit, which was not run.
pub const TOOL_STEP_LIMIT_OUTPUT: &str =
    "not run: this turn reached its tool-step limit. Reply now without calling tools.";

/// Told to a model about a tool call whose id another call of the same response already
/// used: it was not run (a call id names exactly one call).
pub const DUPLICATE_CALL_ID_OUTPUT: &str = "not run: another tool call in this response already used this call id, and each call id names exactly one call. Call the tool again if you still need it.";

/// Told to a model whose response stopped at its output cap without a tool call, so that it
/// answers again within the cap instead of its cut text being read as its reply.
pub fn output_capped_message(max_output_tokens: u32) -> String {
    format!(
        "Your last response was cut off: it reached the limit of {max_output_tokens} output tokens per response (max_output_tokens) before it ended. Answer again, shorter, so that it fits: give your JSON reply now and leave details to the files you write."
    )
}

/// Asks for the constrained reply in a request of its own, on providers that drop the output
/// schema from requests offering tools (llama.cpp): the reply before it was free text.
pub const CONSTRAINED_REPLY_MESSAGE: &str =
    "Now give your reply again as only the JSON object your instructions describe.";

/// How many times in one turn a capped response is sent back before its cut text is taken
/// as the reply (and parsed, or refused, like any other).
pub const OUTPUT_CAP_RETRIES: u32 = 2;

/// Opens the user message that carries a hand-off summary after a compaction.
pub const COMPACTED_SUMMARY_HEADER: &str =
    "Your earlier conversation was compacted. Your hand-off summary of it:";

/// One line of a rollout file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum RolloutEntry {
    /// A conversation item (user or assistant message, tool call, tool output, reasoning).
    Item {
        /// The item.
        item: Item,
    },
    /// The model answered without tool calls: the turn is over.
    TurnCompleted {
        /// The reply text.
        text: String,
    },
    /// The history was compacted: it restarts from `history`.
    Compacted {
        /// The hand-off summary the model wrote.
        summary: String,
        /// The history after compaction (summary message plus the kept items).
        history: Vec<Item>,
    },
}

/// How a session talks to its model.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// The role (`solver`, `director`, `verifier-1`, ...).
    pub role: infty_store::Role,
    /// The model name sent to the provider.
    pub model: String,
    /// Reasoning effort, when the model takes one.
    pub reasoning_effort: Option<String>,
    /// Reasoning summary (`auto`, `concise`, `detailed`), only when asked for.
    pub reasoning_summary: Option<String>,
    /// Base instructions.
    pub instructions: String,
    /// Structured output the final reply must follow, when the provider supports it.
    pub output_schema: Option<OutputSchema>,
    /// Tool calls allowed in one turn (counted in calls, not in model responses: calls
    /// past the limit are answered with [`TOOL_STEP_LIMIT_OUTPUT`] and not run).
    pub max_tool_steps: u32,
    /// The model's context window in tokens, if known; compaction needs it.
    pub context_window: Option<u64>,
    /// Share of the context window past which the history is compacted.
    pub compact_threshold: f64,
    /// Items kept verbatim after a compaction.
    pub compact_keep_items: usize,
    /// Cap on the tokens of each response (`max_output_tokens` / `max_tokens`), sent with
    /// every request; `None` sends none.
    pub max_output_tokens: Option<u32>,
    /// The tool choice of a turn's first request when it offers tools (`Auto` or
    /// `Required`); later requests of the turn always leave it to the model, so a turn can
    /// end.
    pub first_tool_choice: ToolChoice,
}

/// What a session reports while a turn runs.
pub trait SessionObserver: Send + Sync {
    /// A streaming event from the model.
    fn stream_event(&self, _role: &infty_store::Role, _event: &StreamEvent) {}
    /// A tool call is about to run.
    fn tool_started(
        &self,
        _role: &infty_store::Role,
        _call_id: &str,
        _tool: &str,
        _arguments: &str,
    ) {
    }
    /// A tool call finished.
    fn tool_finished(
        &self,
        _role: &infty_store::Role,
        _call_id: &str,
        _tool: &str,
        _result: &ToolResult,
    ) {
    }
    /// The history was compacted.
    fn compacted(
        &self,
        _role: &infty_store::Role,
        _prompt_tokens: u64,
        _kept_items: usize,
        _cause: CompactionCause,
    ) {
    }
    /// A response stopped at the output cap of `max_output_tokens` tokens.
    fn output_capped(&self, _role: &infty_store::Role, _max_output_tokens: u32) {}
}

/// Forwards every event but streamed text, for model calls whose text is not a reply.
struct WithoutText<'a>(&'a dyn SessionObserver);

impl SessionObserver for WithoutText<'_> {
    fn stream_event(&self, role: &infty_store::Role, event: &StreamEvent) {
        if !matches!(
            event,
            StreamEvent::TextDelta(_) | StreamEvent::ReasoningDelta(_)
        ) {
            self.0.stream_event(role, event);
        }
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl SessionObserver for NoObserver {}

/// What a turn produced.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnOutput {
    /// The reply text.
    pub text: String,
    /// Tokens used by all model calls of the turn (added with saturation).
    pub usage: TokenUsage,
}

/// Why a turn could not finish.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The model call failed after the client's own retries.
    #[error("{role}: model call failed: {source}")]
    Model {
        /// The role.
        role: String,
        /// The client's error.
        #[source]
        source: ModelError,
    },
    /// The rollout could not be written or read.
    #[error("{role}: rollout: {source}")]
    Rollout {
        /// The role.
        role: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
}

impl SessionError {
    /// True when the provider refused the prompt as longer than the model's context window.
    pub fn is_context_overflow(&self) -> bool {
        matches!(self, SessionError::Model { source, .. } if source.is_context_overflow())
    }
}

/// A role's conversation.
pub struct RoleSession {
    config: SessionConfig,
    model: Arc<dyn ModelApi>,
    tools: ToolSet,
    history: Vec<Item>,
    rollout: JsonlWriter,
    /// Whether the rollout ends inside a turn (a crash happened mid-turn).
    in_flight: bool,
    last_prompt_tokens: u64,
}

impl std::fmt::Debug for RoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleSession")
            .field("role", &self.config.role)
            .field("model", &self.config.model)
            .field("history_items", &self.history.len())
            .finish()
    }
}

impl RoleSession {
    /// A session with an empty history writing to `rollout`.
    pub fn new(
        config: SessionConfig,
        model: Arc<dyn ModelApi>,
        tools: ToolSet,
        rollout: JsonlWriter,
    ) -> RoleSession {
        RoleSession {
            config,
            model,
            tools,
            history: Vec::new(),
            rollout,
            in_flight: false,
            last_prompt_tokens: 0,
        }
    }

    /// Rebuilds a session from the rollout at `rollout_path`, then keeps appending to `rollout`.
    pub fn restore(
        config: SessionConfig,
        model: Arc<dyn ModelApi>,
        tools: ToolSet,
        rollout_path: &Utf8Path,
        rollout: JsonlWriter,
    ) -> Result<RoleSession, SessionError> {
        let entries: Vec<RolloutEntry> =
            read_jsonl(rollout_path).map_err(|source| SessionError::Rollout {
                role: config.role.to_string(),
                source,
            })?;
        let mut session = RoleSession::new(config, model, tools, rollout);
        for entry in entries {
            match entry {
                RolloutEntry::Item { item } => {
                    if matches!(
                        &item,
                        Item::Message {
                            role: Role::User,
                            ..
                        }
                    ) {
                        session.in_flight = true;
                    }
                    session.history.push(item);
                }
                RolloutEntry::TurnCompleted { .. } => session.in_flight = false,
                RolloutEntry::Compacted { history, .. } => session.history = history,
            }
        }
        Ok(session)
    }

    /// The role name.
    pub fn role(&self) -> &infty_store::Role {
        &self.config.role
    }

    /// The conversation so far.
    pub fn history(&self) -> &[Item] {
        &self.history
    }

    /// Whether the rollout ended inside a turn, so the next [`RoleSession::resume_turn`]
    /// continues it instead of posting again.
    pub fn turn_in_flight(&self) -> bool {
        self.in_flight
    }

    /// Runs a turn: posts `message` and loops model ↔ tools until a reply without tool calls.
    pub async fn run_turn(
        &mut self,
        message: &str,
        observer: &dyn SessionObserver,
    ) -> Result<TurnOutput, SessionError> {
        self.push(Item::Message {
            role: Role::User,
            text: message.to_string(),
        })?;
        self.in_flight = true;
        self.drive_turn(observer, true).await
    }

    /// Continues a turn that was in flight when the run stopped, or runs a new turn with
    /// `message` when none was. Tool calls without a recorded output are answered with
    /// [`INTERRUPTED_TOOL_OUTPUT`], never run again.
    pub async fn resume_turn(
        &mut self,
        message: &str,
        observer: &dyn SessionObserver,
    ) -> Result<TurnOutput, SessionError> {
        if !self.in_flight {
            return self.run_turn(message, observer).await;
        }
        for call_id in self.dangling_calls() {
            self.push(Item::FunctionOutput {
                call_id,
                output: INTERRUPTED_TOOL_OUTPUT.to_string(),
            })?;
        }
        self.drive_turn(observer, false).await
    }

    fn dangling_calls(&self) -> Vec<String> {
        let mut open: Vec<String> = Vec::new();
        for item in &self.history {
            match item {
                Item::FunctionCall { call_id, .. } => open.push(call_id.clone()),
                Item::FunctionOutput { call_id, .. } => open.retain(|id| id != call_id),
                _ => {}
            }
        }
        open
    }

    /// Loops model ↔ tools to the turn's end. `first_request` says whether the next request
    /// opens the turn, the only one `first_tool_choice` applies to; a turn resumed in flight
    /// is taken to have had it.
    async fn drive_turn(
        &mut self,
        observer: &dyn SessionObserver,
        mut first_request: bool,
    ) -> Result<TurnOutput, SessionError> {
        let mut usage = TokenUsage::default();
        // Tool calls run in this turn: the cap counts calls, so one response carrying a
        // thousand calls cannot run them all.
        let mut calls_run = 0u32;
        let mut capped_retries = 0u32;
        // Set while asking for the constrained reply without tools (see below).
        let mut constraining = false;
        loop {
            self.maybe_compact(observer, &mut usage).await?;
            let over_cap = calls_run >= self.config.max_tool_steps;
            if over_cap {
                self.push(Item::Message {
                    role: Role::User,
                    text: format!(
                        "You have used the {} tool calls allowed in one turn. Do not call tools now: reply with your signal.",
                        self.config.max_tool_steps
                    ),
                })?;
            }
            let mut request = self.request(!over_cap && !constraining, true);
            if first_request && request.offers_tools() {
                request.tool_choice = self.config.first_tool_choice.clone();
            }
            first_request = false;
            let response = self
                .call_model_fitting(&mut request, observer, &mut usage)
                .await?;
            let capped = request
                .max_output_tokens
                .filter(|_| response.hit_output_cap(request.max_output_tokens));
            if let Some(cap) = capped {
                observer.output_capped(&self.config.role, cap);
            }
            if let Some(turn_usage) = response.usage {
                usage += token_usage(&turn_usage);
                self.last_prompt_tokens = turn_usage.input_tokens;
            }
            // Ids already taken: a call id names exactly one call, so a repeated id is renamed
            // (the history must stay unambiguous for the provider). Two calls of one response
            // sharing an id are one call sent twice: the second is answered with an error,
            // never run. An id reused from an earlier response (local servers number their
            // calls afresh each time) is a new call and runs under its new name.
            let mut taken: HashSet<String> = self
                .history
                .iter()
                .filter_map(|item| match item {
                    Item::FunctionCall { call_id, .. } => Some(call_id.clone()),
                    _ => None,
                })
                .collect();
            let mut in_response: HashSet<String> = HashSet::new();
            let mut calls = Vec::new();
            for mut item in response.items {
                if let Item::FunctionCall {
                    call_id,
                    name,
                    arguments,
                } = &mut item
                {
                    let duplicate = !in_response.insert(call_id.clone());
                    if !taken.insert(call_id.clone()) {
                        *call_id = unused_call_id(call_id, &taken);
                        taken.insert(call_id.clone());
                    }
                    let verdict = if duplicate {
                        Some(DUPLICATE_CALL_ID_OUTPUT)
                    } else if over_cap || calls_run >= self.config.max_tool_steps {
                        // Tools were not on offer (or the cap is reached inside this
                        // response), yet a model may still emit calls: answer them so the
                        // history never holds a call without its output.
                        Some(TOOL_STEP_LIMIT_OUTPUT)
                    } else {
                        calls_run += 1;
                        None
                    };
                    calls.push((call_id.clone(), name.clone(), arguments.clone(), verdict));
                }
                self.push(item)?;
            }
            let ran_any = calls.iter().any(|(_, _, _, verdict)| verdict.is_none());
            let ending = calls.is_empty() || (over_cap && !ran_any);
            if ending {
                for (call_id, _, _, verdict) in calls.drain(..) {
                    self.push(Item::FunctionOutput {
                        call_id,
                        output: verdict.unwrap_or(TOOL_STEP_LIMIT_OUTPUT).to_string(),
                    })?;
                }
            }
            let unconstrained = calls.is_empty()
                && !constraining
                && request.offers_tools()
                && request.output_schema.is_some()
                && self.model.schema_excludes_tools();
            if unconstrained {
                // The schema was not sent alongside the tools, so this reply is free text
                // (cut or not): ask for it once more, without tools, under the schema.
                constraining = true;
                self.push(Item::Message {
                    role: Role::User,
                    text: CONSTRAINED_REPLY_MESSAGE.to_string(),
                })?;
                continue;
            }
            if calls.is_empty()
                && let Some(cap) = capped
                && capped_retries < OUTPUT_CAP_RETRIES
            {
                // A cut reply is not the role's answer: say why and ask again. Calls cut by
                // the cap need no such care, their malformed arguments come back as errors.
                capped_retries += 1;
                self.push(Item::Message {
                    role: Role::User,
                    text: output_capped_message(cap),
                })?;
                continue;
            }
            if ending {
                let text = last_assistant_text(&self.history);
                self.append(&RolloutEntry::TurnCompleted { text: text.clone() })?;
                self.rollout
                    .sync()
                    .map_err(|source| self.rollout_error(source))?;
                self.in_flight = false;
                return Ok(TurnOutput { text, usage });
            }
            // Parallel calls of one response are executed, and answered, in order.
            for (call_id, name, arguments, verdict) in calls {
                if let Some(output) = verdict {
                    self.push(Item::FunctionOutput {
                        call_id,
                        output: output.to_string(),
                    })?;
                    continue;
                }
                observer.tool_started(&self.config.role, &call_id, &name, &arguments);
                let span = telemetry::tool_span(&name, &call_id);
                let result = self
                    .tools
                    .execute(&name, &arguments)
                    .instrument(span.clone())
                    .await;
                telemetry::record_tool(&span, &arguments, &result);
                observer.tool_finished(&self.config.role, &call_id, &name, &result);
                self.push(Item::FunctionOutput {
                    call_id,
                    output: result.output,
                })?;
            }
        }
    }

    fn request(&self, with_tools: bool, with_schema: bool) -> ModelRequest {
        let tools: Vec<ToolSpec> = if with_tools {
            self.tools
                .definitions()
                .into_iter()
                .map(|definition| ToolSpec {
                    name: definition.name,
                    description: definition.description,
                    parameters: definition.parameters,
                    strict: definition.strict,
                })
                .collect()
        } else {
            Vec::new()
        };
        ModelRequest {
            model: self.config.model.clone(),
            instructions: self.config.instructions.clone(),
            input: self.history.clone(),
            parallel_tool_calls: !tools.is_empty(),
            tool_choice: if tools.is_empty() {
                ToolChoice::None
            } else {
                ToolChoice::Auto
            },
            tools,
            reasoning_effort: self.config.reasoning_effort.clone(),
            reasoning_summary: self.config.reasoning_summary.clone(),
            output_schema: if with_schema {
                self.config.output_schema.clone()
            } else {
                None
            },
            max_output_tokens: self.config.max_output_tokens,
        }
    }

    async fn call_model(
        &self,
        request: &ModelRequest,
        observer: &dyn SessionObserver,
    ) -> Result<infty_model::ModelResponse, SessionError> {
        let role = self.config.role.clone();
        let forward = |event: StreamEvent| observer.stream_event(&role, &event);
        self.model
            .complete(request, &forward)
            .await
            .map_err(|source| SessionError::Model {
                role: self.config.role.to_string(),
                source,
            })
    }

    /// Compacts the history when the last response's prompt reached the threshold.
    async fn maybe_compact(
        &mut self,
        observer: &dyn SessionObserver,
        usage: &mut TokenUsage,
    ) -> Result<(), SessionError> {
        let Some(threshold) = self.compact_threshold_tokens() else {
            return Ok(());
        };
        if self.last_prompt_tokens < threshold
            || self.history.len() <= self.config.compact_keep_items
        {
            return Ok(());
        }
        let keep = self.config.compact_keep_items;
        self.compact(observer, usage, keep, CompactionCause::Threshold)
            .await?;
        Ok(())
    }

    /// Calls the model. When the provider refuses the prompt as longer than the model's
    /// context window, compacts the history and asks again, keeping fewer items verbatim
    /// each time; gives the provider's refusal back only when even the hand-off summary and
    /// the turn's message alone do not fit.
    async fn call_model_fitting(
        &mut self,
        request: &mut ModelRequest,
        observer: &dyn SessionObserver,
        usage: &mut TokenUsage,
    ) -> Result<infty_model::ModelResponse, SessionError> {
        let mut keep = self.config.compact_keep_items;
        loop {
            let refusal = match self.call_model(request, observer).await {
                Err(error) if error.is_context_overflow() => error,
                answer => return answer,
            };
            while !self
                .compact(observer, usage, keep, CompactionCause::Overflow)
                .await?
            {
                if keep == 0 {
                    return Err(refusal);
                }
                keep /= 2;
            }
            keep /= 2;
            request.input = self.history.clone();
        }
    }

    /// Restarts the history from a hand-off summary, the turn's message when the kept tail
    /// lost it, and the last `keep` items (see [`kept_tail`]); the summary's usage counts in
    /// `usage`. Returns whether it compacted.
    ///
    /// At the threshold the summary is asked of the whole history, and an empty one keeps the
    /// history as it is. After an overflow the history must shrink: nothing is asked when the
    /// new history would be no shorter, the summary is asked of the dropped items only, and
    /// when the model writes none (or nothing fits), a note that they were dropped stands in.
    async fn compact(
        &mut self,
        observer: &dyn SessionObserver,
        usage: &mut TokenUsage,
        keep: usize,
        cause: CompactionCause,
    ) -> Result<bool, SessionError> {
        let kept = kept_tail(&self.history, keep);
        let restated = turn_message(&self.history)
            .filter(|message| !kept.contains(message))
            .cloned();
        let dropped = self.history.len() - kept.len();
        let overflow = cause == CompactionCause::Overflow;
        if overflow && 1 + usize::from(restated.is_some()) + kept.len() >= self.history.len() {
            return Ok(false);
        }
        let prompt_tokens = self.last_prompt_tokens;
        let to_summarize = if overflow {
            &self.history[..dropped]
        } else {
            &self.history[..]
        };
        let summary = self.hand_off_summary(to_summarize, observer, usage).await?;
        // Whatever happens next, do not ask again before a new response reports its size.
        self.last_prompt_tokens = 0;
        let summary = match summary {
            Some(summary) => summary,
            None if overflow => format!(
                "(none: the {dropped} earlier items of your conversation no longer fitted your model's context window and could not be summarized, so they were dropped. What you did is in the run folder's files: look there before you go on.)"
            ),
            None => {
                // An empty summary would throw the whole history away: keep it instead.
                tracing::warn!(role = %self.config.role, "compaction skipped: the summary was empty");
                return Ok(false);
            }
        };
        let mut history = vec![Item::Message {
            role: Role::User,
            text: format!("{COMPACTED_SUMMARY_HEADER}\n\n{summary}"),
        }];
        history.extend(restated);
        let kept_items = kept.len();
        history.extend(kept);
        self.append(&RolloutEntry::Compacted {
            summary,
            history: history.clone(),
        })?;
        self.history = history;
        observer.compacted(&self.config.role, prompt_tokens, kept_items, cause);
        Ok(true)
    }

    /// Asks the model for a hand-off summary of `items` (its usage counted in `usage`); when
    /// they do not fit the context window, of their later half, and so on. `None` when the
    /// model wrote nothing or not even the last item fits.
    async fn hand_off_summary(
        &self,
        items: &[Item],
        observer: &dyn SessionObserver,
        usage: &mut TokenUsage,
    ) -> Result<Option<String>, SessionError> {
        let mut start = 0;
        while start < items.len() {
            let mut request = self.request(false, false);
            request.input = answered_only(&items[start..]);
            request.input.push(Item::Message {
                role: Role::User,
                text: prompts::COMPACT.to_string(),
            });
            // The hand-off summary is not the role's reply: its text is not streamed to users.
            match self.call_model(&request, &WithoutText(observer)).await {
                Ok(response) => {
                    if let Some(call_usage) = response.usage {
                        *usage += token_usage(&call_usage);
                    }
                    let summary = response.text().trim().to_string();
                    return Ok((!summary.is_empty()).then_some(summary));
                }
                Err(error) if error.is_context_overflow() => {
                    start += (items.len() - start).div_ceil(2);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    /// The prompt size that triggers compaction, when compaction is configured sensibly.
    fn compact_threshold_tokens(&self) -> Option<u64> {
        let window = self.config.context_window?;
        let share = self.config.compact_threshold;
        // A share of zero (or NaN) would compact before every call: treat it as off.
        if share.is_nan() || share <= 0.0 || window == 0 {
            return None;
        }
        Some(((window as f64) * share.min(1.0)).ceil() as u64)
    }

    fn push(&mut self, item: Item) -> Result<(), SessionError> {
        self.append(&RolloutEntry::Item { item: item.clone() })?;
        self.history.push(item);
        Ok(())
    }

    fn append(&mut self, entry: &RolloutEntry) -> Result<(), SessionError> {
        self.rollout
            .append(entry)
            .map_err(|source| self.rollout_error(source))
    }

    fn rollout_error(&self, source: StoreError) -> SessionError {
        SessionError::Rollout {
            role: self.config.role.to_string(),
            source,
        }
    }
}

/// The last `keep` items of a history, widened backwards so that no tool call is split
/// from its output: every kept output has its call (and the reasoning that led to it) kept
/// too. The latest tool results are what the next step needs most, so the tail grows
/// rather than dropping them; it may hold more than `keep` items.
fn kept_tail(history: &[Item], keep: usize) -> Vec<Item> {
    let mut start = history.len().saturating_sub(keep);
    loop {
        let earliest_call = history[start..]
            .iter()
            .filter_map(|item| match item {
                Item::FunctionOutput { call_id, .. } => history[..start].iter().position(
                    |earlier| matches!(earlier, Item::FunctionCall { call_id: id, .. } if id == call_id),
                ),
                _ => None,
            })
            .min();
        match earliest_call {
            Some(index) => start = index,
            None => break,
        }
    }
    while start > 0 && matches!(history[start - 1], Item::Reasoning { .. }) {
        start -= 1;
    }
    history[start..].to_vec()
}

/// `items` without the tool outputs whose calls are not among them (a provider refuses an
/// output it cannot match to a call).
fn answered_only(items: &[Item]) -> Vec<Item> {
    let calls: HashSet<&str> = items
        .iter()
        .filter_map(|item| match item {
            Item::FunctionCall { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    items
        .iter()
        .filter(|item| match item {
            Item::FunctionOutput { call_id, .. } => calls.contains(call_id.as_str()),
            _ => true,
        })
        .cloned()
        .collect()
}

/// The user message that opened the current turn: the last user message that is not a
/// compaction summary.
fn turn_message(history: &[Item]) -> Option<&Item> {
    history.iter().rev().find(|item| {
        matches!(
            item,
            Item::Message { role: Role::User, text } if !text.starts_with(COMPACTED_SUMMARY_HEADER)
        )
    })
}

fn last_assistant_text(history: &[Item]) -> String {
    history
        .iter()
        .rev()
        .take_while(|item| {
            !matches!(
                item,
                Item::Message {
                    role: Role::User,
                    ..
                }
            )
        })
        .filter_map(|item| match item {
            Item::Message {
                role: Role::Assistant,
                text,
            } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n")
}

/// A model response's usage in the store's terms, where every addition saturates.
pub(crate) fn token_usage(usage: &Usage) -> TokenUsage {
    TokenUsage {
        input_tokens: usage.input_tokens,
        cached_input_tokens: usage.cached_input_tokens,
        output_tokens: usage.output_tokens,
        reasoning_tokens: usage.reasoning_tokens,
        total_tokens: usage.total_tokens,
    }
}

/// A fresh id for a call whose id was already taken: `<id>_dup<n>`, the smallest free `n`.
fn unused_call_id(call_id: &str, taken: &HashSet<String>) -> String {
    (2u64..)
        .map(|n| format!("{call_id}_dup{n}"))
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or_else(|| format!("{call_id}_dup"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: Role, text: &str) -> Item {
        Item::Message {
            role,
            text: text.to_string(),
        }
    }

    fn call(id: &str) -> Item {
        Item::FunctionCall {
            call_id: id.into(),
            name: "shell".into(),
            arguments: "{}".into(),
        }
    }

    fn output(id: &str) -> Item {
        Item::function_output(id, "ok")
    }

    #[test]
    fn kept_tail_never_keeps_an_output_without_its_call() {
        let history = vec![
            message(Role::User, "go"),
            Item::Reasoning {
                raw: serde_json::json!({"type": "reasoning"}),
            },
            call("c1"),
            output("c1"),
            call("p1"),
            call("p2"),
            output("p1"),
            output("p2"),
            message(Role::Assistant, "done"),
        ];
        // (items asked for, items kept): a cut inside a call/output group moves back to
        // the group's first call, so every kept output has its call.
        let cases = [
            (0, 0),
            (1, 1),
            (2, 5),
            (3, 5),
            (5, 5),
            // The reasoning item that led to `c1` comes along with it.
            (6, 8),
            (7, 8),
            (8, 8),
            (9, 9),
            (20, 9),
        ];
        for (keep, expected) in cases {
            let kept = kept_tail(&history, keep);
            assert_eq!(kept.len(), expected, "keep {keep}");
            assert_eq!(kept[..], history[history.len() - expected..], "keep {keep}");
        }
    }

    #[test]
    fn turn_message_skips_the_compaction_summary() {
        let summary = message(
            Role::User,
            &format!("{COMPACTED_SUMMARY_HEADER}\n\nall done"),
        );
        let cases: [(Vec<Item>, Option<Item>); 3] = [
            (vec![], None),
            (vec![summary.clone(), call("c1"), output("c1")], None),
            (
                vec![
                    message(Role::User, "turn"),
                    summary,
                    call("c1"),
                    output("c1"),
                ],
                Some(message(Role::User, "turn")),
            ),
        ];
        for (history, expected) in cases {
            assert_eq!(turn_message(&history), expected.as_ref());
        }
    }

    #[test]
    fn last_assistant_text_joins_the_final_turns_messages() {
        let history = vec![
            message(Role::User, "first"),
            message(Role::Assistant, "old"),
            message(Role::User, "second"),
            message(Role::Assistant, "a"),
            message(Role::Assistant, "b"),
        ];
        assert_eq!(last_assistant_text(&history), "a\nb");
    }
}
