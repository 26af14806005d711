//! The `file:` URL of a local file: the base IRI an import of that file resolves relative IRIs
//! against, as RDF tools do for documents read from disk.

use std::path::Path;

/// `file:///abs/path` with every byte outside RFC 3986's unreserved set (and `/`) percent-encoded,
/// so a space or a `#` in a file name cannot change what the IRI means.
pub fn file_url(path: &Path) -> std::io::Result<String> {
    let absolute = std::fs::canonicalize(path)?;
    let mut url = String::from("file://");
    for b in absolute.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_url_is_absolute_and_percent_encodes_what_iris_would_misread() {
        let dir = std::env::temp_dir().join("llmkg file#url test");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a b.ttl");
        std::fs::write(&file, "").unwrap();
        let url = file_url(&file).unwrap();
        assert!(url.starts_with("file:///"), "{url}");
        assert!(url.ends_with("/llmkg%20file%23url%20test/a%20b.ttl"), "{url}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
