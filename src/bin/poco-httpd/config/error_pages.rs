//! A location's `error_pages = { 404 = "/404.html", "5xx" = "/50x.html" }`: pages for
//! its error answers, sent with the original status (`handlers::ErrorPages`), read
//! from the location's static root, or from `root` if given.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::bail;
use poco_httpd::handlers::ErrorPages;
use toml::Spanned;

use super::ConfigText;

/// As written: statuses (`404`, `5xx`) → page paths, and an optional `root`.
pub(super) type RawErrorPages = BTreeMap<String, Spanned<String>>;

/// Checks the table and builds the handler; `static_root` is the location's, and
/// `location_at` the `file:line` of its path, for errors about the table as a whole.
pub(super) fn check(
    mut raw: RawErrorPages,
    static_root: Option<&Path>,
    what: &str,
    location_at: &str,
    text: &ConfigText<'_>,
) -> anyhow::Result<ErrorPages> {
    let dir = match raw.remove("root") {
        Some(root) => {
            let dir = text.relative(Path::new(root.get_ref()));
            if !dir.is_dir() {
                bail!(
                    "{}: key `root` of `error_pages` of {what}: {} is not a directory",
                    text.at(root.span()),
                    dir.display()
                );
            }
            dir
        }
        None => match static_root {
            Some(root) => root.to_owned(),
            None => bail!(
                "{}: `error_pages` of {what}: the pages are read from the location's `static` root; add `static`, or `root = \"/var/www/errors\"` in `error_pages`",
                location_at
            ),
        },
    };
    let mut pages = ErrorPages::new(&dir);
    for (status, page) in raw {
        let at = text.at(page.span());
        pages = match pages.page(&status, page.get_ref()) {
            Ok(pages) => pages,
            Err(error) => bail!("{at}: key `{status}` of `error_pages` of {what}: {error}"),
        };
        let file = dir.join(page.get_ref().trim_start_matches('/'));
        if !file.is_file() {
            bail!(
                "{at}: key `{status}` of `error_pages` of {what}: {} is not a file",
                file.display()
            );
        }
    }
    Ok(pages)
}
