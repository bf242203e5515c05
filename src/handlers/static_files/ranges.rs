//! [`Ranges`]: what a `Range` header asks of a representation, by RFC 9110 §14 —
//! parsed with the `http-range-header` crate, then resolved against the size.

use std::ops::Range;

use http_range_header::{EndPosition, StartPosition, SyntacticallyCorrectRange};

/// The answer a `Range` header calls for, for a representation of a given size.
///
/// ```
/// use poco_httpd::handlers::Ranges;
///
/// assert_eq!(Ranges::of("bytes=0-3,-2", 10), Ranges::Partial(vec![0..4, 8..10]));
/// assert_eq!(Ranges::of("bytes=20-", 10), Ranges::Unsatisfiable);
/// assert_eq!(Ranges::of("pages=1", 10), Ranges::Whole);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// Send the whole representation (`200`): the header is malformed, uses another
    /// unit, or asks for more than [`Ranges::MAX`] ranges — RFC 9110 lets a server
    /// ignore such a header.
    Whole,
    /// Send these byte ranges (`206`): sorted, non-empty, overlapping and adjacent
    /// ones merged, each inside the representation.
    Partial(Vec<Range<u64>>),
    /// No range overlaps the representation: `416` with `Content-Range: bytes */size`.
    Unsatisfiable,
}

impl Ranges {
    /// More ranges than this in one header are ignored and the whole file is sent:
    /// many tiny ranges cost far more to serve than the file itself.
    pub const MAX: usize = 32;

    /// Resolves the value of a `Range` header against a representation of `size`
    /// bytes.
    pub fn of(header: &str, size: u64) -> Self {
        let Ok(parsed) = http_range_header::parse_range_header(header) else {
            return Self::Whole;
        };
        if parsed.ranges.len() > Self::MAX {
            return Self::Whole;
        }
        let mut ranges = Vec::with_capacity(parsed.ranges.len());
        for spec in &parsed.ranges {
            match resolve(spec, size) {
                Resolved::Satisfiable(range) => ranges.push(range),
                Resolved::Unsatisfiable => {}
                Resolved::Invalid => return Self::Whole,
            }
        }
        if ranges.is_empty() {
            return Self::Unsatisfiable;
        }
        Self::Partial(coalesce(ranges))
    }
}

enum Resolved {
    Satisfiable(Range<u64>),
    /// Well-formed, but outside the representation.
    Unsatisfiable,
    /// `last < first`: the whole header is invalid and so ignored.
    Invalid,
}

fn resolve(spec: &SyntacticallyCorrectRange, size: u64) -> Resolved {
    match (spec.start, spec.end) {
        // `-N`: the last N bytes, or the whole representation when it is shorter.
        (StartPosition::FromLast(suffix), _) if suffix == 0 || size == 0 => Resolved::Unsatisfiable,
        (StartPosition::FromLast(suffix), _) => {
            Resolved::Satisfiable(size.saturating_sub(suffix)..size)
        }
        (StartPosition::Index(first), EndPosition::Index(last)) if last < first => {
            Resolved::Invalid
        }
        (StartPosition::Index(first), _) if first >= size => Resolved::Unsatisfiable,
        (StartPosition::Index(first), EndPosition::Index(last)) => {
            Resolved::Satisfiable(first..last.saturating_add(1).min(size))
        }
        (StartPosition::Index(first), EndPosition::LastByte) => Resolved::Satisfiable(first..size),
    }
}

/// Sorts the ranges and merges those that overlap or touch, so no byte is sent twice
/// (RFC 9110 §14.2 allows it; it defeats requests for the same bytes many times over).
fn coalesce(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.sort_by_key(|range| range.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // One range is a case in point here.
mod tests {
    use super::*;

    fn check(header: &str, size: u64, expected: Ranges) {
        assert_eq!(Ranges::of(header, size), expected, "{header} of {size}");
    }

    #[test]
    fn single_ranges_resolve_against_the_size() {
        check("bytes=0-0", 10, Ranges::Partial(vec![0..1]));
        check("bytes=2-", 10, Ranges::Partial(vec![2..10]));
        check("bytes=5-100", 10, Ranges::Partial(vec![5..10]));
        check("bytes=-3", 10, Ranges::Partial(vec![7..10]));
        check("bytes=-30", 10, Ranges::Partial(vec![0..10]));
    }

    #[test]
    fn ranges_outside_the_representation_are_unsatisfiable() {
        check("bytes=10-", 10, Ranges::Unsatisfiable);
        check("bytes=10-20,30-40", 10, Ranges::Unsatisfiable);
        check("bytes=0-", 0, Ranges::Unsatisfiable);
        check("bytes=-5", 0, Ranges::Unsatisfiable);
    }

    #[test]
    fn a_satisfiable_range_among_unsatisfiable_ones_is_served() {
        check("bytes=50-60,1-2", 10, Ranges::Partial(vec![1..3]));
    }

    #[test]
    fn malformed_headers_and_other_units_are_ignored() {
        for header in [
            "bytes=5-2",
            "bytes=a-b",
            "bytes=",
            "items=0-1",
            "bytes 0-1",
            "0-1",
        ] {
            check(header, 10, Ranges::Whole);
        }
    }

    #[test]
    fn overlapping_and_adjacent_ranges_are_merged_in_order() {
        check("bytes=6-8,0-1,2-3", 10, Ranges::Partial(vec![0..4, 6..9]));
        check("bytes=0-5,1-2,-2", 10, Ranges::Partial(vec![0..6, 8..10]));
        check("bytes=0-1,0-1,0-1", 10, Ranges::Partial(vec![0..2]));
    }

    #[test]
    fn too_many_ranges_get_the_whole_file() {
        let many = (0..=Ranges::MAX)
            .map(|i| format!("{}-{}", i * 2, i * 2))
            .collect::<Vec<_>>();
        check(&format!("bytes={}", many.join(",")), 1000, Ranges::Whole);
        let allowed = &many[..Ranges::MAX];
        assert!(matches!(
            Ranges::of(&format!("bytes={}", allowed.join(",")), 1000),
            Ranges::Partial(ranges) if ranges.len() == Ranges::MAX
        ));
    }
}
