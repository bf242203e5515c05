//! [`SessionId`]: 128 random bits from the operating system, as 32 hex digits.

use std::fmt;

/// Bytes of randomness in an id: 128 bits.
const ID_BYTES: usize = 16;

/// A session id. Only ids of the exact form this type generates parse, so a forged
/// or oversized cookie never reaches a store.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh id from the operating system's CSPRNG.
    ///
    /// # Errors
    /// When the operating system has no randomness to give (then no session can be
    /// created safely).
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; ID_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// Parses a cookie value: exactly 32 lowercase hex digits, or nothing.
    ///
    /// ```
    /// use poco_httpd::session::SessionId;
    ///
    /// assert!(SessionId::parse("0123456789abcdef0123456789abcdef").is_some());
    /// assert!(SessionId::parse("../../etc/passwd").is_none());
    /// assert!(SessionId::parse(&"a".repeat(4096)).is_none());
    /// ```
    pub fn parse(value: &str) -> Option<Self> {
        let well_formed = value.len() == ID_BYTES * 2
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| Self(value.to_owned()))
    }

    /// The id as it appears in the cookie.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Shows only a prefix, so logs never carry a usable session id.
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", &self.0[..6])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_128_bits_of_hex_and_differ() {
        let a = SessionId::generate().expect("randomness");
        let b = SessionId::generate().expect("randomness");
        assert_eq!(a.as_str().len(), 32);
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn malformed_ids_are_refused() {
        for value in [
            "",
            "abc",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcdeg",
        ] {
            assert!(SessionId::parse(value).is_none(), "{value}");
        }
    }

    #[test]
    fn debug_output_hides_the_id() {
        let id = SessionId::parse("0123456789abcdef0123456789abcdef").expect("valid");
        assert_eq!(format!("{id:?}"), "SessionId(012345…)");
    }
}
