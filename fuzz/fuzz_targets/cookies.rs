//! Fuzz target: see `poco_httpd::fuzzing::cookies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| poco_httpd::fuzzing::cookies(data));
