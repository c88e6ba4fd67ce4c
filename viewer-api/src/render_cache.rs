//! Rendered frames kept in memory, bounded by their bytes, so that a frame
//! is decoded and encoded once per rendering rather than at each request;
//! decoded frames kept beside them (bounded too), so that a new window on
//! a frame already seen costs its rendering, not another decoding; and the
//! study's frames rendered when it completes (`prerender`), so that the
//! radiologist's first look at a series costs no decoding.
//!
//! A rendering is kept under the stored file it came from (a new version
//! of an instance is another file), the frame and every parameter of the
//! rendering: a window dragged by the viewer makes new entries and leaves
//! the defaults in place.

use crate::decode::{DecodeError, Decoded, decode};
use crate::render::Rendering;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use std::path::Path;
use std::sync::Arc;

/// What the cache holds at most, in bytes of encoded pictures: a
/// 300-slice CT rendered as JPEG at quality 90 takes 10 to 40 MB.
pub const DEFAULT_CAPACITY: u64 = 256 * 1024 * 1024;
/// Decoded frames kept at most, in bytes of pixels: a 512 × 512 CT slice
/// holds 1 MiB of modality values, so about the 300 slices of the study
/// being read.
pub const DEFAULT_DECODED_CAPACITY: u64 = 320 * 1024 * 1024;
/// The cache's shards (each with its own lock).
const SHARDS: usize = 8;

#[derive(Clone)]
struct ByBytes;

impl Weighter<String, bytes::Bytes> for ByBytes {
    fn weight(&self, key: &String, picture: &bytes::Bytes) -> u64 {
        (key.len() + picture.len()) as u64
    }
}

#[derive(Clone)]
struct ByPixels;

impl Weighter<(String, u32), Arc<Decoded>> for ByPixels {
    fn weight(&self, key: &(String, u32), decoded: &Arc<Decoded>) -> u64 {
        (key.0.len() + decoded.bytes()) as u64
    }
}

pub struct RenderCache {
    pictures: Cache<String, bytes::Bytes, ByBytes>,
    /// By stored file and frame.
    decoded: Cache<(String, u32), Arc<Decoded>, ByPixels>,
}

impl std::fmt::Debug for RenderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderCache")
            .field("entries", &self.pictures.len())
            .field("bytes", &self.pictures.weight())
            .finish()
    }
}

/// A cache of `capacity` bytes weighed by `weigher`, in few shards
/// (each holds its share of the bytes, and a share too small would never
/// keep a full-size radiograph).
fn bounded<K, V, W>(capacity: u64, typical: u64, weigher: W) -> Cache<K, V, W>
where
    K: Eq + std::hash::Hash + Clone,
    V: Clone,
    W: Weighter<K, V> + Clone,
{
    let estimated = usize::try_from(capacity / typical)
        .unwrap_or(usize::MAX)
        .max(16);
    let options = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(estimated)
        .weight_capacity(capacity)
        .shards(SHARDS)
        .build();
    match options {
        Ok(options) => Cache::with_options(
            options,
            weigher,
            quick_cache::DefaultHashBuilder::default(),
            quick_cache::sync::DefaultLifecycle::default(),
        ),
        Err(_) => Cache::with_weighter(estimated, capacity, weigher),
    }
}

impl RenderCache {
    /// Pictures up to `capacity_bytes`, decoded frames up to
    /// `decoded_bytes`.
    pub fn new(capacity_bytes: u64, decoded_bytes: u64) -> RenderCache {
        RenderCache {
            // Pictures of about 32 KiB, frames of about 1 MiB.
            pictures: bounded(capacity_bytes, 32 * 1024, ByBytes),
            decoded: bounded(decoded_bytes, 1024 * 1024, ByPixels),
        }
    }

    /// Frame `frame` of the stored file at `path` (relative to the
    /// archive; `absolute` where it is), decoded: kept, or decoded now and
    /// kept. Blocking: call it from a blocking task.
    pub fn decoded(
        &self,
        path: &str,
        absolute: &Path,
        frame: u32,
    ) -> Result<Arc<Decoded>, DecodeError> {
        // A request and the prerendering asking for the same frame at
        // once: one decodes, the other waits for it.
        self.decoded
            .get_or_insert_with(&(path.to_string(), frame), || {
                decode(absolute, frame).map(Arc::new)
            })
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
        RenderCache::new(DEFAULT_CAPACITY, DEFAULT_DECODED_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::render;

    #[test]
    fn a_frame_is_decoded_once_and_a_new_window_renders_from_it() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let files = telerad_fixtures::SyntheticStudy::ct(1)
            .write_to(dir.path())
            .expect("a CT slice");
        let file = &files[0];
        let cache = RenderCache::default();
        let first = cache.decoded("a/1.dcm", file, 1).expect("decoded");
        // The file is gone: what follows can only come from the cache.
        std::fs::remove_file(file).expect("remove");
        let again = cache.decoded("a/1.dcm", file, 1).expect("kept");
        assert!(Arc::ptr_eq(&first, &again));
        let mut rendering = Rendering::DEFAULT;
        rendering.window = Some(crate::window::Window {
            center: 40.0,
            width: 80.0,
            function: crate::window::Function::Linear,
        });
        assert!(render(&again, &rendering).is_ok_and(|picture| !picture.is_empty()));
        // Another frame, or another file, is not it.
        assert!(cache.decoded("a/1.dcm", file, 2).is_err());
        assert!(cache.decoded("b/1.dcm", file, 1).is_err());
    }

    #[test]
    fn decoded_frames_are_bounded_by_their_bytes() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let files = telerad_fixtures::SyntheticStudy::ct(3)
            .write_to(dir.path())
            .expect("CT slices");
        let one = decode(&files[0], 1).expect("decoded").bytes() as u64;
        // Room for two frames (and their keys), not three.
        let cache = RenderCache::new(DEFAULT_CAPACITY, 2 * one + 64);
        for (i, file) in files.iter().enumerate() {
            cache
                .decoded(&format!("{i}.dcm"), file, 1)
                .expect("decoded");
        }
        assert!(cache.decoded.weight() <= 2 * one + 64);
        assert!(cache.decoded.len() < 3);
    }
}
