//! Files named by settings (config file, values file, CA bundle, client certificate, service
//! account token): read only when they are regular files of a sane size, so a FIFO cannot block
//! the run and a link to `/dev/zero` cannot exhaust its memory.

use std::fs;
use std::io::{self, Read as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Config files, certificates and tokens are kilobytes; this leaves room for large bundles.
pub const MAX_SMALL: u64 = 4 << 20;
/// A values file maps every secret of a preview: allow more.
pub const MAX_VALUES: u64 = 256 << 20;

/// Reads `path`, which must be a regular file (after links) of at most `limit` bytes.
pub fn read(path: impl AsRef<Path>, limit: u64) -> io::Result<Vec<u8>> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    read_at_most(file, limit)
}

/// Reads `reader` to its end; more than `limit` bytes is a `FileTooLarge` error.
pub fn read_at_most(reader: impl io::Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than {} MiB", limit >> 20),
        ));
    }
    Ok(bytes)
}

/// Like [`read`], for UTF-8 text.
pub fn read_to_string(path: impl AsRef<Path>, limit: u64) -> io::Result<String> {
    String::from_utf8(read(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_large_files_are_refused() {
        assert_eq!(
            read("/dev/zero", MAX_SMALL).unwrap_err().to_string(),
            "not a regular file"
        );
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        assert_eq!(
            read(&fifo, MAX_SMALL).unwrap_err().to_string(),
            "not a regular file"
        );
        let big = dir.path().join("big");
        fs::write(&big, vec![b'x'; (2 << 20) + 1]).unwrap();
        assert_eq!(
            read(&big, 2 << 20).unwrap_err().to_string(),
            "larger than 2 MiB"
        );
        assert_eq!(read(&big, 4 << 20).unwrap().len(), (2 << 20) + 1);
    }
}
