//! Who should read a study now: a pure function of the classification, the
//! duties on the rota, the radiologists' licences and limits, and their
//! current load. Every radiologist considered is listed with the reason they
//! were or were not eligible, so a decision can be explained to a human.

use crate::rota::{Duty, Role};
use crate::rules::{Classification, Priority};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use telerad_lang::Said;

/// Open work of one radiologist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    pub open: i64,
    pub weighted: i64,
    pub stat_open: i64,
}

/// A STAT costs a reader far more than a routine study: weights used to
/// compare loads.
pub fn weight(priority: Priority) -> i64 {
    match priority {
        Priority::Stat => 4,
        Priority::Urgent => 2,
        Priority::Routine => 1,
    }
}

/// What the selection needs to know about a radiologist.
#[derive(Debug, Clone)]
pub struct Reader {
    pub name: String,
    pub sites: Vec<String>,
    pub max_open_studies: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Considered {
    pub radiologist_id: String,
    pub role: String,
    pub subspecialty: String,
    pub open: i64,
    pub weighted_load: i64,
    pub stat_open: i64,
    pub eligible: bool,
    pub reason: String,
}

/// A decision and everything that explains it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Decision {
    pub rule: String,
    pub subspecialty: String,
    pub priority: String,
    pub chosen: Option<String>,
    /// Which pool the choice came from, in words.
    pub pool: String,
    pub why: String,
    pub considered: Vec<Considered>,
    /// `pool` and `why` in French, for the pages' history.
    #[serde(skip)]
    pub pool_fr: String,
    #[serde(skip)]
    pub why_fr: String,
}

impl Decision {
    /// `why` in both languages.
    pub fn said(&self) -> Said {
        Said::new(self.why.clone(), self.why_fr.clone())
    }
}

/// The fixed facts a choice is made against.
#[derive(Debug)]
pub struct Context<'a> {
    pub readers: &'a HashMap<String, Reader>,
    pub site: &'a str,
    pub loads: &'a HashMap<String, Load>,
    /// Radiologists who already had the study and did not acknowledge it.
    pub exclude: &'a HashSet<String>,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Primary => "primary",
        Role::Backup => "backup",
    }
}

/// Everyone on duty for `subspecialty`, each with their eligibility.
fn pool(subspecialty: &str, duties: &[Duty], ctx: &Context<'_>) -> Vec<(Role, Considered)> {
    // One entry per radiologist, with their best role for this subspecialty.
    let mut best: BTreeMap<&str, &Duty> = BTreeMap::new();
    for duty in duties.iter().filter(|d| d.subspecialty == subspecialty) {
        best.entry(duty.radiologist_id.as_str())
            .and_modify(|d| {
                if duty.role < d.role {
                    *d = duty;
                }
            })
            .or_insert(duty);
    }
    best.into_values()
        .map(|duty| {
            let id = &duty.radiologist_id;
            let load = ctx.loads.get(id).copied().unwrap_or_default();
            let reader = ctx.readers.get(id);
            let (eligible, reason) = match reader {
                None => (false, "not a configured radiologist".to_string()),
                Some(r) if !r.sites.iter().any(|s| s == ctx.site) => {
                    (false, format!("not licensed for site {}", ctx.site))
                }
                Some(r) if load.open >= r.max_open_studies => (
                    false,
                    format!("at the limit of {} open studies", r.max_open_studies),
                ),
                Some(_) if ctx.exclude.contains(id) => (
                    false,
                    "already had this study and did not acknowledge it".to_string(),
                ),
                Some(_) => (true, format!("on duty ({})", duty.why)),
            };
            (
                duty.role,
                Considered {
                    radiologist_id: id.clone(),
                    role: role_name(duty.role).to_string(),
                    subspecialty: duty.subspecialty.clone(),
                    open: load.open,
                    weighted_load: load.weighted,
                    stat_open: load.stat_open,
                    eligible,
                    reason,
                },
            )
        })
        .collect()
}

fn best_of(pool: &[(Role, Considered)], priority: Priority) -> Option<&Considered> {
    pool.iter()
        .filter(|(_, c)| c.eligible)
        .min_by_key(|(role, c)| {
            // Primary before backup; a STAT goes to whoever has the least
            // STAT work, then the least work overall.
            let stat = if priority == Priority::Stat {
                c.stat_open
            } else {
                0
            };
            (*role, stat, c.weighted_load, c.radiologist_id.clone())
        })
        .map(|(_, c)| c)
}

/// Subspecialists on duty first; if none can take it, the general
/// radiologists on duty; if none, nobody (the study waits, unassigned).
pub fn choose(classification: &Classification, duties: &[Duty], ctx: &Context<'_>) -> Decision {
    let mut considered = Vec::new();
    let mut pools = vec![(classification.subspecialty.as_str(), false)];
    if classification.subspecialty != "general" {
        pools.push(("general", true));
    }
    for (subspecialty, fallback) in pools {
        let pool = pool(subspecialty, duties, ctx);
        let chosen = best_of(&pool, classification.priority).cloned();
        considered.extend(pool.into_iter().map(|(_, c)| c));
        if let Some(chosen) = chosen {
            let asked = &classification.subspecialty;
            let (pool_name, pool_fr) = if fallback {
                (
                    format!("general on duty (no {asked} radiologist available)"),
                    format!("radiologie générale de garde (aucun radiologue {asked} disponible)"),
                )
            } else {
                (
                    format!("{subspecialty} on duty"),
                    format!("{subspecialty} de garde"),
                )
            };
            let why_fr = format!(
                "la règle {:?} donne {} / {} ; {} choisi parmi : {}, rôle {}, {} en cours ({} extrême urgence), habilité pour {}",
                classification.rule,
                classification.subspecialty,
                classification.priority.as_str(),
                chosen.radiologist_id,
                pool_fr,
                chosen.role,
                chosen.open,
                chosen.stat_open,
                ctx.site
            );
            let why = format!(
                "rule {:?} gives {} / {}; {} chosen from {}: {} role, {} open ({} STAT), licensed for {}",
                classification.rule,
                classification.subspecialty,
                classification.priority.as_str(),
                chosen.radiologist_id,
                pool_name,
                chosen.role,
                chosen.open,
                chosen.stat_open,
                ctx.site
            );
            return Decision {
                rule: classification.rule.clone(),
                subspecialty: classification.subspecialty.clone(),
                priority: classification.priority.as_str().to_string(),
                chosen: Some(chosen.radiologist_id),
                pool: pool_name,
                why,
                considered,
                pool_fr,
                why_fr,
            };
        }
    }
    // General is the fallback of every other subspecialty: name it once
    // when it was the one asked for.
    let (wanted, voulu) = if classification.subspecialty == "general" {
        ("general".to_owned(), "de radiologie générale".to_owned())
    } else {
        (
            format!("{} or general", classification.subspecialty),
            format!("{} ni de radiologie générale", classification.subspecialty),
        )
    };
    Decision {
        rule: classification.rule.clone(),
        subspecialty: classification.subspecialty.clone(),
        priority: classification.priority.as_str().to_string(),
        chosen: None,
        pool: "nobody".to_string(),
        pool_fr: "personne".to_string(),
        why_fr: format!(
            "la règle {:?} donne {} / {} ; aucun radiologue {voulu} de garde ne peut prendre un examen de {}",
            classification.rule,
            classification.subspecialty,
            classification.priority.as_str(),
            ctx.site
        ),
        why: format!(
            "rule {:?} gives {} / {}; no {} radiologist on duty can take a study from {}",
            classification.rule,
            classification.subspecialty,
            classification.priority.as_str(),
            wanted,
            ctx.site
        ),
        considered,
    }
}

/// The escalation chain, after the rota is exhausted: the first member
/// licensed for the site who has not had the study yet. Duty and open-study
/// limits do not apply: being called is what the chain is for.
pub fn next_in_chain<'a>(chain: &'a [String], ctx: &Context<'_>) -> Option<&'a str> {
    chain
        .iter()
        .find(|id| {
            !ctx.exclude.contains(*id)
                && ctx
                    .readers
                    .get(*id)
                    .is_some_and(|r| r.sites.iter().any(|s| s == ctx.site))
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests;
