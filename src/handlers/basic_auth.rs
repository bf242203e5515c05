//! [`BasicAuth`]: a Pre handler checking HTTP Basic credentials against users from an
//! htpasswd file (bcrypt hashes).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use http::StatusCode;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};

use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// Why an htpasswd file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HtpasswdError {
    /// The file could not be read.
    #[error("cannot read htpasswd file {path}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A line is not `user:bcrypt-hash`.
    #[error("htpasswd line {line}: {reason} (create entries with `htpasswd -B`)")]
    Line {
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// HTTP Basic authentication as a Pre handler: a request without valid credentials
/// gets `401` with `WWW-Authenticate` and goes no further; a valid one has
/// [`Connection::user`](crate::Connection::user) set to the user name and
/// [`authtype`](crate::Connection::authtype) to `Basic`.
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::BasicAuth;
///
/// let hash = bcrypt::hash("secret", 4).unwrap();
/// let auth = BasicAuth::from_htpasswd_text(&format!("alice:{hash}\n"))?.realm("admin");
/// let builder = Server::builder().pre("/admin/", auth);
/// # Ok::<(), poco_httpd::handlers::HtpasswdError>(())
/// ```
#[derive(Clone)]
pub struct BasicAuth {
    realm: String,
    users: Arc<HashMap<String, String>>,
}

impl BasicAuth {
    /// Users from an htpasswd file.
    ///
    /// # Errors
    /// When the file cannot be read or a line is not `user:bcrypt-hash`.
    pub fn from_htpasswd(path: impl AsRef<Path>) -> Result<Self, HtpasswdError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| HtpasswdError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_htpasswd_text(&text)
    }

    /// Users from htpasswd text: `user:hash` lines, bcrypt (`$2y$`, `$2b$`, `$2a$`)
    /// hashes only; blank lines and `#` comments are skipped.
    ///
    /// # Errors
    /// When a line is not `user:bcrypt-hash`.
    pub fn from_htpasswd_text(text: &str) -> Result<Self, HtpasswdError> {
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line_error = |reason| HtpasswdError::Line {
                line: index + 1,
                reason,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| line_error("no ':' between user and hash"))?;
            if !["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) {
                return Err(line_error("only bcrypt hashes are supported"));
            }
            users.insert(user.to_owned(), hash.to_owned());
        }
        Ok(Self {
            realm: "poco-httpd".to_owned(),
            users: Arc::new(users),
        })
    }

    /// The realm named in `WWW-Authenticate`. Default: `poco-httpd`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The user and password of a `Basic` Authorization header.
    fn credentials(request: &Request) -> Option<(String, String)> {
        let header = request.header_text(AUTHORIZATION)?;
        let (scheme, encoded) = header.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let (user, password) = String::from_utf8(decoded)
            .ok()?
            .split_once(':')
            .map(|(u, p)| (u.to_owned(), p.to_owned()))?;
        Some((user, password))
    }

    fn refuse(&self, response: &Response) -> Outcome {
        let challenge = format!(
            "Basic realm=\"{}\", charset=\"UTF-8\"",
            self.realm.replace('"', "")
        );
        response.set_status(StatusCode::UNAUTHORIZED);
        if response
            .try_set_header(WWW_AUTHENTICATE, challenge)
            .is_err()
        {
            tracing::error!(realm = %self.realm, "realm is not a valid header value");
        }
        response.set_body("401 Unauthorized\n");
        Outcome::Deny
    }
}

impl Handler for BasicAuth {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let this = self.clone();
        HandlerFuture::new(async move {
            let Some((user, password)) = Self::credentials(&request) else {
                return this.refuse(&response);
            };
            let Some(hash) = this.users.get(&user).cloned() else {
                return this.refuse(&response);
            };
            // bcrypt is slow on purpose: keep it off the async workers.
            let verified = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
                .await
                .is_ok_and(|result| result.unwrap_or(false));
            if !verified {
                return this.refuse(&response);
            }
            request.connection().set_user(user);
            request.connection().set_authtype("Basic");
            Outcome::Ok
        })
    }
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_bcrypt_lines_are_refused_with_their_line_number() {
        let error =
            BasicAuth::from_htpasswd_text("# users\nbob:$apr1$abc$def\n").expect_err("refused");
        assert!(
            error
                .to_string()
                .starts_with("htpasswd line 2: only bcrypt"),
            "{error}"
        );
        let error = BasicAuth::from_htpasswd_text("nocolon\n").expect_err("refused");
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn an_unreadable_file_names_it_and_leaves_the_cause_to_source() {
        let error = BasicAuth::from_htpasswd("/no/such/htpasswd").expect_err("refused");
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert!(cause.is_some(), "the io error is the source");
        assert_eq!(
            error.to_string(),
            "cannot read htpasswd file /no/such/htpasswd"
        );
    }
}
