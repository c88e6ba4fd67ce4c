//! SOP classes (PS3.4): Verification, and the storage SOP classes a
//! peripheral emergency department may send (PS3.4 Annex B.5), which
//! telerad stores unless the configuration narrows them.

pub const VERIFICATION: &str = "1.2.840.10008.1.1";

/// (UID, name) of the storage SOP classes accepted by default.
pub const STORAGE_SOP_CLASSES: &[(&str, &str)] = &[
    (
        "1.2.840.10008.5.1.4.1.1.1",
        "Computed Radiography Image Storage",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.1.1",
        "Digital X-Ray Image Storage - For Presentation",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.1.1.1",
        "Digital X-Ray Image Storage - For Processing",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.1.2",
        "Digital Mammography X-Ray Image Storage - For Presentation",
    ),
    ("1.2.840.10008.5.1.4.1.1.2", "CT Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.2.1", "Enhanced CT Image Storage"),
    (
        "1.2.840.10008.5.1.4.1.1.2.2",
        "Legacy Converted Enhanced CT Image Storage",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.3.1",
        "Ultrasound Multi-frame Image Storage",
    ),
    ("1.2.840.10008.5.1.4.1.1.4", "MR Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.4.1", "Enhanced MR Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.4.2", "MR Spectroscopy Storage"),
    (
        "1.2.840.10008.5.1.4.1.1.4.3",
        "Enhanced MR Color Image Storage",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.4.4",
        "Legacy Converted Enhanced MR Image Storage",
    ),
    ("1.2.840.10008.5.1.4.1.1.6.1", "Ultrasound Image Storage"),
    (
        "1.2.840.10008.5.1.4.1.1.7",
        "Secondary Capture Image Storage",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.7.1",
        "Multi-frame Single Bit Secondary Capture Image Storage",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.7.2",
        "Multi-frame Grayscale Byte Secondary Capture Image Storage",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.7.3",
        "Multi-frame Grayscale Word Secondary Capture Image Storage",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.7.4",
        "Multi-frame True Color Secondary Capture Image Storage",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.11.1",
        "Grayscale Softcopy Presentation State Storage",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.12.1",
        "X-Ray Angiographic Image Storage",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.12.2",
        "X-Ray Radiofluoroscopic Image Storage",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.20",
        "Nuclear Medicine Image Storage",
    ),
    ("1.2.840.10008.5.1.4.1.1.66", "Raw Data Storage"),
    (
        "1.2.840.10008.5.1.4.1.1.66.1",
        "Spatial Registration Storage",
    ),
    ("1.2.840.10008.5.1.4.1.1.66.4", "Segmentation Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.11", "Basic Text SR Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.22", "Enhanced SR Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.33", "Comprehensive SR Storage"),
    (
        "1.2.840.10008.5.1.4.1.1.88.59",
        "Key Object Selection Document Storage",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.88.67",
        "X-Ray Radiation Dose SR Storage",
    ),
    ("1.2.840.10008.5.1.4.1.1.104.1", "Encapsulated PDF Storage"),
    (
        "1.2.840.10008.5.1.4.1.1.128",
        "Positron Emission Tomography Image Storage",
    ),
];

pub fn default_storage_sop_classes() -> Vec<String> {
    STORAGE_SOP_CLASSES
        .iter()
        .map(|(uid, _)| (*uid).to_string())
        .collect()
}

/// The name PS3.6 gives a storage SOP class telerad knows of.
pub fn name(uid: &str) -> Option<&'static str> {
    STORAGE_SOP_CLASSES
        .iter()
        .find(|(u, _)| *u == uid)
        .map(|(_, name)| *name)
}
