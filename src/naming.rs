//! Names and values that reach dbt: exposure names, file names, `ref()`/`source()` strings, and
//! Jinja neutralisation of untrusted text.

use crate::config::hex_sha256;

/// Lowercase ASCII slug: letters and digits kept, every other run of characters one `_`.
pub(crate) fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let mut out: String = out.trim_end_matches('_').chars().take(max).collect();
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// An exposure name matching `^[a-z][a-z0-9_]*$`: the workbook name's slug plus a suffix from
/// a hash of the integration and workbook luid. The suffix keeps the name stable for a
/// workbook however many same-named workbooks come and go; `long` gives a longer suffix for
/// the rare clash of short ones.
pub(crate) fn exposure_name(
    integration: &str,
    luid: &str,
    workbook_name: &str,
    long: bool,
) -> String {
    let mut base = slug(workbook_name, 48);
    if base.is_empty() || !base.starts_with(|c: char| c.is_ascii_lowercase()) {
        base = if base.is_empty() {
            "workbook".into()
        } else {
            format!("workbook_{base}")
        };
    }
    let hash = hex_sha256(format!("{integration}:{luid}").as_bytes());
    format!("{base}_{}", &hash[..if long { 12 } else { 6 }])
}

/// Makes text inert for dbt's Jinja rendering of exposure values: every `{` becomes
/// `{{ '{' }}`, which renders back to `{`. One pass (`str::replace`), never iterated, so the
/// replacement's own braces are left alone. `{% raw %}` is not used: a value containing
/// `{% endraw %}` would close it. Trailing whitespace is trimmed because dbt drops it anyway.
///
/// Carriage returns: Jinja turns `\r\n` and a lone `\r` in template text into `\n`, and dbt
/// renders labels, owners, URLs, meta and tags always (descriptions once they hold `{`). So
/// each `\r` is written as the expression `{{ '\r' }}`, whose output Jinja leaves alone.
pub(crate) fn neutralize(text: &str) -> String {
    text.trim_end()
        .replace('{', "{{ '{' }}")
        .replace('\r', "{{ '\\r' }}")
}

/// Characters allowed inside the quotes of a `ref()`/`source()` we write: no quote can end the
/// literal and no Jinja can start.
fn safe_arg(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The `depends_on` entry for a dbt node, or `None` if its names cannot be written safely.
pub(crate) fn reference(
    resource_type: &str,
    root_project: &str,
    package: &str,
    name: &str,
    source_name: Option<&str>,
    version: Option<&str>,
) -> Option<String> {
    if resource_type == "source" {
        let s = source_name?;
        return (safe_arg(s) && safe_arg(name)).then(|| format!("source('{s}', '{name}')"));
    }
    if !safe_arg(name) || !safe_arg(package) {
        return None;
    }
    let mut out = if package == root_project {
        format!("ref('{name}'")
    } else {
        format!("ref('{package}', '{name}'")
    };
    if let Some(v) = version {
        if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() {
            out.push_str(&format!(", v={v}"));
        } else if safe_arg(v) {
            out.push_str(&format!(", v='{v}'"));
        } else {
            return None;
        }
    }
    out.push(')');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Sales Overview", 48), "sales_overview");
        assert_eq!(
            slug("  Revenue {{ env_var('HOME') }} ", 48),
            "revenue_env_var_home"
        );
        assert_eq!(slug("café ü 2024", 48), "caf_2024");
        assert_eq!(slug("עברית", 48), "");
        assert_eq!(slug("a--b", 3), "a_b");
        assert_eq!(slug("ab_cd", 3), "ab");
    }

    #[test]
    fn exposure_names_match_dbts_rule_and_are_stable() {
        let re_ok = |n: &str| {
            n.starts_with(|c: char| c.is_ascii_lowercase())
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        for name in [
            "Sales Overview",
            "2024 Plan",
            "",
            "עברית",
            "{{ x }}",
            "x\n  depends_on: []",
        ] {
            let n = exposure_name("prod", "luid-1", name, false);
            assert!(re_ok(&n), "{n}");
        }
        assert_eq!(
            exposure_name("prod", "l1", "Sales", false),
            exposure_name("prod", "l1", "Sales", false)
        );
        assert_ne!(
            exposure_name("prod", "l1", "Sales", false),
            exposure_name("prod", "l2", "Sales", false)
        );
        assert_ne!(
            exposure_name("prod", "l1", "Sales", false),
            exposure_name("dev", "l1", "Sales", false)
        );
        assert!(exposure_name("prod", "l1", "2024 Plan", false).starts_with("workbook_2024_plan_"));
        assert_eq!(exposure_name("p", "l", "S", true).len(), "s_".len() + 12);
    }

    #[test]
    fn neutralize_renders_back_to_the_original() {
        assert_eq!(
            neutralize("{{ env_var('HOME') }}"),
            "{{ '{' }}{{ '{' }} env_var('HOME') }}"
        );
        assert_eq!(neutralize("plain text  \n"), "plain text");
        assert_eq!(neutralize("{% endraw %}"), "{{ '{' }}% endraw %}");
        assert_eq!(neutralize("a\r\nb\rc"), "a{{ '\\r' }}\nb{{ '\\r' }}c");
    }

    #[test]
    fn references() {
        assert_eq!(
            reference("model", "p", "p", "m", None, None).unwrap(),
            "ref('m')"
        );
        assert_eq!(
            reference("model", "p", "q", "m", None, None).unwrap(),
            "ref('q', 'm')"
        );
        assert_eq!(
            reference("model", "p", "p", "m", None, Some("2")).unwrap(),
            "ref('m', v=2)"
        );
        assert_eq!(
            reference("model", "p", "p", "m", None, Some("beta")).unwrap(),
            "ref('m', v='beta')"
        );
        assert_eq!(
            reference("source", "p", "p", "events", Some("raw"), None).unwrap(),
            "source('raw', 'events')"
        );
        assert_eq!(reference("model", "p", "p", "m')}}{{x", None, None), None);
    }
}
