//! `telerad rota` as an on-call coordinator runs it: on the embedded
//! example, at times that daylight saving makes tricky.

use std::process::{Command, Output};

fn telerad_rota(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_telerad"))
        .arg("rota")
        .args(args)
        .output()
        .expect("run telerad")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn spring_forward_night_names_who_is_on_and_how_the_time_was_read() {
    let output = telerad_rota(&["--at", "2026-03-29T02:30"]);
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("does not exist in Europe/Paris"), "{text}");
    assert!(
        text.contains("which is 03:30 (+02:00) local time"),
        "{text}"
    );
    // The Saturday night shifts, with their local bounds and origin.
    for who in ["dr-nguyen (Dr Minh Nguyen)", "dr-lefebvre", "dr-rousseau"] {
        assert!(text.contains(who), "{who} missing from:\n{text}");
    }
    assert!(
        text.contains("Sat 28 Mar 20:00 → Sun 29 Mar 08:00"),
        "{text}"
    );
    assert!(
        text.contains("weekly shift sat 20:00–08:00 Europe/Paris (rota.shifts[3])"),
        "{text}"
    );
    assert!(!text.contains("dr-martin"), "{text}");
}

#[test]
fn repeated_time_says_which_one_was_taken() {
    let output = telerad_rota(&["--at", "2026-10-25T02:30"]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("happens twice in Europe/Paris"), "{text}");
    assert!(text.contains("give --at 2026-10-25T02:30+01:00"), "{text}");
}

#[test]
fn site_lists_only_radiologists_licensed_for_it() {
    let output = telerad_rota(&["--at", "2026-03-29T02:30+02:00", "--site", "ch-aubusson"]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("site ch-aubusson"), "{text}");
    assert!(text.contains("dr-nguyen"), "{text}");
    assert!(!text.contains("Dr Antoine Lefebvre"), "{text}");
    assert!(
        text.contains("not licensed for ch-aubusson: dr-lefebvre"),
        "{text}"
    );
    // An explicit offset needs no resolution note.
    assert!(!text.contains("Note:"), "{text}");
}

#[test]
fn overrides_explain_an_absence() {
    let output = telerad_rota(&["--at", "2026-12-24T22:00"]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("dr-martin: override absence"), "{text}");
    assert!(text.contains("primary  neuro    dr-rousseau"), "{text}");
}

#[test]
fn bad_at_or_site_fails_with_a_clear_message() {
    let output = telerad_rota(&["--at", "2026-13-01T00:00"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--at: \"2026-13-01T00:00\" is not a date and time"),
        "{stderr}"
    );
    let output = telerad_rota(&["--at", "2026-03-29T02:30", "--site", "ch-nowhere"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no such site; the sites are ch-vierzon, ch-aubusson"),
        "{stderr}"
    );
}
