//! A message in English and, where it has been written, in French.

use crate::Lang;
use std::fmt;

/// A message to a person. English is always there (it is also what the
/// logs and the API's clients without a language preference read); the
/// French is written beside it, at the place the message is decided. No
/// conversion from a string: a message without French says so
/// ([`Said::english`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    en: String,
    fr: Option<String>,
}

impl Said {
    pub fn new(en: impl Into<String>, fr: impl Into<String>) -> Said {
        Said {
            en: en.into(),
            fr: Some(fr.into()),
        }
    }

    /// A message only in English: the API's technical answers (a malformed
    /// parameter, a database failure), which the pages never cause.
    pub fn english(en: impl Into<String>) -> Said {
        Said {
            en: en.into(),
            fr: None,
        }
    }

    /// The English and the French, if it was written.
    pub fn into_parts(self) -> (String, Option<String>) {
        (self.en, self.fr)
    }

    pub fn en(&self) -> &str {
        &self.en
    }

    /// The French, if it was written.
    pub fn fr(&self) -> Option<&str> {
        self.fr.as_deref()
    }

    /// The message in `lang`, English where the French is missing.
    pub fn in_lang(&self, lang: Lang) -> &str {
        match lang {
            Lang::Fr => self.fr.as_deref().unwrap_or(&self.en),
            Lang::En => &self.en,
        }
    }

    /// Both parts prefixed, as a field's name before what is wrong with it.
    pub fn prefixed(self, en: &str, fr: &str) -> Said {
        Said {
            en: format!("{en}{}", self.en),
            fr: self.fr.map(|f| format!("{fr}{f}")),
        }
    }
}

/// English, as the logs and `to_string` read it.
impl fmt::Display for Said {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.en)
    }
}

/// `said!("no study {uid}", "aucun examen {uid}")`: both formatted from
/// the same arguments in scope.
#[macro_export]
macro_rules! said {
    ($en:literal, $fr:literal $(,)?) => {
        $crate::Said::new(format!($en), format!($fr))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_falls_back_to_english() {
        let both = Said::new("no study", "aucun examen");
        assert_eq!(both.in_lang(Lang::Fr), "aucun examen");
        assert_eq!(both.in_lang(Lang::En), "no study");
        let english = Said::english("bad limit");
        assert_eq!(english.in_lang(Lang::Fr), "bad limit");
        assert_eq!(english.to_string(), "bad limit");
    }

    #[test]
    fn the_macro_formats_both_from_the_same_arguments() {
        let uid = "1.2.3";
        let s = said!("no study {uid}", "aucun examen {uid}");
        assert_eq!(s.en(), "no study 1.2.3");
        assert_eq!(s.fr(), Some("aucun examen 1.2.3"));
        let field = s.prefixed("study: ", "examen : ");
        assert_eq!(field.fr(), Some("examen : aucun examen 1.2.3"));
    }
}
