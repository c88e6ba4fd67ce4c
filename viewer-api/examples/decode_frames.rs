//! Decodes the first frame of every DICOM file in a folder, as WADO-RS
//! does for a client that asks for uncompressed pixels, and prints how many
//! frames and bytes came out, with a hash of them (FNV-1a) so that copies
//! of one study in several syntaxes can be checked to decode alike: the
//! telerad side of `bench/decode.sh`.
//!
//! cargo run --release -p telerad-viewer-api --example decode_frames -- FOLDER

use std::path::PathBuf;

fn main() {
    let Some(folder) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: decode_frames FOLDER");
        std::process::exit(2);
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let (mut frames, mut bytes) = (0usize, 0usize);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for path in &files {
        let decoded = telerad_viewer_api::decode::native_frames(path, Some(&[1]))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        frames += decoded.len();
        for frame in &decoded {
            bytes += frame.len();
            for &b in frame {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    println!("{frames} frames, {bytes} bytes decoded, FNV-1a {hash:016x}");
}
