//! The path work every request does before its first handler: normalizing the
//! request path, and walking the directory map for the handlers stacked on it —
//! 1,000 paths of ten segments each, against a map of about a thousand keys.
//!
//! Run with `cargo bench --bench directory_map`; criterion prints the time per batch
//! of 1,000 paths (divide by 1,000 for one request).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use poco_httpd::bench_support::MapProbe;
use poco_httpd::normalize_path;

const PATHS: usize = 1_000;
const SEGMENTS: usize = 10;

/// Path `i`: ten segments drawn from a small alphabet, so paths share prefixes the
/// way a site's do, ending in a file name.
fn request_path(i: usize) -> String {
    let mut path = String::new();
    for depth in 0..SEGMENTS - 1 {
        path.push_str(&format!("/dir{}", (i >> depth) % 3));
    }
    path.push_str(&format!("/file{}.txt", i % 10));
    path
}

/// Every directory on the first hundred paths, plus their files: about a thousand
/// keys, so most requests stack several Pre handlers and some stop early.
fn keys() -> Vec<String> {
    let mut keys = vec!["/".to_owned()];
    for i in 0..100 {
        let path = request_path(i);
        let mut end = 0;
        while let Some(slash) = path[end + 1..].find('/') {
            end += slash + 1;
            keys.push(path[..=end].to_owned());
        }
        keys.push(path);
    }
    keys.sort();
    keys.dedup();
    keys
}

fn normalize(c: &mut Criterion) {
    // A quarter each: plain, with an escape, with dot segments, with both.
    let raw: Vec<String> = (0..PATHS)
        .map(|i| {
            let path = request_path(i);
            match i % 4 {
                0 => path,
                1 => path.replace("file", "my%20file"),
                2 => path.replacen("/dir", "/./x/../dir", 1),
                _ => path
                    .replacen("/dir", "/%2e/dir", 2)
                    .replace("file", "f%C3%A9"),
            }
        })
        .collect();
    let mut group = c.benchmark_group("path");
    group.throughput(Throughput::Elements(PATHS as u64));
    group.bench_function("normalize 1000 request paths", |b| {
        b.iter(|| {
            for path in &raw {
                black_box(normalize_path(black_box(path)).ok());
            }
        })
    });
    group.finish();
}

fn walk_map(c: &mut Criterion) {
    let keys = keys();
    let probe = MapProbe::new(keys.iter().map(String::as_str));
    let paths: Vec<String> = (0..PATHS).map(request_path).collect();
    let mut group = c.benchmark_group("map");
    group.throughput(Throughput::Elements(PATHS as u64));
    group.bench_function(
        format!("resolve 1000 paths against {} keys", keys.len()),
        |b| {
            b.iter(|| {
                let mut stacked = 0;
                for path in &paths {
                    stacked += probe.pre_handlers_on(black_box(path));
                }
                black_box(stacked)
            })
        },
    );
    group.finish();
}

criterion_group!(benches, normalize, walk_map);
criterion_main!(benches);
