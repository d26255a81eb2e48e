//! Compresses the JavaScript client's committed browser build once, here,
//! so that `GET /client.js` answers a browser that accepts gzip with
//! bytes made at build time, never per request.

use std::io::Write as _;
use std::path::PathBuf;

fn main() {
    let src = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../../clients/js/dist/hubbub.min.js");
    println!("cargo:rerun-if-changed={}", src.display());
    let raw = std::fs::read(&src).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&raw).unwrap();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("hubbub.min.js.gz");
    std::fs::write(out, gz.finish().unwrap()).unwrap();
}
