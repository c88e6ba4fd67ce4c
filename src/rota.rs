//! `telerad rota`: who is on duty at a given time, and why.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Args;
use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use telerad_config::{Config, Resolution, parse_instant};
use telerad_router::rota::{Duty, Rota};

#[derive(Debug, Args)]
pub struct RotaArgs {
    /// Local date and time, such as 2026-03-29T02:30: in the site's time
    /// zone with --site, else in [rota] time_zone. An offset
    /// (2026-03-29T02:30+02:00) or zone (2026-03-29T02:30[Europe/Paris])
    /// in the text wins. Default: now.
    #[arg(long)]
    at: Option<String>,
    /// Use this site's time zone and list only radiologists licensed for it.
    #[arg(long)]
    site: Option<String>,
    /// Configuration file (default: the embedded example, config/example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn rota(args: &RotaArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load(path).with_context(|| format!("{}", path.display()))?,
        None => Config::example(),
    };
    let site = match args.site.as_deref() {
        Some(name) => Some(
            config
                .sites
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = config.sites.iter().map(|s| s.name.as_str()).collect();
                    anyhow!(
                        "--site {name:?}: no such site; the sites are {}",
                        known.join(", ")
                    )
                })?,
        ),
        None => None,
    };
    let (zone, zone_name) = match site {
        Some(site) => (site.time_zone.clone(), site.time_zone_name.clone()),
        None => match config
            .rota
            .zone()
            .map_err(|m| anyhow!("rota.time_zone: {m}"))?
        {
            Some(zone) => (zone, config.rota.time_zone.clone().unwrap_or_default()),
            None => (TimeZone::UTC, "UTC (no [rota] time_zone)".to_owned()),
        },
    };
    let rota = Rota::from_config(&config)?;

    let (at, note) = match &args.at {
        None => (Timestamp::now(), None),
        Some(text) => {
            let written = parse_instant(text, Some(&zone)).map_err(|m| anyhow!("--at: {m}"))?;
            let note = resolution_note(text.trim(), written.resolution, written.timestamp, &zone);
            (written.timestamp, note)
        }
    };

    let local = at.to_zoned(zone.clone());
    let place = site.map_or(String::new(), |s| format!(", site {}", s.name));
    println!(
        "Rota at {} in {zone_name}{place}",
        local.strftime("%a %Y-%m-%d %H:%M (%:z)")
    );
    if let Some(note) = note {
        println!("{note}");
    }

    let duties = rota.on_duty(at);
    let licensed = |duty: &&Duty| {
        site.is_none_or(|site| {
            config
                .radiologist(&duty.radiologist_id)
                .is_some_and(|r| r.is_licensed_for(&site.name))
        })
    };
    let (shown, unlicensed): (Vec<&Duty>, Vec<&Duty>) = duties.iter().partition(licensed);
    print_duties(&config, &zone, &shown);
    if let Some(site) = site
        && !unlicensed.is_empty()
    {
        let ids: Vec<&str> = unlicensed
            .iter()
            .map(|d| d.radiologist_id.as_str())
            .collect();
        println!(
            "Also on duty but not licensed for {}: {}",
            site.name,
            ids.join(", ")
        );
    }
    let overrides = rota.overrides_at(at);
    if !overrides.is_empty() {
        println!("Overrides in force:");
        for line in overrides {
            println!("  {line}");
        }
    }
    if shown.is_empty() && !config.escalation.chain.is_empty() {
        println!(
            "Studies would go to the escalation chain: {}",
            config.escalation.chain.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_duties(config: &Config, zone: &TimeZone, duties: &[&Duty]) {
    if duties.is_empty() {
        println!("Nobody is on duty.");
        return;
    }
    println!("On duty ({}):", duties.len());
    let local = |t: Timestamp| {
        t.to_zoned(zone.clone())
            .strftime("%a %d %b %H:%M")
            .to_string()
    };
    let rows: Vec<[String; 5]> = duties
        .iter()
        .map(|duty| {
            let name = config
                .radiologist(&duty.radiologist_id)
                .map_or(String::new(), |r| format!(" ({})", r.name));
            [
                duty.role.to_string(),
                duty.subspecialty.clone(),
                format!("{}{name}", duty.radiologist_id),
                format!("{} → {}", local(duty.starts), local(duty.ends)),
                duty.why.clone(),
            ]
        })
        .collect();
    let width = |column: usize| {
        rows.iter()
            .map(|row| row[column].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2), width(3)];
    for [role, subspecialty, who, bounds, why] in &rows {
        println!(
            "  {role:<w0$}  {subspecialty:<w1$}  {who:<w2$}  {bounds:<w3$}  {why}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
    }
}

/// What to tell the user about how a local time was placed in time, when
/// daylight saving made it anything but plain.
fn resolution_note(
    text: &str,
    resolution: Resolution,
    at: Timestamp,
    zone: &TimeZone,
) -> Option<String> {
    let local = at.to_zoned(zone.clone());
    match resolution {
        Resolution::Explicit | Resolution::Unique => None,
        Resolution::Gap { before, after } => Some(format!(
            "Note: {text} does not exist in {zone}: that night clocks jumped forward \
             (UTC offset {} to {}). It was read with the offset before the jump, as \
             {text}{}, which is {} local time.",
            offset(before),
            offset(after),
            offset(before),
            local.strftime("%H:%M (%:z)"),
            zone = zone.iana_name().unwrap_or("this time zone"),
        )),
        Resolution::Fold { before, after } => Some(format!(
            "Note: {text} happens twice in {zone}: that night clocks went back (UTC \
             offset {} to {}). The first was taken, {text}{}; for the second, give \
             --at {text}{}.",
            offset(before),
            offset(after),
            offset(before),
            offset(after),
            zone = zone.iana_name().unwrap_or("this time zone"),
        )),
    }
}

/// "+02:00", as written after a time.
fn offset(offset: Offset) -> String {
    let seconds = offset.seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}
