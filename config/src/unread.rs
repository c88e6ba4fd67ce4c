//! What of a file could not be read, for validation to check the rest.
//!
//! A section or list element with a missing key or a value of the wrong
//! type is reported as it is read and left out of the [`Config`]: a
//! section takes its defaults, a list element is skipped. Validation then
//! runs on what was read, and needs to know what was left out, so that the
//! elements after a skipped one keep their place in the file in the paths
//! reported, and so that a reference to a skipped site or radiologist is
//! not reported as unknown on top of the problem that made it unreadable.
//!
//! [`Config`]: crate::Config

use std::collections::HashMap;

/// The lists whose elements are read one by one, by path.
pub(crate) const SITES: &str = "sites";
pub(crate) const RADIOLOGISTS: &str = "radiologists";
pub(crate) const RULES: &str = "rules";
pub(crate) const SHIFTS: &str = "rota.shifts";
pub(crate) const OVERRIDES: &str = "rota.overrides";

/// Empty (the [`Default`]) for a configuration built or changed in code, of
/// which everything is there.
#[derive(Debug, Default)]
pub(crate) struct Unread {
    /// Sections and list elements left out, by path: "dicom", "sites[2]",
    /// or "sites" for a list that is not a list.
    paths: Vec<String>,
    /// Per list, the index in the file of each element read, and how many
    /// elements the file has.
    lists: HashMap<&'static str, (Vec<usize>, usize)>,
    /// The `name` of each site left out, `None` when that cannot be read
    /// either.
    site_names: Vec<Option<String>>,
    /// The `id` of each radiologist left out, likewise.
    radiologist_ids: Vec<Option<String>>,
}

impl Unread {
    pub(crate) fn left_out(&mut self, path: impl Into<String>) {
        self.paths.push(path.into());
    }

    pub(crate) fn list_read(&mut self, list: &'static str, indices: Vec<usize>, in_file: usize) {
        self.lists.insert(list, (indices, in_file));
    }

    pub(crate) fn site_left_out(&mut self, name: Option<String>) {
        self.site_names.push(name);
    }

    pub(crate) fn radiologist_left_out(&mut self, id: Option<String>) {
        self.radiologist_ids.push(id);
    }

    /// Whether the section or element at `path` was left out.
    pub(crate) fn is_left_out(&self, path: &str) -> bool {
        self.paths.iter().any(|left_out| left_out == path)
    }

    /// Whether `list`, or any of its elements, was left out.
    pub(crate) fn is_partly_left_out(&self, list: &str) -> bool {
        self.paths.iter().any(|path| {
            path.strip_prefix(list)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('['))
        })
    }

    /// The index in the file of element `index` of `list` as read.
    pub(crate) fn index(&self, list: &str, index: usize) -> usize {
        self.lists
            .get(list)
            .and_then(|(indices, _)| indices.get(index).copied())
            .unwrap_or(index)
    }

    /// The path of element `index` of `list` as read: `sites[3]`.
    pub(crate) fn element(&self, list: &str, index: usize) -> String {
        format!("{list}[{}]", self.index(list, index))
    }

    /// How many elements `list` has in the file, `read` (the number read)
    /// when none was left out.
    pub(crate) fn len_in_file(&self, list: &str, read: usize) -> usize {
        self.lists.get(list).map_or(read, |(_, in_file)| *in_file)
    }

    /// Whether a site left out is, or may be, named `name`.
    pub(crate) fn may_name_site(&self, name: &str) -> bool {
        may_be(&self.site_names, name)
    }

    /// Whether a radiologist left out has, or may have, the id `id`.
    pub(crate) fn may_be_radiologist(&self, id: &str) -> bool {
        may_be(&self.radiologist_ids, id)
    }
}

/// An element whose name cannot be read may have any name.
fn may_be(names: &[Option<String>], wanted: &str) -> bool {
    names
        .iter()
        .any(|name| name.as_deref().is_none_or(|name| name == wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_left_out_keeps_indices() {
        let unread = Unread::default();
        assert_eq!(unread.element(SITES, 3), "sites[3]");
        assert_eq!(unread.len_in_file(RULES, 4), 4);
        assert!(!unread.is_partly_left_out(SITES));
        assert!(!unread.may_name_site("ch-a"));
    }

    #[test]
    fn elements_after_a_left_out_one_keep_their_file_index() {
        let mut unread = Unread::default();
        unread.list_read(SITES, vec![0, 2, 3], 4);
        unread.left_out("sites[1]");
        assert_eq!(unread.element(SITES, 1), "sites[2]");
        assert_eq!(unread.len_in_file(SITES, 3), 4);
        assert!(unread.is_partly_left_out(SITES));
        assert!(!unread.is_partly_left_out(RULES));
        assert!(!unread.is_partly_left_out("site"));
    }

    #[test]
    fn a_left_out_element_without_a_name_may_have_any() {
        let mut unread = Unread::default();
        unread.radiologist_left_out(Some("dr-a".to_owned()));
        assert!(unread.may_be_radiologist("dr-a"));
        assert!(!unread.may_be_radiologist("dr-b"));
        unread.radiologist_left_out(None);
        assert!(unread.may_be_radiologist("dr-b"));
    }
}
