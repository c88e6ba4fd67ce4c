//! The two languages telerad speaks, French and English, and a message
//! said in both ([`Said`]): what a refusal tells a person, worded where
//! the refusal is decided, chosen per request from `Accept-Language`.
//!
//! At the bottom of the workspace so that every crate that refuses
//! something (the router, the worklist, the access rules) can say it in
//! both languages without knowing about HTTP.

mod said;

pub use said::Said;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    /// The language an `Accept-Language` value prefers among ours (`q`
    /// weights honoured, the first listed winning a tie); `None` when it
    /// names neither. At most 32 items are read.
    pub fn preferred(accept_language: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for item in accept_language.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let lang = match primary {
                "fr" => Lang::Fr,
                "en" => Lang::En,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }

    /// The language's tag (BCP 47), as `lang` and `Content-Language` take it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_decide_and_the_first_wins_a_tie() {
        assert_eq!(Lang::preferred("fr-FR,fr;q=0.9,en;q=0.8"), Some(Lang::Fr));
        assert_eq!(Lang::preferred("en-GB, fr;q=0.5"), Some(Lang::En));
        assert_eq!(Lang::preferred("de, en;q=0.3, fr;q=0.7"), Some(Lang::Fr));
        assert_eq!(Lang::preferred("en, fr"), Some(Lang::En));
        assert_eq!(Lang::preferred("fr;q=0, en;q=0.1"), Some(Lang::En));
    }

    #[test]
    fn neither_named_is_none() {
        assert_eq!(Lang::preferred(""), None);
        assert_eq!(Lang::preferred("de-DE, it;q=0.8"), None);
        assert_eq!(Lang::preferred("*"), None);
        assert_eq!(Lang::preferred("fr;q=abc"), Some(Lang::Fr));
    }
}
