//! [`StaticFiles`]: files under a root directory as the Content handler of a
//! directory: content types, `Last-Modified`, `ETag` and conditional requests
//! (`validators`), ranges and `If-Range` — several as `multipart/byteranges`
//! (`ranges`, `sections`) — precompressed siblings, `index.html`, an optional
//! directory listing (`listing`) that shows exactly the entries a request would be
//! served, and a root that symlinks cannot lead out of (`open`). [`TryFiles`]
//! (`try_files`) looks its candidate paths up the same way and answers the one found
//! as a request for it would be.
//!
//! Speed: the file is opened and examined inline, on the worker — opening a file is
//! one system call, checking the symlink policy included (see `open`), where a hop
//! through tokio's blocking pool costs several wake-ups. A file up to
//! `WHOLE_READ_LIMIT` is then read whole, inline too, and goes out as one `Bytes`,
//! so head and body leave in one write; larger files stream in blocks of
//! `BLOCK` read through tokio's blocking pool, memory bounded by the block.
//! Small files that are asked for again come from a content cache (`cache`),
//! validated by one `statx` per request: see [`StaticFiles::content_cache`].
//!
//! Hidden files: a path with a segment starting with `.` below the mount point —
//! `.env`, `.git/config`, `.htpasswd` — is answered 404 unless
//! [`StaticFiles::hidden_files`] allows them. One exception, as nginx configurations
//! commonly make it: `.well-known` directly under the root (RFC 8615; ACME's
//! `/.well-known/acme-challenge/`) is served; dot files inside it are still hidden.

mod cache;
mod listing;
mod open;
mod ranges;
mod sections;
mod try_files;
mod validators;

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, ALLOW, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE,
    LOCATION, RANGE, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use self::cache::{Bounds, ContentCache, Entry, Identity};
use self::open::{Refused, Root};
pub use self::ranges::Ranges;
use self::sections::Sections;
pub use self::try_files::{TryFiles, TryFilesError};
use self::validators::{Condition, Validators};
use super::Coding;
use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// Files up to this size are read whole, inline, and sent as one block with the head;
/// larger ones stream.
const WHOLE_READ_LIMIT: u64 = 128 * 1024;
/// How much of a streamed file is read at a time.
const BLOCK: usize = 256 * 1024;
/// The content cache's default bounds.
const CACHE_BOUNDS: Bounds = Bounds {
    total: StaticFiles::DEFAULT_CACHE_BYTES,
    per_file: StaticFiles::DEFAULT_CACHE_FILE_BYTES,
};
const _: () = assert!(StaticFiles::DEFAULT_CACHE_FILE_BYTES <= StaticFiles::MAX_CACHE_FILE_BYTES);
/// The request headers that take a request for a cached file past the plain answer.
const ASKING: [HeaderName; 7] = [
    IF_MATCH,
    IF_NONE_MATCH,
    IF_MODIFIED_SINCE,
    IF_UNMODIFIED_SINCE,
    IF_RANGE,
    RANGE,
    ACCEPT_ENCODING,
];
/// The precompressed siblings looked for, best first when the client weighs them
/// alike, with their file name suffixes.
const PRECOMPRESSED: [(Coding, &str); 3] = [
    (Coding::Brotli, ".br"),
    (Coding::Zstd, ".zst"),
    (Coding::Gzip, ".gz"),
];

/// Serves the files under `root` for the directory it is mounted at. A directory
/// asked for without its trailing slash (`/static/css`, or the mount point itself
/// when also registered at `/static`) is answered `301` to the path with the slash.
/// Hidden (dot) files and directories are refused with 404, except `.well-known` at
/// the top of the root; symlinks leading out of the root are refused too (both can be
/// allowed).
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::StaticFiles;
///
/// let builder = Server::builder().content("/", StaticFiles::new("/", ".").directory_listing(true));
/// # drop(builder);
/// ```
#[derive(Debug, Clone)]
pub struct StaticFiles {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    prefix: String,
    root: Arc<Root>,
    hidden_files: bool,
    listing: bool,
    /// `None` when turned off.
    cache: Option<ContentCache>,
}

impl StaticFiles {
    /// The content cache's default bound on all it holds: 16 MiB.
    pub const DEFAULT_CACHE_BYTES: usize = 16 << 20;
    /// The content cache's default bound on one file: 128 KiB.
    pub const DEFAULT_CACHE_FILE_BYTES: usize = 128 << 10;
    /// The largest per-file bound [`StaticFiles::content_cache`] takes (larger ones
    /// are capped to it): files up to this size are read whole, larger ones stream
    /// in blocks and are never cached. 128 KiB.
    pub const MAX_CACHE_FILE_BYTES: usize = WHOLE_READ_LIMIT as usize;

    /// Files under `root`, mounted at the directory `prefix` (e.g. `/static/`).
    pub fn new(prefix: &str, root: impl Into<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                prefix: prefix.trim_end_matches('/').to_owned(),
                root: Arc::new(Root::new(root.into(), false)),
                hidden_files: false,
                listing: false,
                cache: Some(ContentCache::new(CACHE_BOUNDS)),
            }),
        }
    }

    /// Also serve files that symlinks inside the root point to outside it. Default:
    /// refused with 404.
    pub fn follow_symlinks_out(self, allow: bool) -> Self {
        if allow == self.inner.root.follows_symlinks_out() {
            return self;
        }
        let root = Root::new(self.inner.root.path().to_owned(), allow);
        self.with(|inner| inner.root = Arc::new(root))
    }

    /// Also serve hidden files and directories — names starting with `.`, such as
    /// `.env` or `.git/` — and list them. Default: refused with 404 and left out of
    /// listings, except `.well-known` directly under the root (for ACME and other
    /// RFC 8615 URIs), which is always served.
    pub fn hidden_files(self, allow: bool) -> Self {
        self.with(|inner| inner.hidden_files = allow)
    }

    /// Answer a request for a directory without an `index.html` with an HTML listing
    /// of it. It shows only what would be served: no hidden files (unless
    /// [`StaticFiles::hidden_files`]), no symlinks leading out of the root (unless
    /// [`StaticFiles::follow_symlinks_out`]). Default: 404.
    pub fn directory_listing(self, on: bool) -> Self {
        self.with(|inner| inner.listing = on)
    }

    /// Keep the content of small files that are asked for — at most `total_bytes`
    /// in all, none over `per_file_bytes` (capped at
    /// [`StaticFiles::MAX_CACHE_FILE_BYTES`], 128 KiB: larger files stream, and
    /// are never read whole) — and answer from it while the file is
    /// unchanged, as one `statx` of its path on every request shows (device, inode,
    /// permissions, size, modification and change times to the nanosecond). Any
    /// change — a write, a replacement, a rename, a `chmod`, a deletion, a symlink
    /// swapped in — is seen on the very next request, which is answered from the
    /// file system again. Files are cached only once their last change lies a
    /// couple of seconds back, so a change within the file system's clock tick
    /// cannot go unseen. A client that accepts a coding is answered from the cache
    /// while one more `statx`, of the file's directory, shows that no precompressed
    /// sibling (`.br`, `.zst`, `.gz`) has appeared since the file was cached; range
    /// requests, and other platforms than Linux, bypass the cache. Default: on, 16 MiB
    /// in all for this `StaticFiles` (each has its own: the bound is per static
    /// location or virtual host, not per server), files up to 128 KiB;
    /// `content_cache(0, 0)` turns it off.
    ///
    /// Not cached at all: files opened by path rather than beneath the root's
    /// descriptor ([`StaticFiles::follow_symlinks_out`], or a kernel without
    /// `openat2`), and roots on network or shared file systems (NFS, CIFS/SMB, FUSE
    /// and virtiofs, 9p, Ceph, AFS...), whose `statx` may answer from attributes
    /// cached for seconds. Not seen, as with nginx's `open_file_cache`: writes
    /// through a shared memory mapping not yet written back (they change no times
    /// until then), and a security policy (SELinux, AppArmor) changed to deny a file.
    ///
    /// ```
    /// use poco_httpd::handlers::StaticFiles;
    ///
    /// let files = StaticFiles::new("/static/", "./public").content_cache(64 << 20, 64 << 10);
    /// # drop(files);
    /// ```
    pub fn content_cache(self, total_bytes: usize, per_file_bytes: usize) -> Self {
        let bounds = Bounds {
            total: total_bytes,
            per_file: per_file_bytes.min(Self::MAX_CACHE_FILE_BYTES),
        };
        self.with(|inner| {
            inner.cache = (total_bytes > 0).then(|| ContentCache::new(bounds));
        })
    }

    /// How many bytes the content cache holds now (bodies and names, and a fixed
    /// allowance per file for its headers and bookkeeping); 0 when it is off. For metrics and tests.
    pub fn cached_bytes(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, ContentCache::weight)
    }

    fn with(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            prefix: self.inner.prefix.clone(),
            root: Arc::clone(&self.inner.root),
            hidden_files: self.inner.hidden_files,
            listing: self.inner.listing,
            // Entries made by another policy must not be served by this one.
            cache: (self.inner.cache.as_ref()).map(|cache| ContentCache::new(cache.bounds())),
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }
}

/// A directory listing to answer with.
struct Listing {
    dir: PathBuf,
    path: String,
    top: bool,
}

/// What a path under the root resolved to: a file to send, or a directory.
enum Found {
    /// The file, its metadata, and whether it may be cached (see
    /// `open::Opened::validatable`).
    File(File, std::fs::Metadata, bool),
    Directory,
}

impl Inner {
    /// The path under the root a (normalized) request path names — `/`-separated
    /// plain names, empty for the root — unless it is hidden or not under the prefix.
    fn relative<'a>(&self, path: &'a str) -> Option<&'a str> {
        let below = path.strip_prefix(&self.prefix)?;
        // `/filesystem` is not under `/files` (a `TryFiles` candidate may name it).
        if !below.is_empty() && !below.starts_with('/') {
            return None;
        }
        let relative = below.trim_matches('/');
        // One pass over the names: plain ones only (no `.`, `..`, NUL, or empty name
        // between two slashes), and no hidden one unless allowed.
        for (depth, name) in relative.split('/').enumerate() {
            let plain = !matches!(name, "." | "..") && !name.contains('\0');
            if !plain || (name.is_empty() && !relative.is_empty()) {
                return None;
            }
            if !self.hidden_files && is_hidden(name, depth == 0) {
                tracing::debug!(%path, "refused: a hidden file");
                return None;
            }
        }
        Some(relative)
    }

    /// Opens what `relative` names and looks at it: one `openat2` (or `open`) and one
    /// `statx`.
    fn find(&self, relative: &str) -> Result<Found, Refused> {
        let open::Opened { file, validatable } = self.root.open(relative)?;
        let metadata = file.metadata()?;
        if metadata.is_dir() {
            Ok(Found::Directory)
        } else if metadata.is_file() {
            let validatable = validatable && self.root.trusts(&file, &metadata);
            Ok(Found::File(file, metadata, validatable))
        } else {
            Err(Refused::NotFound)
        }
    }

    /// Answers the request; a directory listing is left to do (it reads the
    /// directory through tokio's blocking pool).
    fn serve(&self, request: &Request, response: &Response) -> Option<Listing> {
        let path = request.path();
        let Some(relative) = self.relative(path) else {
            not_found(response);
            return None;
        };
        if self.answer_cached(request, response, path, relative) {
            return None;
        }
        match self.find(relative) {
            Ok(found) => self.answer(request, response, path, relative, found),
            Err(refused) => {
                refuse(response, refused, path);
                None
            }
        }
    }

    /// Answers a `GET` or `HEAD` for `path` — the request's own, or a [`TryFiles`]
    /// candidate — found under the root as `relative` from the content cache, if it
    /// holds the file and the file is unchanged; for a path ending in `/`, the file
    /// is the directory's `index.html`, as on the full path (a valid entry for it
    /// means its directory is still a directory). `false` when the request takes the
    /// full path (and an entry found stale is dropped).
    fn answer_cached(
        &self,
        request: &Request,
        response: &Response,
        path: &str,
        relative: &str,
    ) -> bool {
        let head = match *request.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => return false,
        };
        let headers = request.headers();
        // One look over the (few) request headers spares the lookups by name for the
        // common request that asks for none of these.
        let asks = headers.keys().any(|name| ASKING.contains(name));
        // Ranges are the full path's.
        if self.cache.is_none() || (asks && headers.contains_key(RANGE)) {
            return false;
        }
        let index;
        let file = if path.ends_with('/') {
            index = index_of(relative);
            &index
        } else {
            relative
        };
        let Some(entry) = self.valid_entry(file, asks, headers) else {
            return false;
        };
        let condition = if asks {
            entry.validators.check(headers)
        } else {
            Condition::Proceed
        };
        match condition {
            Condition::Proceed => {}
            Condition::NotModified => {
                let mut headers = HeaderMap::with_capacity(3);
                headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
                entry.validators.insert_into(&mut headers);
                response.set_headers(headers);
                response.set_status(StatusCode::NOT_MODIFIED);
                return true;
            }
            Condition::Failed => {
                response.set_header(VARY, HeaderValue::from_static("accept-encoding"));
                response.set_status(StatusCode::PRECONDITION_FAILED);
                return true;
            }
        }
        // One clone of the ready map, moved into the empty response map whole: no
        // lookup per header.
        response.set_headers(entry.headers.clone());
        if head {
            response.set_header(CONTENT_LENGTH, entry.body.len());
            response.set_body(Bytes::new());
        } else {
            response.set_body(entry.body.clone());
        }
        true
    }

    /// The cache's entry for `relative` if the file is unchanged — one `statx` of its
    /// path — and, for a client that takes a coding (`asks` said it may), if no
    /// precompressed sibling can have appeared.
    fn valid_entry(&self, relative: &str, asks: bool, headers: &HeaderMap) -> Option<Arc<Entry>> {
        let cache = self.cache.as_ref()?;
        let entry = cache.get(relative)?;
        // The plain file only while its directory shows that no sibling has appeared
        // since none was there. The directory's `statx` costs less than weighing the
        // header's codings, so that is left for when the directory changed.
        if asks && headers.contains_key(ACCEPT_ENCODING) {
            let bare = entry.bare_directory.is_some_and(|bare| {
                matches!(self.root.directory_identity(directory_of(relative)), Some(Ok(now)) if now == bare)
            });
            if !bare && wants_coded(headers) {
                return None;
            }
        }
        match self.root.identity(relative) {
            Some(Ok(now)) if now == entry.identity => Some(entry),
            _ => {
                cache.remove(relative, &entry);
                None
            }
        }
    }

    /// Keeps the whole `body` of the plain file `relative` in the content cache,
    /// if it fits, has settled, and its path (`statx`, after the read) still names
    /// the file read: never a final symlink, nor a file replaced meanwhile.
    fn keep(
        &self,
        relative: &str,
        content_type: &'static str,
        metadata: &std::fs::Metadata,
        validators: Validators,
        body: &Bytes,
    ) {
        let Some(cache) = &self.cache else {
            return;
        };
        if !cache.admits(body.len() as u64, relative) || body.len() as u64 != metadata.len() {
            return;
        }
        let Some(identity) = Identity::of(metadata) else {
            return;
        };
        // Already there (a request the cache could not answer, such as one a
        // precompressed sibling's directory check sent here): nothing to refill.
        if cache.holds(relative, &identity) {
            return;
        }
        if !identity.settled(SystemTime::now()) {
            return;
        }
        match self.root.identity(relative) {
            Some(Ok(now)) if now == identity => {}
            _ => return,
        }
        let mut headers = HeaderMap::with_capacity(5);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        validators.insert_into(&mut headers);
        headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let bare_directory = self.bare_directory(relative);
        let entry = Entry::new(identity, body.clone(), validators, headers, bare_directory);
        cache.insert(relative, entry);
    }

    /// The identity of the directory holding `relative` when none of the file's
    /// precompressed siblings exists there and the directory has settled: while the
    /// directory keeps that identity (its times change with every name added,
    /// removed or renamed in it), none exists still. Looked at once, when the file
    /// is cached.
    fn bare_directory(&self, relative: &str) -> Option<Identity> {
        let directory = directory_of(relative);
        // The directory itself, through a final symlink (`link/page.html`): the
        // link's own times do not change when a name is added to the directory.
        let before = self.root.directory_identity(directory)?.ok()?;
        if !before.settled(SystemTime::now()) {
            return None;
        }
        for (_, suffix) in PRECOMPRESSED {
            match self.root.identity(&format!("{relative}{suffix}"))? {
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                _ => return None,
            }
        }
        // Nothing added while the siblings were looked for.
        let after = self.root.directory_identity(directory)?.ok()?;
        (after == before).then_some(before)
    }

    /// Answers with what the (normalized) `path` — the request's own, or the
    /// candidate [`TryFiles`] chose — was found to be under the root as `relative`.
    fn answer(
        &self,
        request: &Request,
        response: &Response,
        path: &str,
        relative: &str,
        found: Found,
    ) -> Option<Listing> {
        let reads = matches!(*request.method(), Method::GET | Method::HEAD);
        match found {
            Found::File(..) if path.ends_with('/') => not_found(response),
            Found::File(..) if !reads => not_allowed(response),
            Found::File(file, metadata, validatable) => {
                self.send(request, response, relative, file, metadata, validatable);
            }
            Found::Directory if !path.ends_with('/') => add_slash(request, response),
            Found::Directory if !reads => not_allowed(response),
            Found::Directory => return self.directory(request, response, path, relative),
        }
        None
    }

    /// A directory asked for with its slash: its `index.html`, else its listing if
    /// that is on, else 404.
    fn directory(
        &self,
        request: &Request,
        response: &Response,
        path: &str,
        relative: &str,
    ) -> Option<Listing> {
        let index = index_of(relative);
        match self.find(&index) {
            Ok(Found::File(file, metadata, validatable)) => {
                self.send(request, response, &index, file, metadata, validatable);
                return None;
            }
            Ok(Found::Directory) | Err(Refused::NotFound) => {}
            Err(refused) => {
                refuse(response, refused, path);
                return None;
            }
        }
        if !self.listing {
            not_found(response);
            return None;
        }
        let dir = if relative.is_empty() {
            self.root.path().to_owned()
        } else {
            self.root.path().join(relative)
        };
        Some(Listing {
            dir,
            path: path.to_owned(),
            top: path.len() <= self.prefix.len() + 1,
        })
    }

    /// The handler's future for an answer given inline: done, or a listing to read.
    fn finish(self: &Arc<Self>, response: Response, listing: Option<Listing>) -> HandlerFuture {
        match listing {
            None => HandlerFuture::ready(Outcome::Ok),
            Some(listing) => {
                let inner = Arc::clone(self);
                HandlerFuture::new(async move {
                    inner.list(&response, listing).await;
                    Outcome::Ok
                })
            }
        }
    }

    /// Answers with the listing page of a directory.
    async fn list(&self, response: &Response, listing: Listing) {
        let shown = listing::Shown {
            hidden: self.hidden_files,
            top: listing.top,
            inside: self.root.walls(),
        };
        let path = listing.path;
        match listing::page(&listing.dir, &path, &shown).await {
            Ok(page) => {
                response.set_content_type("text/html; charset=utf-8");
                response.set_body(page);
            }
            Err(error) => {
                tracing::error!(%error, %path, "cannot list the directory");
                response.set_status(StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
    }

    /// Sends the file `relative` (opened as `file`) or its precompressed sibling: the
    /// conditional requests answered, then a range, then the whole — kept in the
    /// content cache if `validatable` (opened beneath the held root).
    fn send(
        &self,
        request: &Request,
        response: &Response,
        relative: &str,
        file: File,
        metadata: std::fs::Metadata,
        validatable: bool,
    ) {
        let content_type = mime_guess::from_path(relative)
            .first_raw()
            .unwrap_or("application/octet-stream");
        let (file, metadata, coding) = match self.precompressed(request, relative) {
            Some((file, metadata, coding)) => (file, metadata, Some(coding)),
            None => (file, metadata, None),
        };
        let validators = Validators::of(&metadata);
        // The headers are gathered here and moved into the (empty) response map
        // whole: one step, where setting each took a lock and a hashed insert.
        let mut headers = HeaderMap::with_capacity(6);
        headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
        match validators.check(request.headers()) {
            Condition::Proceed => {}
            Condition::NotModified => {
                response.set_status(StatusCode::NOT_MODIFIED);
                validators.insert_into(&mut headers);
                response.set_headers(headers);
                return;
            }
            Condition::Failed => {
                response.set_status(StatusCode::PRECONDITION_FAILED);
                response.set_headers(headers);
                return;
            }
        }
        let size = metadata.len();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        validators.insert_into(&mut headers);
        match coding {
            Some(coding) => {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.token()))
            }
            None => headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        };
        response.set_headers(headers);
        if coding.is_none() {
            // Ranges of the plain file only, asked with GET.
            let range = (*request.method() == Method::GET)
                .then(|| request.header(RANGE)?.to_str().ok())
                .flatten();
            if let Some(range) = range
                && validators.if_range_passes(request.headers())
            {
                match Ranges::of(range, size) {
                    Ranges::Whole => {}
                    Ranges::Unsatisfiable => {
                        unsatisfiable(response, size);
                        return;
                    }
                    Ranges::Partial(ranges) => {
                        partial(response, content_type, file, size, &ranges);
                        return;
                    }
                }
            }
        }
        if *request.method() == Method::HEAD {
            response.set_header(CONTENT_LENGTH, size);
            response.set_body(Bytes::new());
        } else if size <= WHOLE_READ_LIMIT {
            match read_whole(file, size) {
                Ok(bytes) => {
                    if coding.is_none() && validatable {
                        self.keep(relative, content_type, &metadata, validators, &bytes);
                    }
                    response.set_body(bytes);
                }
                Err(error) => refuse(response, Refused::Failed(error), request.path()),
            }
        } else {
            response.set_header(CONTENT_LENGTH, size);
            response.set_body_stream(blocks(file, size));
        }
    }

    /// The precompressed sibling (`page.txt.br` beside `page.txt`) of the coding the
    /// client ranks highest among those that exist, by the same symlink policy.
    fn precompressed(
        &self,
        request: &Request,
        relative: &str,
    ) -> Option<(File, std::fs::Metadata, Coding)> {
        let accepted = request.header(ACCEPT_ENCODING)?.to_str().ok()?;
        let mut offered: Vec<Coding> = PRECOMPRESSED.iter().map(|(coding, _)| *coding).collect();
        while let Some(coding) = Coding::negotiate(accepted, &offered) {
            offered.retain(|&other| other != coding);
            let suffix = PRECOMPRESSED
                .iter()
                .find_map(|&(each, suffix)| (each == coding).then_some(suffix))?;
            if let Ok(Found::File(file, metadata, _)) = self.find(&format!("{relative}{suffix}")) {
                return Some((file, metadata, coding));
            }
        }
        None
    }
}

/// The directory holding `relative` (empty for the root).
fn directory_of(relative: &str) -> &str {
    relative
        .rsplit_once('/')
        .map_or("", |(directory, _)| directory)
}

/// Whether the request accepts a coding a precompressed sibling could be sent in.
fn wants_coded(headers: &HeaderMap) -> bool {
    let offered = PRECOMPRESSED.map(|(coding, _)| coding);
    headers
        .get(ACCEPT_ENCODING)
        .and_then(|accepted| accepted.to_str().ok())
        .is_some_and(|accepted| Coding::negotiate(accepted, &offered).is_some())
}

/// Reads a small file whole, in one `read` when the file is as large as it was when
/// examined (`read_to_end` would grow its buffer in steps, a call each). It may have
/// changed since: what is read, up to the size examined, is what is sent (its own
/// length goes out as `Content-Length`).
fn read_whole(file: File, size: u64) -> io::Result<Bytes> {
    read_up_to(&file, usize::try_from(size).unwrap_or(0)).map(Bytes::from)
}

/// Reads up to `wanted` bytes of `file` from where it stands, fewer only at its
/// end: one `read` for a file in the page cache.
#[cfg(target_os = "linux")]
fn read_up_to(file: &File, wanted: usize) -> io::Result<Vec<u8>> {
    // Read into the spare capacity (rustix sets the length, no unsafe here): a
    // zero-filled buffer cost a `memset` of the whole block first.
    let mut content = Vec::with_capacity(wanted);
    while content.len() < wanted {
        match rustix::io::read(file, rustix::buffer::spare_capacity(&mut content)) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    content.truncate(wanted);
    Ok(content)
}

#[cfg(not(target_os = "linux"))]
fn read_up_to(mut file: &File, wanted: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut content = vec![0; wanted];
    let mut filled = 0;
    while filled < content.len() {
        match file.read(&mut content[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    content.truncate(filled);
    Ok(content)
}

/// The first `size` bytes of a large file as a stream of blocks of `BLOCK`, each
/// read on tokio's blocking pool straight into the buffer that is sent (through
/// `tokio::fs::File` it was read into the file's own buffer, then copied). A file
/// that shrank meanwhile ends the body early: the response is cut, as `hyper`
/// checks the length.
fn blocks(file: File, size: u64) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send {
    futures_util::stream::try_unfold((file, size), |(file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let wanted = usize::try_from(left).map_or(BLOCK, |left| left.min(BLOCK));
        let read = tokio::task::spawn_blocking(move || {
            read_up_to(&file, wanted).map(|block| (file, block))
        });
        let (file, block) = read.await.map_err(io::Error::other)??;
        if block.is_empty() {
            return Ok(None);
        }
        let left = left - block.len() as u64;
        Ok(Some((Bytes::from(block), (file, left))))
    })
}

/// The `index.html` of the directory `relative` (empty for the root).
fn index_of(relative: &str) -> String {
    if relative.is_empty() {
        "index.html".to_owned()
    } else {
        format!("{relative}/index.html")
    }
}

fn not_found(response: &Response) {
    response.set_status(StatusCode::NOT_FOUND);
    response.set_body("404 Not Found\n");
}

fn refuse(response: &Response, refused: Refused, path: &str) {
    match refused {
        Refused::NotFound => not_found(response),
        Refused::Failed(error) => {
            tracing::error!(%error, %path, "cannot open the file");
            response.set_status(StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
}

fn not_allowed(response: &Response) {
    response.set_status(StatusCode::METHOD_NOT_ALLOWED);
    response.set_header(ALLOW, HeaderValue::from_static("GET,HEAD"));
}

/// `301` from a directory's path without its slash (`/files`, `/files/sub`) to the
/// path with it, so relative links in its index resolve inside it.
fn add_slash(request: &Request, response: &Response) {
    let uri = request.uri();
    let location = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    response.set_status(StatusCode::MOVED_PERMANENTLY);
    if response
        .try_set_header(LOCATION, location.as_str())
        .is_err()
    {
        response.set_status(StatusCode::NOT_FOUND);
    }
}

/// Whether a name is hidden: it starts with `.`, and is not `.well-known` at the top
/// of the root (`top`).
fn is_hidden(name: &str, top: bool) -> bool {
    name.starts_with('.') && !(top && name == ".well-known")
}

fn unsatisfiable(response: &Response, size: u64) {
    response.set_status(StatusCode::RANGE_NOT_SATISFIABLE);
    response.set_header(CONTENT_RANGE, format!("bytes */{size}"));
    response.set_content_type("text/plain");
    response.set_body("416 Range Not Satisfiable\n");
}

/// Answers `206` with `ranges` of `file`, read as the client takes them.
fn partial(
    response: &Response,
    content_type: &'static str,
    file: File,
    size: u64,
    ranges: &[std::ops::Range<u64>],
) {
    let content_type = HeaderValue::from_static(content_type);
    let sections = match ranges {
        [range] => {
            let last = range.end - 1;
            response.set_header(
                CONTENT_RANGE,
                format!("bytes {}-{last}/{size}", range.start),
            );
            Sections::single(range.clone())
        }
        ranges => {
            let boundary = boundary();
            let multipart = format!("multipart/byteranges; boundary={boundary}");
            let sections = Sections::multipart(ranges, size, Some(&content_type), &boundary);
            response.set_content_type(&multipart);
            sections
        }
    };
    response.set_status(StatusCode::PARTIAL_CONTENT);
    response.set_header(CONTENT_LENGTH, sections.len());
    response.set_body_stream(sections.into_stream(tokio::fs::File::from_std(file)));
}

/// A multipart boundary no file is likely to contain.
fn boundary() -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&nanos.to_le_bytes()[..12]);
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("poco-httpd-{hex}")
}

impl Handler for StaticFiles {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let listing = self.inner.serve(&request, &response);
        self.inner.finish(response, listing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_hidden_but_a_top_well_known() {
        let files = StaticFiles::new("/", "/nonexistent");
        let has_hidden_segment =
            |relative: &str| files.inner.relative(&format!("/{relative}")).is_none();
        for hidden in [
            ".env",
            ".git/config",
            "sub/.htpasswd",
            ".well-known/.x",
            "a/.well-known/b",
        ] {
            assert!(has_hidden_segment(hidden), "{hidden}");
        }
        for shown in [
            "",
            "index.html",
            "a.b/c",
            "a/b.",
            ".well-known/acme-challenge/t",
        ] {
            assert!(!has_hidden_segment(shown), "{shown}");
        }
    }

    #[test]
    fn the_per_file_bound_is_capped_at_the_whole_read_limit() {
        let bound = |files: StaticFiles| files.inner.cache.as_ref().unwrap().bounds().per_file;
        let files = || StaticFiles::new("/", "/nonexistent");
        assert_eq!(
            bound(files().content_cache(1 << 30, 1 << 20)),
            WHOLE_READ_LIMIT as usize
        );
        assert_eq!(bound(files().content_cache(1 << 30, 1000)), 1000);
        assert_eq!(bound(files()), StaticFiles::DEFAULT_CACHE_FILE_BYTES);
    }

    #[test]
    fn request_paths_map_below_the_prefix_to_plain_relative_names() {
        let files = StaticFiles::new("/files/", "/nonexistent");
        let inner = &files.inner;
        assert_eq!(inner.relative("/files/"), Some(""));
        assert_eq!(inner.relative("/files"), Some(""));
        assert_eq!(inner.relative("/files/a/b.txt"), Some("a/b.txt"));
        assert_eq!(inner.relative("/files/a/"), Some("a"));
        assert_eq!(inner.relative("/other/a.txt"), None);
        assert_eq!(inner.relative("/filesystem/a.txt"), None);
        assert_eq!(inner.relative("/files/a/../b"), None);
        assert_eq!(inner.relative("/files/.env"), None);
    }
}
