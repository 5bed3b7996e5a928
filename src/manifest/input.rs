//! Finds and reads the input: stdin, one file, or a directory walked the way AVP walks it.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// One input text and the name errors give it.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// Reads `path` (`-` for stdin). Every unreadable file is reported, not just the first.
pub fn read(path: &str) -> Result<Vec<Source>, Vec<String>> {
    if path == "-" {
        let mut bytes = Vec::new();
        io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| vec![format!("<stdin>: cannot read: {e}")])?;
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
    for file in files {
        let name = file.display().to_string();
        match fs::read(&file) {
            Ok(bytes) => match decode(name, bytes) {
                Ok(source) => sources.push(source),
                Err(e) => errors.push(e),
            },
            Err(e) => errors.push(format!("{name}: cannot read: {}", io_reason(&e))),
        }
    }
    if errors.is_empty() {
        Ok(sources)
    } else {
        Err(errors)
    }
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
/// directories are not entered.
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
        } else if is_manifest_name(&path) && (file_type.is_file() || path.is_file()) {
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

    fn names(dir: &Path) -> Vec<String> {
        read(dir.to_str().unwrap())
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
            read(path).unwrap_err(),
            [format!("no YAML or JSON files were found in {path}")]
        );
    }

    #[test]
    fn a_missing_path_names_the_path() {
        assert_eq!(
            read("does/not/exist.yaml").unwrap_err(),
            ["does/not/exist.yaml: no such file or directory"]
        );
    }

    #[test]
    fn invalid_utf8_names_the_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bin.yaml");
        fs::write(&file, b"kind: \xff\n").unwrap();
        let err = read(file.to_str().unwrap()).unwrap_err();
        assert_eq!(
            err,
            [format!(
                "{}: not UTF-8 text (invalid byte at offset 6)",
                file.display()
            )]
        );
    }
}
