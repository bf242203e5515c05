//! Content negotiation for compression: the coding a client's `Accept-Encoding`
//! prefers (RFC 9110 §12.5.3), and whether a media type is worth compressing.

use std::fmt;

/// A content coding the server can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// Zstandard (`zstd`): the fastest of the three for a similar size.
    Zstd,
    /// Brotli (`br`): the smallest text.
    Brotli,
    /// `gzip`: understood by every client.
    Gzip,
}

impl Coding {
    /// The token in `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Brotli => "br",
            Self::Gzip => "gzip",
        }
    }

    /// The coding `accept_encoding` (a header value) ranks highest among `offered`,
    /// ties going to the earlier in `offered`; `None` when none is acceptable.
    pub fn negotiate(accept_encoding: &str, offered: &[Coding]) -> Option<Coding> {
        let ranked: Vec<(&str, f32)> = accept_encoding.split(',').filter_map(element).collect();
        let weight = |coding: Coding| {
            let named = ranked.iter().find(|(token, _)| names(token, coding));
            let any = || ranked.iter().find(|(token, _)| *token == "*");
            named.or_else(any).map_or(0.0, |(_, q)| *q)
        };
        let mut best: Option<(Coding, f32)> = None;
        for &coding in offered {
            let q = weight(coding);
            if q > 0.0 && best.is_none_or(|(_, best_q)| q > best_q) {
                best = Some((coding, q));
            }
        }
        best.map(|(coding, _)| coding)
    }
}

impl fmt::Display for Coding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

fn names(token: &str, coding: Coding) -> bool {
    token.eq_ignore_ascii_case(coding.token())
        || (coding == Coding::Gzip && token.eq_ignore_ascii_case("x-gzip"))
}

/// One `coding;q=0.5` element; an element with a malformed weight is ignored.
fn element(text: &str) -> Option<(&str, f32)> {
    let mut parts = text.split(';');
    let token = parts.next()?.trim();
    if token.is_empty() {
        return None;
    }
    let mut q = 1.0;
    for parameter in parts {
        let (name, value) = parameter.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            q = value
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))?;
        }
    }
    Some((token, q))
}

/// Whether a response of this `Content-Type` shrinks when compressed: text and the
/// text-based application types, not images, audio, video or archives (already
/// compressed), nor event streams (each event must leave at once).
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    if essence == "text/event-stream" {
        return false;
    }
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/javascript"
                | "application/x-javascript"
                | "application/ecmascript"
                | "application/xml"
                | "application/wasm"
                | "application/x-ndjson"
                | "application/x-www-form-urlencoded"
                | "font/ttf"
                | "font/otf"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Coding; 3] = [Coding::Zstd, Coding::Brotli, Coding::Gzip];

    fn check(header: &str, expected: Option<Coding>) {
        assert_eq!(Coding::negotiate(header, &ALL), expected, "{header:?}");
    }

    #[test]
    fn the_highest_weight_wins_and_ties_go_to_the_server_order() {
        check("gzip, deflate, br, zstd", Some(Coding::Zstd));
        check("gzip, br", Some(Coding::Brotli));
        check("gzip;q=1, br;q=0.5", Some(Coding::Gzip));
        check("GZIP", Some(Coding::Gzip));
        check("x-gzip", Some(Coding::Gzip));
    }

    #[test]
    fn zero_weights_and_unknown_codings_are_not_acceptable() {
        check("", None);
        check("identity", None);
        check("deflate, compress", None);
        check("gzip;q=0", None);
        check("*;q=0", None);
        check("gzip;q=2", None);
        check("gzip;q=abc", None);
    }

    #[test]
    fn a_star_covers_codings_not_named() {
        check("*", Some(Coding::Zstd));
        check("zstd;q=0, *", Some(Coding::Brotli));
        check("br;q=0.1, *;q=0.5", Some(Coding::Zstd));
    }

    #[test]
    fn only_offered_codings_are_chosen() {
        assert_eq!(Coding::negotiate("zstd, br", &[Coding::Gzip]), None);
        assert_eq!(
            Coding::negotiate("zstd, gzip", &[Coding::Gzip]),
            Some(Coding::Gzip)
        );
    }

    #[test]
    fn text_is_compressible_and_compressed_media_is_not() {
        for yes in [
            "text/html; charset=utf-8",
            "application/json",
            "image/svg+xml",
            "application/ld+json",
            "TEXT/CSS",
        ] {
            assert!(is_compressible(yes), "{yes}");
        }
        for no in [
            "image/png",
            "video/mp4",
            "application/zip",
            "application/octet-stream",
            "text/event-stream",
            "",
        ] {
            assert!(!is_compressible(no), "{no}");
        }
    }
}
