//! The service a failing line names as the one that failed it ("upstream anythingllm request
//! failed"): evidence of a call that outranks timing, used by request analysis and cascades.

/// Words that follow "upstream" in proxies' and clients' own messages without naming a
/// service (Envoy's "upstream connect error", nginx's "upstream timed out", ...).
const NOT_A_SERVICE: [&str; 20] = [
    "request",
    "requests",
    "connect",
    "connection",
    "server",
    "servers",
    "service",
    "error",
    "errors",
    "timed",
    "timeout",
    "response",
    "returned",
    "prematurely",
    "sent",
    "host",
    "is",
    "was",
    "has",
    "failed",
];

/// The words of a text that could be service names.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')))
        .map(|w| w.trim_matches(['.', '-']))
        .filter(|w| w.len() >= 3)
}

/// The word after "upstream" when it has a service name's shape (lowercase letters, digits,
/// `-`, `_`, `.`) and is not one of the words proxies put there.
pub fn upstream(text: &str) -> Option<&str> {
    let name = words(text).skip_while(|w| !w.eq_ignore_ascii_case("upstream")).nth(1)?;
    let shaped = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'));
    (shaped && !NOT_A_SERVICE.iter().any(|n| n.eq_ignore_ascii_case(name))).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_upstream_but_not_proxy_words() {
        assert_eq!(upstream("upstream anythingllm request failed"), Some("anythingllm"));
        assert_eq!(
            upstream("error: upstream billing-svc returned 503"),
            Some("billing-svc")
        );
        assert_eq!(
            upstream("upstream connect error or disconnect/reset before headers"),
            None
        );
        assert_eq!(upstream("upstream timed out (110: Connection timed out)"), None);
        assert_eq!(upstream("upstream request timeout"), None);
        assert_eq!(upstream("model call failed"), None);
    }
}
