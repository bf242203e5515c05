//! Fuzz target: see `poco_httpd::fuzzing::ranges`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| poco_httpd::fuzzing::ranges(data));
