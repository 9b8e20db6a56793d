//! A LazyFS mount, driven through `powercut.sh` (see `../shared/tools/lazyfs/README.md`): it
//! serializes the commands to LazyFS's FIFO and does a power cut in the order that makes it
//! one (kill -9 and wait, drop unsynced data, unmount, mount).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A mounted LazyFS file system: `root` (the backing directory) seen through `mnt`.
pub struct Mount {
    script: PathBuf,
    state: PathBuf,
    mnt: PathBuf,
}

impl Mount {
    /// Mounts LazyFS at `dir/mnt` over `dir/root`.
    ///
    /// # Errors
    /// Why LazyFS cannot be used here: no `/dev/fuse`, no `fusermount3`, LazyFS not built,
    /// or a mount that fails.
    pub fn new(script: &Path, dir: &Path) -> Result<Mount> {
        if !Path::new("/dev/fuse").exists() {
            bail!("no /dev/fuse (in a container: --device /dev/fuse --cap-add SYS_ADMIN)");
        }
        if !script.is_file() {
            bail!("no LazyFS driver at {} (is ../shared beside the checkout?)", script.display());
        }
        let which = Command::new("sh").args(["-c", "command -v fusermount3"]).output();
        if !which.is_ok_and(|o| o.status.success()) {
            bail!("fusermount3 is missing (apt-get install fuse3)");
        }
        let prefix = std::env::var_os("LAZYFS_PREFIX")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/lazyfs")))
            .unwrap_or_default();
        if std::env::var_os("LAZYFS_BIN").is_none() && !prefix.join("bin/lazyfs").is_file() {
            bail!("LazyFS is not built (run ../shared/tools/lazyfs/build.sh)");
        }
        let m = Mount { script: script.to_path_buf(), state: dir.join("state"), mnt: dir.join("mnt") };
        let root = dir.join("root");
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        m.run(&["mount", &root.to_string_lossy(), &m.mnt.to_string_lossy()]).context("mounting LazyFS")?;
        Ok(m)
    }

    /// The mount point.
    pub fn mnt(&self) -> &Path {
        &self.mnt
    }

    /// A power cut: kill -9 of process group `pgid` and wait until it is gone, drop
    /// every write not fsynced, unmount, mount again.
    ///
    /// # Errors
    /// If a step fails (the driver says which).
    pub fn powercut(&self, pgid: u32) -> Result<()> {
        self.run(&["powercut", &format!("-{pgid}")])
    }

    /// Unmounts and mounts again, dropping nothing: a new LazyFS process with an empty cache.
    ///
    /// # Errors
    /// If a step fails.
    pub fn remount(&self) -> Result<()> {
        self.run(&["remount"])
    }

    /// Unmounts; errors are reported, not returned (the battery is over).
    pub fn unmount(&self) {
        if let Err(e) = self.run(&["umount", &self.mnt.to_string_lossy()]) {
            eprintln!("warning: unmounting {}: {e:#}", self.mnt.display());
        }
    }

    fn run(&self, args: &[&str]) -> Result<()> {
        let out = Command::new("bash")
            .arg(&self.script)
            .args(args)
            .env("LAZYFS_STATE", &self.state)
            .output()
            .with_context(|| format!("running {}", self.script.display()))?;
        if !out.status.success() {
            bail!(
                "powercut.sh {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
        Ok(())
    }
}
