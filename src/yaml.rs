//! YAML scalars written as text, for emit's generated files: faster than building a
//! `serde_yaml::Value` tree per exposure (a fifth of a large run went there), and every
//! choice is spelled out here for the reader who must trust it with untrusted text.
//!
//! A scalar is written in one of three styles, whichever is the first that is safe:
//! - plain, only for short ASCII words that every YAML 1.1 and 1.2 reader (dbt uses PyYAML)
//!   reads back as the same string: letters first, no indicator that could start structure,
//!   and none of the words YAML 1.1 reads as booleans or null;
//! - literal block (`|-`), for multi-line text of printable characters whose lines start with
//!   neither a space nor a tab, so indentation cannot be misread;
//! - double-quoted, for everything else, with every character PyYAML would refuse or treat as
//!   a line break escaped.
//!
//! Jinja is not this module's business: values arrive already neutralised (`naming`).

/// Appends `text` as a YAML scalar; `indent` is the indentation of the key it belongs to
/// (a block scalar's lines go two spaces deeper).
pub(crate) fn scalar(out: &mut String, text: &str, indent: usize) {
    if is_plain(text) {
        out.push_str(text);
    } else if is_block(text) {
        out.push_str("|-");
        for line in text.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.extend(std::iter::repeat(' ').take(indent + 2));
                out.push_str(line);
            }
        }
    } else {
        double_quoted(out, text);
    }
}

/// Words YAML 1.1 resolves to booleans or null (PyYAML's resolver), compared case-blind.
const RESERVED: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null"];

fn is_plain(text: &str) -> bool {
    let bytes = text.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == b'_') || bytes.len() > 200 {
        return false;
    }
    if bytes.last() == Some(&b' ')
        || bytes.last() == Some(&b':')
        || RESERVED.iter().any(|w| w.eq_ignore_ascii_case(text))
    {
        return false;
    }
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b if b.is_ascii_alphanumeric() => true,
        b' ' | b'_' | b'.' | b'-' | b'/' | b'(' | b')' | b'\'' | b',' | b';' | b'@' | b'+'
        | b'=' | b'%' | b'?' | b'&' | b'!' | b'*' | b'$' | b'~' | b'"' => true,
        // `: ` starts a mapping value and ` #` a comment; elsewhere both are ordinary.
        b':' => bytes.get(i + 1).is_some_and(|&n| n != b' '),
        b'#' => bytes[i - 1] != b' ',
        _ => false,
    })
}

/// Characters a literal block may hold as they are: printable for PyYAML and no line break
/// other than `\n` (so no `\r`, NEL, LS or PS, which readers may take as line ends).
fn block_char(c: char) -> bool {
    match c {
        '\n' | '\t' => true,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{feff}'
        | '\u{fffe}'
        | '\u{ffff}' => false,
        _ => true,
    }
}

fn is_block(text: &str) -> bool {
    text.contains('\n')
        && !text.starts_with('\n')
        && !text.ends_with(char::is_whitespace)
        && text.split('\n').all(|l| !l.starts_with([' ', '\t']))
        && text.chars().all(block_char)
}

fn double_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => {
                out.push_str(&format!("\\x{:02X}", c as u32))
            }
            '\u{feff}' | '\u{fffe}' | '\u{ffff}' => out.push_str(&format!("\\u{:04X}", c as u32)),
            _ => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(text: &str) -> String {
        let mut out = String::from("k: ");
        scalar(&mut out, text, 0);
        out.push('\n');
        out
    }

    /// What a YAML reader makes of `k: <scalar>`.
    fn read_back(text: &str) -> String {
        let doc = written(text);
        let v: serde_yaml::Value =
            serde_yaml::from_str(&doc).unwrap_or_else(|e| panic!("{doc:?}: {e}"));
        v["k"]
            .as_str()
            .unwrap_or_else(|| panic!("{doc:?} is not a string: {v:?}"))
            .to_string()
    }

    #[test]
    fn every_style_reads_back_as_the_same_string() {
        let cases = [
            "ref('stg_orders')",
            "source('raw', 'events')",
            "https://t.example.com/#/site/acme/workbooks/42",
            "Quarterly revenue",
            "yes",
            "No",
            "null",
            "~",
            "123",
            "1:20",
            "2026-11-24",
            ".inf",
            "-",
            "- item",
            "a: b",
            "a #b",
            "a:",
            "x\n  depends_on: [evil]\n- &a *a !!tag",
            "line one\n\nline three 📈 — הכנסות",
            " leading space\nsecond",
            "tab\tinside\nand a line",
            "ends with newline\n",
            "\nstarts with newline",
            "quote \" and back \\ slash",
            "bell \u{7} del \u{7f} nel \u{85} ls \u{2028} ps \u{2029} bom \u{feff}",
            "cr\r\nlf",
            "{{ '{' }}{{ '{' }} env_var('HOME') }}",
            "' single",
            "\"double",
            "%TAG",
            "@at",
            "`tick`",
            "*alias",
            "&anchor",
            "!tag",
            "|pipe",
            ">fold",
            "[flow]",
            "{flow}",
            "",
            " ",
            "trailing ",
        ];
        for case in cases {
            assert_eq!(read_back(case), case, "written as {:?}", written(case));
        }
    }

    /// Thousands of strings drawn from YAML's indicators, quotes, escapes and line breaks.
    #[test]
    fn random_hostile_strings_read_back() {
        let alphabet: Vec<char> = "aZ_0 9.-:#'\"\\\n\r\t{}[]|>&*!%@`,?~=$;/<\u{0}\u{7}\u{7f}\u{85}\u{a0}\u{2028}\u{2029}\u{feff}é📈".chars().collect();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5000 {
            let len = (next() % 12) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            assert_eq!(read_back(&text), text, "written as {:?}", written(&text));
        }
    }

    #[test]
    fn styles_chosen() {
        assert_eq!(written("Eve \"the\" owner"), "k: Eve \"the\" owner\n");
        assert_eq!(written("ref('m')"), "k: ref('m')\n");
        assert_eq!(written("yes"), "k: \"yes\"\n");
        assert_eq!(written("a\nb"), "k: |-\n  a\n  b\n");
        assert_eq!(written(" a\nb"), "k: \" a\\nb\"\n");
        assert_eq!(written("a\u{85}b"), "k: \"a\\x85b\"\n");
    }

    #[test]
    fn nested_block_lines_are_indented_under_their_key() {
        let mut out = String::from("  description: ");
        scalar(&mut out, "one\n\ntwo", 2);
        assert_eq!(out, "  description: |-\n    one\n\n    two");
    }
}
