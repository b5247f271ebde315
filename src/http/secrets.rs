//! The secrets one run knows (PAT name and secret, session tokens), so that every byte that
//! leaves the process towards SQLite, logs, recordings or error messages can be scrubbed.

use std::sync::{Arc, RwLock};

pub(crate) const REDACTED: &str = "<redacted>";

#[derive(Clone, Default, Debug)]
pub(crate) struct Secrets(Arc<RwLock<Vec<String>>>);

impl Secrets {
    pub(crate) fn add(&self, secret: &str) {
        // Very short values would scrub ordinary text; real PATs and tokens are long.
        if secret.len() < 4 {
            return;
        }
        let mut all = self.0.write().unwrap_or_else(|e| e.into_inner());
        if !all.iter().any(|s| s == secret) {
            all.push(secret.to_string());
            // Longest first, so a secret containing another is replaced whole.
            all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub(crate) fn scrub(&self, text: &str) -> String {
        let all = self.0.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for s in all.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        scrub_token_fields(&out)
    }
}

/// Blanks the session token in sign-in responses, JSON (`"token":"…"`) and XML (`token="…"`),
/// even before the client has parsed and registered it, and the PAT's name in sign-in
/// requests. The name is blanked by field, not wherever it occurs: a PAT named like the site
/// would otherwise change every request body that recordings are keyed on.
pub(crate) fn scrub_token_fields(text: &str) -> String {
    let mut out = text.to_string();
    for (open, close) in [
        ("\"token\":\"", '"'),
        ("\"token\": \"", '"'),
        ("token=\"", '"'),
        ("\"personalAccessTokenName\":\"", '"'),
        ("personalAccessTokenName=\"", '"'),
    ] {
        let mut from = 0;
        while let Some(pos) = out[from..].find(open) {
            let start = from + pos + open.len();
            let Some(len) = out[start..].find(close) else { break };
            out.replace_range(start..start + len, REDACTED);
            from = start + REDACTED.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_known_secrets_and_token_fields() {
        let s = Secrets::default();
        s.add("s3cr3t-value");
        let text = r#"{"credentials":{"token":"abcDEF123","x":"s3cr3t-value"}} <credentials token="zzz">"#;
        let out = s.scrub(text);
        assert!(!out.contains("abcDEF123") && !out.contains("s3cr3t-value") && !out.contains("zzz"), "{out}");
        assert_eq!(out.matches(REDACTED).count(), 3, "{out}");
    }

    #[test]
    fn pat_name_is_blanked_by_field_only() {
        let body = r#"{"credentials":{"personalAccessTokenName":"demo","site":{"contentUrl":"demo"}}}"#;
        let out = Secrets::default().scrub(body);
        assert_eq!(out, r#"{"credentials":{"personalAccessTokenName":"<redacted>","site":{"contentUrl":"demo"}}}"#);
    }
}
