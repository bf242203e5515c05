//! Path normalization: the one path every phase and every built-in handler sees.
//!
//! A request path is percent-decoded, its dot segments resolved (never above `/`)
//! and repeated slashes merged, so `/a/./b/../%63.txt` and `/a//c.txt` both become
//! `/a/c.txt`. What cannot be decoded safely is refused: an encoded `/` would let a
//! client step over a directory boundary, NUL bytes confuse file systems, and bytes
//! that are not UTF-8 cannot be matched against the configured paths.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// Why a request path was refused; the client gets `400 Bad Request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path does not start with `/` (for example `*` or an authority).
    #[error("the request path must start with '/'")]
    NotAbsolute,
    /// The path contains `%2F`, an encoded slash.
    #[error("the request path contains an encoded '/' (%2F)")]
    EncodedSlash,
    /// The path contains a NUL byte, raw or encoded.
    #[error("the request path contains a NUL byte")]
    Nul,
    /// The decoded path is not valid UTF-8.
    #[error("the request path is not valid UTF-8 once percent-decoded")]
    NotUtf8,
}

/// Normalizes the path part of a request URI (without the query).
///
/// ```
/// use poco_httpd::normalize_path;
///
/// assert_eq!(normalize_path("/a/./b/../%63.txt").unwrap(), "/a/c.txt");
/// assert_eq!(normalize_path("/../../etc/passwd").unwrap(), "/etc/passwd");
/// assert_eq!(normalize_path("/dir/").unwrap(), "/dir/");
/// assert!(normalize_path("/a%2Fb").is_err());
/// ```
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    normalize(raw).map(Cow::into_owned)
}

/// [`normalize_path`], borrowing `raw` when it is already normal (the common case),
/// so the pipeline copies a path only when normalizing changed it.
pub(crate) fn normalize(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if is_plain(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    if contains_encoded_slash(raw) {
        return Err(PathError::EncodedSlash);
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| PathError::NotUtf8)?;
    if decoded.contains('\0') {
        return Err(PathError::Nul);
    }
    Ok(Cow::Owned(resolve_segments(&decoded)))
}

/// Reports whether `path` is already in normal form, as configured map keys must be.
pub(crate) fn is_normalized(path: &str) -> bool {
    !path.contains('%') && normalize_path(path).is_ok_and(|normal| normal == path)
}

/// A path with no escapes, no empty, `.` or `..` segments, and no NUL is already
/// normal. `raw` starts with `/`. One pass over the bytes, and one comparison for
/// most of them (letters and digits sort after `/`): this runs per request.
fn is_plain(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let after = |at: usize| bytes.get(at).copied();
    for at in 1..bytes.len() {
        let byte = bytes[at];
        if byte > b'/' {
            continue;
        }
        let starts_segment = bytes[at - 1] == b'/';
        let is_dot_segment = byte == b'.'
            && starts_segment
            && match after(at + 1) {
                None | Some(b'/') => true,
                Some(b'.') => matches!(after(at + 2), None | Some(b'/')),
                Some(_) => false,
            };
        if byte == b'%' || byte == 0 || (byte == b'/' && starts_segment) || is_dot_segment {
            return false;
        }
    }
    true
}

fn contains_encoded_slash(raw: &str) -> bool {
    raw.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'2' && w[2].eq_ignore_ascii_case(&b'f'))
}

/// Resolves `.` and `..`, merges empty segments and keeps a trailing slash, which is
/// significant: `/honk` and `/honk/` are different paths.
fn resolve_segments(decoded: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut ends_in_directory = false;
    for segment in decoded.split('/').skip(1) {
        ends_in_directory = true;
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            name => {
                segments.push(name);
                ends_in_directory = false;
            }
        }
    }
    let mut normal = String::with_capacity(decoded.len());
    for segment in &segments {
        normal.push('/');
        normal.push_str(segment);
    }
    if ends_in_directory || segments.is_empty() {
        normal.push('/');
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Result<&str, PathError>) {
        assert_eq!(
            normalize_path(raw).as_deref(),
            expected.as_ref().map(|p| *p),
            "{raw}"
        );
    }

    #[test]
    fn plain_paths_are_unchanged() {
        check("/", Ok("/"));
        check("/foo/bar/baz.txt", Ok("/foo/bar/baz.txt"));
        check("/honk", Ok("/honk"));
        check("/honk/", Ok("/honk/"));
    }

    #[test]
    fn dot_segments_are_resolved_without_leaving_the_root() {
        check("/a/./b/../c", Ok("/a/c"));
        check("/a/b/..", Ok("/a/"));
        check("/a/b/.", Ok("/a/b/"));
        check("/..", Ok("/"));
        check("/../../etc/passwd", Ok("/etc/passwd"));
    }

    #[test]
    fn encoded_dot_segments_are_resolved_too() {
        check("/a/%2e%2E/b", Ok("/b"));
        check("/a/%2e/b", Ok("/a/b"));
        check("/%2e%2e/%2e%2e/secret", Ok("/secret"));
    }

    #[test]
    fn repeated_slashes_are_merged() {
        check("//a///b//", Ok("/a/b/"));
    }

    #[test]
    fn safe_escapes_are_decoded() {
        check("/hello%20world.txt", Ok("/hello world.txt"));
        check("/caf%C3%A9", Ok("/café"));
        check("/100%25", Ok("/100%"));
    }

    /// Found by the path fuzz target: an escape that only forms once its neighbour is
    /// decoded must stay literal text, since decoding happens exactly once.
    #[test]
    fn decoding_happens_once() {
        check("/%%363", Ok("/%63"));
        check("/%2563", Ok("/%63"));
        check("/%252e%252e/x", Ok("/%2e%2e/x"));
    }

    #[test]
    fn dangerous_paths_are_refused() {
        check("/a%2fb", Err(PathError::EncodedSlash));
        check("/a%2Fb", Err(PathError::EncodedSlash));
        check("/a%00b", Err(PathError::Nul));
        check("/a%ffb", Err(PathError::NotUtf8));
        check("*", Err(PathError::NotAbsolute));
        check("", Err(PathError::NotAbsolute));
    }

    #[test]
    fn the_fast_path_agrees_with_full_resolution() {
        for raw in [
            "/", "/a", "/a/", "/a/b.txt", "//", "/a//b", "/./a", "/a/..", "/a/.b", "/..a/", "/.",
            "/..", "/a/.", "/a/./b", "/a.", "/a..", "/a/..b", "/a/b../c", "/...",
        ] {
            assert_eq!(is_plain(raw), resolve_segments(raw) == raw, "{raw}");
        }
    }

    #[test]
    fn the_fast_path_agrees_on_every_short_path_of_slashes_dots_and_letters() {
        let mut paths = vec![String::from("/")];
        for _ in 0..6 {
            let longer: Vec<String> = (paths.iter())
                .flat_map(|path| ['/', '.', 'a'].map(|c| format!("{path}{c}")))
                .collect();
            for raw in &longer {
                assert_eq!(is_plain(raw), resolve_segments(raw) == *raw, "{raw}");
            }
            paths = longer;
        }
    }

    #[test]
    fn configured_keys_must_already_be_normal() {
        assert!(is_normalized("/"));
        assert!(is_normalized("/foo/"));
        assert!(is_normalized("/foo/bar.txt"));
        assert!(!is_normalized("foo/"));
        assert!(!is_normalized("/foo//bar"));
        assert!(!is_normalized("/foo/../bar"));
        assert!(!is_normalized("/a%20b"));
    }
}
