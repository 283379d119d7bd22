//! Labelled examples from public sources (vendors' documented example and test values), a
//! negative set of values logs are full of, and a property: a secret anywhere is masked.

use proptest::prelude::*;

use super::*;

/// (rule, value) pairs, each documented by its vendor as an example or test value.
const SECRETS: &[(&str, &str)] = &[
    // AWS IAM docs' example access key id.
    ("aws_key", "AKIAIOSFODNN7EXAMPLE"),
    // jwt.io's example token.
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ),
    // Stripe's and Visa's published test card numbers.
    ("card", "4242 4242 4242 4242"),
    ("card", "4111111111111111"),
    ("card", "5555-5555-5555-4444"),
    ("card", "378282246310005"),
    // IBAN examples from the ECBS / Wikipedia registry pages.
    ("iban", "GB82 WEST 1234 5698 7654 32"),
    ("iban", "DE89370400440532013000"),
    // Key shapes as the providers document them (values made up).
    ("openai_key", "sk-proj-4f9TbX2qLm8ZkR1vN7wPcYdE3sHaJ6uQ"),
    ("anthropic_key", "sk-ant-api03-Zx8Kq2LmN4pR7sT1vW3yB5dF9gH0jK"),
    ("github_token", "ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R"),
    ("email", "jane.doe+billing@example.co.uk"),
];

/// Values that look numeric or random but are no secret.
const KEEP: &[&str] = &[
    "550e8400-e29b-41d4-a716-446655440000",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "2026-12-03T11:41:31.068998497Z",
    "1796300564787829756",
    "1796300564787",
    "order 4111111111111112 shipped",
    "req-2377e05cb109",
    "took 60012 ms on port 5432",
    "version 1.2.3.4-rc1",
    "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "user@localhost",
    "connect 10.0.3.7:443",
    "2026-12-03T11:41:31+01:00 offset +01:00",
    "score +12.5 points, retry +300 ms later",
    "HTTP/1.1 (Windows NT 10.0; Win64; x64)",
];

fn masked(r: &Redactor, text: &str) -> String {
    let mut counts = vec![0; r.names().count()];
    r.mask(text, &mut counts).into_owned()
}

#[test]
fn documented_examples_are_masked_by_their_rule() {
    let r = Redactor::shipped();
    for (rule, secret) in SECRETS {
        let line = format!(r#"{{"message":"call failed for {secret} (retrying)"}}"#);
        let out = masked(&r, &line);
        assert!(!out.contains(secret), "{rule}: {secret} survived in {out}");
        assert!(out.contains(&format!("<{rule}:")), "{rule}: {out}");
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_ok(),
            "still JSON: {out}"
        );
    }
}

#[test]
fn bearer_keeps_the_scheme_and_masks_the_credential() {
    let out = masked(&Redactor::shipped(), "Authorization: Bearer abcDEF123456.xyz");
    assert_eq!(&out[..22], "Authorization: Bearer ");
    assert!(out.contains("<bearer:") && !out.contains("abcDEF123456"), "{out}");
}

#[test]
fn values_that_are_no_secret_stay() {
    let r = Redactor::shipped();
    for text in KEEP {
        assert_eq!(masked(&r, text), *text);
    }
}

#[test]
fn masks_are_stable_and_tell_values_apart() {
    let r = Redactor::shipped();
    let a = masked(&r, "a@example.com");
    assert_eq!(a, masked(&r, "a@example.com"));
    assert_ne!(a, masked(&r, "b@example.com"));
    let again = masked(&r, &a);
    assert_eq!(again, a, "a mask is not masked again");
}

#[test]
fn counts_per_rule_and_configuration() {
    let r = Redactor::new(
        &["email".into()],
        &["ipv4".into()],
        &[("ticket".into(), r"\bTCK-\d{6}\b".into())],
    )
    .expect("rules");
    let names: Vec<&str> = r.names().collect();
    let mut counts = vec![0; names.len()];
    let out = r.mask(
        "a@example.com from 10.1.2.3 about TCK-123456 and 4242424242424242",
        &mut counts,
    );
    assert!(out.contains("a@example.com"), "email disabled: {out}");
    let count = |name: &str| counts[names.iter().position(|n| *n == name).expect("rule")];
    assert_eq!((count("ipv4"), count("ticket"), count("card")), (1, 1, 1), "{out}");
    assert!(matches!(
        Redactor::new(&["nope".into()], &[], &[]),
        Err(RedactError::UnknownRule(_))
    ));
    assert!(matches!(
        Redactor::new(&[], &[], &[("bad".into(), "(".into())]),
        Err(RedactError::BadRegex { .. })
    ));
}

#[test]
fn phones_are_masked_unless_disabled() {
    let on = Redactor::shipped();
    assert!(masked(&on, "call +44 20 7946 0958 now").contains("<phone:"));
    assert!(masked(&on, "call (212) 555-0123 now").contains("<phone:"));
    let off = Redactor::new(&["phone".into()], &[], &[]).expect("rules");
    assert_eq!(masked(&off, "call +44 20 7946 0958"), "call +44 20 7946 0958");
}

proptest! {
    /// A secret between arbitrary text (with a separator on each side) never survives.
    #[test]
    fn a_secret_anywhere_is_masked(
        before in "[ -~]{0,40}",
        after in "[ -~]{0,40}",
        pick in 0..SECRETS.len(),
    ) {
        let (_, secret) = SECRETS[pick];
        let text = format!("{before} {secret} {after}");
        let out = masked(&Redactor::shipped(), &text);
        prop_assert!(!out.contains(secret), "{} survived in {}", secret, out);
    }

    /// Text with no digits and no `@` is never changed.
    #[test]
    fn plain_words_stay(text in "[a-zA-Z ,.;:!?()-]{0,80}") {
        prop_assert_eq!(masked(&Redactor::shipped(), &text), text);
    }
}

#[test]
fn a_push_is_masked_in_lines_metadata_and_label_values() {
    use crate::loki::{PushBatch, PushEntry, PushStream};
    let labels: crate::record::Labels = std::sync::Arc::new(
        [
            ("service".to_owned(), "api".to_owned()),
            ("owner".to_owned(), "ops@example.com".to_owned()),
        ]
        .into_iter()
        .collect(),
    );
    let mut batch = PushBatch {
        streams: vec![PushStream {
            labels,
            entries: vec![
                PushEntry {
                    ts_ns: 1,
                    line: r#"{"msg":"login","user":"ann@example.com","auth":"Bearer abcdefgh12345678"}"#.into(),
                    metadata: vec![("trace".into(), "sk-ant-api03-abcdefghijklmnopqrstu".into())],
                },
                PushEntry {
                    ts_ns: 2,
                    line: r#"{"msg":"plain","order_id":"1700000000123"}"#.into(),
                    metadata: vec![],
                },
            ],
        }],
    };
    let r = Redactor::shipped();
    let mut counts = vec![0; r.names().count()];
    r.mask_batch(&mut batch, &mut counts);
    let s = &batch.streams[0];
    let first = &s.entries[0].line;
    assert!(
        !first.contains("ann@example.com") && !first.contains("abcdefgh12345678"),
        "{first}"
    );
    serde_json::from_str::<serde_json::Value>(first).expect("a masked JSON line stays JSON");
    assert!(s.entries[0].metadata[0].1.starts_with("<anthropic_key:"));
    assert_eq!(s.entries[1].line, r#"{"msg":"plain","order_id":"1700000000123"}"#);
    assert!(s.labels["owner"].starts_with("<email:"));
    assert_eq!(s.labels["service"], "api");
    let by_name: std::collections::HashMap<&str, u64> = r.names().zip(counts.iter().copied()).collect();
    assert_eq!(by_name["email"], 2);
    assert_eq!(by_name["bearer"], 1);
    assert_eq!(by_name["anthropic_key"], 1);
}
