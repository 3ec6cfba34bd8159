//! `http_dir`: static files for plain GET requests on a websockets listener.
//!
//! Reading the file is the one place the WebSocket layer touches the file
//! system; the files are small (a web client's page and scripts) and read
//! whole.

use std::path::{Path, PathBuf};

/// Files bigger than this are refused (500) rather than read into memory.
const MAX_FILE: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// Content-Type by file extension.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn decode_percent(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The file under `dir` a request target names, after percent-decoding.
/// `Err(status)` for targets that must not be served: 400 for malformed
/// ones, 403 for any `..` segment (before or after decoding).
pub fn resolve(dir: &Path, target: &str) -> Result<PathBuf, u16> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(400);
    }
    let decoded = decode_percent(path).ok_or(400u16)?;
    let decoded = String::from_utf8(decoded).map_err(|_| 400u16)?;
    if decoded.contains('\0') || decoded.contains('\\') {
        return Err(400);
    }
    let mut full = dir.to_path_buf();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(403),
            s => full.push(s),
        }
    }
    Ok(full)
}

/// Answers `GET target` from `dir`: the file, `index.html` for a directory,
/// 404 when there is none, 403 for traversal attempts and for files whose
/// real path (symlinks resolved) leaves `dir`.
pub fn serve(dir: &Path, target: &str) -> FileResponse {
    let err = |status| FileResponse {
        status,
        content_type: "text/plain; charset=utf-8",
        body: Vec::new(),
    };
    let mut path = match resolve(dir, target) {
        Ok(p) => p,
        Err(status) => return err(status),
    };
    if path.is_dir() {
        path.push("index.html");
    }
    let (Ok(real), Ok(root)) = (path.canonicalize(), dir.canonicalize()) else {
        return err(404);
    };
    if !real.starts_with(&root) {
        return err(403);
    }
    match std::fs::metadata(&real) {
        Ok(m) if m.is_file() && m.len() <= MAX_FILE => {}
        Ok(m) if m.is_file() => return err(500),
        _ => return err(404),
    }
    match std::fs::read(&real) {
        Ok(body) => FileResponse {
            status: 200,
            content_type: content_type(&real),
            body,
        },
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => err(403),
        Err(_) => err(404),
    }
}
