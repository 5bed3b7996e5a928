//! Finds and reads the input: stdin, one file, or a directory walked the way AVP walks it.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::deadline::Deadline;
use crate::setting_file;
use crate::wait;

/// All inputs together may hold at most this much: an endless stream must not exhaust memory.
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// One input text and the name errors give it.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// Reads `path` (`-` for stdin, until the deadline). Every unreadable file is reported, not
/// just the first.
pub fn read(path: &str, deadline: &Deadline) -> Result<Vec<Source>, Vec<String>> {
    if path == "-" {
        let _waiting = wait::on("the input on stdin");
        let (sender, received) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(read_limited(&mut io::stdin().lock()));
        });
        let bytes = match received.recv_timeout(deadline.remaining()) {
            Ok(read) => read.map_err(|e| vec![format!("<stdin>: cannot read: {e}")])?,
            Err(_) => return Err(vec![deadline.exceeded("the input on stdin to end")]),
        };
        return decode("<stdin>".to_owned(), bytes)
            .map(|s| vec![s])
            .map_err(|e| vec![e]);
    }
    let root = Path::new(path);
    let meta = fs::metadata(root).map_err(|e| vec![format!("{path}: {}", io_reason(&e))])?;
    let mut files = Vec::new();
    if meta.is_dir() {
        walk(root, &mut files).map_err(|e| vec![e])?;
    } else if is_manifest_name(root) {
        files.push(root.to_path_buf());
    }
    if files.is_empty() {
        return Err(vec![format!("no YAML or JSON files were found in {path}")]);
    }
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    let mut total = 0;
    for file in files {
        let name = file.display().to_string();
        match read_file(&file, MAX_INPUT_BYTES - total) {
            Ok(bytes) => {
                total += bytes.len() as u64;
                match decode(name, bytes) {
                    Ok(source) => sources.push(source),
                    Err(e) => errors.push(e),
                }
            }
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(sources)
    } else {
        Err(errors)
    }
}

/// Reads a manifest file: only a regular file (after symbolic links), of at most `limit` bytes,
/// so that a FIFO or a link to a device can neither block nor flood the run.
fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let meta = fs::metadata(path).map_err(|e| link_reason(path, &e))?;
    if !meta.is_file() {
        return Err(if meta.is_dir() {
            "is a directory".to_owned()
        } else {
            "not a regular file".to_owned()
        });
    }
    let mut file = fs::File::open(path).map_err(|e| format!("cannot read: {}", io_reason(&e)))?;
    read_at_most(&mut file, limit).map_err(|e| match e.kind() {
        io::ErrorKind::FileTooLarge => e.to_string(),
        _ => format!("cannot read: {}", io_reason(&e)),
    })
}

/// Why `path` cannot be opened; a symbolic link that leads nowhere says so.
fn link_reason(path: &Path, e: &io::Error) -> String {
    let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    match (is_link, e.raw_os_error()) {
        (true, Some(libc::ELOOP)) => "a symbolic link loop".to_owned(),
        (true, _) if e.kind() == io::ErrorKind::NotFound => {
            "a broken symbolic link (its target does not exist)".to_owned()
        }
        _ => format!("cannot read: {}", io_reason(e)),
    }
}

/// Reads `reader` to its end, failing past [`MAX_INPUT_BYTES`].
pub fn read_limited(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    read_at_most(reader, MAX_INPUT_BYTES)
}

/// Reads at most `limit` bytes, naming the input limit when it is passed.
fn read_at_most(reader: &mut impl Read, limit: u64) -> io::Result<Vec<u8>> {
    setting_file::read_at_most(reader, limit).map_err(|e| match e.kind() {
        io::ErrorKind::FileTooLarge => io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "the input is larger than {} MiB, the most secretsubst reads",
                MAX_INPUT_BYTES >> 20
            ),
        ),
        _ => e,
    })
}

fn decode(name: String, bytes: Vec<u8>) -> Result<Source, String> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source { name, text }),
        Err(e) => Err(format!(
            "{name}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )),
    }
}

/// An io error's reason without Rust's "(os error N)" suffix.
fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_lowercase(),
        None => text,
    }
}

/// Depth-first, entries in byte order of their names; hidden directories and symlinked
/// directories are not entered, but a symbolic link with a manifest's name is a manifest.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {}", dir.display(), io_reason(&e)))?;
    let mut entries: Vec<_> = entries
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {}", dir.display(), io_reason(&e)))?;
    entries.sort_by(|a, b| {
        a.file_name()
            .as_encoded_bytes()
            .cmp(b.file_name().as_encoded_bytes())
    });
    for entry in entries {
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| format!("{}: {}", path.display(), io_reason(&e)))?;
        if file_type.is_dir() {
            if !entry.file_name().as_encoded_bytes().starts_with(b".") {
                walk(&path, files)?;
            }
        } else if is_manifest_name(&path) {
            // Links, FIFOs and devices are listed too, and fail when read (as in AVP): skipping
            // a broken link would make Argo CD prune that file's resources.
            files.push(path);
        }
    }
    Ok(())
}

fn is_manifest_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadline::DEFAULT_TIMEOUT;

    fn deadline() -> Deadline {
        Deadline::from_timeout(DEFAULT_TIMEOUT, false)
    }

    fn names(dir: &Path) -> Vec<String> {
        read(dir.to_str().unwrap(), &deadline())
            .unwrap()
            .into_iter()
            .map(|s| {
                s.name
                    .strip_prefix(dir.to_str().unwrap())
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn walk_is_depth_first_in_byte_order_and_skips_hidden_directories() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "sub/x.yaml",
            "sub.yaml",
            "B.yml",
            "a.json",
            ".git/c.yaml",
            ".hidden.yaml",
            "n.txt",
            "u.YAML",
        ] {
            let p = dir.path().join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "kind: X\n").unwrap();
        }
        assert_eq!(
            names(dir.path()),
            [
                "/.hidden.yaml",
                "/B.yml",
                "/a.json",
                "/sub/x.yaml",
                "/sub.yaml"
            ]
        );
    }

    #[test]
    fn a_directory_without_manifests_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let path = dir.path().to_str().unwrap();
        assert_eq!(
            read(path, &deadline()).unwrap_err(),
            [format!("no YAML or JSON files were found in {path}")]
        );
    }

    #[test]
    fn a_missing_path_names_the_path() {
        assert_eq!(
            read("does/not/exist.yaml", &deadline()).unwrap_err(),
            ["does/not/exist.yaml: no such file or directory"]
        );
    }

    #[test]
    fn invalid_utf8_names_the_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bin.yaml");
        fs::write(&file, b"kind: \xff\n").unwrap();
        let err = read(file.to_str().unwrap(), &deadline()).unwrap_err();
        assert_eq!(
            err,
            [format!(
                "{}: not UTF-8 text (invalid byte at offset 6)",
                file.display()
            )]
        );
    }

    #[test]
    fn broken_links_loops_fifos_and_devices_are_errors_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("a.yaml"), "kind: A\n").unwrap();
        std::os::unix::fs::symlink(d.join("gone.yaml"), d.join("b.yaml")).unwrap();
        std::os::unix::fs::symlink(d.join("c.yaml"), d.join("c.yaml")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.join("d.yaml")).unwrap();
        let fifo = std::ffi::CString::new(d.join("e.yaml").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        fs::write(d.join("f.yaml.txt"), "x").unwrap();
        let errors = read(d.to_str().unwrap(), &deadline()).unwrap_err();
        let name = |f: &str| d.join(f).display().to_string();
        assert_eq!(
            errors,
            [
                format!(
                    "{}: a broken symbolic link (its target does not exist)",
                    name("b.yaml")
                ),
                format!("{}: a symbolic link loop", name("c.yaml")),
                format!("{}: not a regular file", name("d.yaml")),
                format!("{}: not a regular file", name("e.yaml")),
            ]
        );
    }

    #[test]
    fn a_link_to_a_manifest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("real.txt"), "kind: A\n").unwrap();
        std::os::unix::fs::symlink("real.txt", dir.path().join("link.yaml")).unwrap();
        assert_eq!(names(dir.path()), ["/link.yaml"]);
    }

    #[test]
    fn input_past_the_limit_is_an_error() {
        let err = read_at_most(&mut io::repeat(b'a'), 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the input is larger than 1024 MiB, the most secretsubst reads"
        );
        assert_eq!(read_at_most(&mut &b"0123456789"[..], 10).unwrap().len(), 10);
    }
}
