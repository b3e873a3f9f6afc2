//! The file tools: `read_file`, `write_file`, `edit_file` and `list_dir`.
//!
//! Every path goes through `confine` first, which yields an allowed root and a plain path
//! below it; files are then opened through the opened root folder in one step, no link
//! followed ([`infty_store::Folder`]), so nothing can be swapped in between a check and an
//! open. Reads are bounded (lines, line length, bytes) and stream the file rather than
//! loading it; writes are atomic (a temporary file created in the opened parent folder,
//! synced, renamed over the target, folder synced). These functions block: the tool set
//! runs them off the async workers. They must never act on a path confinement refused, and
//! never open a file by its path.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use infty_store::{EntryKind, Folder, OpenError};
use serde::Deserialize;

use super::confine::{self, Access, Target};
use super::{ToolContext, ToolError, ToolPolicy, ToolResult};

/// How much of a file's start is checked for NUL bytes.
const SNIFF_BYTES: usize = 8 * 1024;
/// Longest line `read_file` shows, in characters.
const MAX_LINE_CHARS: usize = 2000;
/// Most bytes of numbered lines one `read_file` returns, however short its lines.
const READ_MAX_BYTES: usize = 256 * 1024;
/// Deepest `list_dir` goes, and how deep it goes unless asked.
const LIST_MAX_DEPTH: u64 = 5;
const LIST_DEFAULT_DEPTH: u64 = 2;
/// Folders `list_dir` shows but does not open: their contents are noise to a model.
const LIST_UNOPENED: [&str; 1] = [".git"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadFileArgs {
    path: String,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    limit: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteFileArgs {
    path: String,
    content: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditFileArgs {
    path: String,
    old_string: String,
    new_string: String,
    #[serde(default)]
    replace_all: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListDirArgs {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    depth: Option<u64>,
}

fn io_error<'a>(action: &'static str, path: &'a str) -> impl FnOnce(io::Error) -> ToolError + 'a {
    move |source| ToolError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Resolves `raw` and opens it as an existing regular file with a single name.
fn existing_file(
    context: &ToolContext,
    raw: &str,
    access: Access,
) -> Result<(Target, File), ToolError> {
    let target = confine::resolve(context, raw, access)?;
    let file = target
        .root()?
        .file(&target.relative)
        .map_err(|error| target.refused(error, "read"))?;
    Ok((target, file))
}

pub(crate) fn read_file(
    context: &ToolContext,
    policy: &ToolPolicy,
    args: ReadFileArgs,
) -> Result<ToolResult, ToolError> {
    let raw = args.path.as_str();
    let (resolved, mut file) = existing_file(context, raw, Access::Read)?;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut file)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(io_error("read", raw))?;
    if head.contains(&0) {
        return Err(ToolError::Binary {
            path: raw.to_owned(),
            why: "it contains NUL bytes".to_owned(),
        });
    }
    let mut reader = BufReader::with_capacity(64 * 1024, io::Cursor::new(head).chain(file));

    let first = args.offset.unwrap_or(1).max(1);
    let max_lines = policy.read_max_lines.max(1) as u64;
    let limit = args.limit.unwrap_or(max_lines).clamp(1, max_lines);
    let line_cap = MAX_LINE_CHARS * 4;

    let mut number = 1_u64;
    while number < first {
        if !skip_line(&mut reader).map_err(io_error("read", raw))? {
            return Err(ToolError::OffsetPastEnd {
                path: raw.to_owned(),
                offset: first,
                lines: number - 1,
            });
        }
        number += 1;
    }

    let mut out = String::new();
    let mut shown = 0_u64;
    while shown < limit && out.len() < READ_MAX_BYTES {
        let Some(line) = read_capped_line(&mut reader, line_cap).map_err(io_error("read", raw))?
        else {
            break;
        };
        let text = decode_line(&line.kept, line.total > line.kept.len()).ok_or_else(|| {
            ToolError::Binary {
                path: raw.to_owned(),
                why: format!("line {number} is not valid UTF-8"),
            }
        })?;
        let text = text.trim_end_matches(['\n', '\r']);
        let (text, cut) = match text.char_indices().nth(MAX_LINE_CHARS) {
            Some((end, _)) => (&text[..end], true),
            None => (text, line.total > line.kept.len()),
        };
        out.push_str(&format!("{number:>6}\t{text}"));
        if cut {
            out.push_str(&format!(" [... line cut, {} bytes in all]", line.total));
        }
        out.push('\n');
        shown += 1;
        number += 1;
    }

    let more = !reader.fill_buf().map_err(io_error("read", raw))?.is_empty();
    if shown == 0 {
        if first == 1 {
            return Ok(ToolResult::success(format!(
                "{} is empty",
                resolved.display
            )));
        }
        return Err(ToolError::OffsetPastEnd {
            path: raw.to_owned(),
            offset: first,
            lines: number - 1,
        });
    }
    if more {
        out.push_str(&format!(
            "[showing lines {first}-{}; the file continues: call read_file with offset {} to read on]\n",
            number - 1,
            number
        ));
    }
    Ok(ToolResult::success(out))
}

/// A line read with at most `cap` bytes kept.
struct CappedLine {
    kept: Vec<u8>,
    /// The line's full length in bytes, its newline included.
    total: usize,
}

/// Reads one line (through `\n` or to the end), keeping at most `cap` bytes of it; `None` at
/// the end of the input.
fn read_capped_line(reader: &mut impl BufRead, cap: usize) -> io::Result<Option<CappedLine>> {
    let mut kept = Vec::new();
    let mut total = 0_usize;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok((total > 0).then_some(CappedLine { kept, total }));
        }
        let (chunk, done) = match buffer.iter().position(|byte| *byte == b'\n') {
            Some(end) => (&buffer[..=end], true),
            None => (buffer, false),
        };
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..room.min(chunk.len())]);
        let used = chunk.len();
        total += used;
        reader.consume(used);
        if done {
            return Ok(Some(CappedLine { kept, total }));
        }
    }
}

/// Skips one line; false at the end of the input.
fn skip_line(reader: &mut impl BufRead) -> io::Result<bool> {
    let mut any = false;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(any);
        }
        any = true;
        match buffer.iter().position(|byte| *byte == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(true);
            }
            None => {
                let used = buffer.len();
                reader.consume(used);
            }
        }
    }
}

/// The line as text, or `None` when it is not UTF-8; a character split by the cap at the
/// end of a `cut` line is dropped rather than counted as invalid.
fn decode_line(bytes: &[u8], cut: bool) -> Option<&str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(error) if cut && error.error_len().is_none() => {
            std::str::from_utf8(&bytes[..error.valid_up_to()]).ok()
        }
        Err(_) => None,
    }
}

pub(crate) fn write_file(
    context: &ToolContext,
    args: WriteFileArgs,
) -> Result<ToolResult, ToolError> {
    let raw = args.path.as_str();
    let target = confine::resolve(context, raw, Access::Write)?;
    let existed = write_target(&target, args.content.as_bytes())?;
    let verb = if existed { "overwrote" } else { "created" };
    Ok(ToolResult::success(format!(
        "{verb} {} ({} bytes written)",
        target.display,
        args.content.len()
    )))
}

/// Writes `bytes` to `target` atomically through its opened parent folder, creating the
/// missing folders on the way; an existing file's permissions are kept. Returns whether
/// a file was there before. A link or a folder in the target's place is refused.
pub(crate) fn write_target(target: &Target, bytes: &[u8]) -> Result<bool, ToolError> {
    let Some((parent, name)) = target.parent_and_name() else {
        return Err(ToolError::IsAFolder {
            path: target.display.clone(),
        });
    };
    let folder = target
        .root()?
        .create_folders(parent)
        .map_err(|error| match error {
            OpenError::NotAFolder | OpenError::IsAFolder => ToolError::NotAFolder {
                path: blocker(target, parent),
            },
            other => target.refused(other, "create the folders of"),
        })?;
    let entry = folder
        .entry(name)
        .map_err(|e| target.refused(e, "inspect"))?;
    let mode = match entry {
        None => None,
        // Replacing it would be harmless to the other name, but a model expecting to
        // change "the" file would be misled: refuse it like a read.
        Some(entry) if entry.kind == EntryKind::File && entry.links > 1 => {
            return Err(target.refused(OpenError::HardLinked { links: entry.links }, "write"));
        }
        Some(entry) => match entry.kind {
            EntryKind::File => Some(entry.mode),
            EntryKind::Folder => return Err(target.refused(OpenError::IsAFolder, "write")),
            EntryKind::Symlink => return Err(target.refused(OpenError::Symlink, "write")),
            EntryKind::Other => return Err(target.refused(OpenError::NotAFile, "write")),
        },
    };
    folder
        .write_atomic(name, bytes, mode)
        .map_err(|error| target.refused(OpenError::Io(error), "write"))?;
    Ok(mode.is_some())
}

/// The first part of `parent` that exists and is not a folder, named as the model would.
fn blocker(target: &Target, parent: &camino::Utf8Path) -> String {
    let Ok(root) = target.root() else {
        return target.display.clone();
    };
    let mut so_far = camino::Utf8PathBuf::new();
    for component in parent.components() {
        so_far.push(component.as_str());
        if matches!(root.folder(&so_far), Err(OpenError::NotAFolder)) {
            break;
        }
    }
    // `display` names the target; its parent is `relative`'s parent, so map back.
    let depth_below = parent.components().count() - so_far.components().count();
    camino::Utf8Path::new(&target.display)
        .ancestors()
        .nth(depth_below + 1)
        .map(|name| name.to_string())
        .unwrap_or_else(|| so_far.to_string())
}

pub(crate) fn edit_file(
    context: &ToolContext,
    args: EditFileArgs,
) -> Result<ToolResult, ToolError> {
    let raw = args.path.as_str();
    if args.old_string.is_empty() {
        return Err(ToolError::EditInvalid {
            problem: "`old_string` is empty; give the exact text to replace, or use write_file to write a whole file",
        });
    }
    if args.old_string == args.new_string {
        return Err(ToolError::EditInvalid {
            problem: "`old_string` and `new_string` are the same; there is nothing to change",
        });
    }
    let (resolved, mut file) = existing_file(context, raw, Access::Write)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(io_error("read", raw))?;
    drop(file);
    if bytes.iter().take(SNIFF_BYTES).any(|byte| *byte == 0) {
        return Err(ToolError::Binary {
            path: raw.to_owned(),
            why: "it contains NUL bytes".to_owned(),
        });
    }
    let content = String::from_utf8(bytes).map_err(|_| ToolError::Binary {
        path: raw.to_owned(),
        why: "it is not valid UTF-8".to_owned(),
    })?;

    let count = content.matches(args.old_string.as_str()).count();
    let replace_all = args.replace_all.unwrap_or(false);
    match count {
        0 => {
            return Err(ToolError::EditNotFound {
                path: raw.to_owned(),
                hint: not_found_hint(&content, &args.old_string),
            });
        }
        1 => {}
        _ if replace_all => {}
        _ => {
            return Err(ToolError::EditAmbiguous {
                path: raw.to_owned(),
                count,
            });
        }
    }
    let first_line = content
        .find(args.old_string.as_str())
        .map_or(1, |at| content[..at].matches('\n').count() + 1);
    let edited = if replace_all {
        content.replace(args.old_string.as_str(), &args.new_string)
    } else {
        content.replacen(args.old_string.as_str(), &args.new_string, 1)
    };
    write_target(&resolved, edited.as_bytes())?;
    let what = if count == 1 {
        format!(
            "replaced 1 occurrence in {} (line {first_line})",
            resolved.display
        )
    } else {
        format!(
            "replaced {count} occurrences in {} (first at line {first_line})",
            resolved.display
        )
    };
    Ok(ToolResult::success(what))
}

/// A clue for a failed match: the usual culprits are line endings and edge whitespace.
fn not_found_hint(content: &str, old: &str) -> String {
    if content.contains("\r\n") && old.contains('\n') && !old.contains("\r\n") {
        return " (the file has CRLF line endings: include the \\r before each \\n)".to_owned();
    }
    let trimmed = old.trim();
    if !trimmed.is_empty() && trimmed != old && content.contains(trimmed) {
        return " (it matches once its leading and trailing whitespace is removed)".to_owned();
    }
    String::new()
}

pub(crate) fn list_dir(
    context: &ToolContext,
    policy: &ToolPolicy,
    args: ListDirArgs,
) -> Result<ToolResult, ToolError> {
    let raw = args.path.as_deref().unwrap_or(".");
    let target = confine::resolve(context, raw, Access::Read)?;
    let folder = target
        .root()?
        .folder(&target.relative)
        .map_err(|error| target.refused(error, "list"))?;
    let depth = args
        .depth
        .unwrap_or(LIST_DEFAULT_DEPTH)
        .clamp(1, LIST_MAX_DEPTH);
    let mut listing = Listing {
        lines: vec![format!("{}/", target.display.trim_end_matches('/'))],
        entries: 0,
        max_entries: policy.list_max_entries,
        cut: false,
    };
    listing.walk(&folder, 1, depth);
    if listing.entries == 0 {
        listing.lines.push("  (empty folder)".to_owned());
    }
    if listing.cut {
        listing.lines.push(format!(
            "[... listing stopped at {} entries; list a subfolder or use a smaller depth to see the rest]",
            listing.max_entries
        ));
    }
    let mut out = listing.lines.join("\n");
    out.push('\n');
    Ok(ToolResult::success(out))
}

struct Listing {
    lines: Vec<String>,
    entries: usize,
    max_entries: usize,
    cut: bool,
}

impl Listing {
    /// Lists `folder`, opening each subfolder through it (never by path, never through a link).
    fn walk(&mut self, folder: &Folder, level: u64, depth: u64) {
        let indent = "  ".repeat(usize::try_from(level).unwrap_or(0));
        let entries = match folder.entries() {
            Ok(entries) => entries,
            Err(error) => {
                self.lines.push(format!("{indent}[cannot list: {error}]"));
                return;
            }
        };
        for (name, kind) in entries {
            if self.entries >= self.max_entries {
                self.cut = true;
                return;
            }
            self.entries += 1;
            match kind {
                EntryKind::Symlink => {
                    let target = folder.read_link(&name).unwrap_or_else(|_| "?".to_owned());
                    self.lines.push(format!("{indent}{name} -> {target}"));
                }
                EntryKind::Folder => {
                    self.lines.push(format!("{indent}{name}/"));
                    if level < depth && !LIST_UNOPENED.contains(&name.as_str()) {
                        match folder.folder(camino::Utf8Path::new(&name)) {
                            Ok(inner) => self.walk(&inner, level + 1, depth),
                            Err(error) => {
                                self.lines.push(format!("{indent}  [cannot list: {error}]"));
                            }
                        }
                        if self.cut {
                            return;
                        }
                    }
                }
                EntryKind::File | EntryKind::Other => self.lines.push(format!("{indent}{name}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_lines() {
        let input = "short\nquite a long line\n\nlast";
        let mut reader = BufReader::with_capacity(4, input.as_bytes());
        let mut lines = Vec::new();
        while let Some(line) = read_capped_line(&mut reader, 5).expect("read") {
            lines.push((String::from_utf8(line.kept).expect("utf8"), line.total));
        }
        let expected = [("short", 6), ("quite", 18), ("\n", 1), ("last", 4)];
        let expected: Vec<(String, usize)> = expected
            .iter()
            .map(|(text, total)| ((*text).to_owned(), *total))
            .collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn skipping_lines() {
        let mut reader = BufReader::with_capacity(2, "abc\ndef".as_bytes());
        assert!(skip_line(&mut reader).expect("skip"));
        assert!(skip_line(&mut reader).expect("skip"));
        assert!(!skip_line(&mut reader).expect("skip"));
    }

    #[test]
    fn decoding_cut_lines() {
        let e_acute = "é".as_bytes();
        assert_eq!(decode_line(&e_acute[..1], true), Some(""));
        assert_eq!(decode_line(&e_acute[..1], false), None);
        assert_eq!(decode_line(b"ok", false), Some("ok"));
        assert_eq!(decode_line(&[0xff, b'a'], true), None);
    }

    #[test]
    fn hints_for_missed_edits() {
        let cases = [
            ("a\r\nb\r\n", "a\nb", "CRLF"),
            ("let x = 1;\n", "  let x = 1;  ", "whitespace"),
            ("abc", "xyz", ""),
        ];
        for (content, old, expected) in cases {
            let hint = not_found_hint(content, old);
            assert!(hint.contains(expected), "{hint:?} for {old:?}");
            assert_eq!(hint.is_empty(), expected.is_empty(), "{old:?}");
        }
    }
}
