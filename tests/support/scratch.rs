//! Scratch space of the tests: a directory of the system's temp directory per use, removed when it
//! goes out of scope, so that a test run leaves nothing behind (the recording tests write traces of
//! tens of MB). When the thread is panicking (a failed assertion) the directory is kept and its path
//! printed, so the evidence of a failure survives.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A scratch directory (`lockcheck-<tag>-XXXXXX` in the temp directory), removed on drop unless
/// the thread is panicking.
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
}

impl Scratch {
    /// A new, empty scratch directory whose name starts with `lockcheck-<tag>-`.
    pub fn new(tag: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("lockcheck-{tag}-"))
            .tempdir()
            .expect("a scratch directory in the temp directory");
        Scratch { dir: Some(dir) }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until dropped").path()
    }

    /// Writes `bytes` to `name` in the directory; returns the file's path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, bytes).expect("write a scratch file");
        p
    }
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

impl AsRef<OsStr> for Scratch {
    fn as_ref(&self) -> &OsStr {
        self.path().as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            if std::thread::panicking() {
                let kept = dir.keep();
                eprintln!("(scratch kept for the failed test: {})", kept.display());
            }
        }
    }
}

/// One file in a scratch directory of its own: the path derefs to the file, and the directory
/// (with anything written beside the file) goes when this is dropped, as [`Scratch`].
pub struct ScratchFile {
    dir: Scratch,
    file: PathBuf,
}

impl ScratchFile {
    /// `name` in a new scratch directory tagged `tag`.
    pub fn new(tag: &str, name: &str) -> ScratchFile {
        let dir = Scratch::new(tag);
        let file = dir.join(name);
        ScratchFile { dir, file }
    }

    /// The directory the file is in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Deref for ScratchFile {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.file
    }
}

impl AsRef<Path> for ScratchFile {
    fn as_ref(&self) -> &Path {
        &self.file
    }
}

impl AsRef<OsStr> for ScratchFile {
    fn as_ref(&self) -> &OsStr {
        self.file.as_os_str()
    }
}
