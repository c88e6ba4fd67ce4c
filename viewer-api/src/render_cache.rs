//! Rendered frames kept in memory, bounded by their bytes, so that a frame
//! is decoded and encoded once per rendering rather than at each request;
//! and the study's frames rendered when it completes (`prerender`), so
//! that the radiologist's first look at a series costs no decoding.
//!
//! A rendering is kept under the stored file it came from (a new version
//! of an instance is another file), the frame and every parameter of the
//! rendering: a window dragged by the viewer makes new entries and leaves
//! the defaults in place.

use crate::render::Rendering;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// What the cache holds at most, in bytes of encoded pictures: a
/// 300-slice CT rendered as JPEG at quality 90 takes 10 to 40 MB.
pub const DEFAULT_CAPACITY: u64 = 256 * 1024 * 1024;
/// The cache's shards (each with its own lock).
const SHARDS: usize = 8;

#[derive(Clone)]
struct ByBytes;

impl Weighter<String, bytes::Bytes> for ByBytes {
    fn weight(&self, key: &String, picture: &bytes::Bytes) -> u64 {
        (key.len() + picture.len()) as u64
    }
}

pub struct RenderCache {
    pictures: Cache<String, bytes::Bytes, ByBytes>,
}

impl std::fmt::Debug for RenderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderCache")
            .field("entries", &self.pictures.len())
            .field("bytes", &self.pictures.weight())
            .finish()
    }
}

impl RenderCache {
    pub fn new(capacity_bytes: u64) -> RenderCache {
        // The estimate sizes the hash table: pictures of about 32 KiB.
        let estimated = usize::try_from(capacity_bytes / (32 * 1024))
            .unwrap_or(usize::MAX)
            .max(16);
        // Few shards, whatever the cores: each holds its share of the
        // bytes, and a share too small would never keep a full-size
        // radiograph's picture.
        let options = quick_cache::OptionsBuilder::new()
            .estimated_items_capacity(estimated)
            .weight_capacity(capacity_bytes)
            .shards(SHARDS)
            .build();
        let pictures = match options {
            Ok(options) => Cache::with_options(
                options,
                ByBytes,
                quick_cache::DefaultHashBuilder::default(),
                quick_cache::sync::DefaultLifecycle::default(),
            ),
            Err(_) => Cache::with_weighter(estimated, capacity_bytes, ByBytes),
        };
        RenderCache { pictures }
    }

    /// A picture as kept: its buffer cut to its length, so that what the
    /// cache weighs is what it holds.
    pub fn picture(encoded: Vec<u8>) -> bytes::Bytes {
        bytes::Bytes::from(encoded.into_boxed_slice())
    }

    /// The key of `frame` of the stored file at `path` (relative to the
    /// archive) rendered as `rendering` says.
    pub fn key(path: &str, frame: u32, rendering: &Rendering) -> String {
        format!("{path}\u{0}{frame}\u{0}{rendering:?}")
    }

    pub fn get(&self, key: &str) -> Option<bytes::Bytes> {
        self.pictures.get(key)
    }

    pub fn insert(&self, key: String, picture: bytes::Bytes) {
        self.pictures.insert(key, picture);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.pictures.contains_key(key)
    }
}

impl Default for RenderCache {
    fn default() -> RenderCache {
        RenderCache::new(DEFAULT_CAPACITY)
    }
}
