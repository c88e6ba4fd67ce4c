//! The DICOM JSON of a stored instance without its bulk data (PS3.18
//! §F.2), as WADO-RS `metadata` answers it: built once, when the study is
//! complete, so that a viewer opening a 300-slice series costs one read of
//! the index rather than 300 files parsed.
//!
//! Only the attributes before Pixel Data are read (the pixels are never
//! loaded). A top-level binary value (OB, OW, OF, OD, OL, OV, UN) longer
//! than [`BULK_DATA_THRESHOLD`] becomes a `BulkDataURI`, and so does Pixel
//! Data; shorter ones stay inline, as do binary values nested in sequences
//! (icon images, a few kB). What is stored does not know where it will be
//! served from: each URI is `bulkdata/GGGGEEEE`, relative to the
//! instance's address, and [`resolve`] writes the address in when it is
//! served.

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use serde_json::{Value, json};
use std::path::Path;

/// Binary values up to this many bytes stay inline (base64).
pub const BULK_DATA_THRESHOLD: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot read the stored file: {0}")]
    Read(String),
    #[error("cannot write the instance as DICOM JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// How the stored text names a bulk data URI (serde_json's compact form:
/// a value cannot hold it, as its quotes would be escaped).
const RELATIVE_URI: &str = "\"BulkDataURI\":\"bulkdata/";

/// The instance's metadata as DICOM JSON text, from the attributes before
/// Pixel Data (which is not read). The data set is taken to carry Pixel
/// Data when it has Rows (0028,0010), which the Image Pixel module requires
/// beside it (PS3.3 §C.7.6.3).
pub fn instance_metadata(path: &Path) -> Result<String, MetadataError> {
    let file = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| MetadataError::Read(e.to_string()))?;
    let pixel_data = file.element_opt(tags::ROWS).ok().flatten().is_some();
    written(&file, pixel_data)
}

fn written(
    file: &dicom_object::DefaultDicomObject,
    pixel_data: bool,
) -> Result<String, MetadataError> {
    let encapsulated = crate::transfer_syntax::is_encapsulated(file.meta().transfer_syntax());
    let bits_allocated = file
        .element_opt(tags::BITS_ALLOCATED)
        .ok()
        .flatten()
        .and_then(|e| e.to_int::<u16>().ok())
        .unwrap_or(16);
    let mut json = dicom_json::to_value(&**file)?;
    if let Value::Object(attributes) = &mut json {
        // Data Set Trailing Padding (PS3.10 §7.2) means nothing.
        attributes.remove("FFFCFFFC");
        for (tag, attribute) in attributes.iter_mut() {
            let Some(entry) = attribute.as_object_mut() else {
                continue;
            };
            // Base64 is 4 characters per 3 bytes.
            let long = entry
                .get("InlineBinary")
                .and_then(Value::as_str)
                .is_some_and(|b64| b64.len() / 4 * 3 > BULK_DATA_THRESHOLD);
            if long {
                entry.remove("InlineBinary");
                entry.insert(
                    "BulkDataURI".into(),
                    Value::String(format!("bulkdata/{tag}")),
                );
            }
        }
        if pixel_data {
            // PS3.5 §8.2: encapsulated pixel data is OB; native is OW past
            // 8 bits allocated.
            let vr = if encapsulated || bits_allocated <= 8 {
                "OB"
            } else {
                "OW"
            };
            attributes.insert(
                "7FE00010".into(),
                json!({ "vr": vr, "BulkDataURI": "bulkdata/7FE00010" }),
            );
        }
    }
    Ok(serde_json::to_string(&json)?)
}

/// Stored metadata with its bulk data URIs under `instance_address` (the
/// instance's WADO-RS address, `…/studies/S/series/SE/instances/I`).
pub fn resolve(stored: &str, instance_address: &str) -> String {
    stored.replace(
        RELATIVE_URI,
        &format!("\"BulkDataURI\":\"{instance_address}/bulkdata/"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/samples")
            .join(name)
    }

    #[test]
    fn the_metadata_of_a_ct_names_its_pixels_by_address_and_keeps_the_rest() {
        let text = instance_metadata(&sample("CT_small.dcm")).expect("metadata");
        let json: Value = serde_json::from_str(&resolve(&text, "/x/instances/1.2")).expect("JSON");
        assert_eq!(json["00080060"]["Value"][0], "CT");
        assert_eq!(json["00280010"]["vr"], "US");
        assert_eq!(
            json["7FE00010"]["BulkDataURI"],
            "/x/instances/1.2/bulkdata/7FE00010"
        );
        assert_eq!(json["7FE00010"]["vr"], "OW");
        assert!(json["7FE00010"].get("InlineBinary").is_none());
        // No file meta group (0002,xxxx): it is not part of the data set.
        assert!(
            json.as_object()
                .expect("object")
                .keys()
                .all(|k| !k.starts_with("0002"))
        );
        // Small enough to be read by the hundreds.
        assert!(text.len() < 16 * 1024, "{} bytes", text.len());
    }
}
