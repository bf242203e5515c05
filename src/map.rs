//! The directory map: which handlers a normalized path stacks up.
//!
//! Built once when the server is built, then only read. Paths are stored as a tree
//! of segments, so resolving `/foo/bar/baz/honk.txt` is a walk of one hash lookup per
//! segment that yields the entries of `/`, `/foo/`, `/foo/bar/`, `/foo/bar/baz/` and
//! `/foo/bar/baz/honk.txt`, shallowest first, without allocating. A directory key
//! (`/honk/`) and a file key (`/honk`) live side by side on the same node and never
//! match each other's requests.
//!
//! Invariant: this module knows nothing about requests, sockets or phases' order; it
//! answers "which entries lie on this path".

use std::collections::HashMap;

use crate::handler::SharedHandler;

/// The handlers registered for one exact path key.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub(crate) pre: Vec<SharedHandler>,
    pub(crate) content: Option<SharedHandler>,
    pub(crate) post: Vec<SharedHandler>,
    pub(crate) error: Option<SharedHandler>,
    pub(crate) stream: Option<SharedHandler>,
}

#[derive(Debug, Default)]
struct Node {
    /// Handlers of the key ending in `/` at this node, e.g. `/foo/`.
    directory: Option<Entry>,
    /// Handlers of the key naming this node as a file, e.g. `/foo`.
    file: Option<Entry>,
    children: Children,
}

/// Past this many children a node looks them up by hash instead of in order.
const FEW_CHILDREN: usize = 8;

/// The children of a node by segment name. A short list is searched in order, which
/// for the few children most nodes have is cheaper than hashing the segment; a node
/// with many switches to a hash table. foldhash rather than SipHash: the keys come
/// from the configuration and a client's segments only look them up, so there is no
/// table to flood.
#[derive(Debug)]
enum Children {
    Few(Vec<(Box<str>, Node)>),
    Many(HashMap<Box<str>, Node, foldhash::fast::RandomState>),
}

impl Default for Children {
    fn default() -> Self {
        Self::Few(Vec::new())
    }
}

impl Children {
    fn get(&self, segment: &str) -> Option<&Node> {
        match self {
            Self::Few(list) => list
                .iter()
                .find(|(name, _)| **name == *segment)
                .map(|(_, node)| node),
            Self::Many(table) => table.get(segment),
        }
    }

    /// The child called `segment`, created empty if needed.
    fn get_or_insert(&mut self, segment: &str) -> &mut Node {
        if let Self::Few(list) = self
            && list.len() >= FEW_CHILDREN
            && !list.iter().any(|(name, _)| **name == *segment)
        {
            let table = std::mem::take(list).into_iter().collect();
            *self = Self::Many(table);
        }
        match self {
            Self::Few(list) => {
                let at = match list.iter().position(|(name, _)| **name == *segment) {
                    Some(at) => at,
                    None => {
                        list.push((segment.into(), Node::default()));
                        list.len() - 1
                    }
                };
                &mut list[at].1
            }
            Self::Many(table) => table.entry(segment.into()).or_default(),
        }
    }

    fn nodes(&self) -> Box<dyn Iterator<Item = &Node> + '_> {
        match self {
            Self::Few(list) => Box::new(list.iter().map(|(_, node)| node)),
            Self::Many(table) => Box::new(table.values()),
        }
    }
}

/// Path keys to handler entries; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct DirectoryMap {
    root: Node,
}

impl DirectoryMap {
    /// The entry for `key`, created empty if needed. `key` must be normalized.
    pub(crate) fn entry(&mut self, key: &str) -> &mut Entry {
        let mut node = &mut self.root;
        let mut rest = &key[1..];
        loop {
            match rest.split_once('/') {
                Some((segment, tail)) => {
                    node = node.children.get_or_insert(segment);
                    rest = tail;
                    if rest.is_empty() {
                        return node.directory.get_or_insert_with(Entry::default);
                    }
                }
                None if rest.is_empty() => {
                    return node.directory.get_or_insert_with(Entry::default);
                }
                None => {
                    let leaf = node.children.get_or_insert(rest);
                    return leaf.file.get_or_insert_with(Entry::default);
                }
            }
        }
    }

    /// Every entry on `path`, shallowest first. `path` must be normalized.
    pub(crate) fn matches<'m, 'p>(&'m self, path: &'p str) -> Matches<'m, 'p> {
        Matches {
            node: Some(&self.root),
            rest: path.strip_prefix('/').unwrap_or(path),
            root_pending: true,
        }
    }

    /// The deepest Content handler on `path` (the pipeline finds it during its Pre
    /// walk instead, to walk once).
    #[cfg(test)]
    pub(crate) fn content(&self, path: &str) -> Option<&SharedHandler> {
        self.matches(path).filter_map(|e| e.content.as_ref()).last()
    }

    /// The deepest Stream handler on `path`.
    pub(crate) fn stream(&self, path: &str) -> Option<&SharedHandler> {
        self.matches(path).filter_map(|e| e.stream.as_ref()).last()
    }

    /// Reports whether any path has a Content handler.
    pub(crate) fn has_any_content(&self) -> bool {
        fn walk(node: &Node) -> bool {
            let has = |e: &Option<Entry>| e.as_ref().is_some_and(|e| e.content.is_some());
            has(&node.directory) || has(&node.file) || node.children.nodes().any(walk)
        }
        walk(&self.root)
    }
}

/// Iterator over the entries on one path; see [`DirectoryMap::matches`].
#[derive(Debug)]
pub(crate) struct Matches<'m, 'p> {
    node: Option<&'m Node>,
    rest: &'p str,
    root_pending: bool,
}

impl<'m> Iterator for Matches<'m, '_> {
    type Item = &'m Entry;

    fn next(&mut self) -> Option<&'m Entry> {
        loop {
            let node = self.node?;
            if std::mem::take(&mut self.root_pending) {
                if let Some(entry) = &node.directory {
                    return Some(entry);
                }
                continue;
            }
            if self.rest.is_empty() {
                self.node = None;
                return None;
            }
            let found = match split_segment(self.rest) {
                Some((segment, tail)) => {
                    self.rest = tail;
                    let child = node.children.get(segment);
                    self.node = child;
                    child.and_then(|c| c.directory.as_ref())
                }
                None => {
                    let leaf = node.children.get(self.rest);
                    self.node = None;
                    leaf.and_then(|c| c.file.as_ref())
                }
            };
            if found.is_some() {
                return found;
            }
        }
    }
}

/// `"a/b/c"` → `("a", "b/c")`: `str::split_once` with a byte search, which is
/// cheaper for the short segments of a path (a `/` byte is always a char boundary).
fn split_segment(rest: &str) -> Option<(&str, &str)> {
    let slash = rest.bytes().position(|b| b == b'/')?;
    Some((&rest[..slash], &rest[slash + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;

    /// Builds a map with one Pre handler on each key.
    fn map_with_keys(keys: &[&str]) -> DirectoryMap {
        let mut map = DirectoryMap::default();
        for key in keys {
            map.entry(key)
                .pre
                .push(SharedHandler::new(|_, _| Outcome::Ok));
        }
        map
    }

    /// The keys whose entries `path` stacks, found by identity against each key's entry.
    fn matched_keys(map: &mut DirectoryMap, keys: &[&str], path: &str) -> Vec<String> {
        let addresses: Vec<(String, *const Entry)> = keys
            .iter()
            .map(|k| (k.to_string(), map.entry(k) as *const Entry))
            .collect();
        map.matches(path)
            .map(|entry| {
                let found = addresses.iter().find(|(_, a)| std::ptr::eq(*a, entry));
                found.map(|(k, _)| k.clone()).unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn stacks_every_directory_then_the_file_shallowest_first() {
        let keys = [
            "/",
            "/foo/",
            "/foo/bar/",
            "/foo/bar/baz/",
            "/foo/bar/baz/honk.txt",
            "/other/",
        ];
        let mut map = map_with_keys(&keys);
        assert_eq!(
            matched_keys(&mut map, &keys, "/foo/bar/baz/honk.txt"),
            [
                "/",
                "/foo/",
                "/foo/bar/",
                "/foo/bar/baz/",
                "/foo/bar/baz/honk.txt"
            ]
        );
    }

    #[test]
    fn file_and_directory_keys_do_not_match_each_other() {
        let keys = ["/honk", "/honk/"];
        let mut map = map_with_keys(&keys);
        assert_eq!(matched_keys(&mut map, &keys, "/honk"), ["/honk"]);
        assert_eq!(matched_keys(&mut map, &keys, "/honk/"), ["/honk/"]);
        assert_eq!(matched_keys(&mut map, &keys, "/honk/x"), ["/honk/"]);
        assert!(matched_keys(&mut map, &keys, "/honky").is_empty());
    }

    #[test]
    fn missing_intermediate_directories_are_skipped() {
        let keys = ["/", "/a/b/c/"];
        let mut map = map_with_keys(&keys);
        assert_eq!(
            matched_keys(&mut map, &keys, "/a/b/c/d.txt"),
            ["/", "/a/b/c/"]
        );
        assert_eq!(matched_keys(&mut map, &keys, "/a/x/c/d.txt"), ["/"]);
    }

    #[test]
    fn a_node_with_many_children_still_finds_each() {
        let keys: Vec<String> = (0..3 * FEW_CHILDREN).map(|i| format!("/dir{i}/")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut map = map_with_keys(&keys);
        assert!(matches!(map.root.children, Children::Many(_)));
        for key in &keys {
            let path = format!("{key}file.txt");
            assert_eq!(matched_keys(&mut map, &keys, &path), [*key]);
        }
        assert!(matched_keys(&mut map, &keys, "/dir999/file.txt").is_empty());
    }

    #[test]
    fn the_deepest_content_handler_wins() {
        let mut map = DirectoryMap::default();
        map.entry("/").content = Some(SharedHandler::new(|_, _| Outcome::Ok));
        map.entry("/deep/").content = Some(SharedHandler::new(|_, _| Outcome::Deny));
        let root = map.entry("/").content.clone().expect("registered above");
        let deep = map
            .entry("/deep/")
            .content
            .clone()
            .expect("registered above");
        assert!(
            map.content("/deep/x.html")
                .is_some_and(|h| h.same_as(&deep))
        );
        assert!(map.content("/elsewhere").is_some_and(|h| h.same_as(&root)));
        assert!(map.has_any_content());
        assert!(!DirectoryMap::default().has_any_content());
    }
}
