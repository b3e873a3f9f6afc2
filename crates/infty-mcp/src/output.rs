//! A tool call's result as the text the model reads, within the tool-output budget.
//!
//! Text blocks are kept as they are; images, audio and binary resources are named with their
//! type and size (the model gets text here, and a base64 megabyte would only crowd out
//! the rest); a result with no content but structured content shows that as JSON. The text
//! is cut like the shell's output, head and tail kept ([`OutputCapture`]). This module never
//! panics on what a server sends.

use infty_core::tools::{OutputCapture, ToolResult};
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};

/// The result of a call as the model reads it.
pub fn render(result: &CallToolResult, budget: usize) -> ToolResult {
    let mut parts: Vec<String> = result.content.iter().map(block_text).collect();
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    let text = parts.join("\n");
    let output = cut(&text, budget);
    if result.is_error == Some(true) {
        ToolResult::failure(output)
    } else {
        ToolResult::success(output)
    }
}

/// `text` within `budget` bytes, head and tail kept.
pub fn cut(text: &str, budget: usize) -> String {
    let mut capture = OutputCapture::new(budget);
    capture.push(text.as_bytes());
    capture.render(budget)
}

fn block_text(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(text) => text.text.clone(),
        ContentBlock::Image(image) => format!(
            "[image {}, {} bytes of base64 not shown]",
            image.mime_type,
            image.data.len()
        ),
        ContentBlock::Audio(audio) => format!(
            "[audio {}, {} bytes of base64 not shown]",
            audio.mime_type,
            audio.data.len()
        ),
        ContentBlock::Resource(embedded) => match &embedded.resource {
            ResourceContents::TextResourceContents { uri, text, .. } => {
                format!("[resource {uri}]\n{text}")
            }
            ResourceContents::BlobResourceContents {
                uri,
                mime_type,
                blob,
                ..
            } => format!(
                "[resource {uri}, {}, {} bytes of base64 not shown]",
                mime_type.as_deref().unwrap_or("binary"),
                blob.len()
            ),
            _ => "[resource of an unknown kind]".to_string(),
        },
        ContentBlock::ResourceLink(link) => format!("[resource link {}]", link.uri),
        _ => "[content of an unknown kind]".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::ResourceContents;
    use serde_json::json;

    use super::*;

    #[test]
    fn every_kind_of_content_becomes_text() {
        let result = CallToolResult::success(vec![
            ContentBlock::text("first"),
            ContentBlock::image("aGVsbG8=", "image/png"),
            ContentBlock::embedded_text("file:///a.txt", "inside"),
            ContentBlock::resource(ResourceContents::BlobResourceContents {
                uri: "file:///b.bin".into(),
                mime_type: None,
                blob: "AAAA".into(),
                meta: None,
            }),
        ]);
        let rendered = render(&result, 1000);
        assert!(rendered.ok);
        assert_eq!(
            rendered.output,
            "first\n[image image/png, 8 bytes of base64 not shown]\n[resource file:///a.txt]\ninside\n[resource file:///b.bin, binary, 4 bytes of base64 not shown]"
        );
    }

    #[test]
    fn structured_content_stands_in_for_missing_text_and_errors_fail() {
        let mut result = CallToolResult::structured(json!({"sum": 3}));
        result.content.clear();
        assert_eq!(render(&result, 1000).output, r#"{"sum":3}"#);
        result.is_error = Some(true);
        assert!(!render(&result, 1000).ok);
    }
}
