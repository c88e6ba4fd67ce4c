//! `[rota]`: the weekly pattern of shifts and the dated overrides
//! (absences, extra shifts, swaps) that win over it.
//!
//! Times are kept as written, so that the file reads back as it was and
//! every bad value is reported with the others; the functions here turn
//! them into `jiff` values, for validation and for the rota engine alike.

use jiff::civil::{DateTime, Time, Weekday};
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};

use crate::Config;
use crate::problem::Problem;
use crate::radiologist::{is_subspecialty, unknown_radiologist, unknown_subspecialty};
use crate::unread::{self, Unread};

/// A radiologist's place on a shift. `Primary < Backup`: primaries are
/// offered a study first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Backup,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Backup => "backup",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rota: a weekly pattern and its exceptions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotaConfig {
    /// IANA zone that shifts and overrides are written in unless they say
    /// otherwise. There is no default: UTC would put a French night shift
    /// an hour or two off without anyone noticing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    pub shifts: Vec<Shift>,
    pub overrides: Vec<Override>,
}

impl RotaConfig {
    /// The zone of `[rota] time_zone`, `Ok(None)` if it is not set.
    ///
    /// # Errors
    ///
    /// The problem message if the name is not a known zone.
    pub fn zone(&self) -> Result<Option<TimeZone>, String> {
        self.time_zone.as_deref().map(time_zone).transpose()
    }
}

/// One line of the weekly pattern: on each of `days`, from `start` to
/// `end` local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    pub radiologist: String,
    pub role: Role,
    /// One of the radiologist's subspecialties.
    pub subspecialty: String,
    /// The days the shift starts on: "mon" … "sun".
    pub days: Vec<String>,
    /// "HH:MM", local time.
    pub start: String,
    /// "HH:MM"; at or before `start` means the next day.
    pub end: String,
    /// Overrides `[rota] time_zone` for this shift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl Shift {
    /// The name of the zone the shift is written in: its own, else the
    /// rota's.
    pub fn time_zone_name<'a>(&'a self, rota: &'a RotaConfig) -> Option<&'a str> {
        self.time_zone.as_deref().or(rota.time_zone.as_deref())
    }
}

/// What a dated override does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideKind {
    /// The radiologist is off: none of their duties count in the window.
    Absence,
    /// The radiologist is on duty for the whole window, in `role` and
    /// `subspecialty`.
    Extra,
    /// `with` takes the radiologist's weekly shifts in the window, and the
    /// radiologist is off.
    Swap,
}

impl OverrideKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            OverrideKind::Absence => "absence",
            OverrideKind::Extra => "extra",
            OverrideKind::Swap => "swap",
        }
    }
}

/// A dated exception to the weekly pattern, for `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub radiologist: String,
    pub kind: OverrideKind,
    /// Local time in `[rota] time_zone` ("2026-12-24T18:00"), or with an
    /// offset or zone of its own ("2026-12-24T18:00+01:00",
    /// "2026-12-24T18:00[Europe/Paris]").
    pub from: String,
    /// As `from`; the first instant no longer covered.
    pub to: String,
    /// For `extra` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// For `extra` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subspecialty: Option<String>,
    /// For `swap` only: the radiologist who takes the shifts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<String>,
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

/// The weekday written `text` ("mon" … "sun").
///
/// # Errors
///
/// The problem message for anything else.
pub fn parse_day(text: &str) -> Result<Weekday, String> {
    DAYS.iter()
        .find(|(name, _)| *name == text)
        .map(|(_, day)| *day)
        .ok_or_else(|| {
            format!("{text:?} is not a day: expected one of mon, tue, wed, thu, fri, sat, sun")
        })
}

/// The rota's three-letter name of `day`.
pub fn day_name(day: Weekday) -> &'static str {
    DAYS.iter()
        .find(|(_, d)| *d == day)
        .map_or("?", |(name, _)| name)
}

/// The time of day written "HH:MM" (24-hour, two digits each).
///
/// Stricter than jiff's parser, which also takes "2000" or "20": in a rota
/// those are more likely typos than intentions.
///
/// # Errors
///
/// The problem message for anything else.
pub fn parse_clock_time(text: &str) -> Result<Time, String> {
    let invalid = || {
        format!(
            "{text:?} is not a time of day: expected HH:MM on the 24-hour clock, \
             such as \"20:00\" or \"08:00\""
        )
    };
    let (hour, minute) = text.split_once(':').ok_or_else(invalid)?;
    let two_digits = |part: &str| {
        (part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<i8>().ok())
            .flatten()
    };
    let (Some(hour), Some(minute)) = (two_digits(hour), two_digits(minute)) else {
        return Err(invalid());
    };
    Time::new(hour, minute, 0, 0).map_err(|_| invalid())
}

/// The IANA time zone `name`.
///
/// # Errors
///
/// The problem message if the bundled time zone database has no such zone.
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!(
            "unknown time zone {name:?}: expected an IANA time zone name such as \
             \"Europe/Paris\""
        )
    })
}

/// How a written date and time became an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The text has its own offset: no time zone rule was needed.
    Explicit,
    /// A local time that happens exactly once in its zone.
    Unique,
    /// A local time that does not exist: clocks jumped from `before` to
    /// `after` over it. It is read with the offset `before`, which lands
    /// as far after the jump as the time was after its start ("02:30" on a
    /// 02:00→03:00 night is 03:30), what a clock nobody changed would
    /// show: the "compatible" choice of jiff, RFC 5545 and Temporal.
    Gap { before: Offset, after: Offset },
    /// A local time that happens twice: clocks went back from `before` to
    /// `after`. The first of the two is taken ("compatible" again).
    Fold { before: Offset, after: Offset },
}

/// A date and time from the configuration or the command line, as an
/// instant, with how its local time was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenInstant {
    pub timestamp: Timestamp,
    pub resolution: Resolution,
}

/// Reads `text` as an instant: a local date and time in `zone`
/// ("2026-12-24T18:00"), or one that carries its own offset
/// ("2026-12-24T18:00+01:00", "2026-12-24T17:00Z") or zone
/// ("2026-12-24T18:00[Europe/Paris]"), which `zone` then does not affect.
///
/// # Errors
///
/// The problem message if `text` is none of these, or is local and `zone`
/// is `None`.
pub fn parse_instant(text: &str, zone: Option<&TimeZone>) -> Result<WrittenInstant, String> {
    let text = text.trim();
    let not_a_date = |detail: &dyn std::fmt::Display| {
        format!(
            "{text:?} is not a date and time: expected a local time such as \
             \"2026-12-24T18:00\", optionally with an offset (\"2026-12-24T18:00+01:00\") \
             or a zone (\"2026-12-24T18:00[Europe/Paris]\"); {detail}"
        )
    };
    // A bracketed zone must be checked before a plain civil time: jiff's
    // civil parser accepts the text too, silently dropping the zone.
    if text.contains('[') {
        let zoned: Zoned = text.parse().map_err(|e| not_a_date(&e))?;
        // With an offset as well, jiff has checked that the two agree.
        if text.parse::<Timestamp>().is_ok() {
            return Ok(WrittenInstant {
                timestamp: zoned.timestamp(),
                resolution: Resolution::Explicit,
            });
        }
        let civil: DateTime = text.parse().map_err(|e| not_a_date(&e))?;
        return resolve_local(civil, zoned.time_zone());
    }
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return Ok(WrittenInstant {
            timestamp,
            resolution: Resolution::Explicit,
        });
    }
    let civil: DateTime = text.parse().map_err(|e| not_a_date(&e))?;
    let zone = zone.ok_or_else(|| {
        format!(
            "{text:?} is a local time, but there is no time zone to read it in: set \
             [rota] time_zone, or write an offset (\"{text}+01:00\")"
        )
    })?;
    resolve_local(civil, zone)
}

/// The instant of local time `civil` in `zone`, gaps and folds resolved
/// the "compatible" way (see [`Resolution`]).
///
/// # Errors
///
/// Only for a date at the very ends of jiff's range (years -9999, 9999).
pub fn resolve_local(civil: DateTime, zone: &TimeZone) -> Result<WrittenInstant, String> {
    let ambiguous = zone.to_ambiguous_timestamp(civil);
    let resolution = match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { .. } => Resolution::Unique,
        AmbiguousOffset::Gap { before, after } => Resolution::Gap { before, after },
        AmbiguousOffset::Fold { before, after } => Resolution::Fold { before, after },
    };
    let timestamp = ambiguous
        .compatible()
        .map_err(|e| format!("{civil} cannot be placed in time: {e}"))?;
    Ok(WrittenInstant {
        timestamp,
        resolution,
    })
}

/// The problems of `[rota]`.
pub(crate) fn problems(config: &Config, unread: &Unread) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut report = |path: String, message: String| problems.push(Problem::new(path, message));
    let rota = &config.rota;

    // A bad [rota] time_zone is reported once, here; the local times that
    // depend on it are then not reported again. Nor are they when [rota]
    // itself could not be read: its zone is unknown, not missing.
    let rota_zone = match rota.zone() {
        _ if unread.is_left_out("rota") => Err(()),
        Ok(zone) => Ok(zone),
        Err(message) => {
            report("rota.time_zone".to_owned(), message);
            Err(())
        }
    };

    for (read, shift) in rota.shifts.iter().enumerate() {
        let path = unread.element(unread::SHIFTS, read);
        let radiologist = config.radiologist(&shift.radiologist);
        if let Some(message) = unknown_radiologist(config, unread, &shift.radiologist) {
            report(format!("{path}.radiologist"), message);
        }
        if !is_subspecialty(&shift.subspecialty) {
            report(
                format!("{path}.subspecialty"),
                unknown_subspecialty(&shift.subspecialty),
            );
        } else if let Some(radiologist) = radiologist
            && !radiologist.has_subspecialty(&shift.subspecialty)
        {
            report(
                format!("{path}.subspecialty"),
                format!(
                    "{} does not read {:?}: a shift's subspecialty must be one of theirs ({})",
                    radiologist.id,
                    shift.subspecialty,
                    radiologist.subspecialties.join(", ")
                ),
            );
        }
        if shift.days.is_empty() {
            report(
                format!("{path}.days"),
                "must list at least one day the shift starts on, such as [\"mon\", \"tue\"]"
                    .to_owned(),
            );
        }
        for (d, day) in shift.days.iter().enumerate() {
            let item = format!("{path}.days[{d}]");
            if let Err(message) = parse_day(day) {
                report(item, message);
            } else if let Some(first) = shift.days[..d].iter().position(|o| o == day) {
                report(
                    item,
                    format!("{day:?} is already listed as {path}.days[{first}]"),
                );
            }
        }
        for (key, text) in [("start", &shift.start), ("end", &shift.end)] {
            if let Err(message) = parse_clock_time(text) {
                report(format!("{path}.{key}"), message);
            }
        }
        match &shift.time_zone {
            Some(name) => {
                if let Err(message) = time_zone(name) {
                    report(format!("{path}.time_zone"), message);
                }
            }
            None if matches!(rota_zone, Ok(None)) => report(
                format!("{path}.time_zone"),
                "missing: set time_zone on this shift or in [rota]".to_owned(),
            ),
            None => {}
        }
    }

    for (read, entry) in rota.overrides.iter().enumerate() {
        let path = unread.element(unread::OVERRIDES, read);
        let radiologist = config.radiologist(&entry.radiologist);
        if let Some(message) = unknown_radiologist(config, unread, &entry.radiologist) {
            report(format!("{path}.radiologist"), message);
        }
        let mut instant = |key: &str, text: &str| match (parse_instant(text, None), &rota_zone) {
            (Ok(instant), _) => Some(instant.timestamp),
            (Err(_), Ok(Some(zone))) => match parse_instant(text, Some(zone)) {
                Ok(instant) => Some(instant.timestamp),
                Err(message) => {
                    report(format!("{path}.{key}"), message);
                    None
                }
            },
            (Err(message), Ok(None)) => {
                report(format!("{path}.{key}"), message);
                None
            }
            // The bad zone is reported already.
            (Err(_), Err(())) => None,
        };
        let from = instant("from", &entry.from);
        let to = instant("to", &entry.to);
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            report(
                format!("{path}.to"),
                format!(
                    "{:?} is not after from ({:?}): an override covers [from, to)",
                    entry.to, entry.from
                ),
            );
        }

        let only_for = |key: &str, kind: &str| {
            (
                format!("{path}.{key}"),
                format!(
                    "is only for kind = \"{kind}\", not {:?}: remove it",
                    entry.kind.as_str()
                ),
            )
        };
        if entry.kind == OverrideKind::Extra {
            if entry.role.is_none() {
                report(
                    format!("{path}.role"),
                    "missing: an extra shift needs role = \"primary\" or \"backup\"".to_owned(),
                );
            }
            match &entry.subspecialty {
                None => report(
                    format!("{path}.subspecialty"),
                    "missing: an extra shift needs the subspecialty it covers".to_owned(),
                ),
                Some(subspecialty) if !is_subspecialty(subspecialty) => {
                    report(
                        format!("{path}.subspecialty"),
                        unknown_subspecialty(subspecialty),
                    );
                }
                Some(subspecialty) => {
                    if let Some(radiologist) = radiologist
                        && !radiologist.has_subspecialty(subspecialty)
                    {
                        report(
                            format!("{path}.subspecialty"),
                            format!(
                                "{} does not read {subspecialty:?}: an extra shift's \
                                 subspecialty must be one of theirs ({})",
                                radiologist.id,
                                radiologist.subspecialties.join(", ")
                            ),
                        );
                    }
                }
            }
        } else {
            if entry.role.is_some() {
                let (p, m) = only_for("role", "extra");
                report(p, m);
            }
            if entry.subspecialty.is_some() {
                let (p, m) = only_for("subspecialty", "extra");
                report(p, m);
            }
        }
        if entry.kind == OverrideKind::Swap {
            match &entry.with {
                None => report(
                    format!("{path}.with"),
                    "missing: a swap needs the id of the radiologist who takes the shifts"
                        .to_owned(),
                ),
                Some(with) if *with == entry.radiologist => report(
                    format!("{path}.with"),
                    format!("{with:?} is the radiologist of this override: swap with someone else"),
                ),
                Some(with) => {
                    if let Some(message) = unknown_radiologist(config, unread, with) {
                        report(format!("{path}.with"), message);
                    }
                }
            }
        } else if entry.with.is_some() {
            let (p, m) = only_for("with", "swap");
            report(p, m);
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn clock_times_are_two_digits_each() {
        assert_eq!(parse_clock_time("20:00"), Ok(Time::constant(20, 0, 0, 0)));
        assert_eq!(parse_clock_time("00:00"), Ok(Time::midnight()));
        assert_eq!(parse_clock_time("23:59"), Ok(Time::constant(23, 59, 0, 0)));
        for bad in [
            "8:00", "24:00", "20:60", "2000", "20", "20:00:00", "+1:00", "",
        ] {
            assert!(parse_clock_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_are_three_lowercase_letters() {
        assert_eq!(parse_day("mon"), Ok(Weekday::Monday));
        assert_eq!(parse_day("sun"), Ok(Weekday::Sunday));
        assert!(parse_day("Mon").is_err());
        assert!(parse_day("monday").is_err());
        for (name, day) in DAYS {
            assert_eq!(day_name(day), name);
        }
    }

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn local_time_is_read_in_the_zone() {
        let instant = parse_instant("2026-12-24T18:00", Some(&paris()));
        assert_eq!(
            instant.map(|i| (i.timestamp.to_string(), i.resolution)),
            Ok(("2026-12-24T17:00:00Z".to_owned(), Resolution::Unique))
        );
    }

    #[test]
    fn offsets_and_zones_in_the_text_win() {
        let utc = TimeZone::UTC;
        for text in [
            "2026-12-24T18:00+01:00",
            "2026-12-24T17:00Z",
            "2026-12-24T18:00+01:00[Europe/Paris]",
        ] {
            let instant = parse_instant(text, Some(&utc));
            assert_eq!(
                instant.map(|i| (i.timestamp.to_string(), i.resolution)),
                Ok(("2026-12-24T17:00:00Z".to_owned(), Resolution::Explicit)),
                "{text}"
            );
        }
        let instant = parse_instant("2026-12-24T18:00[Europe/Paris]", Some(&utc));
        assert_eq!(
            instant.map(|i| i.timestamp.to_string()),
            Ok("2026-12-24T17:00:00Z".to_owned())
        );
    }

    #[test]
    fn skipped_local_time_is_read_with_the_offset_before_the_jump() {
        let instant = parse_instant("2026-03-29T02:30", Some(&paris()));
        let one = Offset::constant(1);
        let two = Offset::constant(2);
        assert_eq!(
            instant
                .clone()
                .map(|i| (i.timestamp.to_string(), i.resolution)),
            Ok((
                "2026-03-29T01:30:00Z".to_owned(),
                Resolution::Gap {
                    before: one,
                    after: two
                }
            ))
        );
        // Same with the zone in brackets and no offset.
        let bracketed = parse_instant("2026-03-29T02:30[Europe/Paris]", None);
        assert_eq!(
            bracketed.map(|i| i.resolution),
            instant.map(|i| i.resolution)
        );
    }

    #[test]
    fn repeated_local_time_is_the_first() {
        let instant = parse_instant("2026-10-25T02:30", Some(&paris()));
        assert_eq!(
            instant.map(|i| (i.timestamp.to_string(), i.resolution)),
            Ok((
                "2026-10-25T00:30:00Z".to_owned(),
                Resolution::Fold {
                    before: Offset::constant(2),
                    after: Offset::constant(1)
                }
            ))
        );
    }

    #[test]
    fn local_time_without_a_zone_is_refused() {
        let message = parse_instant("2026-12-24T18:00", None).err();
        assert!(
            message
                .as_deref()
                .is_some_and(|m| m.contains("no time zone to read it in")),
            "{message:?}"
        );
        let message = parse_instant("Christmas", Some(&paris())).err();
        assert!(
            message
                .as_deref()
                .is_some_and(|m| m.starts_with("\"Christmas\" is not a date and time")),
            "{message:?}"
        );
    }

    use crate::radiologist::check::{assert_one, parse_problem, paths, problems};

    /// A valid shift of dr-a with `changes` replacing its keys.
    fn shift(changes: &[(&str, &str)]) -> String {
        let mut keys = vec![
            ("radiologist", "\"dr-a\""),
            ("role", "\"primary\""),
            ("subspecialty", "\"neuro\""),
            ("days", "[\"mon\", \"tue\"]"),
            ("start", "\"20:00\""),
            ("end", "\"08:00\""),
        ];
        for (key, value) in changes {
            match keys.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1 = value,
                None => keys.push((key, value)),
            }
        }
        let body: Vec<String> = keys
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        format!("[[rota.shifts]]\n{}\n", body.join("\n"))
    }

    fn in_paris(tables: &str) -> String {
        format!("[rota]\ntime_zone = \"Europe/Paris\"\n{tables}")
    }

    #[test]
    fn valid_shifts_have_no_problem() {
        assert_eq!(problems(&in_paris(&shift(&[]))), vec![]);
        // The shift's own zone is enough without [rota] time_zone.
        assert_eq!(
            problems(&shift(&[("time_zone", "\"America/New_York\"")])),
            vec![]
        );
        // end == start is a 24-hour shift, not an error.
        assert_eq!(problems(&in_paris(&shift(&[("end", "\"20:00\"")]))), vec![]);
    }

    #[test]
    fn rota_time_zone_is_checked() {
        assert_one(
            "[rota]\ntime_zone = \"Europe/Pariss\"\n",
            "rota.time_zone",
            "unknown time zone \"Europe/Pariss\"",
        );
    }

    /// Keys of a test shift replaced by other values.
    type Changes<'a> = &'a [(&'a str, &'a str)];

    #[test]
    fn shift_fields_are_checked_at_their_paths() {
        let cases: [(Changes, &str, &str); 10] = [
            (
                &[("radiologist", "\"dr-z\"")],
                "rota.shifts[0].radiologist",
                "no radiologist has id \"dr-z\": expected one of dr-a, dr-b, dr-c",
            ),
            (
                &[("subspecialty", "\"chest\"")],
                "rota.shifts[0].subspecialty",
                "dr-a does not read \"chest\": a shift's subspecialty must be one of theirs (neuro, general)",
            ),
            (
                &[("subspecialty", "\"nuero\"")],
                "rota.shifts[0].subspecialty",
                "\"nuero\" is not a known subspecialty",
            ),
            (&[("days", "[]")], "rota.shifts[0].days", "at least one day"),
            (
                &[("days", "[\"mon\", \"Tue\"]")],
                "rota.shifts[0].days[1]",
                "\"Tue\" is not a day: expected one of mon, tue",
            ),
            (
                &[("days", "[\"mon\", \"mon\"]")],
                "rota.shifts[0].days[1]",
                "already listed as rota.shifts[0].days[0]",
            ),
            (
                &[("start", "\"8:00\"")],
                "rota.shifts[0].start",
                "\"8:00\" is not a time of day: expected HH:MM",
            ),
            (
                &[("end", "\"24:00\"")],
                "rota.shifts[0].end",
                "expected HH:MM",
            ),
            (
                &[("time_zone", "\"Paris\"")],
                "rota.shifts[0].time_zone",
                "unknown time zone \"Paris\"",
            ),
            (
                &[
                    ("radiologist", "\"dr-b\""),
                    ("subspecialty", "\"chest\""),
                    ("start", "\"2000\""),
                ],
                "rota.shifts[0].start",
                "\"2000\" is not a time of day",
            ),
        ];
        for (changes, path, expected) in cases {
            assert_one(&in_paris(&shift(changes)), path, expected);
        }
    }

    #[test]
    fn shift_without_any_time_zone_is_reported() {
        assert_one(
            &shift(&[]),
            "rota.shifts[0].time_zone",
            "missing: set time_zone",
        );
    }

    #[test]
    fn unknown_role_is_a_parse_error_at_its_path() {
        let problem = parse_problem(&in_paris(&shift(&[("role", "\"second\"")])));
        assert_eq!(problem.path, "rota.shifts[0].role");
        assert!(
            problem.message.contains("unknown variant `second`"),
            "{problem}"
        );
        assert!(
            problem.message.contains("expected `primary` or `backup`"),
            "{problem}"
        );
    }

    #[test]
    fn a_broken_shift_or_rota_hides_neither_the_others_nor_their_places() {
        let text = format!(
            "[rota]\ntime_zone = 1\n{}{}",
            shift(&[("role", "\"second\"")]),
            shift(&[("start", "\"8:00\"")])
        );
        let problems = problems(&text);
        // No shift is said to miss a time zone: [rota]'s is unreadable, not
        // missing.
        assert_eq!(
            paths(&problems),
            [
                "rota.time_zone",
                "rota.shifts[0].role",
                "rota.shifts[1].start"
            ],
            "{problems:#?}"
        );
        let lines: Vec<Option<usize>> = problems.iter().map(|p| p.line).collect();
        let base_lines = crate::radiologist::check::BASE.lines().count() + 1;
        assert_eq!(
            lines,
            [
                Some(base_lines + 2),
                Some(base_lines + 5),
                Some(base_lines + 15)
            ],
            "{problems:#?}"
        );
    }

    #[test]
    fn a_reference_to_a_radiologist_left_out_is_not_reported() {
        let text = "[[radiologists]]\nid = \"dr-x\"\nname = \"X\"\nsubspecialties = [\"neuro\"]\n\
                    sites = [\"ch-a\"]\nmax_open_studies = \"many\"\n\
                    [escalation]\nchain = [\"dr-x\", \"dr-y\"]\n";
        let problems = problems(&in_paris(&format!(
            "{}{text}",
            shift(&[("radiologist", "\"dr-x\"")])
        )));
        assert_eq!(
            paths(&problems),
            ["radiologists[3].max_open_studies", "escalation.chain[1]"],
            "{problems:#?}"
        );
    }

    #[test]
    fn unknown_key_in_a_shift_is_a_parse_error() {
        let problem = parse_problem(&in_paris(&shift(&[("day", "[\"mon\"]")])));
        assert_eq!(problem.path, "rota.shifts[0].day");
    }

    fn override_table(body: &str) -> String {
        in_paris(&format!("[[rota.overrides]]\n{body}\n"))
    }

    #[test]
    fn valid_overrides_have_no_problem() {
        let text = override_table(
            "radiologist = \"dr-a\"\nkind = \"absence\"\nfrom = \"2026-12-24T18:00\"\n\
             to = \"2026-12-26T08:00\"\n\
             [[rota.overrides]]\nradiologist = \"dr-c\"\nkind = \"extra\"\n\
             from = \"2026-12-24T18:00+01:00\"\nto = \"2026-12-26T08:00[Europe/Paris]\"\n\
             role = \"backup\"\nsubspecialty = \"general\"\n\
             [[rota.overrides]]\nradiologist = \"dr-a\"\nkind = \"swap\"\nwith = \"dr-c\"\n\
             from = \"2026-12-31T18:00\"\nto = \"2027-01-01T08:00\"",
        );
        assert_eq!(problems(&text), vec![]);
        // Explicit offsets need no [rota] time_zone.
        let text = "[[rota.overrides]]\nradiologist = \"dr-a\"\nkind = \"absence\"\n\
                    from = \"2026-12-24T18:00+01:00\"\nto = \"2026-12-26T07:00Z\"\n";
        assert_eq!(problems(text), vec![]);
    }

    #[test]
    fn override_window_must_be_forward() {
        for (from, to) in [
            ("2026-12-26T08:00", "2026-12-24T18:00"),
            ("2026-12-24T18:00", "2026-12-24T18:00"),
            // 18:00 in Paris is 17:00Z: an offset is compared as an instant.
            ("2026-12-24T18:00", "2026-12-24T17:00Z"),
        ] {
            assert_one(
                &override_table(&format!(
                    "radiologist = \"dr-a\"\nkind = \"absence\"\nfrom = \"{from}\"\nto = \"{to}\""
                )),
                "rota.overrides[0].to",
                "is not after from",
            );
        }
    }

    #[test]
    fn override_times_are_checked() {
        assert_one(
            &override_table(
                "radiologist = \"dr-a\"\nkind = \"absence\"\nfrom = \"24/12/2026 18:00\"\n\
                 to = \"2026-12-26T08:00\"",
            ),
            "rota.overrides[0].from",
            "\"24/12/2026 18:00\" is not a date and time",
        );
        assert_one(
            "[[rota.overrides]]\nradiologist = \"dr-a\"\nkind = \"absence\"\n\
             from = \"2026-12-24T18:00+01:00\"\nto = \"2026-12-26T08:00\"\n",
            "rota.overrides[0].to",
            "no time zone to read it in",
        );
        // A bad [rota] time_zone is reported once, not again per local time.
        assert_one(
            "[rota]\ntime_zone = \"Nowhere\"\n[[rota.overrides]]\nradiologist = \"dr-a\"\n\
             kind = \"absence\"\nfrom = \"2026-12-24T18:00\"\nto = \"2026-12-26T08:00\"\n",
            "rota.time_zone",
            "unknown time zone",
        );
    }

    #[test]
    fn override_kinds_need_their_keys_and_only_theirs() {
        let window = "from = \"2026-12-24T18:00\"\nto = \"2026-12-26T08:00\"";
        let case = |body: &str| override_table(&format!("{body}\n{window}"));
        let extra = problems(&case("radiologist = \"dr-a\"\nkind = \"extra\""));
        assert_eq!(
            paths(&extra),
            ["rota.overrides[0].role", "rota.overrides[0].subspecialty"]
        );
        assert!(extra[0].message.contains("an extra shift needs role"));
        assert_one(
            &case(
                "radiologist = \"dr-a\"\nkind = \"extra\"\nrole = \"primary\"\nsubspecialty = \"chest\"",
            ),
            "rota.overrides[0].subspecialty",
            "dr-a does not read \"chest\"",
        );
        assert_one(
            &case(
                "radiologist = \"dr-a\"\nkind = \"extra\"\nrole = \"primary\"\nsubspecialty = \"neuro\"\nwith = \"dr-b\"",
            ),
            "rota.overrides[0].with",
            "is only for kind = \"swap\", not \"extra\"",
        );
        assert_one(
            &case("radiologist = \"dr-a\"\nkind = \"swap\""),
            "rota.overrides[0].with",
            "missing: a swap needs",
        );
        assert_one(
            &case("radiologist = \"dr-a\"\nkind = \"swap\"\nwith = \"dr-a\""),
            "rota.overrides[0].with",
            "is the radiologist of this override",
        );
        assert_one(
            &case("radiologist = \"dr-a\"\nkind = \"swap\"\nwith = \"dr-q\""),
            "rota.overrides[0].with",
            "no radiologist has id \"dr-q\"",
        );
        let absence = problems(&case(
            "radiologist = \"dr-a\"\nkind = \"absence\"\nrole = \"primary\"\nsubspecialty = \"neuro\"",
        ));
        assert_eq!(
            paths(&absence),
            ["rota.overrides[0].role", "rota.overrides[0].subspecialty"]
        );
        assert!(
            absence[0]
                .message
                .contains("is only for kind = \"extra\", not \"absence\"")
        );
        assert_one(
            &case("radiologist = \"dr-z\"\nkind = \"absence\""),
            "rota.overrides[0].radiologist",
            "no radiologist has id \"dr-z\"",
        );
        let problem = parse_problem(&case("radiologist = \"dr-a\"\nkind = \"holiday\""));
        assert_eq!(problem.path, "rota.overrides[0].kind");
    }

    #[test]
    fn resolve_local_reports_unique_times() {
        let instant = resolve_local(date(2026, 7, 14).at(12, 0, 0, 0), &paris());
        assert_eq!(instant.map(|i| i.resolution), Ok(Resolution::Unique));
    }
}
