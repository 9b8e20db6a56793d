//! Recognising AI coding tools and bots in free-form names (trailers, identities).

/// Known AI coding tools, matched case-insensitively as a whole word at the start of a name.
/// The value is the tool's normalised name used in `session:<tool>/…` subjects.
const AI_TOOLS: &[(&str, &str)] = &[
    ("aider", "aider"),
    ("amazon q", "amazon-q"),
    ("chatgpt", "chatgpt"),
    ("claude", "claude"),
    ("codeium", "codeium"),
    ("codex", "codex"),
    ("copilot", "copilot"),
    ("cursor", "cursor"),
    ("devin", "devin"),
    ("gemini", "gemini"),
    ("github copilot", "copilot"),
    ("gpt", "chatgpt"),
    ("jules", "jules"),
    ("openhands", "openhands"),
    ("tabnine", "tabnine"),
    ("windsurf", "windsurf"),
];

/// The normalised tool name if `name` names a known AI coding tool (`"Codex 5.3"` → `codex`,
/// `"Claude <noreply@anthropic.com>"` → `claude`, `"GPT-5"` → `chatgpt`).
pub fn ai_tool_name(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    AI_TOOLS.iter().find_map(|(prefix, tool)| {
        let rest = lower.strip_prefix(prefix)?;
        // Whole word: the prefix must end at a non-alphanumeric character.
        match rest.chars().next() {
            None => Some(*tool),
            Some(c) if !c.is_ascii_alphabetic() => Some(*tool),
            Some(_) => None,
        }
    })
}

/// Whether `name` names a bot account (`dependabot[bot]`, `renovate[bot] <…>`).
pub fn is_bot_name(name: &str) -> bool {
    name.to_ascii_lowercase().contains("[bot]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_tools_as_whole_words() {
        assert_eq!(ai_tool_name("Codex 5.3"), Some("codex"));
        assert_eq!(ai_tool_name("Claude <noreply@anthropic.com>"), Some("claude"));
        assert_eq!(ai_tool_name("GPT-5"), Some("chatgpt"));
        assert_eq!(ai_tool_name("Copilot"), Some("copilot"));
        assert_eq!(ai_tool_name("Claudette Smith <c@example.com>"), None);
        assert_eq!(ai_tool_name("Mark Lodato <lodatom@gmail.com>"), None);
        assert!(is_bot_name("dependabot[bot] <49699333+dependabot[bot]@users.noreply.github.com>"));
    }
}
