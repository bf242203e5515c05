//! `multipart/mixed` and `multipart/x-mixed-replace` bodies, sent part by part on a
//! streaming response: the original module's server-push responses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

/// Encodes the parts of one multipart response.
///
/// ```
/// use poco_httpd::Multipart;
///
/// let multipart = Multipart::with_boundary("XYZ");
/// assert_eq!(multipart.content_type("mixed"), "multipart/mixed; boundary=XYZ");
/// assert_eq!(
///     multipart.part("text/plain", b"hello"),
///     "--XYZ\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
/// );
/// assert_eq!(multipart.end(), "--XYZ--\r\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    boundary: String,
}

impl Multipart {
    /// A multipart body with a fresh boundary, unlikely to occur in any part.
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self {
            boundary: format!("poco-httpd-{nanos:x}-{count:x}"),
        }
    }

    /// A multipart body with the given boundary.
    pub fn with_boundary(boundary: impl Into<String>) -> Self {
        Self {
            boundary: boundary.into(),
        }
    }

    /// The boundary between parts.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// The `Content-Type` of the response, for a subtype such as `mixed` or
    /// `x-mixed-replace`.
    pub fn content_type(&self, subtype: &str) -> String {
        format!("multipart/{subtype}; boundary={}", self.boundary)
    }

    /// One part: boundary, `Content-Type`, the body.
    pub fn part(&self, content_type: &str, body: &[u8]) -> Bytes {
        let mut out =
            BytesMut::with_capacity(self.boundary.len() + content_type.len() + body.len() + 24);
        out.put_slice(b"--");
        out.put_slice(self.boundary.as_bytes());
        out.put_slice(b"\r\nContent-Type: ");
        out.put_slice(content_type.as_bytes());
        out.put_slice(b"\r\n\r\n");
        out.put_slice(body);
        out.put_slice(b"\r\n");
        out.freeze()
    }

    /// The closing boundary, after the last part.
    pub fn end(&self) -> Bytes {
        Bytes::from(format!("--{}--\r\n", self.boundary))
    }
}

impl Default for Multipart {
    fn default() -> Self {
        Self::new()
    }
}
