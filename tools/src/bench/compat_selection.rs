//! The default module selection of `cloister bench compat`: the checked-in
//! list `compat_modules.txt` (next to this file), parsed here.
//!
//! The list's format: one regression-test module per line; a line
//! `-MODULE REASON` names a module left out on purpose and says why;
//! `#` starts a comment; blank lines are ignored. [`selection`] returns
//! the modules in order and the ones left out with their reasons.

use anyhow::{Result, bail};

/// The checked-in list.
const LIST: &str = include_str!("compat_modules.txt");

/// The parsed list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Modules to run, in the list's order.
    pub selected: Vec<String>,
    /// Modules left out, each with the reason the list gives.
    pub excluded: Vec<(String, String)>,
}

/// Parses a list in the format of `compat_modules.txt`: a module name is
/// `test_` followed by letters, digits and `_`; every left-out module has
/// a reason; no module appears twice.
pub fn parse(text: &str) -> Result<Selection> {
    let mut sel = Selection::default();
    let mut seen = std::collections::BTreeSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (name, reason) = match line.strip_prefix('-') {
            Some(rest) => {
                let (name, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                (name, Some(reason.trim()))
            }
            None => (line, None),
        };
        let valid = name.strip_prefix("test_").is_some_and(|t| {
            !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if !valid {
            bail!(
                "compat module list, line {}: `{name}` is not a test module name",
                i + 1
            );
        }
        if !seen.insert(name.to_string()) {
            bail!(
                "compat module list, line {}: `{name}` is listed twice",
                i + 1
            );
        }
        match reason {
            Some("") => bail!(
                "compat module list, line {}: `{name}` is left out without a reason",
                i + 1
            ),
            Some(why) => sel.excluded.push((name.to_string(), why.to_string())),
            None => sel.selected.push(name.to_string()),
        }
    }
    Ok(sel)
}

/// The checked-in selection (its parse is checked by a unit test, so it
/// cannot fail in a built tool).
pub fn selection() -> Selection {
    parse(LIST).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_list_parses_and_is_broad() {
        let sel = parse(LIST).expect("compat_modules.txt must parse");
        assert!(sel.selected.len() >= 25, "{:?}", sel.selected);
        assert!(sel.selected.iter().any(|m| m == "test_os"));
        assert_eq!(selection(), sel);
    }

    #[test]
    fn the_format() {
        let sel = parse("# c\ntest_a\n\n-test_b  too slow # note\ntest_c # why in\n").unwrap();
        assert_eq!(sel.selected, ["test_a", "test_c"]);
        assert_eq!(
            sel.excluded,
            [("test_b".to_string(), "too slow".to_string())]
        );
        assert!(parse("-test_b\n").is_err(), "no reason");
        assert!(parse("test_a\ntest_a\n").is_err(), "twice");
        assert!(parse("test_a\n-test_a why\n").is_err(), "in and out");
        assert!(parse("os\n").is_err(), "not a module");
        assert!(parse("test_a;rm\n").is_err(), "not a module");
    }
}
