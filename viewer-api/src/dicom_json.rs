//! The DICOM JSON model (PS3.18 Annex F.2): one object per data set, keyed
//! by the tag's eight hex digits, each attribute its VR and its values.
//! An empty attribute is sent with its VR and no `Value`, as the model
//! requires for a present but empty element.

use serde_json::{Map, Value, json};

/// One data set being written.
#[derive(Debug, Default)]
pub struct DataSet(Map<String, Value>);

impl DataSet {
    pub fn new() -> DataSet {
        DataSet::default()
    }

    /// A string attribute (`vr` one of the text VRs: UI, DA, TM, SH, LO,
    /// CS, ...); `value` empty means present but empty. A multi-valued
    /// one is written with `\` between its values, as DICOM stores it.
    pub fn text(mut self, tag: &str, vr: &str, value: &str) -> DataSet {
        let values: Vec<Value> = value
            .split('\\')
            .filter(|v| !v.is_empty())
            .map(|v| Value::String(v.to_string()))
            .collect();
        self.0.insert(tag.to_string(), element(vr, values));
        self
    }

    /// A person name (PN), in its alphabetic representation.
    pub fn person(mut self, tag: &str, value: &str) -> DataSet {
        let values = if value.is_empty() {
            Vec::new()
        } else {
            vec![json!({ "Alphabetic": value })]
        };
        self.0.insert(tag.to_string(), element("PN", values));
        self
    }

    /// An integer string (IS) or unsigned long (UL) attribute.
    pub fn number(mut self, tag: &str, vr: &str, value: Option<i64>) -> DataSet {
        let values = value.map(|v| vec![Value::from(v)]).unwrap_or_default();
        self.0.insert(tag.to_string(), element(vr, values));
        self
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

fn element(vr: &str, values: Vec<Value>) -> Value {
    if values.is_empty() {
        json!({ "vr": vr })
    } else {
        json!({ "vr": vr, "Value": values })
    }
}

#[cfg(test)]
mod tests {
    use super::DataSet;
    use serde_json::json;

    #[test]
    fn attributes_are_written_as_the_model_says() {
        let set = DataSet::new()
            .text("00080061", "CS", "CT\\MR")
            .person("00100010", "Doe^Jane")
            .text("00080050", "SH", "")
            .number("00201206", "IS", Some(3))
            .into_value();
        assert_eq!(
            set,
            json!({
                "00080061": {"vr": "CS", "Value": ["CT", "MR"]},
                "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
                "00080050": {"vr": "SH"},
                "00201206": {"vr": "IS", "Value": [3]},
            })
        );
    }
}
