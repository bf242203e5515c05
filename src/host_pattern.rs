//! Host names as virtual hosts are chosen by: [`HostPattern`] (an exact name or a
//! `*.` wildcard), [`HostTable`] (patterns to whatever they select: a site, a
//! certificate), and [`host_name`], the name part of a `Host` value or an authority.
//!
//! Matching follows nginx's `server_name`: names compare without regard to ASCII case
//! and without a trailing dot; `*.example.org` matches every name below `example.org`
//! (`www.example.org`, `a.b.example.org`) but not `example.org` itself; an exact name
//! wins over a wildcard, and a longer wildcard over a shorter one.
//!
//! This module knows strings only, nothing of requests, TLS or servers.

use std::fmt;

/// A host name a virtual host answers to: `example.org` or `*.example.org`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// This name only (lower case, no trailing dot).
    Exact(String),
    /// Every name ending in this suffix, which starts with `.` (lower case).
    Below(String),
}

impl HostPattern {
    /// Parses a pattern, refusing what can never match a `Host` value.
    pub(crate) fn parse(pattern: &str) -> Result<Self, &'static str> {
        let lower = pattern.trim_end_matches('.').to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        if name.is_empty() {
            return Err("it names no host");
        }
        if name.contains(':') && !name.starts_with('[') {
            return Err("a host name has no port (sites are chosen by name, whatever the port)");
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        let literal = name.starts_with('[') && name.ends_with(']');
        if !literal && !name.chars().all(allowed) {
            return Err(
                "a host name is letters, digits, '-', '_' and '.', with '*.' only in front",
            );
        }
        Ok(if wildcard {
            Self::Below(format!(".{name}"))
        } else {
            Self::Exact(name.to_owned())
        })
    }

    /// Whether `name` (as [`host_name`] gives it) is one this pattern covers.
    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Exact(exact) => exact.eq_ignore_ascii_case(name),
            Self::Below(suffix) => {
                name.len() > suffix.len()
                    && name.is_char_boundary(name.len() - suffix.len())
                    && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }

    /// How specific a match is: exact names first, then longer suffixes.
    fn rank(&self) -> usize {
        match self {
            Self::Exact(_) => usize::MAX,
            Self::Below(suffix) => suffix.len(),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name),
            Self::Below(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// Patterns and what each selects, searched for the most specific match.
#[derive(Debug, Clone)]
pub(crate) struct HostTable<T> {
    /// Sorted most specific first, so the first match is the answer.
    entries: Vec<(HostPattern, T)>,
}

impl<T> Default for HostTable<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<T> HostTable<T> {
    /// Adds `pattern`; gives `value` back if the table already has that pattern.
    pub(crate) fn insert(&mut self, pattern: HostPattern, value: T) -> Result<(), T> {
        if self.entries.iter().any(|(known, _)| *known == pattern) {
            return Err(value);
        }
        let at = self
            .entries
            .partition_point(|(known, _)| known.rank() >= pattern.rank());
        self.entries.insert(at, (pattern, value));
        Ok(())
    }

    /// Whether the table has no patterns.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The patterns and their values, most specific first.
    pub(crate) fn into_entries(self) -> impl Iterator<Item = (HostPattern, T)> {
        self.entries.into_iter()
    }

    /// The values, most specific pattern first.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|(_, value)| value)
    }

    /// What the most specific pattern covering `name` selects.
    pub(crate) fn find(&self, name: &str) -> Option<&T> {
        self.entries
            .iter()
            .find(|(pattern, _)| pattern.matches(name))
            .map(|(_, value)| value)
    }
}

/// The host name of a `Host` value or an authority: the port and a trailing dot
/// removed, an IPv6 literal kept with its brackets. Case is left alone ([`HostTable`]
/// compares without it).
pub(crate) fn host_name(authority: &str) -> &str {
    let name = if authority.starts_with('[') {
        authority
            .find(']')
            .map_or(authority, |end| &authority[..=end])
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(name, _port)| name)
    };
    name.strip_suffix('.').unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(patterns: &[&str]) -> HostTable<String> {
        let mut table = HostTable::default();
        for pattern in patterns {
            let parsed = HostPattern::parse(pattern).expect("a valid pattern");
            table
                .insert(parsed, (*pattern).to_owned())
                .expect("no duplicate");
        }
        table
    }

    #[test]
    fn the_port_and_a_trailing_dot_are_not_part_of_the_name() {
        for (authority, name) in [
            ("example.org", "example.org"),
            ("Example.ORG:8080", "Example.ORG"),
            ("example.org.:80", "example.org"),
            ("[::1]:8443", "[::1]"),
            ("[::1]", "[::1]"),
            ("127.0.0.1:80", "127.0.0.1"),
        ] {
            assert_eq!(host_name(authority), name, "{authority}");
        }
    }

    #[test]
    fn exact_names_win_over_wildcards_and_longer_wildcards_over_shorter() {
        let table = table(&["*.org", "*.example.org", "www.example.org"]);
        let found = |name| table.find(name).map(String::as_str);
        assert_eq!(found("www.example.org"), Some("www.example.org"));
        assert_eq!(found("WWW.Example.Org"), Some("www.example.org"));
        assert_eq!(found("a.b.example.org"), Some("*.example.org"));
        assert_eq!(found("example.org"), Some("*.org"));
        assert_eq!(found("other.net"), None);
    }

    #[test]
    fn a_wildcard_does_not_cover_its_own_domain() {
        let table = table(&["*.example.org"]);
        assert!(table.find("example.org").is_none());
        assert!(table.find("badexample.org").is_none());
        assert!(table.find("x.example.org").is_some());
    }

    #[test]
    fn patterns_that_can_never_match_are_refused() {
        for bad in ["", "*.", "example.org:80", "a*.org", "a b", "*"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
        for good in [
            "localhost",
            "[::1]",
            "127.0.0.1",
            "Example.org.",
            "*.a-b.org",
        ] {
            assert!(HostPattern::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn the_same_pattern_twice_is_refused() {
        let mut table = table(&["example.org"]);
        let again = HostPattern::parse("EXAMPLE.org").expect("valid");
        assert!(table.insert(again, String::new()).is_err());
    }
}
