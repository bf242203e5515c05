//! Entry points for the fuzz targets in `fuzz/` and for `tests/fuzz_corpus.rs`, which
//! replays their kept inputs in CI. Each runs one piece of code a client controls on
//! arbitrary bytes and panics if an invariant breaks. Not a stable API.

use std::collections::BTreeSet;

use crate::bench_support::MapProbe;
use crate::handlers::Ranges;
use crate::path::{is_normalized, normalize_path};
use crate::session::SessionId;

/// Path normalization: a normalized path is absolute, in normal form, free of NUL,
/// and normalizes to itself once put back into a URI (its `%` signs escaped again:
/// the normalized path is decoded text, and nothing may decode it a second time).
pub fn path(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(normal) = normalize_path(raw) {
        assert!(normal.starts_with('/'), "{raw:?} -> {normal:?}");
        assert!(!normal.contains('\0'), "{raw:?} -> {normal:?}");
        assert!(
            !normal
                .split('/')
                .any(|segment| segment == "." || segment == ".."),
            "{raw:?} -> {normal:?}"
        );
        let in_uri = normal.replace('%', "%25");
        assert_eq!(
            normalize_path(&in_uri).as_deref(),
            Ok(normal.as_str()),
            "{raw:?}"
        );
    }
}

/// The directory map: with the lines of `data` but the last as keys and the last as
/// a request path, the entries matched are exactly the keys on that path.
pub fn map(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines: Vec<&str> = text.lines().collect();
    let Some(request) = lines.pop().and_then(|raw| normalize_path(raw).ok()) else {
        return;
    };
    let keys: BTreeSet<&str> = lines.into_iter().filter(|key| is_normalized(key)).collect();
    let map = MapProbe::new(keys.iter().copied());
    let on_path = |key: &str| key == request || (key.ends_with('/') && request.starts_with(key));
    let expected = keys.iter().filter(|key| on_path(key)).count();
    let matched = map.pre_handlers_on(&request);
    assert_eq!(matched, expected, "keys {keys:?}, request {request:?}");
}

/// Cookie headers and session ids: whatever parses as an id round-trips.
pub fn cookies(data: &[u8]) {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    for cookie in cookie::Cookie::split_parse_encoded(header).filter_map(Result::ok) {
        if let Some(id) = SessionId::parse(cookie.value()) {
            assert_eq!(id.as_str(), cookie.value());
            assert_eq!(SessionId::parse(id.as_str()).as_ref(), Some(&id));
        }
    }
}

/// `Range` headers: the ranges granted are sorted, disjoint, non-empty, inside the
/// representation, and no more than [`Ranges::MAX`].
pub fn ranges(data: &[u8]) {
    let Some((size, header)) = data.split_first_chunk::<8>() else {
        return;
    };
    let size = u64::from_le_bytes(*size);
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    if let Ranges::Partial(ranges) = Ranges::of(header, size) {
        assert!(
            !ranges.is_empty() && ranges.len() <= Ranges::MAX,
            "{header:?}"
        );
        for range in &ranges {
            assert!(
                range.start < range.end && range.end <= size,
                "{header:?} of {size}: {ranges:?}"
            );
        }
        for pair in ranges.windows(2) {
            assert!(
                pair[0].end < pair[1].start,
                "{header:?} of {size}: {ranges:?}"
            );
        }
    }
}
