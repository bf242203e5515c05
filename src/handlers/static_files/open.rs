//! [`Root`]: opening files under the static root by the symlink policy, inline (no
//! blocking-pool hop: opening a file is one system call).
//!
//! With symlinks kept inside the root, Linux resolves the path beneath a descriptor
//! of the root opened once (`openat2` with `RESOLVE_BENEATH`): one system call checks
//! every component, where resolving the path again in user space (`canonicalize`)
//! took a `readlink` per component on every request. `RESOLVE_BENEATH` also refuses
//! an absolute symlink that points back inside the root, and the kernel may not
//! offer `openat2` at all (old kernels, some seccomp filters): then, and on other
//! platforms, the path is resolved in full and must lead inside the resolved root.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::cache::Identity;

/// Why a file under the root is not served.
#[derive(Debug)]
pub(super) enum Refused {
    /// Not there, not reachable, a name too long to exist, or a symlink leads out of
    /// the root: `404`.
    NotFound,
    /// Opening failed otherwise (permissions, too many open files): `500`.
    Failed(io::Error),
}

impl From<io::Error> for Refused {
    fn from(error: io::Error) -> Self {
        let missing = matches!(
            error.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::InvalidInput
        ) || matches!(error.raw_os_error(), Some(ELOOP | ENAMETOOLONG));
        if missing {
            Self::NotFound
        } else {
            Self::Failed(error)
        }
    }
}

/// `ELOOP`: too many symlinks, or a final symlink where none may be.
const ELOOP: i32 = 40;
/// `ENAMETOOLONG`: a name or path longer than any file can have.
const ENAMETOOLONG: i32 = 36;
/// `EMFILE`, `ENFILE`: out of file descriptors, for the process or the system.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// The root directory and how files under it are opened.
#[derive(Debug)]
pub(super) struct Root {
    path: PathBuf,
    /// The root with symlinks resolved, once, for the containment check.
    real: Option<PathBuf>,
    follow_symlinks_out: bool,
    #[cfg(target_os = "linux")]
    beneath: Option<beneath::Beneath>,
}

/// A file opened under the root.
#[derive(Debug)]
pub(super) struct Opened {
    pub(super) file: File,
    /// Opened beneath the held descriptor of the root (`openat2` with
    /// `RESOLVE_BENEATH`), on a file system whose `statx` tells the truth: only then
    /// does [`Root::identity`] see what a later open would, so only then may the
    /// content be cached.
    pub(super) validatable: bool,
}

impl Root {
    pub(super) fn new(path: PathBuf, follow_symlinks_out: bool) -> Self {
        Self {
            real: path.canonicalize().ok(),
            #[cfg(target_os = "linux")]
            beneath: beneath::Beneath::new(&path),
            path,
            follow_symlinks_out,
        }
    }

    /// The root as configured.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The resolved root symlinks must stay inside; `None` when they may lead out
    /// (or the root does not exist, when nothing is served).
    pub(super) fn walls(&self) -> Option<&Path> {
        (!self.follow_symlinks_out).then_some(self.real.as_deref())?
    }

    pub(super) fn follows_symlinks_out(&self) -> bool {
        self.follow_symlinks_out
    }

    /// Opens `relative` (`/`-separated plain names, no `.` or `..`; empty for the
    /// root itself) for reading, by the symlink policy.
    pub(super) fn open(&self, relative: &str) -> Result<Opened, Refused> {
        self.try_open(relative).map_err(|refused| match refused {
            // Out of file descriptors, a missing file is still a 404: looking needs none.
            Refused::Failed(error)
                if matches!(error.raw_os_error(), Some(EMFILE | ENFILE))
                    && !self.path.join(relative).try_exists().unwrap_or(true) =>
            {
                Refused::NotFound
            }
            refused => refused,
        })
    }

    /// The identity of what `relative` names now, not following a final symlink, by
    /// one `statx` relative to the root's descriptor: how a cached file is
    /// validated. `None` whenever files are not opened beneath that descriptor —
    /// symlinks may lead out of the root (files are opened by path: a root that is
    /// itself a symlink swapped by a deploy would keep the old tree here), `openat2`
    /// turned out unsupported, other platforms, the root could not be opened — or
    /// the root is on a network or shared file system (see
    /// [`beneath::attributes_may_be_stale`]): then nothing can be cached.
    pub(super) fn identity(&self, relative: &str) -> Option<io::Result<Identity>> {
        self.identity_by(relative, false)
    }

    /// [`Root::identity`] of a directory, following a final symlink: the directory a
    /// file reached through it lives in (whose times show names added to it).
    pub(super) fn directory_identity(&self, relative: &str) -> Option<io::Result<Identity>> {
        self.identity_by(relative, true)
    }

    /// Whether `file`, opened beneath the root with `metadata`, may be validated by
    /// [`Root::identity`]: also not on a network or shared file system mounted
    /// below the root.
    pub(super) fn trusts(&self, file: &File, metadata: &std::fs::Metadata) -> bool {
        #[cfg(target_os = "linux")]
        if let Some(beneath) = &self.beneath {
            use std::os::unix::fs::MetadataExt;
            return beneath.trusts(file, metadata.dev());
        }
        let _ = (file, metadata);
        false
    }

    fn identity_by(&self, relative: &str, follow: bool) -> Option<io::Result<Identity>> {
        #[cfg(target_os = "linux")]
        if let Some(beneath) = &self.beneath
            && !self.follow_symlinks_out
            && beneath.validates()
        {
            return Some(beneath.identity(relative, follow));
        }
        let _ = (relative, follow);
        None
    }

    fn try_open(&self, relative: &str) -> Result<Opened, Refused> {
        #[cfg(target_os = "linux")]
        if let Some(beneath) = &self.beneath
            && !self.follow_symlinks_out
        {
            match beneath.open(relative) {
                beneath::Opened::File(file) => {
                    return Ok(Opened {
                        file,
                        validatable: beneath.validates(),
                    });
                }
                beneath::Opened::Error(error) => return Err(error.into()),
                // Resolved in full below.
                beneath::Opened::LeftRoot | beneath::Opened::Unsupported => {}
            }
        }
        let candidate = if relative.is_empty() {
            self.path.clone()
        } else {
            self.path.join(relative)
        };
        // Opened by path: what the held descriptor of the root sees may differ.
        let by_path = |file| Opened {
            file,
            validatable: false,
        };
        if self.follow_symlinks_out {
            return Ok(by_path(File::open(candidate)?));
        }
        let real = candidate.canonicalize()?;
        if !self
            .real
            .as_ref()
            .is_some_and(|root| real.starts_with(root))
        {
            tracing::warn!(path = %candidate.display(), "refused: a symlink leads out of the static root");
            return Err(Refused::NotFound);
        }
        Ok(by_path(File::open(real)?))
    }
}

#[cfg(target_os = "linux")]
mod beneath {
    //! `openat2(RESOLVE_BENEATH)` on a descriptor of the root.

    use std::fs::File;
    use std::io;
    use std::os::fd::OwnedFd;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};

    use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, StatxFlags};
    use rustix::io::Errno;

    use super::Identity;

    #[derive(Debug)]
    pub(super) struct Beneath {
        root: OwnedFd,
        /// Cleared when the kernel refuses `openat2` itself.
        supported: AtomicBool,
        /// Whether `statx` on the root's file system tells the truth now.
        truthful: bool,
        /// The root's device: a file on another is on another mount.
        device: u64,
    }

    pub(super) enum Opened {
        File(File),
        Error(io::Error),
        /// A symlink on the way leads out of the root or is absolute: decided by
        /// resolving the path in full.
        LeftRoot,
        Unsupported,
    }

    /// Whether a file system (by its `statfs` magic number) may answer `statx`
    /// from attributes cached on the client for seconds — NFS, CIFS/SMB, FUSE
    /// (which virtiofs and most user-space file systems are), 9p, Ceph, AFS, Coda,
    /// the cluster file systems — so a change made elsewhere would go unseen.
    pub(super) fn attributes_may_be_stale(magic: u32) -> bool {
        const NFS: u32 = 0x6969;
        const SMB: u32 = 0x517b;
        const CIFS: u32 = 0xff53_4d42;
        const SMB2: u32 = 0xfe53_4d42;
        const FUSE: u32 = 0x6573_5546;
        const V9FS: u32 = 0x0102_1997;
        const CEPH: u32 = 0x00c3_6400;
        const AFS: u32 = 0x5346_414f;
        const KAFS: u32 = 0x6b41_4653;
        const CODA: u32 = 0x7375_7245;
        const OCFS2: u32 = 0x7461_636f;
        const GFS2: u32 = 0x0116_1970;
        const NCP: u32 = 0x564c;
        const ORANGEFS: u32 = 0x2011_1920;
        matches!(
            magic,
            NFS | SMB
                | CIFS
                | SMB2
                | FUSE
                | V9FS
                | CEPH
                | AFS
                | KAFS
                | CODA
                | OCFS2
                | GFS2
                | NCP
                | ORANGEFS
        )
    }

    /// Whether the file system `fd` is on answers `statx` truthfully.
    fn truthful(fd: impl std::os::fd::AsFd) -> bool {
        // `f_type`'s width differs by platform; the magic numbers fit 32 bits.
        rustix::fs::fstatfs(fd).is_ok_and(|stat| !attributes_may_be_stale(stat.f_type as u32))
    }

    impl Beneath {
        /// A descriptor of the root directory, held for the handler's lifetime; `None`
        /// when it cannot be opened now (then every request resolves in full).
        pub(super) fn new(root: &Path) -> Option<Self> {
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let root = rustix::fs::open(root, flags, Mode::empty()).ok()?;
            let truthful = truthful(&root);
            let device = rustix::fs::fstat(&root).ok()?.st_dev;
            Some(Self {
                root,
                supported: AtomicBool::new(true),
                truthful,
                device,
            })
        }

        /// Whether `statx` tells the truth about `file`, of `device`: on the root's
        /// own mount as decided once, on another (an NFS share mounted inside the
        /// root) by one `fstatfs` of the file.
        pub(super) fn trusts(&self, file: &File, device: u64) -> bool {
            device == self.device || truthful(file)
        }

        /// Whether files opened beneath the root can be validated by
        /// [`Beneath::identity`]: `openat2` works (a fallback to the path opens
        /// by path from then on) and the file system's `statx` is not cached.
        pub(super) fn validates(&self) -> bool {
            self.truthful && self.supported.load(Ordering::Relaxed)
        }

        pub(super) fn open(&self, relative: &str) -> Opened {
            if !self.supported.load(Ordering::Relaxed) {
                return Opened::Unsupported;
            }
            let path = if relative.is_empty() { "." } else { relative };
            let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
            // EAGAIN: a rename raced the lookup; the kernel asks for a retry.
            for _ in 0..3 {
                match rustix::fs::openat2(&self.root, path, flags, Mode::empty(), resolve) {
                    Ok(fd) => return Opened::File(File::from(fd)),
                    Err(Errno::XDEV) => return Opened::LeftRoot,
                    Err(Errno::AGAIN | Errno::INTR) => continue,
                    Err(Errno::NOSYS | Errno::PERM) => {
                        self.supported.store(false, Ordering::Relaxed);
                        return Opened::Unsupported;
                    }
                    Err(errno) => return Opened::Error(errno.into()),
                }
            }
            Opened::LeftRoot
        }

        /// See [`super::Root::identity`].
        pub(super) fn identity(&self, relative: &str, follow: bool) -> io::Result<Identity> {
            let path = if relative.is_empty() { "." } else { relative };
            let flags = if follow {
                AtFlags::empty()
            } else {
                AtFlags::SYMLINK_NOFOLLOW
            };
            let wanted = StatxFlags::TYPE
                | StatxFlags::MODE
                | StatxFlags::INO
                | StatxFlags::SIZE
                | StatxFlags::MTIME
                | StatxFlags::CTIME;
            let stat = rustix::fs::statx(&self.root, path, flags, wanted)?;
            let time = |t: rustix::fs::StatxTimestamp| (t.tv_sec, t.tv_nsec);
            Ok(Identity {
                device: rustix::fs::makedev(stat.stx_dev_major, stat.stx_dev_minor),
                inode: stat.stx_ino,
                mode: u32::from(stat.stx_mode),
                size: stat.stx_size,
                modified: time(stat.stx_mtime),
                changed: time(stat.stx_ctime),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_too_long_for_any_file_is_not_found() {
        for follow_symlinks_out in [false, true] {
            let root = Root::new(std::env::temp_dir(), follow_symlinks_out);
            let opened = root.open(&"a".repeat(300));
            assert!(matches!(opened, Err(Refused::NotFound)), "{opened:?}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_files_opened_beneath_the_held_root_can_be_validated() {
        std::fs::write(std::env::temp_dir().join("poco-httpd-open-probe"), "x").unwrap();
        let beneath = Root::new(std::env::temp_dir(), false);
        let opened = beneath.open("poco-httpd-open-probe").unwrap();
        // (tmpfs or a local disk here; on a network file system neither validates.)
        assert_eq!(opened.validatable, beneath.identity("").is_some());
        let follow = Root::new(std::env::temp_dir(), true);
        assert!(!follow.open("poco-httpd-open-probe").unwrap().validatable);
        // A file on the root's own mount is trusted without another look.
        let probe = beneath.open("poco-httpd-open-probe").unwrap().file;
        assert!(beneath.trusts(&probe, &probe.metadata().unwrap()));
        assert!(follow.identity("poco-httpd-open-probe").is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn network_and_user_space_file_systems_are_not_trusted_for_validation() {
        for magic in [0x6969, 0xff53_4d42, 0xfe53_4d42, 0x6573_5546, 0x0102_1997] {
            assert!(beneath::attributes_may_be_stale(magic), "{magic:#x}");
        }
        // ext4, xfs, btrfs, tmpfs, overlayfs
        for magic in [0xef53, 0x5846_5342, 0x9123_683e, 0x0102_1994, 0x794c_7630] {
            assert!(!beneath::attributes_may_be_stale(magic), "{magic:#x}");
        }
    }
}
