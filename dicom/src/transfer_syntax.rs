//! Transfer syntaxes (PS3.5 §10, Annex A): those telerad receives and
//! stores as received, never transcoding them on the way in.

pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";
pub const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
pub const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1.99";

/// Transfer syntaxes accepted, stored without transcoding.
pub const TRANSFER_SYNTAXES: &[(&str, &str)] = &[
    (IMPLICIT_VR_LITTLE_ENDIAN, "Implicit VR Little Endian"),
    (EXPLICIT_VR_LITTLE_ENDIAN, "Explicit VR Little Endian"),
    (EXPLICIT_VR_BIG_ENDIAN, "Explicit VR Big Endian"),
    (
        DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
        "Deflated Explicit VR Little Endian",
    ),
    ("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)"),
    ("1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)"),
    (
        "1.2.840.10008.1.2.4.57",
        "JPEG Lossless, Non-Hierarchical (Process 14)",
    ),
    (
        "1.2.840.10008.1.2.4.70",
        "JPEG Lossless, First-Order Prediction (Process 14 SV1)",
    ),
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless"),
    ("1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless)"),
    (
        "1.2.840.10008.1.2.4.90",
        "JPEG 2000 Image Compression (Lossless Only)",
    ),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression"),
    (
        "1.2.840.10008.1.2.4.201",
        "High-Throughput JPEG 2000 (Lossless Only)",
    ),
    (
        "1.2.840.10008.1.2.4.202",
        "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)",
    ),
    (
        "1.2.840.10008.1.2.4.203",
        "High-Throughput JPEG 2000 Image Compression",
    ),
    ("1.2.840.10008.1.2.5", "RLE Lossless"),
];

/// Whether telerad accepts `uid` and stores its data sets unchanged.
pub fn is_supported(uid: &str) -> bool {
    TRANSFER_SYNTAXES.iter().any(|(ts, _)| *ts == uid)
}

/// The name PS3.6 gives a transfer syntax telerad knows of.
pub fn name(uid: &str) -> Option<&'static str> {
    TRANSFER_SYNTAXES
        .iter()
        .find(|(u, _)| *u == uid)
        .map(|(_, name)| *name)
}

/// Whether pixel data in `uid` is encapsulated (PS3.5 §A.4): compressed
/// frames in items, rather than native. Every syntax but the four
/// uncompressed ones (deflate compresses the data set, not the frames).
pub fn is_encapsulated(uid: &str) -> bool {
    let uid = uid.trim_end_matches('\0').trim();
    ![
        IMPLICIT_VR_LITTLE_ENDIAN,
        EXPLICIT_VR_LITTLE_ENDIAN,
        EXPLICIT_VR_BIG_ENDIAN,
        DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    ]
    .contains(&uid)
}
