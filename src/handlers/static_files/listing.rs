//! The optional HTML listing of a directory without an `index.html`: names escaped
//! for HTML and percent-encoded in links, only the entries a request would be served
//! ([`Shown`]: no hidden files, no symlinks out of the root, unless allowed), and a
//! bound on how many entries one page shows.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Entries beyond this are counted, not listed: a page stays a page.
const MAX_ENTRIES: usize = 10_000;

/// What a link to an entry must escape: everything but RFC 3986's unreserved set.
const LINK_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Which entries a listing shows: those a request for them would be served, by the
/// same rules as `StaticFiles` serving.
#[derive(Debug)]
pub(super) struct Shown<'a> {
    /// Hidden (dot) files are served.
    pub(super) hidden: bool,
    /// The listed directory is the top of the root (where `.well-known` is served).
    pub(super) top: bool,
    /// The resolved root symlinks must stay inside; `None` when they may lead out.
    pub(super) inside: Option<&'a Path>,
}

impl Shown<'_> {
    /// Whether the entry `name`, at `path`, would be served.
    async fn shows(&self, name: &str, path: PathBuf, is_symlink: bool) -> bool {
        if !self.hidden && super::is_hidden(name, self.top) {
            return false;
        }
        match self.inside {
            // Only a symlink can lead out: the listed directory itself is inside.
            Some(root) if is_symlink => tokio::fs::canonicalize(path)
                .await
                .is_ok_and(|real| real.starts_with(root)),
            _ => true,
        }
    }
}

struct Entry {
    name: String,
    is_dir: bool,
    size: u64,
    modified: Option<SystemTime>,
}

/// The listing page of `dir`, shown at the (normalized, `/`-terminated) `url_path`.
pub(super) async fn page(dir: &Path, url_path: &str, shown: &Shown<'_>) -> io::Result<String> {
    let (mut entries, more) = read(dir, shown).await?;
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    let title = escape(url_path);
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title>\
         </head>\n<body><h1>Index of {title}</h1>\n<table>\n\
         <tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n"
    );
    if !shown.top {
        html.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for entry in &entries {
        row(&mut html, entry);
    }
    html.push_str("</table>\n");
    if more > 0 {
        let _ = writeln!(html, "<p>… and {more} more entries not listed.</p>");
    }
    html.push_str("</body></html>\n");
    Ok(html)
}

async fn read(dir: &Path, shown: &Shown<'_>) -> io::Result<(Vec<Entry>, usize)> {
    let mut reading = tokio::fs::read_dir(dir).await?;
    let (mut entries, mut more) = (Vec::new(), 0);
    while let Some(item) = reading.next_entry().await? {
        let name = item.file_name().to_string_lossy().into_owned();
        let is_symlink = item.file_type().await.is_ok_and(|t| t.is_symlink());
        if !shown.shows(&name, item.path(), is_symlink).await {
            continue;
        }
        if entries.len() == MAX_ENTRIES {
            more += 1;
            continue;
        }
        // Follows symlinks, so a link to a directory is listed as one.
        let metadata = tokio::fs::metadata(item.path()).await.ok();
        entries.push(Entry {
            name,
            is_dir: metadata.as_ref().is_some_and(|m| m.is_dir()),
            size: metadata.as_ref().map_or(0, |m| m.len()),
            modified: metadata.and_then(|m| m.modified().ok()),
        });
    }
    Ok((entries, more))
}

fn row(html: &mut String, entry: &Entry) {
    let slash = if entry.is_dir { "/" } else { "" };
    let href = utf8_percent_encode(&entry.name, LINK_ESCAPES);
    let size = if entry.is_dir {
        "-".to_owned()
    } else {
        entry.size.to_string()
    };
    let modified = entry
        .modified
        .map(httpdate::fmt_http_date)
        .unwrap_or_default();
    let _ = writeln!(
        html,
        "<tr><td><a href=\"./{href}{slash}\">{}{slash}</a></td><td>{size}</td><td>{modified}</td></tr>",
        escape(&entry.name)
    );
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(
            escape("<img src=x onerror='a'>&\""),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;"
        );
    }

    #[tokio::test]
    async fn the_page_lists_directories_first_escapes_names_and_hides_dot_files() {
        let dir = std::env::temp_dir().join(format!("poco-httpd-listing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub dir")).unwrap();
        std::fs::write(dir.join("<b>&x.txt"), "12345").unwrap();
        std::fs::write(dir.join(".hidden"), "").unwrap();
        let shown = Shown {
            hidden: false,
            top: false,
            inside: None,
        };
        let html = page(&dir, "/files/", &shown).await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(html.contains("<title>Index of /files/</title>"), "{html}");
        assert!(html.contains("<a href=\"../\">"), "{html}");
        assert!(
            html.contains("<a href=\"./sub%20dir/\">sub dir/</a>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"./%3Cb%3E%26x.txt\">&lt;b&gt;&amp;x.txt</a></td><td>5</td>"),
            "{html}"
        );
        assert!(!html.contains("hidden"), "{html}");
        assert!(html.find("sub dir").unwrap() < html.find("x.txt").unwrap());
    }
}
