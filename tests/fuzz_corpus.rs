//! Replays the inputs the fuzz targets in `fuzz/` kept (their minimized corpora) and
//! any crash reproducer saved under `fuzz/regressions/`, so CI re-checks them on every
//! run without a fuzzer. The config target's corpus is replayed by a unit test of
//! the binary's config module.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let mut inputs = 0;
    for dir in ["corpus", "regressions"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz")
            .join(dir)
            .join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            check(&std::fs::read(&path).unwrap());
            inputs += 1;
        }
    }
    assert!(inputs > 0, "no kept inputs for the {target} target");
}

#[test]
fn path_normalization_corpus() {
    replay("path", poco_httpd::fuzzing::path);
}

#[test]
fn directory_map_corpus() {
    replay("map", poco_httpd::fuzzing::map);
}

#[test]
fn cookie_and_session_id_corpus() {
    replay("cookies", poco_httpd::fuzzing::cookies);
}

#[test]
fn range_header_corpus() {
    replay("ranges", poco_httpd::fuzzing::ranges);
}
