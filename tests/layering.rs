//! The code keeps the shape ARCHITECTURE.md describes ("Layers"), checked on the
//! source text so that CI fails the day it is broken:
//!
//! - imports inside the core point down the layers (leaves → model → socket wrappers
//!   → pipeline → serve → server);
//! - the built-in handlers (`src/handlers/`) and sessions (`src/session/`) use the
//!   public API only: no private module, no crate-private method of a public type;
//! - the exchange's two locks are taken only in `exchange.rs`, `request.rs` and
//!   `response.rs`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first; a module may import its own layer and those below.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaves",
        &[
            "sync",
            "path",
            "wait",
            "stats",
            "limits",
            "tls",
            "sse",
            "multipart",
            "error",
            "failure",
            "host",
            "incoming",
            "shutdown",
            "phase",
            "transport",
            "header_tokens",
            "upgrade",
            "post_hold",
            "send_watch",
            "per_ip",
        ],
    ),
    (
        "model",
        &[
            "handler",
            "request",
            "request_body",
            "response",
            "body",
            "exchange",
            "connection",
            "map",
            "site",
            "shared",
            "stream",
        ],
    ),
    (
        "socket wrappers",
        &[
            "flush",
            "timed_io",
            "refusal_io",
            "until_signal",
            "proxy_header",
        ],
    ),
    ("pipeline", &["pipeline"]),
    ("serve", &["serve"]),
    ("server", &["server", "reload"]),
];

/// Modules outside the layers: the crate root, hidden support for benchmarks and
/// fuzzing, and the handlers and sessions, which are checked against the public API.
const UNLAYERED: &[&str] = &["lib", "bench_support", "fuzzing", "handlers", "session"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The top-level module a source file belongs to: `src/pipeline/back.rs` → `pipeline`.
fn module_of(file: &Path) -> String {
    let relative = file.strip_prefix(src()).expect("a file under src/");
    let first = relative.components().next().expect("a path component");
    let first = first.as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// Every name that follows `crate::` in `text`, including each of a group
/// (`use crate::{a, b::c}` gives `a` and `b`).
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name = item.trim().split("::").next().unwrap_or_default();
                let name = name.split_whitespace().next().unwrap_or_default();
                if !name.is_empty() {
                    names.insert(name.to_owned());
                }
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.insert(rest[..end].to_owned());
        }
    }
    names
}

/// The names the crate root makes public: `pub use …::{A, B}`, `pub use a::B`,
/// `pub mod m` (not the `#[doc(hidden)]` ones).
fn public_names() -> BTreeSet<String> {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("src/lib.rs");
    let mut names = BTreeSet::new();
    let mut hidden = false;
    for line in lib.lines().map(str::trim) {
        if line == "#[doc(hidden)]" {
            hidden = true;
            continue;
        }
        if let Some(module) = line.strip_prefix("pub mod ") {
            if !hidden {
                names.insert(module.trim_end_matches(';').to_owned());
            }
        } else if let Some(used) = line.strip_prefix("pub use ") {
            let used = used.trim_end_matches(';');
            let items = match used.split_once('{') {
                Some((_, group)) => group.trim_end_matches('}').to_owned(),
                None => used.rsplit("::").next().unwrap_or_default().to_owned(),
            };
            for item in items.split(',') {
                let name = item.rsplit(" as ").next().unwrap_or_default().trim();
                if !name.is_empty() {
                    names.insert(name.to_owned());
                }
            }
        }
        hidden = false;
    }
    names
}

/// `pub(crate)` methods declared in the files of the public types handlers use.
fn crate_private_methods() -> BTreeSet<String> {
    let files = [
        "request.rs",
        "request_body.rs",
        "response.rs",
        "body.rs",
        "connection.rs",
        "stats.rs",
    ];
    let mut names = BTreeSet::new();
    for file in files {
        let text = fs::read_to_string(src().join(file)).expect("a core source file");
        for (at, _) in text.match_indices("pub(crate) fn ") {
            let rest = &text[at + "pub(crate) fn ".len()..];
            let end = rest.find(['(', '<']).unwrap_or(rest.len());
            names.insert(rest[..end].to_owned());
        }
    }
    names.remove("new");
    names
}

#[test]
fn core_imports_point_down_the_layers() {
    let mut wrong = Vec::new();
    for file in rust_files(&src()) {
        let module = module_of(&file);
        if module == "bin" || UNLAYERED.contains(&module.as_str()) {
            continue;
        }
        let own = layer_of(&module).unwrap_or_else(|| {
            panic!("{module} is in no layer: add it to ARCHITECTURE.md and LAYERS")
        });
        let text = fs::read_to_string(&file).expect("a source file");
        for imported in crate_paths(&text) {
            let Some(layer) = layer_of(&imported) else {
                continue; // a root re-export (`crate::Request`) or the module itself
            };
            if layer > own {
                wrong.push(format!(
                    "{} ({}) imports {imported} ({})",
                    file.display(),
                    LAYERS[own].0,
                    LAYERS[layer].0
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports pointing up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn handlers_and_sessions_use_the_public_api_only() {
    let public = public_names();
    let methods = crate_private_methods();
    let mut wrong = Vec::new();
    for folder in ["handlers", "session"] {
        for file in rust_files(&src().join(folder)) {
            let text = fs::read_to_string(&file).expect("a source file");
            for name in crate_paths(&text) {
                if !(public.contains(&name) || name == folder) {
                    wrong.push(format!("{} names crate::{name}", file.display()));
                }
            }
            for method in &methods {
                if text.contains(&format!(".{method}(")) || text.contains(&format!("::{method}(")) {
                    wrong.push(format!(
                        "{} calls the crate-private {method}()",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "private API used:\n{}", wrong.join("\n"));
}

#[test]
fn the_exchange_locks_are_taken_in_three_files_only() {
    let allowed = ["exchange.rs", "request.rs", "response.rs"];
    let mut wrong = Vec::new();
    for file in rust_files(&src()) {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        if file.parent() == Some(src().as_path()) && allowed.contains(&name.as_ref()) {
            continue;
        }
        let text = fs::read_to_string(&file).expect("a source file");
        if text.contains("request_state()") || text.contains("response_state()") {
            wrong.push(file.display().to_string());
        }
    }
    assert!(
        wrong.is_empty(),
        "exchange locks taken in:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    let paths = crate_paths("use crate::{a, b::C, d as e};\nlet x = crate::f::g();");
    let expected: BTreeSet<String> = ["a", "b", "d", "f"].map(String::from).into();
    assert_eq!(paths, expected);
    let public = public_names();
    assert!(public.contains("Request") && public.contains("handlers"));
    assert!(!public.contains("fuzzing") && !public.contains("exchange"));
    assert!(crate_private_methods().contains("answer_text"));
}
