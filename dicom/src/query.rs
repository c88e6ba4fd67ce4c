//! Query/Retrieve identifiers (PS3.4 Annex C): what a workstation asks in a
//! C-FIND (or names in a C-MOVE or C-GET), and the identifier of each match it is
//! answered with.
//!
//! A request's identifier holds matching keys (a value to match) and return
//! keys (an empty value: "tell me"); the answer carries every key asked,
//! filled where telerad knows the value and empty otherwise (PS3.4
//! C.2.2.1), plus the unique keys of the level and those above it (Study
//! Root, C.6.2). Running the search is the index's job.

use dicom_core::header::Header as _;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

/// Study Root Query/Retrieve Information Model – FIND (PS3.4 C.6.2.1).
pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
/// Study Root Query/Retrieve Information Model – MOVE (PS3.4 C.6.2.1).
pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";
/// Study Root Query/Retrieve Information Model – GET (PS3.4 C.6.2.1).
pub const STUDY_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";

/// A query identifier's size at most: a few dozen keys take a few hundred
/// bytes; every key asked is repeated in every match.
pub const MAX_IDENTIFIER_BYTES: usize = 64 * 1024;

/// Keys one identifier may hold at most.
pub const MAX_KEYS: usize = 100;

/// Query/Retrieve Level (0008,0052) of the Study Root model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Study,
    Series,
    Image,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Study => "STUDY",
            Level::Series => "SERIES",
            Level::Image => "IMAGE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("unreadable identifier: {0}")]
    Unreadable(String),
    #[error("Query/Retrieve Level {0:?}: expected STUDY, SERIES or IMAGE (Study Root)")]
    Level(String),
    #[error("an identifier of {0} keys: at most {MAX_KEYS} are answered")]
    TooManyKeys(usize),
}

impl QueryError {
    /// The C-FIND status of the refusal (PS3.4 C.4.1.1.4).
    pub fn status(&self) -> u16 {
        match self {
            QueryError::TooManyKeys(_) => 0xA700,
            QueryError::Unreadable(_) | QueryError::Level(_) => 0xA900,
        }
    }
}

/// A received C-FIND identifier.
#[derive(Debug, Clone)]
pub struct Identifier {
    pub level: Level,
    object: InMemDicomObject,
}

/// Reads a C-FIND identifier received on a Query/Retrieve context (an
/// uncompressed syntax), through the same bounded walk as every received
/// data set.
pub fn read(data_set: &[u8], transfer_syntax_uid: &str) -> Result<Identifier, QueryError> {
    if data_set.len() > MAX_IDENTIFIER_BYTES {
        return Err(QueryError::Unreadable(format!(
            "an identifier of {} bytes: at most {MAX_IDENTIFIER_BYTES}",
            data_set.len()
        )));
    }
    let object = crate::inspect::read_small(data_set, transfer_syntax_uid)
        .map_err(|e| QueryError::Unreadable(e.to_string()))?;
    let keys = object.iter().count();
    if keys > MAX_KEYS {
        return Err(QueryError::TooManyKeys(keys));
    }
    let level = text_of(&object, tags::QUERY_RETRIEVE_LEVEL).unwrap_or_default();
    let level = match level.as_str() {
        "STUDY" => Level::Study,
        "SERIES" => Level::Series,
        "IMAGE" => Level::Image,
        _ => return Err(QueryError::Level(level)),
    };
    Ok(Identifier { level, object })
}

fn text_of(object: &InMemDicomObject, tag: Tag) -> Option<String> {
    let element = object.get(tag)?;
    let text = element.to_str().ok()?;
    Some(text.trim_matches([' ', '\0']).to_string())
}

impl Identifier {
    /// The matching value of `tag`: `None` when absent, empty (universal
    /// matching) or `*`.
    pub fn matching(&self, tag: Tag) -> Option<String> {
        self.value(tag).filter(|v| v != "*")
    }

    /// The values of a list-valued key (UIDs separated by `\`).
    pub fn list(&self, tag: Tag) -> Vec<String> {
        self.value(tag)
            .map(|v| {
                v.split('\\')
                    .map(|part| part.trim_matches([' ', '\0']).to_string())
                    .filter(|part| !part.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn value(&self, tag: Tag) -> Option<String> {
        text_of(&self.object, tag).filter(|v| !v.is_empty())
    }

    /// The identifier of one match: every key asked, with `known`'s value
    /// or empty, the unique keys of this level and above, the level, and
    /// `retrieve_ae_title` (where the match can be retrieved from).
    pub fn answer(
        &self,
        known: impl Fn(Tag) -> Option<String>,
        retrieve_ae_title: &str,
    ) -> InMemDicomObject {
        let mut answer = InMemDicomObject::new_empty();
        let mut wide = false;
        let mut put = |answer: &mut InMemDicomObject, tag: Tag, vr: VR| {
            let value = known(tag).unwrap_or_default();
            wide |= !value.is_ascii();
            let value = if value.is_empty() {
                PrimitiveValue::Empty
            } else {
                PrimitiveValue::from(value)
            };
            answer.put(DataElement::new(tag, vr, value));
        };
        for element in self.object.iter() {
            let tag = element.tag();
            if tag == tags::QUERY_RETRIEVE_LEVEL || tag == tags::SPECIFIC_CHARACTER_SET {
                continue;
            }
            if element.vr() == VR::SQ {
                // Sequences asked (e.g. a procedure code) are not indexed.
                answer.put(DataElement::new(tag, VR::SQ, PrimitiveValue::Empty));
                continue;
            }
            put(&mut answer, tag, element.vr());
        }
        let mut unique = vec![(tags::STUDY_INSTANCE_UID, VR::UI)];
        if self.level != Level::Study {
            unique.push((tags::SERIES_INSTANCE_UID, VR::UI));
        }
        if self.level == Level::Image {
            unique.push((tags::SOP_INSTANCE_UID, VR::UI));
        }
        for (tag, vr) in unique {
            if answer.get(tag).is_none() {
                put(&mut answer, tag, vr);
            }
        }
        answer.put(DataElement::new(
            tags::QUERY_RETRIEVE_LEVEL,
            VR::CS,
            PrimitiveValue::from(self.level.as_str()),
        ));
        answer.put(DataElement::new(
            tags::RETRIEVE_AE_TITLE,
            VR::AE,
            PrimitiveValue::from(retrieve_ae_title),
        ));
        if wide {
            // The index holds text as Unicode (PS3.5 6.1.2.5.3, ISO_IR 192).
            answer.put(DataElement::new(
                tags::SPECIFIC_CHARACTER_SET,
                VR::CS,
                PrimitiveValue::from("ISO_IR 192"),
            ));
        }
        answer
    }
}

/// Encodes an answer's identifier in the context's transfer syntax.
pub fn encode(answer: &InMemDicomObject, transfer_syntax_uid: &str) -> Result<Vec<u8>, String> {
    use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
    let ts = dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(transfer_syntax_uid)
        .ok_or_else(|| format!("transfer syntax {transfer_syntax_uid} is not known"))?;
    let mut out = Vec::new();
    answer
        .write_dataset_with_ts(&mut out, ts)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer_syntax::EXPLICIT_VR_LITTLE_ENDIAN;

    fn identifier(elements: Vec<DataElement<InMemDicomObject>>) -> Vec<u8> {
        let object = InMemDicomObject::from_element_iter(elements);
        encode(&object, EXPLICIT_VR_LITTLE_ENDIAN).expect("encoded")
    }

    fn text(tag: Tag, vr: VR, value: &str) -> DataElement<InMemDicomObject> {
        let value = if value.is_empty() {
            PrimitiveValue::Empty
        } else {
            PrimitiveValue::from(value)
        };
        DataElement::new(tag, vr, value)
    }

    #[test]
    fn a_study_query_is_read_and_answered_with_the_keys_asked() {
        let bytes = identifier(vec![
            text(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "STUDY"),
            text(tags::PATIENT_NAME, VR::PN, "DOE*"),
            text(tags::STUDY_DATE, VR::DA, "20261101-"),
            text(tags::STUDY_INSTANCE_UID, VR::UI, ""),
            text(tags::INSTITUTION_NAME, VR::LO, ""),
        ]);
        let query = read(&bytes, EXPLICIT_VR_LITTLE_ENDIAN).expect("read");
        assert_eq!(query.level, Level::Study);
        assert_eq!(query.matching(tags::PATIENT_NAME).as_deref(), Some("DOE*"));
        assert_eq!(query.matching(tags::STUDY_INSTANCE_UID), None);
        let answer = query.answer(
            |tag| match tag {
                tags::PATIENT_NAME => Some("DOE^JANE".into()),
                tags::STUDY_INSTANCE_UID => Some("1.2.3".into()),
                tags::PATIENT_ID => Some("never asked".into()),
                _ => None,
            },
            "TELERAD",
        );
        let value = |tag| text_of(&answer, tag);
        assert_eq!(value(tags::PATIENT_NAME).as_deref(), Some("DOE^JANE"));
        assert_eq!(value(tags::STUDY_INSTANCE_UID).as_deref(), Some("1.2.3"));
        assert_eq!(value(tags::INSTITUTION_NAME).as_deref(), Some(""));
        assert_eq!(value(tags::QUERY_RETRIEVE_LEVEL).as_deref(), Some("STUDY"));
        assert_eq!(value(tags::RETRIEVE_AE_TITLE).as_deref(), Some("TELERAD"));
        assert!(answer.get(tags::PATIENT_ID).is_none());
        assert!(answer.get(tags::SPECIFIC_CHARACTER_SET).is_none());
    }

    #[test]
    fn an_image_answer_carries_the_unique_keys_above_it_and_says_unicode() {
        let bytes = identifier(vec![
            text(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "IMAGE"),
            text(tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3.4\\1.2.3.5"),
        ]);
        let query = read(&bytes, EXPLICIT_VR_LITTLE_ENDIAN).expect("read");
        assert_eq!(
            query.list(tags::SERIES_INSTANCE_UID),
            ["1.2.3.4", "1.2.3.5"]
        );
        let answer = query.answer(
            |tag| match tag {
                tags::STUDY_INSTANCE_UID => Some("1.2.3".into()),
                tags::SERIES_INSTANCE_UID => Some("1.2.3.4".into()),
                tags::SOP_INSTANCE_UID => Some("1.2.3.4.1".into()),
                tags::PATIENT_NAME => Some("Lefèvre^Zoé".into()),
                _ => None,
            },
            "TELERAD",
        );
        for tag in [
            tags::STUDY_INSTANCE_UID,
            tags::SERIES_INSTANCE_UID,
            tags::SOP_INSTANCE_UID,
        ] {
            assert!(
                text_of(&answer, tag).is_some_and(|v| !v.is_empty()),
                "{tag}"
            );
        }
        assert!(answer.get(tags::SPECIFIC_CHARACTER_SET).is_none());
    }

    #[test]
    fn bad_identifiers_are_refused_saying_why() {
        let no_level = identifier(vec![text(tags::PATIENT_ID, VR::LO, "P1")]);
        assert_eq!(
            read(&no_level, EXPLICIT_VR_LITTLE_ENDIAN).err(),
            Some(QueryError::Level(String::new()))
        );
        let patient = identifier(vec![text(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "PATIENT")]);
        assert_eq!(
            read(&patient, EXPLICIT_VR_LITTLE_ENDIAN).err(),
            Some(QueryError::Level("PATIENT".into()))
        );
        // More keys than any workstation asks: each would be repeated in
        // every match.
        let mut many = vec![text(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "STUDY")];
        many.extend((0..MAX_KEYS as u16).map(|i| text(Tag(0x0011, 0x1000 + i), VR::LO, "")));
        let many = identifier(many);
        let refused = read(&many, EXPLICIT_VR_LITTLE_ENDIAN).err();
        assert_eq!(refused, Some(QueryError::TooManyKeys(MAX_KEYS + 1)));
        assert_eq!(refused.map(|e| e.status()), Some(0xA700));
        assert!(matches!(
            read(
                &vec![0u8; MAX_IDENTIFIER_BYTES + 1],
                EXPLICIT_VR_LITTLE_ENDIAN
            ),
            Err(QueryError::Unreadable(_))
        ));
        // An element claiming more bytes than were sent.
        let mut hostile = identifier(vec![text(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "STUDY")]);
        hostile.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, b'P', b'N', 0xF0, 0xFF]);
        assert!(matches!(
            read(&hostile, EXPLICIT_VR_LITTLE_ENDIAN),
            Err(QueryError::Unreadable(_))
        ));
    }
}
