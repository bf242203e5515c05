//! Hooks for the micro benchmarks in `benches/` (and the map fuzz target in
//! `fuzzing.rs`): internals with no public API of their own, reachable without a
//! socket. Not a stable API.

use crate::Outcome;
use crate::handler::SharedHandler;
use crate::map::DirectoryMap;

/// A directory map with one Pre handler on each of its keys.
#[derive(Debug, Default)]
pub struct MapProbe {
    map: DirectoryMap,
}

impl MapProbe {
    /// Builds the map; `keys` must be normalized paths (`/`, `/a/`, `/a/b.txt`).
    pub fn new<'k>(keys: impl IntoIterator<Item = &'k str>) -> Self {
        let mut map = DirectoryMap::default();
        for key in keys {
            let handler =
                SharedHandler::new(|_req: crate::Request, _res: crate::Response| Outcome::Ok);
            map.entry(key).pre.push(handler);
        }
        Self { map }
    }

    /// How many Pre handlers a request for the normalized `path` stacks up: the walk
    /// every request does to find its plan.
    pub fn pre_handlers_on(&self, path: &str) -> usize {
        self.map.matches(path).map(|entry| entry.pre.len()).sum()
    }
}
