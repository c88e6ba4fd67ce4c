//! What the printed report says around its content, in each language; the
//! template's own words come from its translation
//! ([`super::templates::french`]).

use telerad_lang::Lang;

pub struct PrintWords {
    pub lang: &'static str,
    pub preliminary: &'static str,
    pub final_report: &'static str,
    pub final_with_addenda: &'static str,
    pub patient: &'static str,
    pub patient_id: &'static str,
    pub birth_date: &'static str,
    pub sex: &'static str,
    pub examination: &'static str,
    pub accession: &'static str,
    pub study_date: &'static str,
    pub study_uid: &'static str,
    pub request: &'static str,
    pub requested_by: &'static str,
    pub comment: &'static str,
    pub critical_results: &'static str,
    pub content_hash: &'static str,
    pub addendum: &'static str,
    pub printed: &'static str,
    /// A label's colon: French puts a space before it.
    pub colon: &'static str,
    /// The request form's urgencies, as stored and as printed.
    pub urgencies: [(&'static str, &'static str); 5],
    /// strftime formats: a date, a time of day with its zone.
    pub date_format: &'static str,
    pub time_format: &'static str,
}

impl PrintWords {
    pub fn of(lang: Lang) -> &'static PrintWords {
        match lang {
            Lang::Fr => &FR,
            Lang::En => &EN,
        }
    }

    /// "Signed by …" under the final's content.
    pub fn signed(&self, radiologist: &str, login: &str, at: &str) -> String {
        match self.lang {
            "fr" => format!("Signé par {radiologist} ({login}) le {at}."),
            _ => format!("Signed by {radiologist} ({login}) on {at}."),
        }
    }

    /// The line under a preliminary.
    pub fn issued(&self, radiologist: &str, at: &str) -> String {
        match self.lang {
            "fr" => format!("Préliminaire, émis par {radiologist} le {at} ; non signé."),
            _ => format!("Preliminary, issued by {radiologist} on {at}; not signed."),
        }
    }

    /// An addendum's heading, after "Addendum — ".
    pub fn addendum_signed(&self, radiologist: &str, at: &str) -> String {
        match self.lang {
            "fr" => format!("signé par {radiologist} le {at}"),
            _ => format!("signed by {radiologist} on {at}"),
        }
    }

    pub fn urgency<'a>(&self, stored: &'a str) -> &'a str {
        self.urgencies
            .iter()
            .find(|(id, _)| *id == stored)
            .map_or(stored, |(_, shown)| shown)
    }
}

pub static EN: PrintWords = PrintWords {
    lang: "en",
    preliminary: "Preliminary report — not signed, may change",
    final_report: "Final report",
    final_with_addenda: "Final report, with addenda",
    patient: "Patient",
    patient_id: "Patient ID",
    birth_date: "Birth date",
    sex: "Sex",
    examination: "Examination",
    accession: "Accession",
    study_date: "Study date",
    study_uid: "Study UID",
    request: "Request",
    requested_by: "requested by",
    comment: "Comment",
    critical_results: "Critical results",
    content_hash: "Content SHA-256",
    addendum: "Addendum",
    printed: "Printed",
    colon: ":",
    urgencies: [
        ("stroke", "stroke"),
        ("trauma", "trauma"),
        ("stat", "STAT"),
        ("urgent", "urgent"),
        ("routine", "routine"),
    ],
    date_format: "%Y-%m-%d",
    time_format: "%Y-%m-%d %H:%M %Z",
};

pub static FR: PrintWords = PrintWords {
    lang: "fr",
    preliminary: "Compte rendu préliminaire — non signé, susceptible de changer",
    final_report: "Compte rendu définitif",
    final_with_addenda: "Compte rendu définitif, avec addenda",
    patient: "Patient",
    patient_id: "IPP",
    birth_date: "Date de naissance",
    sex: "Sexe",
    examination: "Examen",
    accession: "N° d'examen",
    study_date: "Date de l'examen",
    study_uid: "UID de l'examen",
    request: "Demande",
    requested_by: "demandé par",
    comment: "Commentaire",
    critical_results: "Résultats critiques",
    content_hash: "Empreinte SHA-256 du contenu",
    addendum: "Addendum",
    printed: "Imprimé le",
    colon: " :",
    urgencies: [
        ("stroke", "AVC"),
        ("trauma", "traumatisme"),
        ("stat", "extrême urgence"),
        ("urgent", "urgent"),
        ("routine", "normal"),
    ],
    date_format: "%d/%m/%Y",
    time_format: "%d/%m/%Y %H:%M %Z",
};
