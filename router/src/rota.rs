//! The rota engine: who is on duty at an instant, and why.
//!
//! A weekly shift on day D from S to E in zone Z covers the instants of
//! [D S, D' E), where D' is D if E is after S and D + 1 otherwise (E = S is
//! a 24-hour shift). The bounds are civil times of Z turned into instants
//! with the zone's rules of that date, so shifts follow the wall clock
//! across daylight saving changes: a 20:00–08:00 night in Europe/Paris lasts
//! 11 hours when clocks go forward and 13 hours when they go back.
//!
//! Dated overrides win over the weekly pattern, within their [from, to):
//! a swap hands the radiologist's weekly duties to the other radiologist, an
//! extra adds a duty for the whole window, and an absence removes every
//! duty of the radiologist, including ones handed to them by a swap or
//! given by an extra (an absent person can answer nothing).

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;
use telerad_config::{
    Config, OverrideKind, day_name, parse_clock_time, parse_day, parse_instant, time_zone,
};

pub use telerad_config::Role;

/// One radiologist on duty, in one role and subspecialty, for
/// `[starts, ends)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Duty {
    pub radiologist_id: String,
    pub role: Role,
    pub subspecialty: String,
    /// When this duty began for this radiologist: the shift's start, or a
    /// later override boundary (the start of a swap, the end of an absence).
    pub starts: Timestamp,
    /// When it ends: the shift's end, or an earlier override boundary.
    pub ends: Timestamp,
    /// Where the duty comes from, in words, with the configuration key:
    /// "weekly shift mon 20:00–08:00 Europe/Paris (rota.shifts[0])".
    pub why: String,
    /// The same, in parts, for those who word it in another language.
    #[serde(skip)]
    pub source: DutySource,
}

/// Where a duty comes from, in parts: [`Duty::why`] is its English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DutySource {
    /// A weekly shift on `weekday`; `times` is "20:00–08:00 Europe/Paris",
    /// `key` "rota.shifts[0]".
    Weekly {
        weekday: jiff::civil::Weekday,
        times: String,
        key: String,
    },
    /// `of`'s weekly shift, taken by a swap over `period`
    /// ("2026-12-24T18:00–2026-12-26T08:00", `swap_key`).
    Swapped {
        weekday: jiff::civil::Weekday,
        times: String,
        key: String,
        of: String,
        period: String,
        swap_key: String,
    },
    /// An extra duty over `period`, `key` "rota.overrides[2]".
    Extra { period: String, key: String },
}

/// The configuration's rota could not be read. [`Config`] validation
/// reports all of these first, so this is met only with a configuration
/// built or changed in code and not validated again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotaError {
    #[error("rota configuration {path}: {message}")]
    Invalid { path: String, message: String },
}

/// The weekly pattern and its dated overrides, ready to answer
/// [`Rota::on_duty`].
#[derive(Debug, Clone)]
pub struct Rota {
    shifts: Vec<WeeklyShift>,
    overrides: Vec<DatedOverride>,
}

#[derive(Debug, Clone)]
struct WeeklyShift {
    radiologist_id: String,
    role: Role,
    subspecialty: String,
    days: Vec<Weekday>,
    start: Time,
    end: Time,
    zone: TimeZone,
    /// "20:00–08:00 Europe/Paris", for [`Duty::why`].
    times: String,
    /// "rota.shifts[0]".
    key: String,
}

#[derive(Debug, Clone)]
struct DatedOverride {
    radiologist_id: String,
    action: Action,
    from: Timestamp,
    to: Timestamp,
    /// "override absence 2026-12-24T18:00–2026-12-26T08:00
    /// (rota.overrides[0])", for [`Duty::why`].
    label: String,
    /// "2026-12-24T18:00–2026-12-26T08:00".
    period: String,
    /// "rota.overrides[0]".
    key: String,
}

#[derive(Debug, Clone)]
enum Action {
    Absence,
    Extra { role: Role, subspecialty: String },
    Swap { with: String },
}

impl Rota {
    /// The rota of `config`.
    ///
    /// # Errors
    ///
    /// [`RotaError::Invalid`] for the first value that cannot be read (a
    /// time, day, zone or date), or an override without the keys its kind
    /// needs.
    pub fn from_config(config: &Config) -> Result<Rota, RotaError> {
        let rota = &config.rota;
        let invalid = |path: String| move |message: String| RotaError::Invalid { path, message };
        let rota_zone = rota.zone().map_err(invalid("rota.time_zone".to_owned()))?;

        let mut shifts = Vec::with_capacity(rota.shifts.len());
        for (i, shift) in rota.shifts.iter().enumerate() {
            let path = format!("rota.shifts[{i}]");
            let days = shift
                .days
                .iter()
                .enumerate()
                .map(|(d, day)| parse_day(day).map_err(invalid(format!("{path}.days[{d}]"))))
                .collect::<Result<Vec<_>, _>>()?;
            let start = parse_clock_time(&shift.start).map_err(invalid(format!("{path}.start")))?;
            let end = parse_clock_time(&shift.end).map_err(invalid(format!("{path}.end")))?;
            let zone_name = shift
                .time_zone_name(rota)
                .ok_or_else(|| RotaError::Invalid {
                    path: format!("{path}.time_zone"),
                    message: "missing: set time_zone on this shift or in [rota]".to_owned(),
                })?;
            let zone = time_zone(zone_name).map_err(invalid(format!("{path}.time_zone")))?;
            shifts.push(WeeklyShift {
                radiologist_id: shift.radiologist.clone(),
                role: shift.role,
                subspecialty: shift.subspecialty.clone(),
                days,
                start,
                end,
                zone,
                times: format!("{}–{} {zone_name}", shift.start, shift.end),
                key: path,
            });
        }

        let mut overrides = Vec::with_capacity(rota.overrides.len());
        for (i, entry) in rota.overrides.iter().enumerate() {
            let path = format!("rota.overrides[{i}]");
            let instant = |key: &str, text: &str| {
                parse_instant(text, rota_zone.as_ref())
                    .map(|instant| instant.timestamp)
                    .map_err(invalid(format!("{path}.{key}")))
            };
            let from = instant("from", &entry.from)?;
            let to = instant("to", &entry.to)?;
            let missing = |key: &str| RotaError::Invalid {
                path: format!("{path}.{key}"),
                message: format!("missing: required for kind = {:?}", entry.kind.as_str()),
            };
            let action = match entry.kind {
                OverrideKind::Absence => Action::Absence,
                OverrideKind::Extra => Action::Extra {
                    role: entry.role.ok_or_else(|| missing("role"))?,
                    subspecialty: entry
                        .subspecialty
                        .clone()
                        .ok_or_else(|| missing("subspecialty"))?,
                },
                OverrideKind::Swap => Action::Swap {
                    with: entry.with.clone().ok_or_else(|| missing("with"))?,
                },
            };
            overrides.push(DatedOverride {
                radiologist_id: entry.radiologist.clone(),
                action,
                from,
                to,
                label: format!(
                    "override {} {}–{} ({path})",
                    entry.kind.as_str(),
                    entry.from,
                    entry.to
                ),
                period: format!("{}–{}", entry.from, entry.to),
                key: path,
            });
        }
        Ok(Rota { shifts, overrides })
    }

    /// Everyone on duty at `at`, overrides applied, sorted by role
    /// (primaries first), then radiologist id, then start.
    pub fn on_duty(&self, at: Timestamp) -> Vec<Duty> {
        let mut duties = Vec::new();
        for shift in &self.shifts {
            let Some((day, starts, ends)) = shift.occurrence_covering(at) else {
                continue;
            };
            let why = format!(
                "weekly shift {} {} ({})",
                day_name(day.weekday()),
                shift.times,
                shift.key
            );
            // The first swap in the file wins if several cover `at`;
            // swaps are not chained (the one who takes a shift keeps it
            // even if they swapped their own shifts away).
            let swap = self.overrides.iter().find_map(|o| match &o.action {
                Action::Swap { with }
                    if o.radiologist_id == shift.radiologist_id && o.covers(at) =>
                {
                    Some((o, with))
                }
                _ => None,
            });
            let duty = match swap {
                Some((swap, with)) => Duty {
                    radiologist_id: with.clone(),
                    role: shift.role,
                    subspecialty: shift.subspecialty.clone(),
                    starts: starts.max(swap.from),
                    ends: ends.min(swap.to),
                    why: format!(
                        "{why}, of {}, taken by {}",
                        shift.radiologist_id, swap.label
                    ),
                    source: DutySource::Swapped {
                        weekday: day.weekday(),
                        times: shift.times.clone(),
                        key: shift.key.clone(),
                        of: shift.radiologist_id.clone(),
                        period: swap.period.clone(),
                        swap_key: swap.key.clone(),
                    },
                },
                None => {
                    // Swaps of this radiologist that do not cover `at`
                    // still cut the shift short, or make it begin late.
                    let holes = self
                        .overrides_of(&shift.radiologist_id)
                        .filter(|o| matches!(o.action, Action::Swap { .. }));
                    let (starts, ends) = span_around(at, (starts, ends), holes);
                    Duty {
                        radiologist_id: shift.radiologist_id.clone(),
                        role: shift.role,
                        subspecialty: shift.subspecialty.clone(),
                        starts,
                        ends,
                        why,
                        source: DutySource::Weekly {
                            weekday: day.weekday(),
                            times: shift.times.clone(),
                            key: shift.key.clone(),
                        },
                    }
                }
            };
            duties.push(duty);
        }

        for entry in &self.overrides {
            if let Action::Extra { role, subspecialty } = &entry.action
                && entry.covers(at)
            {
                duties.push(Duty {
                    radiologist_id: entry.radiologist_id.clone(),
                    role: *role,
                    subspecialty: subspecialty.clone(),
                    starts: entry.from,
                    ends: entry.to,
                    why: entry.label.clone(),
                    source: DutySource::Extra {
                        period: entry.period.clone(),
                        key: entry.key.clone(),
                    },
                });
            }
        }

        // Absences last, so that they remove what swaps and extras gave too.
        duties.retain(|duty| {
            !self
                .absences_of(&duty.radiologist_id)
                .any(|absence| absence.covers(at))
        });
        for duty in &mut duties {
            let (starts, ends) = span_around(
                at,
                (duty.starts, duty.ends),
                self.absences_of(&duty.radiologist_id),
            );
            duty.starts = starts;
            duty.ends = ends;
        }

        duties.sort_by(|a, b| {
            (a.role, &a.radiologist_id, a.starts, &a.subspecialty, a.ends).cmp(&(
                b.role,
                &b.radiologist_id,
                b.starts,
                &b.subspecialty,
                b.ends,
            ))
        });
        duties
    }

    /// The dated overrides in force at `at`, in file order, as
    /// "dr-martin: override absence 2026-12-24T18:00–2026-12-26T08:00
    /// (rota.overrides[0])": what explains someone's absence from
    /// [`Rota::on_duty`].
    pub fn overrides_at(&self, at: Timestamp) -> Vec<String> {
        self.overrides
            .iter()
            .filter(|o| o.covers(at))
            .map(|o| match &o.action {
                Action::Swap { with } => format!("{}: {} (to {with})", o.radiologist_id, o.label),
                Action::Absence | Action::Extra { .. } => {
                    format!("{}: {}", o.radiologist_id, o.label)
                }
            })
            .collect()
    }

    fn overrides_of<'a>(
        &'a self,
        radiologist_id: &'a str,
    ) -> impl Iterator<Item = &'a DatedOverride> {
        self.overrides
            .iter()
            .filter(move |o| o.radiologist_id == radiologist_id)
    }

    fn absences_of<'a>(
        &'a self,
        radiologist_id: &'a str,
    ) -> impl Iterator<Item = &'a DatedOverride> {
        self.overrides_of(radiologist_id)
            .filter(|o| matches!(o.action, Action::Absence))
    }
}

impl WeeklyShift {
    /// The occurrence of this shift that covers `at`: its start day and
    /// bounds.
    fn occurrence_covering(&self, at: Timestamp) -> Option<(Date, Timestamp, Timestamp)> {
        let today = at.to_zoned(self.zone.clone()).date();
        // A shift lasts at most a day (plus a DST hour), so the one covering
        // `at` usually started today or yesterday. Two days back covers a
        // skipped date (Samoa's 2011-12-30, see the tests); one day ahead, a
        // fold across midnight, where a later instant can carry an earlier
        // date than the shift's start.
        (-2_i64..=1)
            .filter_map(|n| today.checked_add(n.days()).ok())
            .filter(|day| self.days.contains(&day.weekday()))
            .filter_map(|day| self.occurrence(day).map(|(s, e)| (day, s, e)))
            .find(|(_, starts, ends)| *starts <= at && at < *ends)
    }

    /// The bounds of the occurrence starting on `day`, `None` if it is empty.
    fn occurrence(&self, day: Date) -> Option<(Timestamp, Timestamp)> {
        let end_day = if self.end > self.start {
            day
        } else {
            day.tomorrow().ok()?
        };
        // A civil time that does not exist (02:30 when clocks jump from 02:00
        // to 03:00) is resolved "compatible": read with the offset before
        // the jump, it lands as far past the jump (03:30). One that occurs
        // twice is the first. Errors only at the ends of jiff's range.
        let instant = |date: Date, time: Time| {
            self.zone
                .to_ambiguous_timestamp(date.to_datetime(time))
                .compatible()
                .ok()
        };
        let starts = instant(day, self.start)?;
        let ends = instant(end_day, self.end)?;
        // A shift inside a DST gap (02:15–02:45 on the spring-forward night)
        // has its start resolved after its end: it covers nothing.
        (starts < ends).then_some((starts, ends))
    }
}

impl DatedOverride {
    fn covers(&self, at: Timestamp) -> bool {
        self.from <= at && at < self.to
    }
}

/// The part of `span` that contains `at` once `holes` are cut out of it.
/// `at` must be in `span` and in none of the holes.
fn span_around<'a>(
    at: Timestamp,
    (mut starts, mut ends): (Timestamp, Timestamp),
    holes: impl Iterator<Item = &'a DatedOverride>,
) -> (Timestamp, Timestamp) {
    for hole in holes {
        if hole.to <= at {
            starts = starts.max(hole.to);
        } else if hole.from > at {
            ends = ends.min(hole.from);
        }
    }
    (starts, ends)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris(text: &str) -> Timestamp {
        let zone = TimeZone::get("Europe/Paris").unwrap_or_else(|e| panic!("{e}"));
        parse_instant(text, Some(&zone))
            .map(|i| i.timestamp)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn example() -> Rota {
        Rota::from_config(&Config::example()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn who(duties: &[Duty]) -> Vec<(&str, Role, &str)> {
        duties
            .iter()
            .map(|d| (d.radiologist_id.as_str(), d.role, d.subspecialty.as_str()))
            .collect()
    }

    #[test]
    fn spring_forward_night_in_the_example() {
        // 02:30 does not exist that night; it is read as 03:30 +02:00.
        let duties = example().on_duty(paris("2026-03-29T02:30"));
        assert_eq!(
            who(&duties),
            [
                ("dr-lefebvre", Role::Primary, "general"),
                ("dr-nguyen", Role::Primary, "neuro"),
                ("dr-rousseau", Role::Backup, "general"),
            ]
        );
        let nguyen = &duties[1];
        assert_eq!(nguyen.starts, paris("2026-03-28T20:00"));
        assert_eq!(nguyen.ends, paris("2026-03-29T08:00"));
        assert_eq!(nguyen.starts.duration_until(nguyen.ends).as_hours(), 11);
        assert_eq!(
            nguyen.why,
            "weekly shift sat 20:00–08:00 Europe/Paris (rota.shifts[3])"
        );
        assert_eq!(
            nguyen.source,
            DutySource::Weekly {
                weekday: Weekday::Saturday,
                times: "20:00–08:00 Europe/Paris".into(),
                key: "rota.shifts[3]".into(),
            }
        );
    }

    #[test]
    fn weekday_night_and_weekend_day_in_the_example() {
        let rota = example();
        assert_eq!(
            who(&rota.on_duty(paris("2026-06-03T23:00"))),
            [
                ("dr-benali", Role::Primary, "general"),
                ("dr-martin", Role::Primary, "neuro"),
                ("dr-lefebvre", Role::Backup, "chest"),
                ("dr-rousseau", Role::Backup, "general"),
            ]
        );
        assert_eq!(
            who(&rota.on_duty(paris("2026-06-06T14:00"))),
            [
                ("dr-benali", Role::Primary, "general"),
                ("dr-martin", Role::Primary, "neuro"),
            ]
        );
        // Friday 10:00: the weekday day shift (the night ended at 08:00).
        assert_eq!(
            who(&rota.on_duty(paris("2026-06-05T10:00"))),
            [
                ("dr-lefebvre", Role::Primary, "chest"),
                ("dr-nguyen", Role::Primary, "neuro"),
                ("dr-rousseau", Role::Primary, "general"),
            ]
        );
    }

    /// The README's trial works whenever it is tried: at every hour of a
    /// week, including both daylight saving changes of Europe/Paris, each
    /// example site has a radiologist on duty who is licensed for it and
    /// reads general studies (what an unclassified study needs).
    #[test]
    fn example_covers_every_site_at_every_hour_of_the_week() {
        let config = Config::example();
        let rota = example();
        for monday in ["2026-03-23T00:30", "2026-10-19T00:30", "2026-06-01T00:30"] {
            let start = paris(monday);
            // 7 × 24 h in absolute time, plus one so that the week's last
            // hour is past the clock changes on either Sunday.
            for hour in 0..=(7 * 24) {
                let at = start + jiff::SignedDuration::from_hours(hour);
                let duties = rota.on_duty(at);
                for site in &config.sites {
                    let covered = duties.iter().any(|duty| {
                        config.radiologists.iter().any(|r| {
                            r.id == duty.radiologist_id
                                && r.sites.contains(&site.name)
                                && r.has_subspecialty("general")
                        })
                    });
                    assert!(
                        covered,
                        "nobody licensed for {} reads general at {at}: {:?}",
                        site.name,
                        who(&duties)
                    );
                }
            }
        }
    }

    #[test]
    fn christmas_override_in_the_example() {
        let rota = example();
        // Thursday night: Martin is away and Rousseau covers neuro.
        let duties = rota.on_duty(paris("2026-12-24T22:00"));
        assert_eq!(
            who(&duties),
            [
                ("dr-benali", Role::Primary, "general"),
                ("dr-rousseau", Role::Primary, "neuro"),
                ("dr-lefebvre", Role::Backup, "chest"),
                ("dr-rousseau", Role::Backup, "general"),
            ]
        );
        assert_eq!(
            duties[1].why,
            "override extra 2026-12-24T18:00–2026-12-26T08:00 (rota.overrides[1])"
        );
        assert_eq!(
            rota.overrides_at(paris("2026-12-24T22:00")),
            [
                "dr-martin: override absence 2026-12-24T18:00–2026-12-26T08:00 (rota.overrides[0])",
                "dr-rousseau: override extra 2026-12-24T18:00–2026-12-26T08:00 (rota.overrides[1])",
            ]
        );
        // Saturday 10:00, after the absence: Martin's weekend day shift.
        let duties = rota.on_duty(paris("2026-12-26T10:00"));
        assert!(who(&duties).contains(&("dr-martin", Role::Primary, "neuro")));
    }

    fn config(rota: &str) -> Config {
        let text = format!(
            "[[sites]]\nname = \"a\"\nae_titles = [\"A\"]\ntime_zone = \"Europe/Paris\"\n\
             [[radiologists]]\nid = \"x\"\nname = \"X\"\nsubspecialties = [\"neuro\"]\n\
             sites = [\"a\"]\nmax_open_studies = 1\n\
             [[radiologists]]\nid = \"y\"\nname = \"Y\"\nsubspecialties = [\"neuro\"]\n\
             sites = [\"a\"]\nmax_open_studies = 1\n\
             [rota]\ntime_zone = \"Europe/Paris\"\n\
             [[rota.shifts]]\nradiologist = \"x\"\nrole = \"primary\"\nsubspecialty = \"neuro\"\n\
             days = [\"mon\"]\nstart = \"20:00\"\nend = \"08:00\"\n{rota}"
        );
        Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn swap_hands_over_only_its_window_and_bounds_follow() {
        // Monday 2026-06-01 night; y takes x's shift from 23:00 to 02:00.
        let rota = Rota::from_config(&config(
            "[[rota.overrides]]\nradiologist = \"x\"\nkind = \"swap\"\nwith = \"y\"\n\
             from = \"2026-06-01T23:00\"\nto = \"2026-06-02T02:00\"\n",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let before = rota.on_duty(paris("2026-06-01T21:00"));
        assert_eq!(who(&before), [("x", Role::Primary, "neuro")]);
        assert_eq!(
            (before[0].starts, before[0].ends),
            (paris("2026-06-01T20:00"), paris("2026-06-01T23:00"))
        );
        let during = rota.on_duty(paris("2026-06-02T00:00"));
        assert_eq!(who(&during), [("y", Role::Primary, "neuro")]);
        assert_eq!(
            (during[0].starts, during[0].ends),
            (paris("2026-06-01T23:00"), paris("2026-06-02T02:00"))
        );
        assert!(
            during[0].why.contains("of x, taken by override swap"),
            "{}",
            during[0].why
        );
        assert!(
            matches!(&during[0].source, DutySource::Swapped { of, swap_key, .. }
                if of == "x" && swap_key.starts_with("rota.overrides[")),
            "{:?}",
            during[0].source
        );
        let after = rota.on_duty(paris("2026-06-02T02:00"));
        assert_eq!(who(&after), [("x", Role::Primary, "neuro")]);
        assert_eq!(after[0].starts, paris("2026-06-02T02:00"));
        assert_eq!(after[0].ends, paris("2026-06-02T08:00"));
    }

    #[test]
    fn absence_also_removes_what_a_swap_or_extra_gave() {
        let rota = Rota::from_config(&config(
            "[[rota.overrides]]\nradiologist = \"x\"\nkind = \"swap\"\nwith = \"y\"\n\
             from = \"2026-06-01T18:00\"\nto = \"2026-06-02T08:00\"\n\
             [[rota.overrides]]\nradiologist = \"y\"\nkind = \"extra\"\nrole = \"backup\"\n\
             subspecialty = \"neuro\"\nfrom = \"2026-06-01T18:00\"\nto = \"2026-06-02T08:00\"\n\
             [[rota.overrides]]\nradiologist = \"y\"\nkind = \"absence\"\n\
             from = \"2026-06-02T01:00\"\nto = \"2026-06-02T03:00\"\n",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let early = rota.on_duty(paris("2026-06-01T22:00"));
        assert_eq!(
            who(&early),
            [("y", Role::Primary, "neuro"), ("y", Role::Backup, "neuro")]
        );
        // Both duties of y now end when y's absence begins.
        assert!(early.iter().all(|d| d.ends == paris("2026-06-02T01:00")));
        assert_eq!(rota.on_duty(paris("2026-06-02T02:00")), vec![]);
    }

    #[test]
    fn shift_starting_tomorrow_in_a_fold_across_midnight_is_found() {
        // Daylight time ends at 00:30, clocks going back to 23:30 of the
        // day before: 00:15 on Sunday comes first, then Saturday 23:45.
        let zone = TimeZone::posix("EST5EDT,M3.2.0,M11.1.0/0:30").unwrap_or_else(|e| panic!("{e}"));
        let shift = WeeklyShift {
            radiologist_id: "x".to_owned(),
            role: Role::Primary,
            subspecialty: "neuro".to_owned(),
            days: vec![Weekday::Sunday],
            start: Time::constant(0, 15, 0, 0),
            end: Time::constant(1, 0, 0, 0),
            zone: zone.clone(),
            times: String::new(),
            key: String::new(),
        };
        let sunday = jiff::civil::date(2026, 11, 1);
        let starts = zone
            .to_ambiguous_timestamp(sunday.at(0, 15, 0, 0))
            .compatible()
            .unwrap_or_else(|e| panic!("{e}"));
        // Half an hour later the clock reads Saturday 23:45.
        let at = starts
            .checked_add(30.minutes())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(at.to_zoned(zone).date(), jiff::civil::date(2026, 10, 31));
        let found = shift.occurrence_covering(at);
        assert_eq!(found.map(|(day, s, _)| (day, s)), Some((sunday, starts)));
    }

    #[test]
    fn shift_started_two_civil_days_ago_over_a_skipped_day_is_found() {
        // Samoa skipped 2011-12-30: a 24-hour shift from Thursday 29th 20:00
        // ends on "Friday 20:00", a time that never existed, read as
        // Saturday 31st 20:00, so on the 31st it started two dates ago.
        let mut config = config("");
        config.rota.shifts[0].days = vec!["thu".to_owned()];
        config.rota.shifts[0].end = "20:00".to_owned();
        config.rota.shifts[0].time_zone = Some("Pacific/Apia".to_owned());
        let rota = Rota::from_config(&config).unwrap_or_else(|e| panic!("{e}"));
        let apia = TimeZone::get("Pacific/Apia").unwrap_or_else(|e| panic!("{e}"));
        let at = |text: &str| {
            parse_instant(text, Some(&apia))
                .map(|i| i.timestamp)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let duties = rota.on_duty(at("2011-12-31T10:00"));
        assert_eq!(who(&duties), [("x", Role::Primary, "neuro")]);
        assert_eq!(duties[0].starts, at("2011-12-29T20:00"));
        assert_eq!(duties[0].ends, at("2011-12-31T20:00"));
        assert_eq!(
            duties[0].starts.duration_until(duties[0].ends).as_hours(),
            24
        );
    }

    #[test]
    fn unvalidated_config_gives_an_error_with_its_path() {
        let mut config = config("");
        config.rota.shifts[0].start = "8pm".to_owned();
        let error = Rota::from_config(&config).err();
        assert_eq!(
            error.map(|e| e.to_string()),
            Some(
                "rota configuration rota.shifts[0].start: \"8pm\" is not a time of day: \
                 expected HH:MM on the 24-hour clock, such as \"20:00\" or \"08:00\""
                    .to_owned()
            )
        );
        let mut config = self::config("");
        config.rota.time_zone = None;
        assert!(matches!(
            Rota::from_config(&config),
            Err(RotaError::Invalid { path, .. }) if path == "rota.shifts[0].time_zone"
        ));
    }
}
