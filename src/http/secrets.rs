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

/// The fields that hold a credential in Tableau's sign-in request and response, JSON
/// (`"name":"…"`) or XML (`name="…"`): the PAT's name and secret, a password, the session token.
const SECRET_FIELDS: [&str; 4] = ["personalAccessTokenName", "personalAccessTokenSecret", "password", "token"];

/// Blanks every credential field (`SECRET_FIELDS`), whatever its value and length, even before
/// the client has parsed and registered a token. By field, not by value: a PAT named like the
/// site, or a one-letter secret, would otherwise change (or survive in) every request body that
/// recordings are keyed on, so a replay would depend on the environment it runs in.
pub(crate) fn scrub_token_fields(text: &str) -> String {
    let mut out = text.to_string();
    for field in SECRET_FIELDS {
        if !out.contains(field) {
            continue;
        }
        blank_json_field(&mut out, field);
        blank_xml_attribute(&mut out, field);
    }
    out
}

/// `"field" : "value"` → `"field" : "<redacted>"`; the value may hold escaped quotes.
fn blank_json_field(out: &mut String, field: &str) {
    let needle = format!("\"{field}\"");
    let mut from = 0;
    while let Some(pos) = out[from..].find(&needle) {
        let b = out.as_bytes();
        let mut j = from + pos + needle.len();
        from = j;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if b.get(j) != Some(&b':') {
            continue;
        }
        j += 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if b.get(j) != Some(&b'"') {
            continue; // null, a number, an object: nothing to blank
        }
        let start = j + 1;
        let mut k = start;
        while k < b.len() && b[k] != b'"' {
            k += if b[k] == b'\\' { 2 } else { 1 };
        }
        let end = k.min(b.len());
        out.replace_range(start..end, REDACTED);
        from = start + REDACTED.len();
    }
}

/// `field="value"` (an XML attribute, so the value holds no raw quote) → `field="<redacted>"`.
fn blank_xml_attribute(out: &mut String, field: &str) {
    let needle = format!("{field}=\"");
    let mut from = 0;
    while let Some(pos) = out[from..].find(&needle) {
        let at = from + pos;
        let start = at + needle.len();
        from = start;
        // A whole attribute name only: `token="` but not `xtoken="`.
        if at > 0 && !out.as_bytes()[at - 1].is_ascii_whitespace() {
            continue;
        }
        let Some(len) = out[start..].find('"') else { break };
        out.replace_range(start..start + len, REDACTED);
        from = start + REDACTED.len();
    }
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

    /// Whatever the credentials, the scrubbed sign-in body is the same bytes: empty, one
    /// character, long, with quotes and backslashes, JSON or XML.
    #[test]
    fn credentials_are_blanked_by_field_whatever_their_length() {
        let json = |name: &str, secret: &str| {
            serde_json::json!({"credentials": {"personalAccessTokenName": name, "personalAccessTokenSecret": secret, "site": {"contentUrl": "demo"}}}).to_string()
        };
        let xml = |name: &str, secret: &str| {
            format!(r#"<tsRequest><credentials personalAccessTokenName="{name}" personalAccessTokenSecret="{secret}"><site contentUrl="demo" /></credentials></tsRequest>"#)
        };
        let creds = [("", ""), ("n", "s"), ("a-long-pat-name", "a-very-long-pat-secret-0123456789"), ("q\"uo\\te", "b\\\"s")];
        let secrets = Secrets::default();
        let want_json = secrets.scrub(&json("x", "y"));
        assert_eq!(want_json, r#"{"credentials":{"personalAccessTokenName":"<redacted>","personalAccessTokenSecret":"<redacted>","site":{"contentUrl":"demo"}}}"#);
        let want_xml = secrets.scrub(&xml("x", "y"));
        assert!(!want_xml.contains("\"x\"") && !want_xml.contains("\"y\""), "{want_xml}");
        for (name, secret) in creds {
            assert_eq!(secrets.scrub(&json(name, secret)), want_json, "{name:?} {secret:?}");
            if !name.contains('"') {
                assert_eq!(secrets.scrub(&xml(name, secret)), want_xml, "{name:?} {secret:?}");
            }
        }
        let spaced = r#"{"password" : "p", "token": null, "x":"password"}"#;
        assert_eq!(Secrets::default().scrub(spaced), r#"{"password" : "<redacted>", "token": null, "x":"password"}"#);
        assert_eq!(Secrets::default().scrub(r#"<a xtoken="keep" token="t"/>"#), r#"<a xtoken="keep" token="<redacted>"/>"#);
    }
}
