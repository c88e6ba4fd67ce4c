//! French and English, chosen from the browser's `Accept-Language`; French
//! when the browser asks for neither (the hospitals are French).
//!
//! Every string a page shows is a field of [`Text`], so that a missing
//! translation is a compile error, not an English word on a French page.

use axum::http::HeaderMap;
use axum::http::header::ACCEPT_LANGUAGE;

pub use telerad_lang::Lang;

/// The pages' use of [`Lang`]: French when the browser names neither (the
/// hospitals are French), and each language's words.
pub trait PageLang {
    /// The language the browser prefers among ours.
    fn of(headers: &HeaderMap) -> Lang;
    fn text(self) -> &'static Text;
}

impl PageLang for Lang {
    fn of(headers: &HeaderMap) -> Lang {
        headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Lang::preferred)
            .unwrap_or(Lang::Fr)
    }

    fn text(self) -> &'static Text {
        match self {
            Lang::Fr => &FR,
            Lang::En => &EN,
        }
    }
}

/// A DICOM date (DA, `YYYYMMDD`) as the language writes dates: 12/03/1954
/// in French, 1954-03-12 in English; anything else as it came.
pub fn dicom_date(lang: Lang, raw: &str) -> String {
    let digits = raw.len() == 8 && raw.bytes().all(|b| b.is_ascii_digit());
    if !digits {
        return raw.to_string();
    }
    let (year, month, day) = (&raw[0..4], &raw[4..6], &raw[6..8]);
    match lang {
        Lang::Fr => format!("{day}/{month}/{year}"),
        Lang::En => format!("{year}-{month}-{day}"),
    }
}

/// An error page's title.
pub fn status_title(lang: Lang, status: axum::http::StatusCode) -> &'static str {
    match lang {
        Lang::En => status.canonical_reason().unwrap_or("Error"),
        Lang::Fr => match status.as_u16() {
            400 | 413 | 422 => "Requête refusée",
            401 => "Non connecté",
            403 => "Accès refusé",
            404 => "Introuvable",
            409 => "Refusé dans l'état actuel",
            429 => "Trop de requêtes",
            503 => "Service indisponible",
            _ => "Erreur",
        },
    }
}

/// What the pages say, in one language.
#[derive(Debug)]
pub struct Text {
    /// The language's tag, for links that carry it (the printed report).
    pub code: &'static str,
    pub login_title: &'static str,
    pub login: &'static str,
    pub password: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub wrong_credentials: &'static str,
    pub throttled: &'static str,
    pub session_expired: &'static str,
    pub first_start: &'static str,
    pub change_password: &'static str,
    pub current_password: &'static str,
    pub new_password: &'static str,
    pub repeat_password: &'static str,
    pub passwords_differ: &'static str,
    pub password_too_short: &'static str,
    pub password_changed: &'static str,
    pub must_change_password: &'static str,
    pub save: &'static str,
    pub worklist_title: &'static str,
    pub board_title: &'static str,
    pub filters: &'static str,
    pub apply: &'static str,
    pub status: &'static str,
    pub priority: &'static str,
    pub site: &'static str,
    pub any: &'static str,
    pub mine: &'static str,
    pub mine_or_urgent: &'static str,
    pub unassigned: &'static str,
    pub escalated: &'static str,
    pub form_missing: &'static str,
    pub new_images: &'static str,
    pub patient: &'static str,
    pub examination: &'static str,
    pub reader: &'static str,
    pub report_due: &'static str,
    pub stroke_window: &'static str,
    pub form: &'static str,
    pub report: &'static str,
    pub images: &'static str,
    pub arrived: &'static str,
    pub nothing: &'static str,
    pub next_page: &'static str,
    pub claim: &'static str,
    pub release: &'static str,
    pub overdue: &'static str,
    pub window_closed: &'static str,
    pub since_onset: &'static str,
    pub notify: &'static str,
    pub live: &'static str,
    pub offline: &'static str,
    pub keyboard_help: &'static str,
    pub critical_waiting: &'static str,
    pub acknowledge: &'static str,
    pub category: &'static str,
    pub flagged_by: &'static str,
    pub due: &'static str,
    pub new_report: &'static str,
    pub state_receiving: &'static str,
    pub state_received: &'static str,
    pub state_waiting: &'static str,
    pub state_assigned: &'static str,
    pub state_reading: &'static str,
    pub state_preliminary: &'static str,
    pub state_final: &'static str,
    pub report_none: &'static str,
    pub report_draft: &'static str,
    pub report_preliminary: &'static str,
    pub report_final: &'static str,
    pub report_addendum: &'static str,
    pub form_present: &'static str,
    pub priority_stat: &'static str,
    pub priority_urgent: &'static str,
    pub priority_routine: &'static str,
    pub status_open: &'static str,
    pub status_unreported: &'static str,
    pub status_signed: &'static str,
    pub status_all: &'static str,
    pub action_failed: &'static str,
    /// What a refusal means, by kind, before the API's own words.
    pub failed_input: &'static str,
    pub failed_forbidden: &'static str,
    pub failed_missing: &'static str,
    pub failed_state: &'static str,
    pub failed_busy: &'static str,
    pub forbidden_page: &'static str,
    pub other_site: &'static str,
    pub reading: &'static crate::reading_text::ReadingText,
    pub admin: &'static crate::admin_text::AdminText,
    /// Monday first.
    pub weekdays: [&'static str; 7],
    pub administration: &'static str,
    pub new_form: &'static str,
    pub subspecialty: &'static str,
    pub form_filed: &'static str,
    pub patient_id: &'static str,
    pub accession_number: &'static str,
    pub urgency_stroke: &'static str,
    pub urgency_trauma: &'static str,
    pub safety: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub unknown: &'static str,
    pub not_applicable: &'static str,
}

pub static FR: Text = Text {
    code: "fr",
    login_title: "Connexion",
    login: "Identifiant",
    password: "Mot de passe",
    sign_in: "Se connecter",
    sign_out: "Se déconnecter",
    wrong_credentials: "Identifiant ou mot de passe incorrect.",
    throttled: "Trop d'essais : réessayez dans quelques minutes.",
    session_expired: "Votre session a expiré : reconnectez-vous.",
    first_start: "Premier démarrage : le compte « admin » a été créé ; son mot de passe est dans le fichier « initial-admin-password » du dossier de données, lisible par l'administrateur du serveur seulement.",
    change_password: "Changer le mot de passe",
    current_password: "Mot de passe actuel",
    new_password: "Nouveau mot de passe",
    repeat_password: "Nouveau mot de passe, à nouveau",
    passwords_differ: "Les deux nouveaux mots de passe diffèrent.",
    password_too_short: "Le nouveau mot de passe doit compter au moins 12 caractères.",
    password_changed: "Mot de passe changé.",
    must_change_password: "Premier démarrage : choisissez un mot de passe pour le compte administrateur.",
    save: "Enregistrer",
    worklist_title: "Liste de travail",
    board_title: "Tableau des urgences",
    filters: "Filtres",
    apply: "Appliquer",
    status: "Statut",
    priority: "Priorité",
    site: "Site",
    any: "Tous",
    mine: "Les miens",
    mine_or_urgent: "Les miens et les urgents à prendre",
    unassigned: "Non attribués",
    escalated: "Escaladés",
    form_missing: "Sans demande",
    new_images: "Nouvelles images",
    patient: "Patient",
    examination: "Examen",
    reader: "Radiologue",
    report_due: "Compte rendu attendu",
    stroke_window: "Fenêtre de thrombolyse",
    form: "Demande",
    report: "Compte rendu",
    images: "Images",
    arrived: "Arrivé",
    nothing: "Rien à afficher.",
    next_page: "Page suivante",
    claim: "Prendre",
    release: "Rendre",
    overdue: "en retard",
    window_closed: "fenêtre fermée",
    since_onset: "depuis le début des symptômes",
    notify: "Alerte sonore et notification pour les nouveaux examens urgents",
    live: "En direct",
    offline: "Hors ligne : reconnexion…",
    keyboard_help: "Clavier : j / k ou ↓ / ↑ pour se déplacer, c pour prendre, Entrée pour ouvrir.",
    critical_waiting: "Résultats critiques à accuser",
    acknowledge: "Accuser réception",
    category: "Catégorie",
    flagged_by: "Signalé par",
    due: "Échéance",
    new_report: "nouveau",
    state_receiving: "réception en cours",
    state_received: "reçu",
    state_waiting: "en attente d'un radiologue",
    state_assigned: "attribué",
    state_reading: "en lecture",
    state_preliminary: "compte rendu préliminaire",
    state_final: "compte rendu définitif",
    report_none: "aucun",
    report_draft: "brouillon",
    report_preliminary: "préliminaire",
    report_final: "définitif",
    report_addendum: "addendum",
    form_present: "présente",
    priority_stat: "extrême urgence",
    priority_urgent: "urgent",
    priority_routine: "normal",
    status_open: "à signer",
    status_unreported: "sans compte rendu",
    status_signed: "signés",
    status_all: "tous",
    action_failed: "L'action a échoué",
    failed_input: "Saisie refusée",
    failed_forbidden: "Refusé",
    failed_missing: "Introuvable (ou hors de vos sites)",
    failed_state: "Refusé dans l'état actuel de l'examen",
    failed_busy: "Serveur occupé, réessayez dans un instant",
    forbidden_page: "Cette page n'est pas ouverte à votre rôle.",
    other_site: "Ce formulaire vient d'un autre site : ouvrez telerad directement.",
    reading: &crate::reading_text::FR,
    admin: &crate::admin_text::FR,
    weekdays: ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."],
    administration: "Administration",
    new_form: "Nouvelle demande d'examen",
    subspecialty: "Surspécialité",
    form_filed: "Demande enregistrée",
    patient_id: "Identifiant patient (IPP)",
    accession_number: "Numéro d'examen (accession)",
    urgency_stroke: "AVC",
    urgency_trauma: "Traumatisme",
    safety: "Sécurité du patient",
    yes: "oui",
    no: "non",
    unknown: "inconnu",
    not_applicable: "sans objet",
};

pub static EN: Text = Text {
    code: "en",
    login_title: "Sign in",
    login: "Login",
    password: "Password",
    sign_in: "Sign in",
    sign_out: "Sign out",
    wrong_credentials: "Wrong login or password.",
    throttled: "Too many attempts: try again in a few minutes.",
    session_expired: "Your session has expired: please sign in again.",
    first_start: "First start: the \"admin\" account was created; its password is in the file \"initial-admin-password\" of the data folder, readable by the server's administrator only.",
    change_password: "Change password",
    current_password: "Current password",
    new_password: "New password",
    repeat_password: "New password, again",
    passwords_differ: "The two new passwords differ.",
    password_too_short: "The new password must have at least 12 characters.",
    password_changed: "Password changed.",
    must_change_password: "First start: choose a password for the administrator's account.",
    save: "Save",
    worklist_title: "Worklist",
    board_title: "Emergency department board",
    filters: "Filters",
    apply: "Apply",
    status: "Status",
    priority: "Priority",
    site: "Site",
    any: "Any",
    mine: "Mine",
    mine_or_urgent: "Mine and urgent ones to take",
    unassigned: "Unassigned",
    escalated: "Escalated",
    form_missing: "Form missing",
    new_images: "New images",
    patient: "Patient",
    examination: "Examination",
    reader: "Radiologist",
    report_due: "Report due",
    stroke_window: "Thrombolysis window",
    form: "Form",
    report: "Report",
    images: "Images",
    arrived: "Arrived",
    nothing: "Nothing to show.",
    next_page: "Next page",
    claim: "Claim",
    release: "Release",
    overdue: "overdue",
    window_closed: "window closed",
    since_onset: "since symptom onset",
    notify: "Sound and notification for new urgent studies",
    live: "Live",
    offline: "Offline: reconnecting…",
    keyboard_help: "Keyboard: j / k or ↓ / ↑ to move, c to claim, Enter to open.",
    critical_waiting: "Critical results to acknowledge",
    acknowledge: "Acknowledge",
    category: "Category",
    flagged_by: "Flagged by",
    due: "Due",
    new_report: "new",
    state_receiving: "receiving",
    state_received: "received",
    state_waiting: "waiting for a radiologist",
    state_assigned: "assigned",
    state_reading: "being read",
    state_preliminary: "preliminary report",
    state_final: "final report",
    report_none: "none",
    report_draft: "draft",
    report_preliminary: "preliminary",
    report_final: "final",
    report_addendum: "addendum",
    form_present: "present",
    priority_stat: "STAT",
    priority_urgent: "urgent",
    priority_routine: "routine",
    status_open: "to sign",
    status_unreported: "unreported",
    status_signed: "signed",
    status_all: "all",
    action_failed: "The action failed",
    failed_input: "Input refused",
    failed_forbidden: "Refused",
    failed_missing: "Not found (or not of your sites)",
    failed_state: "Refused in the study's current state",
    failed_busy: "Server busy, try again in a moment",
    forbidden_page: "This page is not open to your role.",
    other_site: "This form came from another site: open telerad directly.",
    reading: &crate::reading_text::EN,
    admin: &crate::admin_text::EN,
    weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    administration: "Administration",
    new_form: "New request form",
    subspecialty: "Subspecialty",
    form_filed: "Request form filed",
    patient_id: "Patient ID",
    accession_number: "Accession number",
    urgency_stroke: "Stroke",
    urgency_trauma: "Trauma",
    safety: "Patient safety",
    yes: "yes",
    no: "no",
    unknown: "unknown",
    not_applicable: "not applicable",
};

impl Text {
    pub fn priority(&self, priority: &str) -> &'static str {
        match priority {
            "stat" => self.priority_stat,
            "urgent" => self.priority_urgent,
            _ => self.priority_routine,
        }
    }

    /// A subspecialty as the reading room names it.
    pub fn subspecialty<'a>(&'a self, id: &'a str) -> &'a str {
        self.reading
            .subspecialties
            .iter()
            .find(|(known, _)| *known == id)
            .map_or(id, |(_, shown)| shown)
    }

    pub fn report_status(&self, status: &str) -> &'static str {
        match status {
            "draft" => self.report_draft,
            "preliminary" => self.report_preliminary,
            "final" => self.report_final,
            "addendum" => self.report_addendum,
            _ => self.report_none,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn lang(header: &str) -> Lang {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_LANGUAGE, HeaderValue::from_str(header).unwrap());
        Lang::of(&headers)
    }

    #[test]
    fn the_browser_preference_chooses() {
        assert_eq!(lang("en-GB,en;q=0.9,fr;q=0.8"), Lang::En);
        assert_eq!(lang("fr-FR,fr;q=0.9,en;q=0.8"), Lang::Fr);
        assert_eq!(lang("de-DE,en;q=0.5,fr;q=0.7"), Lang::Fr);
        assert_eq!(lang("de-DE,en;q=0.5"), Lang::En);
        assert_eq!(lang("fr;q=0,en"), Lang::En);
    }

    #[test]
    fn dicom_dates_are_written_the_language_s_way() {
        assert_eq!(dicom_date(Lang::Fr, "19540312"), "12/03/1954");
        assert_eq!(dicom_date(Lang::En, "19540312"), "1954-03-12");
        assert_eq!(dicom_date(Lang::Fr, ""), "");
        assert_eq!(dicom_date(Lang::Fr, "1954"), "1954");
        assert_eq!(dicom_date(Lang::Fr, "1954031é"), "1954031é");
    }

    #[test]
    fn french_when_neither_is_asked() {
        assert_eq!(lang("de-DE"), Lang::Fr);
        assert_eq!(lang(""), Lang::Fr);
        assert_eq!(Lang::of(&HeaderMap::new()), Lang::Fr);
    }
}
