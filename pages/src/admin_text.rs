//! What the administration page says, in each language.

#[derive(Debug)]
pub struct AdminText {
    pub title: &'static str,
    pub on_duty_now: &'static str,
    pub nobody_on_duty: &'static str,
    pub until: &'static str,
    pub why: &'static str,
    /// "weekly shift", "of", "taken by a swap", "extra duty", for the
    /// rota's reasons.
    pub weekly_shift: &'static str,
    pub shift_of: &'static str,
    pub taken_by_swap: &'static str,
    pub extra_duty: &'static str,
    pub week: &'static str,
    pub clock_change: &'static str,
    pub users: &'static str,
    pub new_user: &'static str,
    pub name: &'static str,
    pub role: &'static str,
    pub sites: &'static str,
    pub sites_hint: &'static str,
    pub radiologist: &'static str,
    pub create: &'static str,
    pub disabled: &'static str,
    pub dead_forwards: &'static str,
    /// Notifications (webhooks, e-mails) given up, and their columns.
    pub dead_deliveries: &'static str,
    pub channel: &'static str,
    pub recipient: &'static str,
    pub none: &'static str,
    pub destination: &'static str,
    pub attempts: &'static str,
    pub last_error: &'static str,
    pub retry: &'static str,
    pub audit: &'static str,
    pub search: &'static str,
    pub user: &'static str,
    pub study: &'static str,
    pub when: &'static str,
    pub action: &'static str,
    pub outcome: &'static str,
    pub source: &'static str,
    pub turnaround: &'static str,
    pub health: &'static str,
    pub studies_count: &'static str,
    pub primary: &'static str,
    pub networks: &'static str,
    pub time_zone: &'static str,
    pub new_token: &'static str,
    pub token_name: &'static str,
    pub token_days: &'static str,
    pub backup: &'static str,
    /// Account roles, as stored and as shown.
    pub account_roles: [(&'static str, &'static str); 5],
    /// The health counters' subjects.
    pub counters: [(&'static str, &'static str); 7],
    /// States and outcomes the page lists (studies, assignments, forwards,
    /// deliveries, critical results, audit records).
    pub states: [(&'static str, &'static str); 17],
    /// The turnaround intervals.
    pub intervals: [(&'static str, &'static str); 8],
    /// strftime format of an audit record's time.
    pub time_format: &'static str,
}

/// The shown word of `id` in `pairs`, or `id` itself.
fn shown<'a>(pairs: &'a [(&'static str, &'static str)], id: &'a str) -> &'a str {
    pairs
        .iter()
        .find(|(known, _)| *known == id)
        .map_or(id, |(_, shown)| shown)
}

impl AdminText {
    pub fn account_role<'a>(&'a self, role: &'a str) -> &'a str {
        shown(&self.account_roles, role)
    }

    pub fn counter<'a>(&'a self, what: &'a str) -> &'a str {
        shown(&self.counters, what)
    }

    pub fn state<'a>(&'a self, state: &'a str) -> &'a str {
        shown(&self.states, state)
    }

    pub fn interval<'a>(&'a self, name: &'a str) -> &'a str {
        shown(&self.intervals, name)
    }

    /// A rota role (`primary`, `backup`) in words.
    pub fn role(&self, role: &str) -> &'static str {
        if role == "backup" {
            self.backup
        } else {
            self.primary
        }
    }
}

pub static FR: AdminText = AdminText {
    title: "Administration",
    on_duty_now: "De garde maintenant",
    nobody_on_duty: "Personne n'est de garde.",
    until: "jusqu'au",
    why: "pourquoi",
    weekly_shift: "garde hebdomadaire du",
    shift_of: "de",
    taken_by_swap: "reprise par échange",
    extra_duty: "garde supplémentaire",
    week: "Garde des sept prochains jours",
    clock_change: "changement d'heure",
    users: "Comptes",
    new_user: "Nouveau compte",
    name: "Nom",
    role: "Rôle",
    sites: "Sites",
    sites_hint: "séparés par des virgules",
    radiologist: "Radiologue (identifiant de la configuration)",
    create: "Créer",
    disabled: "désactivé",
    dead_forwards: "Envois abandonnés",
    dead_deliveries: "Notifications abandonnées",
    channel: "Canal",
    recipient: "Destinataire",
    none: "Aucun.",
    destination: "Destination",
    attempts: "Essais",
    last_error: "Dernière erreur",
    retry: "Relancer",
    audit: "Journal d'audit",
    search: "Rechercher",
    user: "Utilisateur",
    study: "Examen (Study Instance UID)",
    when: "Quand",
    action: "Action",
    outcome: "Résultat",
    source: "Adresse",
    turnaround: "Délais des sept derniers jours (médiane, 90e centile), par priorité",
    health: "État",
    studies_count: "examens",
    primary: "titulaire",
    networks: "Réseaux autorisés",
    time_zone: "Fuseau horaire",
    new_token: "Nouveau jeton d'API (système hospitalier)",
    token_name: "Nom du jeton",
    token_days: "Expire dans (jours)",
    backup: "second",
    account_roles: [
        ("radiologist", "radiologue"),
        ("clinician", "clinicien (urgences)"),
        ("technician", "manipulateur"),
        ("integration", "intégration (jeton d'API)"),
        ("admin", "administrateur"),
    ],
    counters: [
        ("instances", "images"),
        ("studies", "examens"),
        ("assignments", "attributions"),
        ("forwards", "envois aux stations"),
        ("deliveries", "notifications"),
        ("critical results", "résultats critiques"),
        ("escalations", "escalades"),
    ],
    states: [
        ("receiving", "en réception"),
        ("complete", "complets"),
        ("assigned", "attribués"),
        ("acknowledged", "pris"),
        ("unassigned", "sans radiologue"),
        ("reported", "signés"),
        ("pending", "en attente"),
        ("sending", "en cours d'envoi"),
        ("sent", "envoyés"),
        ("delivered", "remises"),
        ("dead", "abandonnés"),
        ("open", "ouverts"),
        ("escalated", "escaladés"),
        ("failed", "échec"),
        ("success", "réussi"),
        ("refused", "refusé"),
        ("done", "faits"),
    ],
    intervals: [
        ("complete_to_assigned", "examen complet → attribué"),
        ("assigned_to_claimed", "attribué → pris"),
        ("complete_to_preliminary", "examen complet → préliminaire"),
        (
            "first_image_to_preliminary",
            "première image → préliminaire",
        ),
        ("complete_to_final", "examen complet → définitif"),
        ("first_image_to_final", "première image → définitif"),
        ("form_to_preliminary", "demande → préliminaire"),
        ("critical_to_communicated", "résultat critique → communiqué"),
    ],
    time_format: "%d/%m/%Y %H:%M:%S %Z",
};

pub static EN: AdminText = AdminText {
    title: "Administration",
    on_duty_now: "On duty now",
    nobody_on_duty: "Nobody is on duty.",
    until: "until",
    why: "why",
    weekly_shift: "weekly shift",
    shift_of: "of",
    taken_by_swap: "taken by a swap",
    extra_duty: "extra duty",
    week: "Rota of the next seven days",
    clock_change: "clock change",
    users: "Accounts",
    new_user: "New account",
    name: "Name",
    role: "Role",
    sites: "Sites",
    sites_hint: "comma-separated",
    radiologist: "Radiologist (configuration id)",
    create: "Create",
    disabled: "disabled",
    dead_forwards: "Forwards given up",
    dead_deliveries: "Notifications given up",
    channel: "Channel",
    recipient: "Recipient",
    none: "None.",
    destination: "Destination",
    attempts: "Attempts",
    last_error: "Last error",
    retry: "Retry",
    audit: "Audit trail",
    search: "Search",
    user: "User",
    study: "Study (Study Instance UID)",
    when: "When",
    action: "Action",
    outcome: "Outcome",
    source: "Address",
    turnaround: "Turnaround of the last seven days (median, 90th percentile), by priority",
    health: "Health",
    studies_count: "studies",
    primary: "primary",
    networks: "Allowed networks",
    time_zone: "Time zone",
    new_token: "New API token (hospital system)",
    token_name: "Token name",
    token_days: "Expires in (days)",
    backup: "backup",
    account_roles: [
        ("radiologist", "radiologist"),
        ("clinician", "clinician"),
        ("technician", "technician"),
        ("integration", "integration (API token)"),
        ("admin", "administrator"),
    ],
    counters: [
        ("instances", "instances"),
        ("studies", "studies"),
        ("assignments", "assignments"),
        ("forwards", "forwards"),
        ("deliveries", "deliveries"),
        ("critical results", "critical results"),
        ("escalations", "escalations"),
    ],
    states: [
        ("receiving", "receiving"),
        ("complete", "complete"),
        ("assigned", "assigned"),
        ("acknowledged", "acknowledged"),
        ("unassigned", "unassigned"),
        ("reported", "reported"),
        ("pending", "pending"),
        ("sending", "sending"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("dead", "dead"),
        ("open", "open"),
        ("escalated", "escalated"),
        ("failed", "failed"),
        ("success", "success"),
        ("refused", "refused"),
        ("done", "done"),
    ],
    intervals: [
        ("complete_to_assigned", "complete → assigned"),
        ("assigned_to_claimed", "assigned → claimed"),
        ("complete_to_preliminary", "complete → preliminary"),
        ("first_image_to_preliminary", "first image → preliminary"),
        ("complete_to_final", "complete → final"),
        ("first_image_to_final", "first image → final"),
        ("form_to_preliminary", "request → preliminary"),
        ("critical_to_communicated", "critical result → communicated"),
    ],
    time_format: "%Y-%m-%d %H:%M:%S %Z",
};
