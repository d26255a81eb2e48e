//! The embedded files, as `build.rs` listed them.

/// One file of `assets/`.
pub(crate) struct Asset {
    /// Its path under `assets/`, `/`-separated.
    pub(crate) path: &'static str,
    /// Its bytes.
    pub(crate) raw: &'static [u8],
    /// Its gzip form, where that is smaller.
    pub(crate) gzip: Option<&'static [u8]>,
    /// A strong ETag, quoted.
    pub(crate) etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The file at `path`, if embedded.
pub(crate) fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}
