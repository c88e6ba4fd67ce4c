//! Property tests of the rota engine against a brute-force reference.
//!
//! The reference reads the rule of `router::rota` literally: a weekly shift
//! on day D from S to E in zone Z covers [D S, D' E), D' = D if E > S else
//! D + 1, both civil times of Z made instants "compatible"-ly; it walks a
//! generous range of civil days around the instant instead of reasoning
//! about which day a running shift started on. Instants are drawn both
//! uniformly and close to real transitions (DST changes, Samoa skipping
//! 2011-12-30, Chile and Cuba changing clocks at midnight, Lord Howe's
//! half-hour change) and to New Year.

use std::sync::OnceLock;

use jiff::civil::{Date, DateTime, Time, Weekday, date};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use proptest::prelude::*;
use telerad_config::{Config, Override, OverrideKind, Role, RotaConfig, Shift};
use telerad_router::rota::{Duty, Rota};

const ZONES: [&str; 8] = [
    "Europe/Paris",
    "America/New_York",
    "UTC",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Apia",
    "America/Santiago",
    "America/Havana",
];

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEKDAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

/// A weekly shift as the test generates it.
#[derive(Debug, Clone)]
struct Spec {
    radiologist: String,
    role: Role,
    subspecialty: String,
    /// Indexes into `WEEKDAYS`.
    days: Vec<usize>,
    /// Minutes after midnight.
    start: u16,
    end: u16,
    zone: &'static str,
}

impl Spec {
    fn shift(&self) -> Shift {
        Shift {
            radiologist: self.radiologist.clone(),
            role: self.role,
            subspecialty: self.subspecialty.clone(),
            days: self.days.iter().map(|&d| DAY_NAMES[d].to_owned()).collect(),
            start: hh_mm(self.start),
            end: hh_mm(self.end),
            time_zone: Some(self.zone.to_owned()),
        }
    }
}

fn hh_mm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn time(minutes: u16) -> Time {
    Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).expect("a time of day")
}

fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).expect("a zone of the bundled database")
}

/// The instant of civil `dt` in `zone`, the "compatible" way (a different
/// jiff path from the engine's).
fn instant(dt: DateTime, zone: &TimeZone) -> Option<Timestamp> {
    dt.to_zoned(zone.clone()).ok().map(|z| z.timestamp())
}

/// What a duty is, without its bounds.
type Who = (String, Role, String);
/// A duty with the bounds of its weekly occurrence.
type Expected = (String, Role, String, Timestamp, Timestamp);

/// Brute force: every occurrence of every shift over a week around `at`.
fn reference(specs: &[Spec], at: Timestamp) -> Vec<Expected> {
    let mut found = Vec::new();
    for spec in specs {
        let zone = zone(spec.zone);
        let today = at.to_zoned(zone.clone()).date();
        for n in -3_i64..=3 {
            let Ok(day) = today.checked_add(n.days()) else {
                continue;
            };
            if !spec.days.iter().any(|&d| WEEKDAYS[d] == day.weekday()) {
                continue;
            }
            let end_day = if spec.end > spec.start {
                day
            } else {
                day.tomorrow().expect("a next day")
            };
            let (Some(starts), Some(ends)) = (
                instant(day.to_datetime(time(spec.start)), &zone),
                instant(end_day.to_datetime(time(spec.end)), &zone),
            ) else {
                continue;
            };
            if starts <= at && at < ends {
                found.push((
                    spec.radiologist.clone(),
                    spec.role,
                    spec.subspecialty.clone(),
                    starts,
                    ends,
                ));
            }
        }
    }
    found.sort();
    // Two weekly occurrences can land on the same instants: in Apia the
    // skipped Friday 2011-12-30, resolved with the offset before the gap,
    // covers exactly Saturday's hours. That is one duty, not two.
    found.dedup();
    found
}

fn rota(shifts: Vec<Shift>, overrides: Vec<Override>) -> Rota {
    let mut config = Config::example();
    config.rota = RotaConfig {
        time_zone: Some("Europe/Paris".to_owned()),
        shifts,
        overrides,
    };
    Rota::from_config(&config).expect("a rota from generated shifts")
}

fn with_bounds(duties: &[Duty]) -> Vec<Expected> {
    let mut found: Vec<Expected> = duties
        .iter()
        .map(|d| {
            (
                d.radiologist_id.clone(),
                d.role,
                d.subspecialty.clone(),
                d.starts,
                d.ends,
            )
        })
        .collect();
    found.sort();
    found
}

fn who(duties: &[Duty]) -> Vec<Who> {
    let mut found: Vec<Who> = duties
        .iter()
        .map(|d| (d.radiologist_id.clone(), d.role, d.subspecialty.clone()))
        .collect();
    found.sort();
    found
}

fn who_of(expected: &[Expected]) -> Vec<Who> {
    let mut found: Vec<Who> = expected
        .iter()
        .map(|(id, role, subspecialty, _, _)| (id.clone(), *role, subspecialty.clone()))
        .collect();
    found.sort();
    found
}

/// Instants where a bug would hide: each zone's clock changes from 2025 to
/// 2027, Samoa's skipped day, and New Year's midnights.
fn interesting_instants() -> &'static [Timestamp] {
    static INSTANTS: OnceLock<Vec<Timestamp>> = OnceLock::new();
    INSTANTS.get_or_init(|| {
        let mut instants = Vec::new();
        let from = |d: Date| instant(d.at(0, 0, 0, 0), &TimeZone::UTC).expect("an instant");
        for name in ZONES {
            let zone = zone(name);
            instants.extend(
                zone.following(from(date(2025, 1, 1)))
                    .take(6)
                    .map(|t| t.timestamp()),
            );
            instants.extend(
                zone.following(from(date(2011, 12, 1)))
                    .take(2)
                    .map(|t| t.timestamp()),
            );
            for year in [2025, 2026, 2027] {
                instants.extend(instant(date(year, 12, 31).at(23, 59, 0, 0), &zone));
            }
        }
        instants
    })
}

fn an_instant() -> impl Strategy<Value = Timestamp> {
    let uniform = (1_262_304_000_i64..1_830_297_600)
        .prop_map(|s| Timestamp::from_second(s).expect("an instant from 2010 to 2028"));
    let near = (0..interesting_instants().len(), -2880_i64..=2880, 0_i64..60).prop_map(
        |(i, minutes, seconds)| {
            interesting_instants()[i]
                .checked_add((minutes * 60 + seconds).seconds())
                .expect("an instant")
        },
    );
    prop_oneof![uniform, near]
}

fn a_clock_time() -> impl Strategy<Value = u16> {
    // Quarter hours, so that starts, ends and transitions often coincide.
    (0_u16..96).prop_map(|q| q * 15)
}

fn a_spec(zones: &'static [&'static str]) -> impl Strategy<Value = Spec> {
    (
        0_usize..4,
        any::<bool>(),
        prop::sample::select(vec!["neuro", "general"]),
        prop::sample::subsequence((0..7).collect::<Vec<usize>>(), 1..=7),
        a_clock_time(),
        a_clock_time(),
        prop::sample::select(zones),
    )
        .prop_map(|(r, backup, subspecialty, days, start, end, zone)| Spec {
            radiologist: format!("r{r}"),
            role: if backup { Role::Backup } else { Role::Primary },
            subspecialty: subspecialty.to_owned(),
            days,
            start,
            end,
            zone,
        })
}

fn paris(dt: DateTime) -> Timestamp {
    instant(dt, &zone("Europe/Paris")).expect("an instant")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (1) Weekly shifts alone: exactly the occurrences whose interval
    /// contains the instant, with their bounds.
    #[test]
    fn on_duty_is_exactly_the_shifts_covering_the_instant(
        specs in prop::collection::vec(a_spec(&ZONES), 1..6),
        at in an_instant(),
    ) {
        let rota = rota(specs.iter().map(Spec::shift).collect(), vec![]);
        let duties = rota.on_duty(at);
        prop_assert_eq!(with_bounds(&duties), reference(&specs, at));
        // Sorted as promised: role, then radiologist.
        let order: Vec<(Role, &str)> =
            duties.iter().map(|d| (d.role, d.radiologist_id.as_str())).collect();
        let mut sorted = order.clone();
        sorted.sort();
        prop_assert_eq!(order, sorted);
    }

    /// (2) A 20:00–08:00 Saturday night over each 2026 DST change of Paris
    /// and New York covers every instant from its civil start to its civil
    /// end, lasts 11 or 13 hours, and nothing outside.
    #[test]
    fn night_shift_over_dst_changes(
        case in 0_usize..4,
        zone_index in 0_usize..2,
        second in 0_i64..(13 * 3600),
    ) {
        let name = ["Europe/Paris", "America/New_York"][zone_index];
        let saturdays = [
            // Spring forward, fall back: 2026 dates in Paris, then New York.
            [(date(2026, 3, 28), 11), (date(2026, 10, 24), 13)],
            [(date(2026, 3, 7), 11), (date(2026, 10, 31), 13)],
        ];
        let (saturday, hours) = saturdays[zone_index][case % 2];
        let spec = Spec {
            radiologist: "r0".to_owned(),
            role: Role::Primary,
            subspecialty: "neuro".to_owned(),
            days: vec![5],
            start: 20 * 60,
            end: 8 * 60,
            zone: name,
        };
        let z = zone(name);
        let starts = instant(saturday.at(20, 0, 0, 0), &z).expect("a start");
        let ends = instant(saturday.tomorrow().expect("sunday").at(8, 0, 0, 0), &z).expect("an end");
        prop_assert_eq!(starts.duration_until(ends).as_hours(), hours);
        let rota = rota(vec![spec.shift()], vec![]);
        let at = starts.checked_add(second.seconds()).expect("an instant");
        let duties = rota.on_duty(at);
        if at < ends {
            prop_assert_eq!(duties.len(), 1);
            prop_assert_eq!((duties[0].starts, duties[0].ends), (starts, ends));
        } else {
            prop_assert!(duties.is_empty());
        }
        let before = starts.checked_sub(1.second()).expect("an instant");
        prop_assert!(rota.on_duty(before).is_empty());
        prop_assert!(rota.on_duty(ends).is_empty());
    }

    /// (3) A shift starting on New Year's Eve and ending on New Year's Day
    /// is found on both sides of midnight, in any year and zone.
    #[test]
    fn shift_across_midnight_and_year_end(
        year in 2024_i16..=2030,
        start in (48_u16..96).prop_map(|q| q * 15),
        end_quarter in 0_u16..48,
        zone_index in 0_usize..ZONES.len(),
        fraction in 0.0_f64..1.0,
    ) {
        let end = end_quarter * 15;
        let eve = date(year, 12, 31);
        let day_index = eve.weekday().to_monday_zero_offset() as usize;
        let spec = Spec {
            radiologist: "r1".to_owned(),
            role: Role::Backup,
            subspecialty: "general".to_owned(),
            days: vec![day_index],
            start,
            end,
            zone: ZONES[zone_index],
        };
        let z = zone(spec.zone);
        let starts = instant(eve.to_datetime(time(start)), &z).expect("a start");
        let ends = instant(date(year + 1, 1, 1).to_datetime(time(end)), &z).expect("an end");
        let length = starts.duration_until(ends).as_secs();
        prop_assert!(length > 0);
        let at = starts
            .checked_add(((length as f64 * fraction) as i64).min(length - 1).seconds())
            .expect("an instant");
        let rota = rota(vec![spec.shift()], vec![]);
        let duties = rota.on_duty(at);
        prop_assert_eq!(duties.len(), 1);
        prop_assert_eq!((duties[0].starts, duties[0].ends), (starts, ends));
        prop_assert!(rota.on_duty(ends).is_empty());
        prop_assert_eq!(with_bounds(&duties), reference(&[spec], at));
    }

    /// (4) Overlapping shifts, of different radiologists or of one in two
    /// subspecialties, all appear.
    #[test]
    fn overlapping_shifts_all_appear(
        day in (0_i64..365).prop_map(|n| date(2026, 1, 1).checked_add(n.days()).expect("a 2026 date")),
        starts in prop::collection::vec((48_u16..93).prop_map(|q| q * 15), 3),
        ends in prop::collection::vec((0_u16..44).prop_map(|q| q * 15), 3),
        minute in 0_i8..60,
        zone_index in 0_usize..5,
    ) {
        let weekday = day.weekday().to_monday_zero_offset() as usize;
        let name = ZONES[zone_index];
        let specs: Vec<Spec> = [("r0", Role::Primary, "neuro"), ("r1", Role::Backup, "neuro"), ("r0", Role::Primary, "general")]
            .iter()
            .enumerate()
            .map(|(i, (id, role, subspecialty))| Spec {
                radiologist: (*id).to_owned(),
                role: *role,
                subspecialty: (*subspecialty).to_owned(),
                days: vec![weekday],
                start: starts[i],
                end: ends[i],
                zone: name,
            })
            .collect();
        // The latest start is before 23:00 and every end is after midnight,
        // so the last hour of the day is covered by all three.
        let latest = starts.iter().copied().max().unwrap_or(0);
        let at = instant(day.to_datetime(time(latest)), &zone(name))
            .and_then(|t| t.checked_add((i64::from(minute) * 60).seconds()).ok())
            .expect("an instant");
        let rota = rota(specs.iter().map(Spec::shift).collect(), vec![]);
        let duties = rota.on_duty(at);
        prop_assert_eq!(who(&duties), who_of(&reference(&specs, at)));
        prop_assert_eq!(duties.len(), 3, "{:?}", duties);
    }

    /// (5) Overrides act within [from, to) only: absence removes the
    /// radiologist's duties, extra adds one, swap moves them to `with`.
    #[test]
    fn overrides_act_within_their_window_only(
        specs in prop::collection::vec(a_spec(&["Europe/Paris"]), 1..6),
        kind in prop::sample::select(vec![OverrideKind::Absence, OverrideKind::Extra, OverrideKind::Swap]),
        radiologist in 0_usize..4,
        with_offset in 1_usize..4,
        from_day in 0_i64..365,
        from_quarter in 0_i64..96,
        length_quarters in 1_i64..(4 * 72),
        at_offset_minutes in -2880_i64..(2880 + 72 * 60),
    ) {
        let from = paris(date(2026, 1, 1).checked_add(from_day.days()).expect("a date").at(0, 0, 0, 0))
            .checked_add((from_quarter * 15).minutes()).expect("an instant");
        let to = from.checked_add((length_quarters * 15).minutes()).expect("an instant");
        let at = from.checked_add(at_offset_minutes.minutes()).expect("an instant");
        let id = format!("r{radiologist}");
        let with = format!("r{}", (radiologist + with_offset) % 4);
        let entry = Override {
            radiologist: id.clone(),
            kind,
            // Written as UTC instants, which need no zone to read.
            from: from.to_string(),
            to: to.to_string(),
            role: (kind == OverrideKind::Extra).then_some(Role::Backup),
            subspecialty: (kind == OverrideKind::Extra).then(|| "chest".to_owned()),
            with: (kind == OverrideKind::Swap).then(|| with.clone()),
        };
        let rota = rota(specs.iter().map(Spec::shift).collect(), vec![entry]);
        let duties = rota.on_duty(at);
        for duty in &duties {
            prop_assert!(duty.starts <= at && at < duty.ends, "{:?} does not cover {}", duty, at);
        }
        let weekly = who_of(&reference(&specs, at));
        let inside = from <= at && at < to;
        let mut expected: Vec<Who> = match (inside, kind) {
            (false, _) => weekly,
            (true, OverrideKind::Absence) => weekly.into_iter().filter(|w| w.0 != id).collect(),
            (true, OverrideKind::Extra) => {
                let mut all = weekly;
                all.push((id.clone(), Role::Backup, "chest".to_owned()));
                all
            }
            (true, OverrideKind::Swap) => weekly
                .into_iter()
                .map(|(who, role, subspecialty)| {
                    (if who == id { with.clone() } else { who }, role, subspecialty)
                })
                .collect(),
        };
        expected.sort();
        prop_assert_eq!(who(&duties), expected);
    }
}

/// (2), exhaustively by the minute, on both sides of each change.
#[test]
fn night_shift_over_dst_changes_minute_by_minute() {
    let cases = [
        ("Europe/Paris", date(2026, 3, 28), 11),
        ("Europe/Paris", date(2026, 10, 24), 13),
        ("America/New_York", date(2026, 3, 7), 11),
        ("America/New_York", date(2026, 10, 31), 13),
    ];
    for (name, saturday, hours) in cases {
        let spec = Spec {
            radiologist: "r0".to_owned(),
            role: Role::Primary,
            subspecialty: "neuro".to_owned(),
            days: vec![5, 6],
            start: 20 * 60,
            end: 8 * 60,
            zone: name,
        };
        let rota = rota(vec![spec.shift()], vec![]);
        let z = zone(name);
        let starts = instant(saturday.at(20, 0, 0, 0), &z).expect("a start");
        let ends =
            instant(saturday.tomorrow().expect("sunday").at(8, 0, 0, 0), &z).expect("an end");
        let mut covered = 0;
        let mut at = starts.checked_sub(2.hours()).expect("an instant");
        while at < ends.checked_add(2.hours()).expect("an instant") {
            let duties = rota.on_duty(at);
            if starts <= at && at < ends {
                assert_eq!(duties.len(), 1, "{name} at {at}");
                assert_eq!((duties[0].starts, duties[0].ends), (starts, ends));
                covered += 1;
            } else {
                assert!(duties.is_empty(), "{name} at {at}: {duties:?}");
            }
            at = at.checked_add(1.minute()).expect("an instant");
        }
        assert_eq!(covered, hours * 60, "{name} {saturday}");
    }
}
