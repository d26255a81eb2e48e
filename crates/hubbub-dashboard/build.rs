//! Embeds `assets/` in the crate, and the JavaScript client's browser
//! build: every file with its gzip form (made here, once, at the best
//! level) and an ETag from its bytes, so that serving them never
//! compresses or hashes anything at run time.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("assets");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=assets");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    let mut code = String::from("pub(crate) static ASSETS: &[Asset] = &[\n");
    for (i, rel) in files.iter().enumerate() {
        let _ = writeln!(
            code,
            "    {},",
            asset(rel, &root.join(rel), &out, &format!("asset{i}"))
        );
    }
    code.push_str("];\n");
    // The JavaScript client's committed browser build, which the hub
    // serves at `/client.js` with the same treatment.
    let client = root.join("../../../clients/js/dist/hubbub.min.js");
    println!("cargo:rerun-if-changed={}", client.display());
    let _ = writeln!(
        code,
        "pub(crate) static CLIENT_JS: Asset = {};",
        asset("client.js", &client, &out, "client")
    );
    std::fs::write(out.join("assets.rs"), code).unwrap();
}

/// An `Asset { .. }` expression for the file at `path`, served as `rel`;
/// its gzip form (kept only where smaller) goes to `out/<stem>.gz`.
fn asset(rel: &str, path: &Path, out: &Path, stem: &str) -> String {
    let raw = std::fs::read(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&raw).unwrap();
    let gz = gz.finish().unwrap();
    let gzip = if gz.len() + 64 < raw.len() {
        let p = out.join(format!("{stem}.gz"));
        std::fs::write(&p, &gz).unwrap();
        format!("Some(include_bytes!({:?}))", p.display().to_string())
    } else {
        "None".to_owned()
    };
    format!(
        "Asset {{ path: {rel:?}, raw: include_bytes!({:?}), gzip: {gzip}, etag: \"\\\"{:016x}\\\"\" }}",
        path.display().to_string(),
        fnv(&raw)
    )
}

/// Files under `dir`, as `/`-separated paths relative to `root`; hidden
/// files (editor droppings) are left out.
fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, files);
        } else {
            let rel = path.strip_prefix(root).unwrap();
            let parts: Vec<_> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            files.push(parts.join("/"));
        }
    }
}

/// FNV-1a: enough to tell two versions of a file apart.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
