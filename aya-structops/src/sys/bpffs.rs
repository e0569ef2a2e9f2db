//! The BPF filesystem (bpffs), where objects are pinned.

#[cfg(test)]
use std::sync::Mutex;
use std::{ffi::CString, io, os::unix::ffi::OsStrExt as _, path::Path};

/// `statfs(2)` `f_type` of a bpffs (`BPF_FS_MAGIC` in linux/magic.h).
pub(crate) const BPF_FS_MAGIC: u32 = 0xcafe_4a11;

/// Serializes check-then-mount in [`ensure_bpffs`] so that two threads do not stack two bpffs
/// instances on the same directory (the second would hide pins made in the first).
#[cfg(test)]
static MOUNT_LOCK: Mutex<()> = Mutex::new(());

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Whether `path` exists and lies on a bpffs (the mount point itself or anything below it).
pub(crate) fn bpffs_mounted(path: &Path) -> bool {
    let Ok(cpath) = c_path(path) else {
        return false;
    };
    // SAFETY: `statfs` is plain data; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `cpath` is NUL-terminated and `st` a valid out-pointer.
    if unsafe { libc::statfs(cpath.as_ptr(), &mut st) } != 0 {
        return false;
    }
    // `f_type` is signed and of platform width; the magic is compared as its low 32 bits.
    st.f_type as u32 == BPF_FS_MAGIC
}

/// Makes sure `dir` is a directory on a bpffs, so objects can be pinned in it.
///
/// - `dir` on a bpffs already: nothing to do.
/// - `dir` missing below a bpffs (e.g. `/sys/fs/bpf/myapp` with `/sys/fs/bpf` mounted): it is
///   created there.
/// - otherwise `dir` is created if needed and a new bpffs is mounted on it (`mode=0700`), which
///   needs `CAP_SYS_ADMIN`. Pass the mount point itself (usually `/sys/fs/bpf`) in this case:
///   mounting on a subdirectory of some other filesystem works but is rarely what you want.
#[cfg(test)]
pub(crate) fn ensure_bpffs(dir: &Path) -> io::Result<()> {
    let _guard = MOUNT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if dir.exists() {
        if bpffs_mounted(dir) {
            return Ok(());
        }
        return mount_bpffs(dir);
    }
    let parent_is_bpffs = dir
        .ancestors()
        .skip(1)
        .find(|p| !p.as_os_str().is_empty() && p.exists())
        .is_some_and(bpffs_mounted);
    std::fs::create_dir_all(dir)?;
    if parent_is_bpffs {
        Ok(())
    } else {
        mount_bpffs(dir)
    }
}

/// `mount -t bpf -o mode=0700 bpf <dir>`.
#[cfg(test)]
fn mount_bpffs(dir: &Path) -> io::Result<()> {
    let target = c_path(dir)?;
    tracing::debug!(dir = %dir.display(), "mounting bpffs");
    // SAFETY: all strings are NUL-terminated and outlive the call.
    let ret = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            0,
            c"mode=0700".as_ptr().cast(),
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil;

    #[test]
    fn non_bpffs_paths() {
        assert!(!bpffs_mounted(Path::new("/")));
        assert!(!bpffs_mounted(Path::new("/proc")));
        assert!(!bpffs_mounted(Path::new("/nonexistent/path/for/sure")));
        assert!(!bpffs_mounted(Path::new("/a\0b")));
    }

    #[test]
    fn ensure_bpffs_creates_subdir_and_mounts_elsewhere() {
        if testutil::skip_unless_root("ensure_bpffs_creates_subdir_and_mounts_elsewhere") {
            return;
        }
        // Below an existing bpffs: a plain mkdir.
        let dir = testutil::BpffsDir::new("ensure_bpffs");
        let sub = dir.path().join("a/b");
        ensure_bpffs(&sub).unwrap();
        assert!(sub.is_dir() && bpffs_mounted(&sub));
        std::fs::remove_dir(&sub).unwrap();
        std::fs::remove_dir(dir.path().join("a")).unwrap();
        // Idempotent.
        ensure_bpffs(dir.path()).unwrap();

        // A fresh mount on a tmp directory.
        let tmp = std::env::temp_dir().join(format!("aya-structops-bpffs-{}", std::process::id()));
        let _ = std::fs::remove_dir(&tmp);
        ensure_bpffs(&tmp).unwrap();
        let mounted = bpffs_mounted(&tmp);
        let cpath = c_path(&tmp).unwrap();
        // SAFETY: NUL-terminated path.
        let umount = unsafe { libc::umount2(cpath.as_ptr(), libc::MNT_DETACH) };
        std::fs::remove_dir(&tmp).unwrap();
        assert!(mounted, "bpffs not mounted on {}", tmp.display());
        assert_eq!(umount, 0, "{}", io::Error::last_os_error());
    }
}
