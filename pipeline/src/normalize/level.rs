//! Level of a line that does not state one, guessed from its text.

use crate::record::Level;

/// Words that name a level; the first one found decides (loggers put the level early).
fn level_word(word: &str) -> Option<Level> {
    if word.len() < 3 || word.len() > 11 {
        return None;
    }
    // Only upper-case or capitalised words: "error" inside prose is not a level marker,
    // but "ERROR", "Error:" and "[WARN]" are.
    let first_upper = word.as_bytes()[0].is_ascii_uppercase();
    if !first_upper {
        return None;
    }
    Level::from_name(word).filter(|_| word != "Log" && word != "LOG")
}

/// Guesses the level of a plain-text line. Explicit level words win; then failure words
/// ("exception", "traceback", "panicked", "fatal") mean error; otherwise info.
pub fn guess_level(text: &str) -> Level {
    let head = prefix(text, 512);
    for word in head
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .take(24)
    {
        if let Some(level) = level_word(word) {
            return level;
        }
    }
    let lower = head.to_ascii_lowercase();
    if lower.contains("panicked at") || lower.contains("fatal") {
        return Level::Fatal;
    }
    const ERROR_WORDS: [&str; 6] = ["exception", "traceback", "error", "failed", "failure", "timed out"];
    if ERROR_WORDS.iter().any(|w| lower.contains(w)) {
        return Level::Error;
    }
    if lower.contains("warn") || lower.contains("deprecated") || lower.contains("retrying") {
        return Level::Warn;
    }
    Level::Info
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_level_words_win() {
        assert_eq!(guess_level("2024-01-01 12:00:00 ERROR db down"), Level::Error);
        assert_eq!(guess_level("[WARN] pool nearly full"), Level::Warn);
        assert_eq!(guess_level("Info: everything failed"), Level::Info);
        assert_eq!(guess_level("CRITICAL disk full"), Level::Fatal);
        assert_eq!(guess_level("DEBUG cache hit"), Level::Debug);
    }

    #[test]
    fn failure_words_without_level() {
        assert_eq!(guess_level("Traceback (most recent call last):"), Level::Error);
        assert_eq!(guess_level("request failed after 3 retries"), Level::Error);
        assert_eq!(guess_level("thread 'main' panicked at src/x.rs"), Level::Fatal);
        assert_eq!(guess_level("retrying connection"), Level::Warn);
        assert_eq!(guess_level("GET /health 200"), Level::Info);
    }

    #[test]
    fn prefix_respects_char_boundaries() {
        assert_eq!(prefix("héllo", 2), "h");
        assert_eq!(prefix("abc", 10), "abc");
    }
}
