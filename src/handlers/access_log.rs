//! [`AccessLog`]: a Post handler writing one line per request in the Common or
//! Combined Log Format, plus the time taken, to stdout or a file. The host field is
//! the client's address ([`Connection::client_addr`](crate::Connection::client_addr)). The request line
//! shows the target as the client sent it, in origin form (`/path?query`) for HTTP/1.1
//! and HTTP/2 alike, whatever a Trans handler rewrote it to.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cookie::time::OffsetDateTime;
use http::Version;
use http::header::{CONTENT_LENGTH, REFERER, USER_AGENT};

use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// Which fields a log line has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogFormat {
    /// `host ident user [time] "request" status bytes duration_us`.
    #[default]
    Common,
    /// Common, then `"referer" "user-agent"`, then the duration.
    Combined,
}

/// Where log lines go.
#[derive(Debug)]
enum Sink {
    Stdout,
    File { path: PathBuf, file: Mutex<File> },
}

/// The access log: install as a Post handler (it runs after the response has been
/// flushed, so it records what the client got). Clones share the same log, so the
/// ready-made server keeps one to [`reopen`](AccessLog::reopen) on SIGHUP for log
/// rotation.
///
/// ```no_run
/// use poco_httpd::Server;
/// use poco_httpd::handlers::{AccessLog, LogFormat};
///
/// let log = AccessLog::file("access.log")?.format(LogFormat::Combined);
/// let builder = Server::builder().post("/", log.clone());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AccessLog {
    format: LogFormat,
    sink: Arc<Sink>,
}

impl AccessLog {
    /// A log on standard output.
    pub fn stdout() -> Self {
        Self {
            format: LogFormat::Common,
            sink: Arc::new(Sink::Stdout),
        }
    }

    /// A log appended to `path`.
    ///
    /// # Errors
    /// When the file cannot be opened for appending.
    pub fn file(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_owned();
        let file = Mutex::new(open_append(&path)?);
        Ok(Self {
            format: LogFormat::Common,
            sink: Arc::new(Sink::File { path, file }),
        })
    }

    /// The line format. Default: [`LogFormat::Common`].
    pub fn format(mut self, format: LogFormat) -> Self {
        self.format = format;
        self
    }

    /// Re-opens the log file by name, after a log rotator moved it away.
    ///
    /// # Errors
    /// When the file cannot be opened; the old one stays in use.
    pub fn reopen(&self) -> io::Result<()> {
        if let Sink::File { path, file } = &*self.sink {
            *lock(file) = open_append(path)?;
        }
        Ok(())
    }

    /// The log line for one exchange, without the newline.
    pub fn line(&self, request: &Request, response: &Response) -> String {
        let connection = request.connection();
        let user = connection.user().unwrap_or_else(|| "-".into());
        let bytes = response
            .header(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_else(|| response.body().len().to_string());
        let bytes = if bytes == "0" { "-".to_owned() } else { bytes };
        let mut line = format!(
            "{} - {} [{}] \"{} {} {:?}\" {} {}",
            connection.client_addr().ip(),
            user,
            clf_time(OffsetDateTime::now_utc()),
            request.method(),
            target(request),
            request.version(),
            response.status().as_u16(),
            bytes,
        );
        if self.format == LogFormat::Combined {
            let quoted = |name| {
                let value = request.header_text(name);
                value.as_deref().unwrap_or("-").replace('"', "\\\"")
            };
            let _ = write!(line, " \"{}\" \"{}\"", quoted(REFERER), quoted(USER_AGENT));
        }
        let _ = write!(line, " {}", request.received_at().elapsed().as_micros());
        line
    }

    fn write(&self, line: &str) {
        let written = match &*self.sink {
            Sink::Stdout => writeln!(io::stdout().lock(), "{line}"),
            Sink::File { file, .. } => writeln!(lock(file), "{line}"),
        };
        if let Err(error) = written {
            tracing::error!(%error, "cannot write the access log");
        }
    }
}

impl Handler for AccessLog {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        self.write(&self.line(&request, &response));
        HandlerFuture::ready(Outcome::Ok)
    }
}

/// The request target as the client sent it. For HTTP/1 that is the request line's
/// (origin form, or absolute form if the client used it). HTTP/2 sends the path in
/// `:path` and the host in `:authority`, which hyper joins into an absolute URI; the
/// path and query alone are what the client put in `:path`, so both protocols log
/// `/path?query`. A CONNECT request's target is its authority.
fn target(request: &Request) -> Cow<'_, str> {
    let uri = request.original_uri();
    if request.version() < Version::HTTP_2 {
        return Cow::Owned(uri.to_string());
    }
    match (uri.path_and_query(), uri.authority()) {
        (Some(path), _) => Cow::Borrowed(path.as_str()),
        (None, Some(authority)) => Cow::Borrowed(authority.as_str()),
        (None, None) => Cow::Owned(uri.to_string()),
    }
}

/// The log file, even if a thread panicked while writing to it: a line is written
/// whole or not at all, so there is no state to distrust.
fn lock(file: &Mutex<File>) -> MutexGuard<'_, File> {
    file.lock().unwrap_or_else(PoisonError::into_inner)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `10/Oct/2000:13:55:36 +0000`.
fn clf_time(now: OffsetDateTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS[usize::from(u8::from(now.month())) - 1];
    format!(
        "{:02}/{month}/{}:{:02}:{:02}:{:02} +0000",
        now.day(),
        now.year(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_in_common_log_format() {
        let time = OffsetDateTime::from_unix_timestamp(971_186_136).expect("valid");
        assert_eq!(clf_time(time), "10/Oct/2000:13:55:36 +0000");
    }
}
