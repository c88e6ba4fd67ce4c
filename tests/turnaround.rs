//! The turnaround figures' list of studies past a deadline: a study pushed
//! by DCMTK `storescu` and assigned, to be acknowledged and reported within
//! 2 s, shows as overdue until its preliminary is issued; the figures then
//! count its steps. Bad periods and groupings are 400s.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(a_study_past_its_deadline_is_listed_until_reported);

const CONFIG: &str = r#"
[[radiologists]]
id = "dr-day"
name = "Dr Day"
subspecialties = ["general"]
sites = ["site-a"]
max_open_studies = 5

[rota]
time_zone = "Europe/Paris"

[[rota.shifts]]
radiologist = "dr-day"
role = "primary"
subspecialty = "general"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "00:00"

[[rules]]
name = "everything"
subspecialty = "general"
priority = "routine"

[sla]
routine = { acknowledge_secs = 2, preliminary_secs = 2 }
"#;

fn a_study_past_its_deadline_is_listed_until_reported(backend: &Backend) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 1,
            extra_config: CONFIG.into(),
            ..ServerOptions::default()
        },
    );
    let rad = server.user_token("rad", &["--role", "radiologist", "--radiologist", "dr-day"]);
    let study = SyntheticStudy::ct(1);
    storescu_push(&server, &study, "SITE_A");
    let uid = study.study_instance_uid.as_str();
    let overdue = |figures: &Value| -> Vec<String> {
        figures["overdue"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r["study_instance_uid"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let figures = eventually("the study overdue", Duration::from_secs(30), || {
        let (status, figures) = server.get("/api/turnaround");
        assert_eq!(status, 200, "{figures}");
        overdue(&figures)
            .contains(&uid.to_string())
            .then_some(figures)
    });
    let row = figures["overdue"][0].clone();
    // Past its deadlines it may also have been escalated (no chain here:
    // back to the pool); listed either way.
    assert_eq!(row["priority"], "routine", "{row}");
    assert!(row["report_status"].is_null(), "{row}");

    // Read and reported: no longer overdue, and its steps are counted.
    let call = |method: &str, path: &str, body: Option<&Value>| -> (u16, Value) {
        let body = body.map(Value::to_string);
        server
            .request(method, path, Some(&rad), body.as_deref())
            .expect("an answer")
    };
    assert_eq!(
        call("POST", &format!("/api/studies/{uid}/claim"), None).0,
        200
    );
    let draft = json!({"template": "free-text", "fields": {"conclusion": "Normal."}});
    let report = format!("/api/studies/{uid}/report");
    assert_eq!(call("PUT", &format!("{report}/draft"), Some(&draft)).0, 200);
    assert_eq!(call("POST", &format!("{report}/preliminary"), None).0, 200);
    let (status, figures) = server.get("/api/turnaround?by=radiologist");
    assert_eq!(status, 200, "{figures}");
    assert!(overdue(&figures).is_empty(), "{figures}");
    let day = &figures["groups"][0];
    assert_eq!(day["key"], "dr-day", "{figures}");
    for interval in [
        "complete_to_assigned",
        "assigned_to_claimed",
        "complete_to_preliminary",
    ] {
        assert_eq!(
            day["intervals"][interval]["count"], 1,
            "{interval}: {figures}"
        );
    }
    assert!(
        day["intervals"].get("complete_to_final").is_none(),
        "{figures}"
    );

    for (query, says) in [
        (
            "from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z",
            "before",
        ),
        ("from=yesterday", "from"),
        ("by=colour", "by"),
        ("surprise=1", "surprise"),
    ] {
        let (status, answer) = server.get(&format!("/api/turnaround?{query}"));
        assert_eq!(status, 400, "{query}: {answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains(says),
            "{query}: {answer}"
        );
    }
}
