//! "Complete on release": for a site whose scanner sends each study in
//! one association, the release of that association says the study is
//! all here, unless another association of the site is still open (a PACS
//! sending the rest, a second scanner). The studies an association brought
//! are then completed after a short grace (`complete_on_release_secs`).
//!
//! The count is this process's: associations to another node sharing the
//! database are not seen, and their images reopen a study as late images
//! do.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

#[derive(Debug, Default)]
struct SiteState {
    open: usize,
    /// Studies of associations released while others of the site were
    /// open: completed when the last one ends.
    released: BTreeSet<String>,
}

/// Open associations per site.
#[derive(Debug, Default)]
pub struct SiteAssociations {
    sites: Mutex<HashMap<String, SiteState>>,
}

impl SiteAssociations {
    fn with<T>(&self, site: &str, f: impl FnOnce(&mut SiteState) -> T) -> T {
        // The state is a count and a set: a panic elsewhere cannot leave it
        // half-written, so a poisoned lock is taken as it is.
        let mut sites = self
            .sites
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let state = sites.entry(site.to_string()).or_default();
        let out = f(state);
        if state.open == 0 && state.released.is_empty() {
            sites.remove(site);
        }
        out
    }

    pub fn opened(&self, site: &str) {
        self.with(site, |state| state.open += 1);
    }

    /// An association of `site` ended; `released` holds the studies it
    /// brought when it ended with a release (an abort brings none). The
    /// studies to complete now: none while another association of the site
    /// is open, else all those waiting.
    pub fn closed(&self, site: &str, released: impl IntoIterator<Item = String>) -> Vec<String> {
        self.with(site, |state| {
            state.open = state.open.saturating_sub(1);
            state.released.extend(released);
            if state.open == 0 {
                std::mem::take(&mut state.released).into_iter().collect()
            } else {
                Vec::new()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn studies(uids: &[&str]) -> Vec<String> {
        uids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_lone_association_completes_its_studies_at_release() {
        let sites = SiteAssociations::default();
        sites.opened("a");
        assert_eq!(sites.closed("a", studies(&["1.1", "1.2"])), ["1.1", "1.2"]);
        assert!(sites.sites.lock().unwrap().is_empty(), "nothing kept after");
    }

    #[test]
    fn studies_wait_for_the_last_association_of_their_site() {
        let sites = SiteAssociations::default();
        sites.opened("a");
        sites.opened("a");
        sites.opened("b");
        assert!(
            sites.closed("a", studies(&["1.1"])).is_empty(),
            "another is open"
        );
        assert_eq!(
            sites.closed("b", studies(&["2.1"])),
            ["2.1"],
            "sites are apart"
        );
        // The last one aborted: it brings nothing, but the first one's
        // study may go now.
        assert_eq!(sites.closed("a", Vec::new()), ["1.1"]);
        assert!(sites.sites.lock().unwrap().is_empty());
    }
}
