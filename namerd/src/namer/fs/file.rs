//! Reading one service file of the `io.l5d.fs` namer, safely: only a
//! regular file inside `rootDir`, at most [`MAX_FILE_BYTES`], and never in
//! a way that can block the namer.
//!
//! A symlink may point elsewhere inside the directory (Kubernetes mounts a
//! ConfigMap's keys as `name -> ..data/name`, `..data` itself a link to a
//! timestamped directory), never out of it: a link to `/etc/passwd` or a
//! mounted secret would otherwise be published as a service and its
//! content reach error messages. FIFOs, sockets and devices are refused,
//! and the file is opened non-blocking, so a FIFO swapped in after the
//! check cannot stall the namer's worker either.
//!
//! Blocking file-system calls only, for `spawn_blocking`; knows nothing of
//! the namer's state.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// The largest address file read, 1 MiB (some 40,000 `ip port` lines): a
/// bigger one is refused rather than held in memory.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The bytes of the service file `name` in `root`, `None` when there is
/// none (gone, a dangling link, or a directory). The error says why the
/// file is refused, never what it holds.
pub(super) fn read_service_file(root: &Path, name: &str) -> Result<Option<Vec<u8>>, String> {
    let gone = |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound => Ok(None),
        _ => Err(e.to_string()),
    };
    let real_root = match root.canonicalize() {
        Ok(path) => path,
        Err(e) => return gone(e),
    };
    let real = match root.join(name).canonicalize() {
        Ok(path) => path,
        Err(e) => return gone(e),
    };
    if !real.starts_with(&real_root) {
        return Err("refused: a link leading outside rootDir".to_string());
    }
    let meta = match std::fs::metadata(&real) {
        Ok(meta) => meta,
        Err(e) => return gone(e),
    };
    if meta.is_dir() {
        return Ok(None);
    }
    check_regular(&meta)?;
    let file = OpenOptions::new()
        .read(true)
        // The path is canonical: a link in its last component now means
        // it was swapped since the check (ELOOP). Non-blocking: opening a
        // FIFO waits for a writer otherwise.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(&real);
    match file {
        Ok(file) => read_capped(file).map(Some),
        Err(e) => gone(e),
    }
}

fn check_regular(meta: &std::fs::Metadata) -> Result<(), String> {
    if !meta.is_file() {
        return Err("refused: not a regular file".to_string());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("refused: larger than {MAX_FILE_BYTES} bytes"));
    }
    Ok(())
}

/// Reads an open file, checking again what it is (it may have changed
/// since the path was checked) and stopping past the cap.
fn read_capped(file: File) -> Result<Vec<u8>, String> {
    let meta = file.metadata().map_err(|e| e.to_string())?;
    check_regular(&meta)?;
    let mut content = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut content)
        .map_err(|e| e.to_string())?;
    if content.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("refused: larger than {MAX_FILE_BYTES} bytes"));
    }
    Ok(content)
}
