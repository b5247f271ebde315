//! The secrets one run knows (credential secrets, session tokens, credential names), so that
//! every text that leaves the process towards SQLite, logs, recordings or error messages can be
//! scrubbed.
//!
//! One set per process (`Secrets::for_run`): every client adds to it, and the boundaries use
//! it: `log` (every stderr and stdout line), `db::run_stage` (`runs.error`), the recorder (every
//! request and response it writes, headers too), the integrations' clients (`raw_responses`,
//! the servers' error texts) and the warnings a server answers with (`extract_warnings`, and
//! any error made of them).
//!
//! **Every encoding.** A secret is found however a server or we wrote it: raw; JSON-escaped,
//! also nested (an escaped JSON string inside a JSON string: `\\\"`), with `\uXXXX` escapes in
//! either case (non-ASCII, control characters, or HTML-safe escapes of `<>&'=` as some JSON
//! writers do); XML-escaped (`&amp; &lt; &gt; &quot; &apos;`, `&#NN;`, `&#xHH;`, also escaped
//! twice: `&amp;lt;`); percent-encoded (either hex case, `+` for a space, also `%25XX`). Each
//! character of the secret may take any of its forms, so a mix is found too. Letters and digits
//! are taken to stand as themselves (no JSON, XML or URL writer escapes them): the longest run
//! of them in a secret is searched for first, so text without it costs one substring search.
//!
//! **Two kinds.** A *secret* (a token's secret, a session token, a client secret) is scrubbed
//! from every text, and from what recordings are keyed on. A *name* (an access token's name) is
//! scrubbed from what came from a server (response bodies, its error and warning texts) but not
//! from our own messages nor from recording keys: a name is chosen by a person, often a word like
//! `autoexpose`, and scrubbing it from our own text would blank paths and commands, and keying
//! recordings on it would make a replay depend on the environment. Our own messages never hold
//! it: they name the env var instead.
//!
//! **Short values.** A value shorter than `MIN_LEN` (4) characters is not scrubbed by value: a
//! one-to-three-character secret cannot be told from ordinary text (scrubbing every `a` would
//! wreck every output) and has next to no strength to protect. It is still blanked wherever it
//! is a credential field (below), and the integration that read it warns about it.
//!
//! **Credential fields.** Which fields of a protocol's requests and answers hold a credential
//! (the sign-in's name and secret, a password, the session token) is the integration's
//! knowledge: it registers them (`Secrets::add_credential_fields`) before it makes its first
//! transport, and from then on every text scrubbed has those fields' values blanked, JSON
//! (`"field":"…"`) or XML (`field="…"`), whatever the value and its length. Nothing is blanked
//! by field until an integration asks: no field name is a credential in every protocol.

use std::sync::{Arc, OnceLock, RwLock};

pub(crate) const REDACTED: &str = "<redacted>";

/// `REDACTED` as it is written into an XML document, so the document stays well-formed (in
/// text and in attribute values alike) and reads `<redacted>` once parsed: a replayed XML
/// answer must parse as the recorded one did.
const REDACTED_XML: &str = "&lt;redacted&gt;";

/// The marker for `text`: escaped when the text is an XML document.
fn marker_for(text: &str) -> &'static str {
    if text.trim_start().starts_with('<') {
        REDACTED_XML
    } else {
        REDACTED
    }
}

/// The shortest value scrubbed by value, in characters.
pub(crate) const MIN_LEN: usize = 4;

#[derive(Clone, Default, Debug)]
pub(crate) struct Secrets(Arc<RwLock<Inner>>);

#[derive(Default, Debug)]
struct Inner {
    /// Scrubbed everywhere; longest first, so a secret containing another is replaced whole.
    secrets: Vec<Needle>,
    /// Scrubbed from server text only; longest first.
    names: Vec<Needle>,
    /// Fields whose values are blanked in every text, in the order they were registered.
    fields: Vec<&'static str>,
}

/// One value to find, in any encoding.
#[derive(Debug)]
struct Needle {
    value: String,
    chars: Vec<char>,
    /// The longest run of ASCII letters and digits: any encoding of the value holds it.
    anchor: Option<String>,
    /// Bytes a match can start with.
    starts: [bool; 256],
}

impl Needle {
    fn new(value: &str) -> Needle {
        let chars: Vec<char> = value.chars().collect();
        let anchor = value
            .split(|c: char| !c.is_ascii_alphanumeric())
            .max_by_key(|run| run.len())
            .filter(|run| !run.is_empty())
            .map(str::to_string);
        let mut starts = [false; 256];
        let first = chars[0];
        let mut utf8 = [0u8; 4];
        starts[first.encode_utf8(&mut utf8).as_bytes()[0] as usize] = true;
        if !first.is_ascii_alphanumeric() {
            for b in [b'\\', b'&', b'%', b'+'] {
                starts[b as usize] = true;
            }
        }
        Needle {
            value: value.to_string(),
            chars,
            anchor,
            starts,
        }
    }

    /// `text` with every match replaced, or `None` when there is none.
    fn replace_in(&self, text: &str, marker: &str) -> Option<String> {
        if let Some(anchor) = &self.anchor {
            if !text.contains(anchor.as_str()) {
                return None;
            }
        }
        let b = text.as_bytes();
        let mut out = String::new();
        let (mut last, mut i) = (0, 0);
        while i < b.len() {
            if self.starts[b[i] as usize] {
                if let Some(end) = self.match_at(text, i) {
                    out.push_str(&text[last..i]);
                    out.push_str(marker);
                    (last, i) = (end, end);
                    continue;
                }
            }
            i += 1;
        }
        if last == 0 {
            return None;
        }
        out.push_str(&text[last..]);
        Some(out)
    }

    /// Where the longest match starting at `pos` ends: every character in any of its forms.
    fn match_at(&self, text: &str, pos: usize) -> Option<usize> {
        let mut cur = vec![pos];
        let mut next = Vec::new();
        for &c in &self.chars {
            next.clear();
            for &p in &cur {
                char_ends(text.as_bytes(), p, c, &mut next);
            }
            if next.is_empty() {
                return None;
            }
            next.sort_unstable();
            next.dedup();
            std::mem::swap(&mut cur, &mut next);
        }
        cur.last().copied()
    }
}

/// How many backslashes an escape's own backslash becomes when the escaped text is escaped
/// again, up to four levels: 1, 2, 4, 8, 16.
const LEADS: [usize; 5] = [1, 2, 4, 8, 16];

/// Every end of a form of `c` that starts at `pos` of `b`, pushed onto `out`.
fn char_ends(b: &[u8], pos: usize, c: char, out: &mut Vec<usize>) {
    let rest = &b[pos.min(b.len())..];
    let mut utf8 = [0u8; 4];
    let raw = c.encode_utf8(&mut utf8).as_bytes();
    if rest.starts_with(raw) {
        out.push(pos + raw.len());
    }
    if c.is_ascii_alphanumeric() || rest.is_empty() {
        return;
    }
    match rest[0] {
        b'\\' => json_ends(b, pos, c, out),
        b'&' => xml_ends(b, pos, c, out),
        b'%' => percent_ends(b, pos, raw, out),
        b'+' if c == ' ' => out.push(pos + 1),
        _ => {}
    }
}

/// JSON escapes of `c` at `pos` (a backslash), nested up to four levels.
fn json_ends(b: &[u8], pos: usize, c: char, out: &mut Vec<usize>) {
    let run = b[pos..].iter().take_while(|&&x| x == b'\\').count();
    match c {
        // A quote under n levels: 2^n - 1 backslashes, then the quote.
        '"' => {
            for lead in [1, 3, 7, 15] {
                if lead != run {
                    continue;
                }
                if b.get(pos + lead) == Some(&b'"') {
                    out.push(pos + lead + 1);
                }
                // JSON in XML: `\&quot;`.
                if b.get(pos + lead) == Some(&b'&') {
                    xml_ends(b, pos + lead, '"', out);
                }
            }
        }
        // A backslash under n levels: 2^n backslashes.
        '\\' => {
            for n in LEADS {
                if n <= run {
                    out.push(pos + n);
                }
            }
        }
        _ => {}
    }
    let letter = match c {
        '/' => Some(b'/'),
        '\n' => Some(b'n'),
        '\r' => Some(b'r'),
        '\t' => Some(b't'),
        '\u{8}' => Some(b'b'),
        '\u{c}' => Some(b'f'),
        _ => None,
    };
    let mut units = [0u16; 2];
    let units = c.encode_utf16(&mut units);
    for lead in LEADS {
        if lead > run {
            break;
        }
        let at = pos + lead;
        if letter.is_some() && b.get(at).copied() == letter {
            out.push(at + 1);
        }
        // `\uXXXX`, or a surrogate pair, each unit behind the same backslashes.
        let mut p = pos;
        let mut whole = true;
        for unit in units.iter() {
            let unit_ok = b.len() >= p + lead + 5
                && b[p..p + lead].iter().all(|&x| x == b'\\')
                && b[p + lead] == b'u'
                && hex_value(&b[p + lead + 1..p + lead + 5]) == Some(u32::from(*unit));
            if !unit_ok {
                whole = false;
                break;
            }
            p += lead + 5;
        }
        if whole {
            out.push(p);
        }
    }
}

/// XML entities for `c` at `pos` (an `&`), also escaped again (`&amp;lt;`).
fn xml_ends(b: &[u8], pos: usize, c: char, out: &mut Vec<usize>) {
    let mut p = pos + 1;
    for _ in 0..4 {
        let Some((decoded, end)) = entity(b, p) else {
            return;
        };
        if decoded == c {
            out.push(end);
        }
        if decoded != '&' {
            return;
        }
        p = end;
    }
}

/// The character an entity body at `p` (after its `&`) stands for, and where it ends.
fn entity(b: &[u8], p: usize) -> Option<(char, usize)> {
    let rest = b.get(p..)?;
    for (name, ch) in [
        (&b"amp;"[..], '&'),
        (b"lt;", '<'),
        (b"gt;", '>'),
        (b"quot;", '"'),
        (b"apos;", '\''),
    ] {
        if rest.starts_with(name) {
            return Some((ch, p + name.len()));
        }
    }
    let rest = rest.strip_prefix(b"#")?;
    let (digits, radix, skip) = match rest.first() {
        Some(b'x' | b'X') => (&rest[1..], 16, 2),
        _ => (rest, 10, 1),
    };
    let len = digits
        .iter()
        .take(8)
        .take_while(|d| d.is_ascii_hexdigit())
        .count();
    if len == 0 || digits.get(len) != Some(&b';') {
        return None;
    }
    let text = std::str::from_utf8(&digits[..len]).ok()?;
    let n = u32::from_str_radix(text, radix).ok()?;
    Some((char::from_u32(n)?, p + skip + len + 1))
}

/// Percent-encoding of the UTF-8 bytes `raw` at `pos`: each byte `%XX` (either case), also
/// encoded again (`%25XX`).
fn percent_ends(b: &[u8], pos: usize, raw: &[u8], out: &mut Vec<usize>) {
    let mut ends = vec![pos];
    for &byte in raw {
        let mut next = Vec::new();
        for &p in &ends {
            if b.get(p) != Some(&b'%') {
                continue;
            }
            // `%` ("25")* XX: each `25` an encoded `%`, the byte encoded once more. `%2525` is
            // both a `%` encoded twice and `%25` followed by `25`: both are tried.
            let mut q = p + 1;
            for _ in 0..3 {
                let Some(pair) = b.get(q..q + 2) else { break };
                if hex_value(pair) == Some(u32::from(byte)) {
                    next.push(q + 2);
                }
                if pair != b"25" {
                    break;
                }
                q += 2;
            }
        }
        if next.is_empty() {
            return;
        }
        ends = next;
    }
    out.extend(ends);
}

fn hex_value(digits: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(digits).ok()?;
    if !text.bytes().all(|d| d.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

fn insert(list: &mut Vec<Needle>, value: &str) -> bool {
    if value.chars().count() < MIN_LEN {
        return false;
    }
    if !list.iter().any(|n| n.value == value) {
        list.push(Needle::new(value));
        list.sort_by_key(|n| std::cmp::Reverse(n.chars.len()));
    }
    true
}

fn replace_all(text: &str, lists: &[&[Needle]], fields: &[&str]) -> String {
    let marker = marker_for(text);
    let mut out: Option<String> = None;
    for list in lists {
        for n in list.iter() {
            if let Some(replaced) = n.replace_in(out.as_deref().unwrap_or(text), marker) {
                out = Some(replaced);
            }
        }
    }
    blank_credential_fields(out.as_deref().unwrap_or(text), fields, marker)
}

impl Secrets {
    /// The process's one set: what every client adds to and every boundary scrubs with.
    pub(crate) fn for_run() -> Secrets {
        static RUN: OnceLock<Secrets> = OnceLock::new();
        RUN.get_or_init(Secrets::default).clone()
    }

    /// A secret, scrubbed from every text in every encoding. False when it is too short to be
    /// scrubbed by value (`MIN_LEN`).
    pub(crate) fn add(&self, secret: &str) -> bool {
        insert(
            &mut self.0.write().unwrap_or_else(|e| e.into_inner()).secrets,
            secret,
        )
    }

    /// A credential's name (an access token's): scrubbed from server text (`scrub`), not from
    /// `scrub_secrets`.
    pub(crate) fn add_name(&self, name: &str) -> bool {
        insert(
            &mut self.0.write().unwrap_or_else(|e| e.into_inner()).names,
            name,
        )
    }

    /// Fields that hold a credential in an integration's requests or answers, JSON
    /// (`"field":"…"`) or XML (`field="…"`): from now on their values are blanked in every
    /// text, by `scrub` and `scrub_secrets` alike, whatever the value. An integration registers
    /// its fields before it makes its first transport, so every request keyed or recorded is
    /// blanked the same way; registering a field again changes nothing.
    pub(crate) fn add_credential_fields(&self, fields: &'static [&'static str]) {
        let mut all = self.0.write().unwrap_or_else(|e| e.into_inner());
        for field in fields {
            if !field.is_empty() && !all.fields.contains(field) {
                all.fields.push(field);
            }
        }
    }

    /// Text that came from a server (or may hold such text): secrets, names, credential fields.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let all = self.0.read().unwrap_or_else(|e| e.into_inner());
        replace_all(text, &[&all.secrets, &all.names], &all.fields)
    }

    /// Our own text, and what recordings are keyed on: secrets and credential fields.
    pub(crate) fn scrub_secrets(&self, text: &str) -> String {
        let all = self.0.read().unwrap_or_else(|e| e.into_inner());
        replace_all(text, &[&all.secrets], &all.fields)
    }
}

/// `Secrets::for_run().scrub(text)`: for server text on its way into what we keep.
pub(crate) fn scrub(text: &str) -> String {
    Secrets::for_run().scrub(text)
}

/// `Secrets::for_run().scrub_secrets(text)`: for our own messages (logs, `runs.error`).
pub(crate) fn scrub_secrets(text: &str) -> String {
    Secrets::for_run().scrub_secrets(text)
}

/// Blanks every registered credential field (`Secrets::add_credential_fields`), whatever its
/// value and length, even before the client has parsed and registered a token. By field, not
/// by value: a credential named like the site, or a one-letter secret, would otherwise change
/// (or survive in) every request body that recordings are keyed on, so a replay would depend
/// on the environment it runs in.
fn blank_credential_fields(text: &str, fields: &[&str], marker: &str) -> String {
    let mut out = text.to_string();
    for &field in fields {
        if !out.contains(field) {
            continue;
        }
        blank_json_field(&mut out, field);
        blank_xml_attribute(&mut out, field, marker);
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
fn blank_xml_attribute(out: &mut String, field: &str, marker: &str) {
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
        let Some(len) = out[start..].find('"') else {
            break;
        };
        out.replace_range(start..start + len, marker);
        from = start + marker.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Invented credential fields, as an integration would register its own.
    const FIELDS: &[&str] = &["accessKeyName", "accessKeySecret", "password", "token"];

    /// A set with `FIELDS` registered.
    fn fielded() -> Secrets {
        let s = Secrets::default();
        s.add_credential_fields(FIELDS);
        s
    }

    /// A registered field is blanked whatever its value; an unregistered one is left alone,
    /// and a set nobody registered fields with blanks none.
    #[test]
    fn only_registered_fields_are_blanked() {
        let json = r#"{"accessKeySecret":"k","apiKey":"v","token":"t"}"#;
        let xml = r#"<c accessKeySecret="k" apiKey="v" token="t"/>"#;
        assert_eq!(Secrets::default().scrub(json), json);
        assert_eq!(Secrets::default().scrub_secrets(xml), xml);
        let s = Secrets::default();
        s.add_credential_fields(&["accessKeySecret"]);
        assert_eq!(
            s.scrub(json),
            r#"{"accessKeySecret":"<redacted>","apiKey":"v","token":"t"}"#
        );
        assert_eq!(
            s.scrub_secrets(xml),
            r#"<c accessKeySecret="&lt;redacted&gt;" apiKey="v" token="t"/>"#
        );
        // Registering more (and one again) adds to what is blanked.
        s.add_credential_fields(&["token", "accessKeySecret"]);
        assert_eq!(
            s.scrub_secrets(json),
            r#"{"accessKeySecret":"<redacted>","apiKey":"v","token":"<redacted>"}"#
        );
        assert_eq!(s.0.read().unwrap().fields, ["accessKeySecret", "token"]);
    }

    #[test]
    fn scrubs_known_secrets_and_token_fields() {
        let s = fielded();
        s.add("s3cr3t-value");
        let text =
            r#"{"credentials":{"token":"abcDEF123","x":"s3cr3t-value"}} <credentials token="zzz">"#;
        let out = s.scrub(text);
        assert!(
            !out.contains("abcDEF123") && !out.contains("s3cr3t-value") && !out.contains("zzz"),
            "{out}"
        );
        assert_eq!(out.matches(REDACTED).count(), 3, "{out}");
    }

    /// A secret with every character that encodes differently, in every form it can take.
    const HOSTILE: &str = "q\"b\\s<&%+ x\né€😀/'=z";

    fn json(s: &str) -> String {
        let quoted = serde_json::to_string(s).unwrap();
        quoted[1..quoted.len() - 1].to_string()
    }

    /// JSON with every non-ASCII character (and the HTML-unsafe ones) as `\uXXXX`, as Java
    /// and Gson-style writers do, in the given hex case.
    fn json_ascii(s: &str, upper: bool) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '/' => out.push_str("\\/"),
                c if !c.is_ascii() || "<>&'=".contains(c) => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&if upper {
                            format!("\\u{u:04X}")
                        } else {
                            format!("\\u{u:04x}")
                        });
                    }
                }
                c => out.push(c),
            }
        }
        out
    }

    fn xml(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;")
    }

    fn xml_numeric(s: &str, hex: bool) -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_string()
                } else if hex {
                    format!("&#x{:X};", c as u32)
                } else {
                    format!("&#{};", c as u32)
                }
            })
            .collect()
    }

    fn percent(s: &str, upper: bool, plus: bool) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b' ' if plus => out.push('+'),
                b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => out.push(b as char),
                b if upper => out.push_str(&format!("%{b:02X}")),
                b => out.push_str(&format!("%{b:02x}")),
            }
        }
        out
    }

    fn forms(s: &str) -> Vec<(&'static str, String)> {
        vec![
            ("raw", s.to_string()),
            ("json", json(s)),
            ("json in json", json(&json(s))),
            ("json in json in json", json(&json(&json(s)))),
            ("json ascii lower", json_ascii(s, false)),
            ("json ascii upper", json_ascii(s, true)),
            ("json ascii in json", json(&json_ascii(s, false))),
            ("xml", xml(s)),
            ("xml twice", xml(&xml(s))),
            ("xml decimal", xml_numeric(s, false)),
            ("xml hex", xml_numeric(s, true)),
            ("percent upper", percent(s, true, false)),
            ("percent lower", percent(s, false, false)),
            ("form", percent(s, true, true)),
            (
                "percent twice",
                percent(&percent(s, true, false), true, false),
            ),
            ("xml of json", xml(&json(s))),
            ("json of percent", json(&percent(s, false, true))),
        ]
    }

    #[test]
    fn every_encoding_of_a_hostile_secret_is_scrubbed() {
        let s = fielded();
        assert!(s.add(HOSTILE));
        for (what, form) in forms(HOSTILE) {
            let text = format!("before {form} after");
            assert_eq!(s.scrub(&text), "before <redacted> after", "{what}: {form}");
            assert_eq!(
                s.scrub_secrets(&text),
                "before <redacted> after",
                "{what}: {form}"
            );
            // Inside a JSON document, as a server would echo it.
            let doc = format!(r#"{{"errors":[{{"message":"token {form} refused"}}]}}"#);
            assert!(!s.scrub(&doc).contains(&form), "{what}: {doc}");
        }
        // Twice in one text, next to each other, and nothing else touched.
        let text = format!("{HOSTILE}{}|{}", json(HOSTILE), xml(HOSTILE));
        assert_eq!(s.scrub(&text), "<redacted><redacted>|<redacted>");
        // A near miss is left alone.
        let near = HOSTILE.replace('z', "y");
        assert_eq!(s.scrub(&near), near);
    }

    #[test]
    fn a_token_like_secret_in_urls_and_bodies() {
        let s = fielded();
        let token = "K4WvYzpQ|Raq8+xz/09==|e3b0c442";
        s.add(token);
        for (what, form) in forms(token) {
            assert_eq!(
                s.scrub(&format!("?t={form}&x=1")),
                "?t=<redacted>&x=1",
                "{what}: {form}"
            );
        }
        // The anchor alone does not match, nor does the token with a letter changed.
        assert_eq!(
            s.scrub("Raq8 and K4WvYzpQ|Raq8+xz/09==|e3b0c443"),
            "Raq8 and K4WvYzpQ|Raq8+xz/09==|e3b0c443"
        );
    }

    /// Secrets shorter than `MIN_LEN` characters are not scrubbed by value (they would match
    /// ordinary text), only where they are credential fields; four characters are.
    #[test]
    fn short_secrets_are_blanked_by_field_only() {
        let s = fielded();
        for short in ["a", "ab", "abc", "é€😀"] {
            assert!(!s.add(short), "{short}");
            assert!(!s.add_name(short), "{short}");
        }
        let text = r#"a cab, abc "é€😀" {"accessKeySecret":"abc"}"#;
        assert_eq!(
            s.scrub(text),
            r#"a cab, abc "é€😀" {"accessKeySecret":"<redacted>"}"#
        );
        assert!(s.add("abcd"));
        assert_eq!(s.scrub("xabcdx"), "x<redacted>x");
        assert!(s.add("é€😀x"));
        assert_eq!(s.scrub(r"[\u00e9\u20AC\ud83d\ude00x]"), "[<redacted>]");
    }

    /// A credential's name is scrubbed from server text, not from our own text nor recording keys.
    #[test]
    fn names_are_scrubbed_from_server_text_only() {
        let s = fielded();
        s.add("the-pat-secret");
        s.add_name("autoexpose");
        let text = "run `autoexpose extract`: the-pat-secret";
        assert_eq!(
            s.scrub_secrets(text),
            "run `autoexpose extract`: <redacted>"
        );
        assert_eq!(s.scrub(text), "run `<redacted> extract`: <redacted>");
    }

    /// Text without a secret's letters costs one substring search; a secret with none is
    /// still found, and a large body is scrubbed in reasonable time.
    #[test]
    fn large_texts_are_scrubbed_quickly() {
        let s = fielded();
        s.add("\"\\<&");
        s.add("pat-secret-0123456789");
        let mut body = r#"{"a":"x\"y\\z &amp; %41 + <b>"}"#.repeat(50_000);
        body.push_str(r#""\"\\\u003c&amp;""#);
        let started = std::time::Instant::now();
        let out = s.scrub(&body);
        assert!(
            out.ends_with(r#""<redacted>""#),
            "{}",
            &out[out.len() - 40..]
        );
        assert_eq!(
            out.len(),
            body.len() - r#"\"\\\u003c&amp;"#.len() + REDACTED.len()
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    /// In an XML document the marker is escaped: the document still parses, and reads
    /// `<redacted>` where the secret was, in text and attributes.
    #[test]
    fn scrubbed_xml_stays_well_formed() {
        let s = fielded();
        s.add(HOSTILE);
        let doc = format!(
            r#"<response><error code="1" note="{x}"><detail>no {x}</detail></error><credentials token="t{x}"/></response>"#,
            x = xml(HOSTILE)
        );
        let out = s.scrub(&doc);
        let parsed = roxmltree::Document::parse(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        let error = parsed
            .descendants()
            .find(|n| n.has_tag_name("error"))
            .unwrap();
        assert_eq!(error.attribute("note"), Some("<redacted>"));
        assert_eq!(
            parsed
                .descendants()
                .find(|n| n.has_tag_name("detail"))
                .unwrap()
                .text(),
            Some("no <redacted>")
        );
        assert_eq!(
            parsed
                .descendants()
                .find(|n| n.has_tag_name("credentials"))
                .unwrap()
                .attribute("token"),
            Some("<redacted>")
        );
    }

    #[test]
    fn a_credential_name_is_blanked_by_field_only() {
        let body = r#"{"credentials":{"accessKeyName":"demo","site":{"contentUrl":"demo"}}}"#;
        let out = fielded().scrub(body);
        assert_eq!(
            out,
            r#"{"credentials":{"accessKeyName":"<redacted>","site":{"contentUrl":"demo"}}}"#
        );
    }

    /// Whatever the credentials, the scrubbed sign-in body is the same bytes: empty, one
    /// character, long, with quotes and backslashes, JSON or XML.
    #[test]
    fn credentials_are_blanked_by_field_whatever_their_length() {
        let json = |name: &str, secret: &str| {
            serde_json::json!({"credentials": {"accessKeyName": name, "accessKeySecret": secret, "site": {"contentUrl": "demo"}}}).to_string()
        };
        let xml = |name: &str, secret: &str| {
            format!(
                r#"<request><credentials accessKeyName="{name}" accessKeySecret="{secret}"><site contentUrl="demo" /></credentials></request>"#
            )
        };
        let creds = [
            ("", ""),
            ("n", "s"),
            ("a-long-pat-name", "a-very-long-pat-secret-0123456789"),
            ("q\"uo\\te", "b\\\"s"),
        ];
        let secrets = fielded();
        let want_json = secrets.scrub(&json("x", "y"));
        assert_eq!(
            want_json,
            r#"{"credentials":{"accessKeyName":"<redacted>","accessKeySecret":"<redacted>","site":{"contentUrl":"demo"}}}"#
        );
        let want_xml = secrets.scrub(&xml("x", "y"));
        assert!(
            !want_xml.contains("\"x\"") && !want_xml.contains("\"y\""),
            "{want_xml}"
        );
        for (name, secret) in creds {
            assert_eq!(
                secrets.scrub(&json(name, secret)),
                want_json,
                "{name:?} {secret:?}"
            );
            if !name.contains('"') {
                assert_eq!(
                    secrets.scrub(&xml(name, secret)),
                    want_xml,
                    "{name:?} {secret:?}"
                );
            }
        }
        let spaced = r#"{"password" : "p", "token": null, "x":"password"}"#;
        assert_eq!(
            fielded().scrub(spaced),
            r#"{"password" : "<redacted>", "token": null, "x":"password"}"#
        );
        assert_eq!(
            fielded().scrub(r#"<a xtoken="keep" token="t"/>"#),
            r#"<a xtoken="keep" token="&lt;redacted&gt;"/>"#
        );
        assert_eq!(
            fielded().scrub(r#"{"x": "<a token="t"/>"}"#),
            r#"{"x": "<a token="<redacted>"/>"}"#
        );
    }
}
