//! [`ContentCache`]: the bytes, validators and ready-made headers of small hot
//! files, keyed by their path under the root and checked against the file system on
//! every request — never served on trust.
//!
//! # Validation
//!
//! A hit costs one system call: a `statx` of the path, relative to the descriptor of
//! the root the handler holds open (not following a final symlink), whose device,
//! inode, type and permission bits, size, modification and change times (to the
//! nanosecond) must all equal those of the file the entry was read from. Any
//! difference, or any error, drops the entry and the request takes the full path
//! (`openat2` beneath the root, `statx`, `read`), which refills it. So a file that was
//! written, truncated, replaced (a new inode: an editor's save, `rename` over it),
//! renamed away, deleted, or had its permissions or owner changed (`chmod`, `chown`
//! and every write set the change time, which no system call can set back) is served
//! fresh, or refused, on the very next request.
//!
//! # Why the root and the symlink policy still hold
//!
//! An entry is made only from a file the full path opened by the symlink policy, and
//! only when the path's own `statx`, taken after the file was read, names that same
//! file: a final symlink (even one that stays inside the root) therefore never gets
//! an entry, and neither does a file swapped under the path while it was read. A hit
//! then means the path still leads to an inode that was reachable beneath the root by
//! the policy, unchanged since. If a component is swapped for a symlink — the file
//! itself (the `statx` sees the link's own inode, not the file's), or a directory on
//! the way that now leads elsewhere (another inode at the end) — the identity differs
//! and the full path decides, refusing what the policy refuses. The one case the
//! `statx` cannot tell apart is a directory on the way replaced by a symlink that
//! leads, outside the root, to *the very same unchanged inode* (the directory moved
//! out and linked back): what is sent then is the content that was served from that
//! path before, byte for byte, and nothing else; the first change to the file ends
//! it. Permissions: the server's own access to the file cannot be revoked without
//! changing its change time, and a directory on the way made unsearchable makes the
//! `statx` fail, so both end the entry.
//!
//! # Precompressed siblings
//!
//! A client that accepts `br`, `zstd` or `gzip` must get `page.html.gz` once it
//! exists. When an entry is made, the file's directory is looked at: if none of the
//! siblings exists and the directory has settled, the entry keeps the directory's
//! identity, and such a client is answered from the entry only while one more
//! `statx`, of the directory, shows it unchanged — a name added, removed or renamed
//! in a directory changes its times. Otherwise it takes the full path.
//!
//! # Limits
//!
//! Time stamps are only as fine as the kernel's clock tick, so a file rewritten
//! within the tick after it was read, to the same size, would look unchanged (nginx's
//! `open_file_cache` has the same blind spot, for its whole validity period). Entries
//! are therefore made only from files whose modification and change times are at
//! least [`SETTLED`] (two seconds, FAT's step) old when read: any later change
//! carries a later time. Left open: the clock set back to the very tick of a cached
//! file's times, and file systems that keep no change time. A file reached through a
//! final symlink is never cached (see above), and range requests always take the
//! full path. Each `StaticFiles` has its own cache, made anew when its policies
//! change, so no entry outlives the policy it was checked by.
//!
//! Only a file opened beneath the held descriptor of the root (`openat2` with
//! `RESOLVE_BENEATH`) gets an entry: the `statx` relative to that descriptor then
//! sees what the next open would. With symlinks allowed out of the root, or once
//! `openat2` proved unsupported, files are opened by their path, which can lead
//! elsewhere than the descriptor (a root that is a symlink switched by a deploy,
//! `current -> v2`), so nothing is cached. Nor on network and shared file systems
//! (NFS, CIFS/SMB, FUSE — virtiofs included —, 9p, Ceph, AFS, cluster file
//! systems, told by `fstatfs` of the root, and of a file on another mount below
//! it): their `statx` may answer from attributes the client cached for seconds,
//! missing changes made elsewhere.
//!
//! Not seen, as by nginx's `open_file_cache`: a write through a shared memory
//! mapping whose dirty pages are not yet written back (no time changes until
//! then), and a security policy (SELinux, AppArmor) changed to deny a file — a
//! label or policy change that sets no change time on the file.
//!
//! # Bounds
//!
//! The cache holds at most `total` bytes (bodies and names, plus a fixed allowance
//! per entry for its headers and bookkeeping, measured) and no file over `per_file`
//! bytes; an entry that alone would outweigh `total` is not made. The bound is per
//! `StaticFiles`: each static location or virtual host has its own cache. When an
//! entry would not fit, a clock hand goes round the entries from where it stopped
//! last (CLOCK, second chance): it clears the flag of an entry used since it last
//! passed, and drops one that was not, until the entry fits — amortised a step or
//! two per insert, however many entries there are. Entries live behind an `RwLock`: hits only read it (and set a
//! flag), so workers do not queue behind each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::HeaderMap;

use super::validators::Validators;

/// How old a file's modification and change times must be for its content to be
/// cached: more than any kernel's clock tick and FAT's two-second steps, so a later
/// change cannot carry the same times.
pub(super) const SETTLED: Duration = Duration::from_secs(2);

/// What each entry costs besides its body and its name: the `Entry` behind its
/// `Arc` (identity, validators, the header map's own table and its five headers'
/// buckets and values — about 1,170 bytes measured), the map's slot and the clock
/// ring's slot. Rounded up: the bound is a promise about memory.
const ENTRY_OVERHEAD: usize = 1280;

/// What identifies one version of one file: its device and inode, type and
/// permission bits, size, and modification and change times to the nanosecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Identity {
    pub(super) device: u64,
    pub(super) inode: u64,
    pub(super) mode: u32,
    pub(super) size: u64,
    pub(super) modified: (i64, u32),
    pub(super) changed: (i64, u32),
}

impl Identity {
    /// The identity of an opened file, from its metadata (`None` where the platform
    /// does not tell inodes and change times).
    #[cfg(unix)]
    pub(super) fn of(metadata: &std::fs::Metadata) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let nanos = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        Some(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            mode: metadata.mode(),
            size: metadata.size(),
            modified: (metadata.mtime(), nanos(metadata.mtime_nsec())),
            changed: (metadata.ctime(), nanos(metadata.ctime_nsec())),
        })
    }

    #[cfg(not(unix))]
    pub(super) fn of(_metadata: &std::fs::Metadata) -> Option<Self> {
        None
    }

    /// Whether the modification and change times both lie at least [`SETTLED`]
    /// before `now` (a time ahead of the clock never has).
    pub(super) fn settled(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        let settled = |(secs, nanos): (i64, u32)| {
            u64::try_from(secs)
                .is_ok_and(|secs| Duration::new(secs, nanos.min(999_999_999)) + SETTLED <= now)
        };
        settled(self.modified) && settled(self.changed)
    }
}

/// One cached file: what a `200` (or `304`, `412`, `HEAD`) for it is made of.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) identity: Identity,
    pub(super) body: Bytes,
    pub(super) validators: Validators,
    /// `Content-Type`, `ETag`, `Last-Modified`, `Vary`, `Accept-Ranges`: cloned into
    /// the response whole.
    pub(super) headers: HeaderMap,
    /// The identity of the file's directory when it was seen to hold none of the
    /// file's precompressed siblings (see `Inner::bare_directory`).
    pub(super) bare_directory: Option<Identity>,
    /// Set by each hit, cleared by the eviction sweep (second chance).
    used: AtomicBool,
}

impl Entry {
    pub(super) fn new(
        identity: Identity,
        body: Bytes,
        validators: Validators,
        headers: HeaderMap,
        bare_directory: Option<Identity>,
    ) -> Self {
        Self {
            identity,
            body,
            validators,
            headers,
            bare_directory,
            used: AtomicBool::new(false),
        }
    }

    fn weight(&self, name: &str) -> usize {
        weight(self.body.len(), name)
    }
}

/// The content cache's bounds: total bytes held, and the largest file cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Bounds {
    pub(super) total: usize,
    pub(super) per_file: usize,
}

/// Small files' content by their path under the root (see the module doc).
#[derive(Debug)]
pub(super) struct ContentCache {
    bounds: Bounds,
    state: RwLock<State>,
}

/// What an entry for a body of `size` bytes named `name` weighs.
fn weight(size: usize, name: &str) -> usize {
    size.saturating_add(name.len())
        .saturating_add(ENTRY_OVERHEAD)
}

/// The entries, and the ring the clock hand goes round for eviction: each entry has
/// a slot in the ring, and the map says which.
#[derive(Debug, Default)]
struct State {
    slots: HashMap<Arc<str>, usize>,
    ring: Vec<Option<Slot>>,
    /// Empty places in `ring`, filled before it grows.
    free: Vec<usize>,
    /// Where the next sweep starts: just after where the last one stopped.
    hand: usize,
    /// The sum of the entries' weights.
    weight: usize,
}

#[derive(Debug)]
struct Slot {
    name: Arc<str>,
    entry: Arc<Entry>,
}

impl ContentCache {
    /// An empty cache within `bounds`.
    pub(super) fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            state: RwLock::new(State::default()),
        }
    }

    pub(super) fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// Whether a body of `size` bytes named `name` may be cached: within the
    /// per-file bound, and its whole weight within the total.
    pub(super) fn admits(&self, size: u64, name: &str) -> bool {
        usize::try_from(size).is_ok_and(|size| {
            size <= self.bounds.per_file && weight(size, name) <= self.bounds.total
        })
    }

    /// The entry for `name`, marked used; still to be validated by the caller.
    pub(super) fn get(&self, name: &str) -> Option<Arc<Entry>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let entry = state.entry(name)?;
        // Only written when it changes: a hot entry's flag stays in a shared cache line.
        if !entry.used.load(Ordering::Relaxed) {
            entry.used.store(true, Ordering::Relaxed);
        }
        Some(Arc::clone(entry))
    }

    /// Whether the entry for `name` was made from the file version `identity` and
    /// found its directory bare of precompressed siblings, so refilling it would
    /// change nothing. (One made before its directory had settled is refilled: it
    /// may now serve clients that accept a coding too.)
    pub(super) fn holds(&self, name: &str, identity: &Identity) -> bool {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .entry(name)
            .is_some_and(|entry| entry.identity == *identity && entry.bare_directory.is_some())
    }

    /// Drops `stale`, the entry for `name`, unless another request has replaced it.
    pub(super) fn remove(&self, name: &str, stale: &Arc<Entry>) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state
            .entry(name)
            .is_some_and(|entry| Arc::ptr_eq(entry, stale))
        {
            state.remove(name);
        }
    }

    /// Keeps `entry` for `name` (replacing any older one), making room by the sweep
    /// if needed; an entry over the bounds is not kept.
    pub(super) fn insert(&self, name: &str, entry: Entry) {
        if !self.admits(entry.body.len() as u64, name) {
            return;
        }
        let weight = entry.weight(name);
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.remove(name);
        state.make_room(weight, self.bounds.total);
        state.add(name, Arc::new(entry), weight);
    }

    /// How many bytes the entries weigh.
    pub(super) fn weight(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .weight
    }

    #[cfg(test)]
    fn contains(&self, name: &str) -> bool {
        self.state.read().unwrap().slots.contains_key(name)
    }
}

impl State {
    fn entry(&self, name: &str) -> Option<&Arc<Entry>> {
        let &slot = self.slots.get(name)?;
        self.ring[slot].as_ref().map(|slot| &slot.entry)
    }

    fn add(&mut self, name: &str, entry: Arc<Entry>, weight: usize) {
        let name: Arc<str> = name.into();
        let slot = Some(Slot {
            name: Arc::clone(&name),
            entry,
        });
        let place = match self.free.pop() {
            Some(place) => {
                self.ring[place] = slot;
                place
            }
            None => {
                self.ring.push(slot);
                self.ring.len() - 1
            }
        };
        self.slots.insert(name, place);
        self.weight += weight;
    }

    fn remove(&mut self, name: &str) {
        let Some(place) = self.slots.remove(name) else {
            return;
        };
        if let Some(slot) = self.ring[place].take() {
            self.weight -= slot.entry.weight(&slot.name);
        }
        self.free.push(place);
        // Mostly holes: close them up, so the hand does not walk over them (paid
        // for by the removals that made them).
        if self.free.len() > 32 && self.free.len() * 2 > self.ring.len() {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let at = self.hand;
        let mut kept = Vec::with_capacity(self.ring.len() - self.free.len());
        let mut hand = 0;
        for (place, slot) in std::mem::take(&mut self.ring).into_iter().enumerate() {
            if place == at {
                hand = kept.len();
            }
            if let Some(slot) = slot {
                self.slots.insert(Arc::clone(&slot.name), kept.len());
                kept.push(Some(slot));
            }
        }
        self.ring = kept;
        self.free.clear();
        self.hand = if hand < self.ring.len() { hand } else { 0 };
    }

    /// Drops entries until `weight` more fits in `total`, going round the ring from
    /// where the hand stopped last (CLOCK): an entry used since the hand last passed
    /// has its flag cleared and is passed over, an unused one is dropped. Each step
    /// drops an entry or clears a flag, so the work is amortised O(1) per insert.
    fn make_room(&mut self, weight: usize, total: usize) {
        // Two rounds clear every flag and then drop; bounded all the same.
        let mut steps = 2 * self.ring.len() + 1;
        while self.weight + weight > total && !self.slots.is_empty() && steps > 0 {
            steps -= 1;
            if self.hand >= self.ring.len() {
                self.hand = 0;
            }
            let place = self.hand;
            self.hand += 1;
            let Some(slot) = &self.ring[place] else {
                continue;
            };
            if slot.entry.used.swap(false, Ordering::Relaxed) {
                continue;
            }
            let name = Arc::clone(&slot.name);
            self.remove(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(inode: u64) -> Identity {
        Identity {
            device: 1,
            inode,
            mode: 0o100_644,
            size: 10,
            modified: (1_700_000_000, 5),
            changed: (1_700_000_000, 7),
        }
    }

    fn entry(size: usize) -> Entry {
        let metadata = std::fs::metadata(std::env::temp_dir()).unwrap();
        Entry::new(
            identity(size as u64),
            Bytes::from(vec![b'x'; size]),
            Validators::of(&metadata),
            HeaderMap::new(),
            None,
        )
    }

    fn cache(total: usize, per_file: usize) -> ContentCache {
        ContentCache::new(Bounds { total, per_file })
    }

    #[test]
    fn a_file_over_the_per_file_bound_is_not_cached() {
        let cache = cache(1 << 20, 1000);
        cache.insert("small", entry(1000));
        cache.insert("large", entry(1001));
        assert!(cache.contains("small"));
        assert!(!cache.contains("large"));
        assert_eq!(cache.weight(), weight(1000, "small"));
    }

    #[test]
    fn the_total_stays_within_its_bound_as_files_come_and_go() {
        let total = 10 * (1000 + ENTRY_OVERHEAD);
        let cache = cache(total, 4000);
        for round in 0..200 {
            let name = format!("file{}", round % 37);
            cache.insert(&name, entry(100 + (round * 131) % 3900));
            assert!(cache.weight() <= total, "round {round}: {}", cache.weight());
            // A hit now and then, so the sweep has used entries to spare.
            if round % 3 == 0 {
                cache.get(&name);
            }
        }
        let state = cache.state.read().unwrap();
        let sum: usize = (state.ring.iter().flatten())
            .map(|slot| slot.entry.weight(&slot.name))
            .sum();
        assert_eq!(state.slots.len(), state.ring.iter().flatten().count());
        assert_eq!(sum, state.weight, "the kept weight is the entries' sum");
    }

    #[test]
    fn the_sweep_keeps_entries_used_since_the_last_one() {
        let total = 3 * weight(100, "a");
        let cache = cache(total, 100);
        cache.insert("a", entry(100));
        cache.insert("b", entry(100));
        cache.insert("c", entry(100));
        cache.get("a");
        cache.insert("d", entry(100));
        assert!(cache.contains("a"), "used since: kept");
        assert!(cache.contains("d"));
        assert_eq!(
            ["b", "c"]
                .iter()
                .filter(|name| cache.contains(name))
                .count(),
            1,
            "one unused entry made room"
        );
    }

    #[test]
    fn an_entry_whose_name_makes_it_outweigh_the_total_is_not_cached() {
        let cache = cache(700, 100);
        let long = "n".repeat(200);
        assert!(!cache.admits(10, &long));
        cache.insert(&long, entry(10));
        assert!(!cache.contains(&long));
        assert_eq!(cache.weight(), 0);
        let roomy = self::cache(weight(10, &long), 100);
        roomy.insert(&long, entry(10));
        assert_eq!(roomy.weight(), weight(10, &long), "the name is weighed");
        assert!(roomy.weight() >= 10 + 200 + 1000, "an honest overhead");
    }

    #[test]
    fn the_clock_hand_goes_on_from_where_it_stopped() {
        let total = 3 * weight(100, "a");
        let cache = cache(total, 100);
        for name in ["a", "b", "c"] {
            cache.insert(name, entry(100));
        }
        cache.insert("d", entry(100));
        assert!(!cache.contains("a"), "the first unused entry went");
        // `d` took `a`'s place in the ring, behind the hand: `b` goes next.
        cache.insert("e", entry(100));
        assert!(cache.contains("d") && cache.contains("c") && cache.contains("e"));
        assert!(!cache.contains("b"));
        cache.insert("f", entry(100));
        assert!(!cache.contains("c"));
        assert!(cache.weight() <= total);
    }

    #[test]
    fn holes_left_by_removals_are_closed_up() {
        let cache = cache(1 << 20, 100);
        let names: Vec<String> = (0..100).map(|n| format!("f{n}")).collect();
        for name in &names {
            cache.insert(name, entry(10));
        }
        for name in &names[..80] {
            let stale = cache.get(name).unwrap();
            cache.remove(name, &stale);
        }
        let state = cache.state.read().unwrap();
        assert!(state.ring.len() < 100, "compacted: {}", state.ring.len());
        assert_eq!(state.ring.iter().flatten().count(), 20);
        for (name, &place) in &state.slots {
            assert_eq!(&*state.ring[place].as_ref().unwrap().name, &**name);
        }
    }

    #[test]
    fn a_replaced_entry_is_not_removed_by_a_stale_request() {
        let cache = cache(1 << 20, 1000);
        cache.insert("a", entry(10));
        let stale = cache.get("a").unwrap();
        cache.insert("a", entry(20));
        cache.remove("a", &stale);
        assert_eq!(cache.get("a").unwrap().body.len(), 20);
        let fresh = cache.get("a").unwrap();
        cache.remove("a", &fresh);
        assert!(!cache.contains("a"));
        assert_eq!(cache.weight(), 0);
    }

    #[test]
    fn only_times_two_seconds_in_the_past_are_settled() {
        let at = |secs: u64, nanos: u32| SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
        let mut file = identity(1);
        assert!(file.settled(at(1_700_000_002, 7)));
        assert!(!file.settled(at(1_700_000_002, 6)), "changed 7 ns after 0");
        assert!(!file.settled(at(1_700_000_000, 7)));
        file.modified = (1_700_000_001, 0);
        assert!(!file.settled(at(1_700_000_002, 7)), "modified too recently");
        assert!(
            !file.settled(at(1_600_000_000, 0)),
            "a change time ahead of the clock"
        );
    }
}
