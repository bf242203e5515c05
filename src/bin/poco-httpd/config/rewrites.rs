//! `[[rewrite]]` blocks: Trans handlers, in the order written, rewriting request
//! paths that match the regex `from` into `to` (`$1` names a group); `last` stops the
//! list after a match. Each pattern is compiled here, when the file is read, so a bad
//! one is refused naming its line.

use anyhow::anyhow;
use poco_httpd::ServerBuilder;
use poco_httpd::handlers::Rewrite;
use serde::Deserialize;
use toml::Spanned;

use super::ConfigText;

/// One `[[rewrite]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRewrite {
    from: Spanned<String>,
    to: String,
    #[serde(default)]
    last: bool,
}

/// The checked `[[rewrite]]` blocks, in order.
#[derive(Debug, Default)]
pub(super) struct Rewrites(Vec<Rewrite>);

impl Rewrites {
    /// Compiles every block's pattern.
    pub(super) fn check(raw: Vec<RawRewrite>, text: &ConfigText<'_>) -> anyhow::Result<Self> {
        raw.into_iter()
            .map(|rule| rewrite(rule, text))
            .collect::<anyhow::Result<_>>()
            .map(Self)
    }

    /// `builder` with these rewrites as its Trans handlers, in order.
    pub(super) fn apply(&self, builder: ServerBuilder) -> ServerBuilder {
        self.0
            .iter()
            .fold(builder, |builder, rewrite| builder.trans(rewrite.clone()))
    }
}

fn rewrite(rule: RawRewrite, text: &ConfigText<'_>) -> anyhow::Result<Rewrite> {
    let rewrite = Rewrite::new(rule.from.get_ref(), rule.to).map_err(|error| {
        anyhow!(
            "{}: key `from` of [[rewrite]]: {error}",
            text.at(rule.from.span())
        )
    })?;
    Ok(if rule.last { rewrite.last() } else { rewrite })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn check(toml: &str) -> anyhow::Result<Rewrites> {
        #[derive(Deserialize)]
        struct File {
            rewrite: Vec<RawRewrite>,
        }
        let raw: File = toml::from_str(toml).expect("[[rewrite]] blocks");
        Rewrites::check(raw.rewrite, &ConfigText::new(Path::new("site.toml"), toml))
    }

    #[test]
    fn a_bad_rewrite_pattern_names_its_key() {
        let error = check("[[rewrite]]\nfrom = \"^/(unclosed\"\nto = \"/x\"\n")
            .expect_err("refused")
            .to_string();
        assert!(
            error.starts_with("site.toml:2: key `from` of [[rewrite]]"),
            "{error}"
        );
    }

    #[test]
    fn rewrites_keep_their_order() {
        let rewrites = check(
            "[[rewrite]]\nfrom = \"^/a$\"\nto = \"/b\"\n[[rewrite]]\nfrom = \"^/b$\"\nto = \"/c\"\nlast = true\n",
        )
        .expect("valid");
        let shown = format!("{:?}", rewrites.0);
        let (first, second) = (shown.find("^/a$"), shown.find("^/b$"));
        assert!(first.is_some() && first < second, "{shown}");
    }
}
