//! Fuzz target: the ready-made server's config parser, on any text — it must answer
//! with settings or an error, never panic.
#![no_main]

#[allow(dead_code, unreachable_pub)]
#[path = "../../src/bin/poco-httpd/config.rs"]
mod config;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = config::Settings::parse(std::path::Path::new("fuzz.toml"), text);
    }
});
