//! The pages in a real browser: headless Chromium driven through
//! ChromeDriver (W3C WebDriver), against `telerad serve` with studies pushed
//! by DCMTK `storescu`.
//!
//! - A radiologist signs in (French browser), sees an empty worklist, and a
//!   stroke study pushed meanwhile appears without a reload (the event
//!   stream), announced as a new STAT, with the time since onset on the
//!   server's clock; they claim it from the keyboard and sign out.
//! - An emergency physician of another site sees none of it on their board
//!   (English browser); the site's physician sees the study, the critical
//!   result the radiologist flags appears live, and they acknowledge it
//!   from the board.
//! - A revoked session leads back to the login page, which says why.
//! - The first administrator signs in with the generated password and is
//!   asked for a new one; the file is then gone.
//! - Without a browser: a login posted from another site's page is
//!   refused, and a page asked without a session redirects to the login.

mod common;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use telerad_fixtures::SyntheticStudy;

/// Without Chromium and ChromeDriver the browser tests are reported
/// ignored (cfg set by build.rs), never passed.
mod sqlite {
    #[test]
    #[cfg_attr(
        not(telerad_chromium),
        ignore = "Chromium or ChromeDriver is not installed"
    )]
    fn the_board_shows_its_site_only_and_acknowledges_critical_results() {
        super::the_board_shows_its_site_only_and_acknowledges_critical_results(
            &crate::common::Backend::Sqlite,
        )
    }
}

mod postgres {
    #[test]
    #[cfg_attr(
        not(all(telerad_postgres, telerad_chromium)),
        ignore = "TELERAD_TEST_POSTGRES_URL is not set, or Chromium is not installed"
    )]
    fn the_board_shows_its_site_only_and_acknowledges_critical_results() {
        super::the_board_shows_its_site_only_and_acknowledges_critical_results(
            &crate::common::Backend::required_postgres(),
        )
    }
}

/// A Wednesday night in Paris; the stroke began at 01:40.
const NIGHT: &str = "2026-03-18T03:00:00+01:00";
const ONSET_MS: i64 = 1_773_794_400_000;
const PASSWORD: &str = "a password for the tests";

const CONFIG: &str = r#"
[[radiologists]]
id = "dr-neuro"
name = "Dr Neuro"
subspecialties = ["neuro"]
sites = ["site-a"]
max_open_studies = 4

[[radiologists]]
id = "dr-body"
name = "Dr Body"
subspecialties = ["body"]
sites = ["site-a"]
max_open_studies = 4

[rota]
time_zone = "Europe/Paris"

[[rota.shifts]]
radiologist = "dr-body"
role = "primary"
subspecialty = "body"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"

[[rota.shifts]]
radiologist = "dr-neuro"
role = "primary"
subspecialty = "neuro"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"

[[rules]]
name = "stroke-request"
stroke = true
subspecialty = "neuro"
priority = "stat"
"#;

fn night_server(backend: &Backend) -> TestServer {
    TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 1,
            extra_config: CONFIG.into(),
            clock_start: Some(NIGHT.into()),
            ..ServerOptions::default()
        },
    )
}

fn stroke_form(patient: &str) -> Value {
    json!({
        "patient_id": patient,
        "accession_number": format!("ACC-{patient}"),
        "study_date": "20260318",
        "urgency": "stroke",
        "clinical_question": "Left hemiparesis, aphasia",
        "requested_examination": "CT head stroke protocol",
        "requesting_physician": "Dr Urgences",
        "callback_number": "1234",
        "symptom_onset": "2026-03-18T01:40:00+01:00",
        "nihss": 12,
    })
}

fn study(patient: &str) -> SyntheticStudy {
    ct_of(patient, 1)
}

fn ct_of(patient: &str, slices: usize) -> SyntheticStudy {
    let mut study = SyntheticStudy::ct(slices);
    study.patient_id = patient.into();
    study.accession_number = format!("ACC-{patient}");
    study.study_date = "20260318".into();
    study
}

/// ChromeDriver on a port of its own, and a browser session in it.
struct Browser {
    client: Client,
    driver: Child,
    base: String,
}

impl Browser {
    /// Headless Chromium whose preferred language is `languages` (an
    /// Accept-Language value), reaching `server` by the name `localhost`
    /// (a secure context: the session cookie is `Secure`).
    async fn open(server: &TestServer, languages: &str) -> Browser {
        let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect(
                "ChromeDriver (apt-get install chromium chromium-driver): the pages' tests need it",
            );
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let status = format!("http://127.0.0.1:{port}/status");
        eventually("chromedriver ready", Duration::from_secs(20), || {
            ureq::get(&status).call().ok().map(|_| ())
        });
        let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("Chromium");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--lang={}", languages.split(',').next().unwrap_or("fr")),
                ],
                "prefs": { "intl.accept_languages": languages },
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Browser {
            client,
            driver,
            base: format!("http://localhost:{}", server.http_port),
        }
    }

    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigate");
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("the current URL");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits until the page's address starts with `prefix`.
    async fn wait_path(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let path = self.path().await;
            if path.starts_with(prefix) {
                return path;
            }
            assert!(
                Instant::now() < deadline,
                "still at {path}, not {prefix}:\n{}",
                self.client.source().await.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .expect("its text")
    }

    async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|found| found.len())
            .unwrap_or(0)
    }

    /// Waits until `css` matches `n` elements.
    async fn wait_count(&self, css: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let count = self.count(css).await;
            if count == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css}: {count} elements, not {n}:\n{}",
                self.client.source().await.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits until `script` returns `expected`.
    async fn wait_js(&self, script: &str, expected: Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let value = self.js(script).await;
            if value == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{script} is {value}, not {expected}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn fill(&self, name: &str, value: &str) {
        let field = self
            .client
            .find(Locator::Css(&format!("input[name='{name}']")))
            .await
            .unwrap_or_else(|e| panic!("field {name}: {e}"));
        field.clear().await.expect("clear the field");
        field.send_keys(value).await.expect("type");
    }

    async fn click(&self, css: &str) {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Signs in through the login form, from wherever the browser is.
    async fn sign_in(&self, login: &str, password: &str) {
        self.wait_path("/login").await;
        self.fill("login", login).await;
        self.fill("password", password).await;
        self.click("form button[type='submit']").await;
    }

    /// A screenshot of the page, kept as a test artefact (under the
    /// target folder), and in `TELERAD_SCREENSHOTS` when that is set (the
    /// README's pictures are made so).
    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pages-screenshots");
        std::fs::create_dir_all(&kept).expect("the screenshots' folder");
        std::fs::write(kept.join(format!("{name}.png")), &png).expect("keep the screenshot");
        if let Ok(dir) = std::env::var("TELERAD_SCREENSHOTS") {
            std::fs::write(format!("{dir}/{name}.png"), &png).expect("write the screenshot");
        }
    }

    async fn select(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("{css} = {value}: {e}"));
    }

    async fn type_in(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type in {css}: {e}"));
    }

    async fn stack_ready(&self) {
        self.wait_js(
            "return document.getElementById('stage').dataset.ready || null",
            json!("1"),
        )
        .await;
    }

    async fn report_status_is(&self, status: &str) {
        self.wait_js(
            "return document.getElementById('report').dataset.status",
            json!(status),
        )
        .await;
    }

    /// Claims the study open in the reading room and fills the CT head
    /// stroke template (M1 occlusion), until the draft is saved.
    async fn claim_and_report_a_stroke(&self, conclusion: &str) {
        self.click("#claim").await;
        self.wait_count("#claim", 0).await;
        self.wait_js(
            "return document.querySelector(\"select[name='template-choice']\") !== null",
            json!(true),
        )
        .await;
        self.select("#report select[name='template-choice']", "ct-head-stroke")
            .await;
        self.wait_js(
            "return document.querySelector(\"#report select[name='haemorrhage']\") !== null",
            json!(true),
        )
        .await;
        for (field, value) in [
            ("acquisitions", "non-contrast CT + CT angiography"),
            ("haemorrhage", "absent"),
            ("early_ischaemia", "present"),
            ("occlusion", "M1"),
        ] {
            self.select(&format!("#report select[name='{field}']"), value)
                .await;
        }
        self.type_in("#report textarea[name='conclusion']", conclusion)
            .await;
        self.wait_js(
            "return Number(document.body.dataset.draftSaves || 0) > 0",
            json!(true),
        )
        .await;
    }

    async fn sign_final(&self, password: &str) {
        self.fill("sign-password", password).await;
        self.click("#sign-final").await;
    }

    async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The account of the radiologist on duty (dr-neuro) and an API token.
fn dr_neuro(server: &TestServer) -> String {
    server.user_token(
        "rad",
        &[
            "--role",
            "radiologist",
            "--radiologist",
            "dr-neuro",
            "--name",
            "Dr Neuro",
        ],
    )
}

fn worklist_uids(server: &TestServer, token: &str) -> Vec<Value> {
    let (status, body) = server.get_as(Some(token), "/api/worklist?status=all");
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

/// The workflow's night, through the pages only (but for the scanner,
/// DCMTK storescu): the technician files the stroke request, the CT
/// arrives, the radiologist sees it appear, reads it, writes and signs the
/// report and flags a critical result, which the emergency physician
/// acknowledges on the board. A screenshot of each page is kept.
#[test]
#[cfg_attr(
    not(telerad_chromium),
    ignore = "Chromium or ChromeDriver is not installed"
)]
fn the_night_of_a_stroke_through_the_pages() {
    let server = night_server(&Backend::Sqlite);
    server.user_token(
        "tech-a",
        &[
            "--role",
            "technician",
            "--site",
            "site-a",
            "--name",
            "Tech A",
        ],
    );
    server.user_token(
        "clin-a",
        &[
            "--role",
            "clinician",
            "--site",
            "site-a",
            "--name",
            "Dr Urgences A",
        ],
    );
    let rad = dr_neuro(&server);
    server.cli(
        &["user", "add", "boss", "--role", "admin", "--name", "Admin"],
        Some(&format!("{PASSWORD}\n")),
    );
    runtime().block_on(async {
        let reader = Browser::open(&server, "fr-FR,fr").await;
        let site = Browser::open(&server, "fr-FR,fr").await;
        site.goto("/").await;
        site.shot("login").await;

        // 02:58: the radiologist on call has the worklist open.
        reader.goto("/").await;
        reader.sign_in("rad", PASSWORD).await;
        reader.wait_path("/worklist").await;
        reader.wait_js("return document.body.dataset.live || null", json!("1")).await;

        // The technician files the stroke request.
        site.sign_in("tech-a", PASSWORD).await;
        site.wait_path("/board").await;
        site.click("a[href='/forms/new']").await;
        site.wait_path("/forms/new").await;
        site.fill("patient_id", "P-NIGHT").await;
        site.fill("accession_number", "ACC-P-NIGHT").await;
        site.select("select[name='urgency']", "stroke").await;
        site.type_in("textarea[name='clinical_question']", "Hémiplégie droite et aphasie depuis 01:40").await;
        site.fill("requested_examination", "Scanner cérébral et angioscanner").await;
        site.fill("requesting_physician", "Dr Urgences").await;
        site.fill("callback_number", "1234").await;
        site.js("document.querySelector(\"input[name='symptom_onset']\").value = '2026-03-18T00:40'; return null").await;
        site.fill("nihss", "14").await;
        site.shot("request-form").await;
        site.click("#request-form button[type='submit']").await;
        site.wait_js("return document.getElementById('form-result').hidden", json!(false)).await;

        // The scanner sends the CT; it appears on the worklist by itself.
        storescu_push(&server, &ct_of("P-NIGHT", 20), "SITE_A");
        reader.wait_count("#rows tr[data-priority='stat']", 1).await;
        reader.shot("worklist").await;
        reader.click("#rows tr[data-priority='stat'] a").await;
        reader.wait_path("/studies/").await;
        reader.stack_ready().await;
        let stage = reader.client.find(Locator::Css("#stage")).await.expect("the stage");
        for _ in 0..9 {
            stage.send_keys("\u{E015}").await.expect("arrow down");
        }
        assert!(reader.text("#overlay-slice").await.starts_with("Coupe 10 / 20\n"));
        reader.click("button.preset[data-preset='stroke']").await;
        reader.stack_ready().await;
        assert_eq!(reader.text("#overlay-window").await, "F 40 / N 40");

        // Claimed, reported, signed.
        reader
            .claim_and_report_a_stroke("Occlusion M1 gauche, ASPECTS 8, pas d'hémorragie.")
            .await;
        reader.click("#issue-preliminary").await;
        reader.report_status_is("preliminary").await;
        reader.sign_final(PASSWORD).await;
        reader.report_status_is("final").await;

        // The critical result, flagged from the reading room.
        reader.select("#critical select[name='category']", "1").await;
        reader.type_in("#critical textarea[name='finding']", "Occlusion M1 gauche : thrombectomie à discuter").await;
        reader.click("#flag-critical").await;
        reader.wait_count("#critical li.critical-result", 1).await;
        reader.js("window.scrollTo(0, 0); return null").await;
        reader.shot("reading-room").await;

        // The emergency physician acknowledges it on the board.
        site.click("button[data-post='/api/logout']").await;
        site.sign_in("clin-a", PASSWORD).await;
        site.wait_path("/board").await;
        site.wait_count("section.critical tr.critical-result", 1).await;
        assert!(site.text("section.critical").await.contains("thrombectomie"));
        site.shot("board").await;
        site.click("section.critical button[data-post$='/acknowledge']").await;
        site.wait_count("section.critical", 0).await;
        // ...and the reader sees it acknowledged, live.
        reader.wait_js(
            "return document.querySelector('#critical li.critical-result.acknowledged') !== null",
            json!(true),
        ).await;

        site.click("button[data-post='/api/logout']").await;
        site.sign_in("boss", PASSWORD).await;
        site.wait_path("/worklist").await;
        site.goto("/admin").await;
        site.wait_path("/admin").await;
        site.shot("admin").await;
        reader.close().await;
        site.close().await;
    });
    let (status, report) = server.get_as(Some(&rad), "/api/worklist?status=all");
    assert_eq!(status, 200, "{report}");
    let item = &report["items"][0];
    assert_eq!(item["report_status"], "final", "{item}");
    assert_eq!(item["urgency"], "stroke", "{item}");
}

#[test]
#[cfg_attr(
    not(telerad_chromium),
    ignore = "Chromium or ChromeDriver is not installed"
)]
fn a_stroke_appears_live_on_the_radiologists_worklist() {
    let server = night_server(&Backend::Sqlite);
    let tech = server.user_token("tech-a", &["--role", "technician", "--site", "site-a"]);
    let rad = dr_neuro(&server);
    runtime().block_on(async {
        let browser = Browser::open(&server, "fr-FR,fr").await;
        browser.goto("/worklist").await;
        assert_eq!(browser.wait_path("/login").await, "/login?next=/worklist");
        assert_eq!(
            browser.js("return document.documentElement.lang").await,
            "fr"
        );
        browser.sign_in("rad", PASSWORD).await;
        browser.wait_path("/worklist").await;
        assert_eq!(browser.text("h1").await, "Liste de travail");
        assert_eq!(browser.text("#rows tr.empty").await, "Rien à afficher.");
        // The page is never reloaded from here on: this stays.
        browser.js("window.testMarker = 42; return null").await;
        browser
            .wait_js("return document.body.dataset.live || null", json!("1"))
            .await;

        let (status, body) = server.post_as(
            Some(&tech),
            "/api/forms",
            &stroke_form("P-STROKE").to_string(),
        );
        assert_eq!(status, 201, "{body}");
        storescu_push(&server, &study("P-STROKE"), "SITE_A");

        browser
            .wait_count("#rows tr[data-priority='stat']", 1)
            .await;
        assert_eq!(browser.js("return window.testMarker").await, 42);
        assert_eq!(
            browser.js("return document.body.dataset.statAlerts").await,
            "1"
        );
        let row = "#rows tr[data-priority='stat']";
        assert!(browser.text(row).await.contains("P-STROKE"));
        assert!(browser.text(row).await.contains("CT head stroke protocol"));
        let window_until = browser
            .js("return document.querySelector('[data-window]').dataset.until")
            .await;
        assert_eq!(window_until, (ONSET_MS + 270 * 60_000).to_string());
        // On the server's clock (03:00 in Paris), not the browser's.
        let since = browser.text(&format!("{row} .elapsed")).await;
        assert!(since == "1 h 20" || since == "1 h 21", "{since}");

        // Claimed from the keyboard: the row loses its claim button.
        let claim = format!("{row} button[data-post$='/claim']");
        browser.wait_count(&claim, 1).await;
        browser
            .client
            .find(Locator::Css(row))
            .await
            .expect("the row")
            .send_keys("c")
            .await
            .expect("press c");
        browser.wait_count(&claim, 0).await;
        let items = worklist_uids(&server, &rad);
        assert_eq!(items[0]["state"], "acknowledged", "{items:?}");
        assert_eq!(items[0]["reader"]["id"], "dr-neuro");

        browser.click("button[data-post='/api/logout']").await;
        browser.wait_path("/login").await;
        browser.goto("/worklist").await;
        browser.wait_path("/login?next=/worklist").await;
        browser.close().await;
    });
}

fn the_board_shows_its_site_only_and_acknowledges_critical_results(backend: &Backend) {
    let server = night_server(backend);
    let tech = server.user_token("tech-a", &["--role", "technician", "--site", "site-a"]);
    server.user_token(
        "clin-a",
        &[
            "--role",
            "clinician",
            "--site",
            "site-a",
            "--name",
            "Dr Urgences A",
        ],
    );
    server.user_token("clin-b", &["--role", "clinician", "--site", "site-b"]);
    let rad = dr_neuro(&server);
    let (status, body) = server.post_as(
        Some(&tech),
        "/api/forms",
        &stroke_form("P-BOARD").to_string(),
    );
    assert_eq!(status, 201, "{body}");
    storescu_push(&server, &study("P-BOARD"), "SITE_A");
    let uid = eventually("the study assigned", Duration::from_secs(30), || {
        worklist_uids(&server, &rad)
            .first()
            .and_then(|item| item["study_instance_uid"].as_str().map(str::to_string))
    });
    runtime().block_on(async {
        let browser = Browser::open(&server, "en-GB,en").await;
        browser.goto("/").await;
        browser.sign_in("clin-b", PASSWORD).await;
        browser.wait_path("/board").await;
        assert_eq!(browser.text("h1").await, "Emergency department board");
        assert_eq!(
            browser.text("table.board tr.empty").await,
            "Nothing to show."
        );
        let source = browser.client.source().await.expect("the page");
        assert!(
            !source.contains("P-BOARD") && !source.contains(&uid),
            "{source}"
        );
        // Another site's rows are not served to the script either.
        browser.goto("/board/rows").await;
        let rows = browser.client.source().await.expect("the rows");
        assert!(!rows.contains("P-BOARD"), "{rows}");
        // Nor is its reading room: not found, as if it did not exist.
        browser.goto(&format!("/studies/{uid}")).await;
        assert_eq!(browser.text("h1").await, "Not Found");
        assert!(browser.text("p").await.contains("No study of that name"));
        assert!(
            !browser
                .client
                .source()
                .await
                .expect("the page")
                .contains("P-BOARD")
        );
        browser.goto("/board").await;
        browser.click("button[data-post='/api/logout']").await;

        browser.sign_in("clin-a", PASSWORD).await;
        browser.wait_path("/board").await;
        let row = format!("tr[data-uid='{uid}']");
        assert!(browser.text(&row).await.contains("P-BOARD"));
        assert!(
            browser
                .text(&format!("{row} .state"))
                .await
                .contains("assigned")
        );
        assert_eq!(browser.count("section.critical").await, 0);
        browser
            .wait_js("return document.body.dataset.live || null", json!("1"))
            .await;

        let (status, body) = server.post_as(Some(&rad), &format!("/api/studies/{uid}/claim"), "{}");
        assert_eq!(status, 200, "{body}");
        let (status, body) = server.post_as(
            Some(&rad),
            &format!("/api/studies/{uid}/critical-results"),
            &json!({"category": 1, "finding": "Left M1 occlusion"}).to_string(),
        );
        assert_eq!(status, 201, "{body}");
        // Live: the critical result and the study being read.
        browser
            .wait_count("section.critical tr.critical-result", 1)
            .await;
        assert!(
            browser
                .text("section.critical")
                .await
                .contains("Left M1 occlusion")
        );
        assert!(
            browser
                .text(&format!("{row} .state"))
                .await
                .contains("being read")
        );

        browser
            .click("section.critical button[data-post$='/acknowledge']")
            .await;
        browser.wait_count("section.critical", 0).await;
        let (status, body) =
            server.get_as(Some(&rad), &format!("/api/studies/{uid}/critical-results"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body[0]["state"], "acknowledged", "{body}");
        assert_eq!(body[0]["acknowledgement"]["by"], "Dr Urgences A", "{body}");
        assert_eq!(
            body[0]["acknowledgement"]["recorded_by"], "clin-a",
            "{body}"
        );
        browser.close().await;
    });
}

/// The status of `GET /api/me` with the browser's session cookie.
const ME_STATUS: &str = "return fetch('/api/me').then(answer => answer.status)";

#[test]
#[cfg_attr(
    not(telerad_chromium),
    ignore = "Chromium or ChromeDriver is not installed"
)]
fn a_radiologist_reads_and_signs_in_the_reading_room() {
    let server = night_server(&Backend::Sqlite);
    let tech = server.user_token("tech-a", &["--role", "technician", "--site", "site-a"]);
    let rad = dr_neuro(&server);
    let (status, body) = server.post_as(
        Some(&tech),
        "/api/forms",
        &stroke_form("P-READ").to_string(),
    );
    assert_eq!(status, 201, "{body}");
    storescu_push(&server, &ct_of("P-READ", 20), "SITE_A");
    let uid = eventually("the study assigned", Duration::from_secs(30), || {
        worklist_uids(&server, &rad)
            .first()
            .and_then(|item| item["study_instance_uid"].as_str().map(str::to_string))
    });
    runtime().block_on(async {
        let browser = Browser::open(&server, "fr-FR,fr").await;
        browser.goto("/").await;
        browser.sign_in("rad", PASSWORD).await;
        browser.wait_path("/worklist").await;
        // From the worklist by keyboard: to the row, then open it.
        let row = browser
            .client
            .find(Locator::Css("#rows tr[data-uid]"))
            .await
            .expect("the row");
        row.send_keys("j").await.expect("press j");
        row.send_keys("\u{E007}").await.expect("press Enter");
        browser.wait_path(&format!("/studies/{uid}")).await;

        // The images: every slice held, the first drawn, not black.
        browser.stack_ready().await;
        let overlay = browser.text("#overlay-slice").await;
        assert!(
            overlay.starts_with("Coupe 1 / 20\n") && overlay.ends_with(" mm"),
            "{overlay}"
        );
        // The history says how the study came to its reader, in French.
        let history = browser
            .js("return document.querySelector('#history-panel ol').textContent")
            .await;
        let history = history.as_str().unwrap_or_default();
        assert!(
            history.contains("attribué à") && history.contains("la règle "),
            "{history}"
        );
        assert!(!history.contains(" rule "), "{history}");
        let lit = browser
            .js("const c = document.getElementById('frame'); \
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
                 let lit = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 10) lit++; \
                 return lit")
            .await;
        assert!(lit.as_i64().unwrap_or(0) > 100, "a black frame: {lit}");
        let stage = browser
            .client
            .find(Locator::Css("#stage"))
            .await
            .expect("the stage");
        for _ in 0..3 {
            stage.send_keys("\u{E015}").await.expect("arrow down");
        }
        assert!(
            browser
                .text("#overlay-slice")
                .await
                .starts_with("Coupe 4 / 20\n")
        );
        stage.send_keys("\u{E010}").await.expect("End");
        assert!(
            browser
                .text("#overlay-slice")
                .await
                .starts_with("Coupe 20 / 20\n")
        );
        // A named window: the whole stack again, rendered at 40/40.
        browser.click("button.preset[data-preset='stroke']").await;
        browser.stack_ready().await;
        assert_eq!(browser.text("#overlay-window").await, "F 40 / N 40");

        // The request form, as filed.
        assert!(
            browser
                .text("#form")
                .await
                .contains("Left hemiparesis, aphasia")
        );

        // Claim, then the stroke template: autosaved, preliminary, final.
        browser
            .claim_and_report_a_stroke("Occlusion M1 gauche, pas d'hémorragie.")
            .await;
        // The template in French; what is stored stays the template's.
        let report_panel = browser.text("#report").await;
        assert!(
            report_panel.contains("Hémorragie intracrânienne *")
                && report_panel.contains("Résultats"),
            "{report_panel}"
        );
        browser.click("#issue-preliminary").await;
        browser.report_status_is("preliminary").await;
        // A wrong password: not signed, and the page says so, in its
        // language to the end (the API answers the page's language).
        browser.sign_final("not the password").await;
        browser
            .wait_js(
                "const s = document.getElementById('report-status'); \
                 return s && s.className === 'error' ? s.textContent : null",
                json!(
                    "Refusé (403) : mot de passe incorrect : la signature du compte rendu \
                     n'a pas eu lieu"
                ),
            )
            .await;
        assert_eq!(
            browser
                .js("return document.getElementById('report').dataset.status")
                .await,
            "preliminary"
        );
        browser.sign_final(PASSWORD).await;
        browser.report_status_is("final").await;
        let (status, report) = server.get_as(Some(&rad), &format!("/api/studies/{uid}/report"));
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["status"], "final");
        let last = &report["versions"][1];
        assert_eq!(last["kind"], "final", "{report}");
        assert_eq!(last["signed_by"], "rad");
        assert_eq!(last["content"]["fields"]["occlusion"], "M1");
        assert_eq!(
            last["content"]["fields"]["conclusion"],
            "Occlusion M1 gauche, pas d'hémorragie."
        );

        // A message to the site.
        let message = browser
            .client
            .find(Locator::Css("#message-form textarea"))
            .await
            .expect("the message box");
        message
            .send_keys("Appelez-moi au 1234.")
            .await
            .expect("type");
        browser.click("#message-form button").await;
        browser.wait_count("#messages li", 1).await;
        assert!(
            browser
                .text("#messages")
                .await
                .contains("Appelez-moi au 1234.")
        );
        // A second opinion from the colleague on duty in body imaging.
        browser.click("#consult-panel summary").await;
        browser
            .client
            .find(Locator::Css("#consult-panel select[name='subspecialty']"))
            .await
            .expect("the subspecialty")
            .select_by_value("body")
            .await
            .expect("choose body");
        browser
            .client
            .find(Locator::Css("#consult-panel textarea[name='question']"))
            .await
            .expect("the question")
            .send_keys("Dissection aortique associée ?")
            .await
            .expect("type");
        browser.click("#consult-panel button[type='submit']").await;
        browser
            .wait_js(
                "return document.getElementById('consult-result').hidden",
                json!(false),
            )
            .await;
        let (status, consults) = server.get_as(Some(&rad), &format!("/api/studies/{uid}/consults"));
        assert_eq!(status, 200, "{consults}");
        assert!(consults.to_string().contains("dr-body"), "{consults}");
        if let Ok(dir) = std::env::var("TELERAD_SCREENSHOTS") {
            let png = browser.client.screenshot().await.expect("a screenshot");
            std::fs::write(format!("{dir}/reading-room.png"), png).expect("write it");
        }
        browser.close().await;
    });
}

#[test]
#[cfg_attr(
    not(telerad_chromium),
    ignore = "Chromium or ChromeDriver is not installed"
)]
fn the_administrator_sees_the_rota_creates_an_account_and_searches_the_audit() {
    // A week that holds the night the clocks go forward in Paris (29 March).
    let server = TestServer::start_with(
        &Backend::Sqlite,
        ServerOptions {
            extra_config: CONFIG.into(),
            clock_start: Some("2026-03-25T03:00:00+01:00".into()),
            ..ServerOptions::default()
        },
    );
    server.cli(
        &["user", "add", "boss", "--role", "admin"],
        Some(&format!("{PASSWORD}\n")),
    );
    runtime().block_on(async {
        let browser = Browser::open(&server, "fr-FR,fr").await;
        browser.goto("/admin").await;
        browser.sign_in("boss", PASSWORD).await;
        browser.wait_path("/admin").await;
        let now = browser.text("#on-duty").await;
        // Wednesday 03:00: Tuesday's night shift, said in French.
        assert!(
            now.contains("Dr Neuro")
                && now.contains(
                    "garde hebdomadaire du mar. 20:00–08:00 Europe/Paris (rota.shifts[0])"
                ),
            "{now}"
        );
        assert_eq!(browser.count("#week .day").await, 7);
        // Notifications given up are listed beside the forwards (none here).
        assert_eq!(
            browser.text("#deliveries").await,
            "Notifications abandonnées\nAucun."
        );
        let health = browser.text("#health").await;
        assert!(
            health.contains("images") && health.contains("escalades"),
            "{health}"
        );
        let short = browser.text("#week .day[data-hours='23']").await;
        assert!(short.starts_with("dim. 29/03"), "{short}");
        assert!(
            short.contains(
                "00:00–08:00 Dr Body (titulaire imagerie abdominale), \
                 Dr Neuro (titulaire neuroradiologie)"
            ),
            "{short}"
        );
        assert!(
            short.contains(
                "20:00–00:00 Dr Body (titulaire imagerie abdominale), \
                 Dr Neuro (titulaire neuroradiologie)"
            ),
            "{short}"
        );

        browser.fill("login", "new-clin").await;
        browser.fill("name", "Dr Nouvelle").await;
        browser
            .client
            .find(Locator::Css("#users select[name='role']"))
            .await
            .expect("the role")
            .select_by_value("clinician")
            .await
            .expect("choose clinician");
        browser.fill("sites", "site-a, site-c").await;
        browser.click("#users form button[type='submit']").await;
        browser
            .wait_js(
                "return document.getElementById('new-user-result').hidden",
                json!(false),
            )
            .await;
        let shown = browser.text("#new-user-result").await;
        let password = shown
            .strip_prefix("new-clin · ")
            .unwrap_or_else(|| panic!("the generated password: {shown}"));
        let (status, body) = server.post_as(
            None,
            "/api/login",
            &json!({"login": "new-clin", "password": password}).to_string(),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user"]["sites"], json!(["site-a", "site-c"]));

        // An API token for a hospital system, shown once, that works.
        browser.goto("/admin").await;
        browser
            .select("#token-form select[name='login']", "new-clin")
            .await;
        browser
            .type_in("#token-form input[name='name']", "urgences-dpi")
            .await;
        browser.click("#token-form button[type='submit']").await;
        browser
            .wait_js(
                "return document.getElementById('new-token-result').hidden",
                json!(false),
            )
            .await;
        let shown = browser.text("#new-token-result").await;
        let token = shown
            .strip_prefix("urgences-dpi · ")
            .unwrap_or_else(|| panic!("the token: {shown}"));
        let (status, me) = server.get_as(Some(token), "/api/me");
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["login"], "new-clin");
        assert!(browser.text("#sites").await.contains("SITE_B"));

        browser.goto("/admin?user=boss").await;
        let audit = browser.text("table.audit").await;
        assert!(
            audit.contains("user.create") && audit.contains("user/new-clin"),
            "{audit}"
        );
        assert!(audit.contains("token.create"), "{audit}");
        // Outcomes and roles in French, times in the rota's zone.
        assert!(
            audit.contains("réussi") && audit.contains("administrateur"),
            "{audit}"
        );
        assert!(audit.contains("CET") || audit.contains("CEST"), "{audit}");
        assert!(!audit.contains(" UTC"), "{audit}");
        browser.close().await;
    });
}

/// A radiologist lands on their studies and the urgent ones nobody has:
/// a routine study nobody has waits under the wider view. The
/// administrator gives it to them from the reading room; refusals are
/// worded in the page's language.
#[test]
#[cfg_attr(
    not(telerad_chromium),
    ignore = "Chromium or ChromeDriver is not installed"
)]
fn the_reader_lands_on_theirs_and_the_administrator_gives_a_study() {
    let server = night_server(&Backend::Sqlite);
    dr_neuro(&server);
    server.cli(
        &["user", "add", "boss", "--role", "admin"],
        Some(&format!("{PASSWORD}\n")),
    );
    let admin = server.admin_token();
    // No form: general and routine, and nobody of that subspecialty on duty.
    let routine = study("P-ROUTINE");
    storescu_push(&server, &routine, "SITE_A");
    let uid = routine.study_instance_uid.clone();
    eventually(
        "the routine study classified",
        Duration::from_secs(30),
        || {
            let items = worklist_uids(&server, &admin);
            items
                .iter()
                .any(|i| i["study_instance_uid"] == uid.as_str() && i["state"] == "unassigned")
                .then_some(())
        },
    );
    runtime().block_on(async {
        let browser = Browser::open(&server, "fr-FR,fr").await;
        browser.goto("/worklist").await;
        browser.sign_in("rad", PASSWORD).await;
        browser.wait_path("/worklist").await;
        assert_eq!(browser.text("#rows tr.empty").await, "Rien à afficher.");
        assert_eq!(
            browser
                .js("return document.querySelector(\"input[name='mine_or_urgent']\").checked")
                .await,
            true
        );
        browser.click("input[name='mine_or_urgent']").await;
        browser.click("form.filters button[type='submit']").await;
        browser.wait_path("/worklist?status=open").await;
        browser.wait_count("#rows tr[data-uid]", 1).await;
        assert!(browser.text("#rows").await.contains("P-ROUTINE"));
        // The live region keeps the chosen view when it reloads.
        assert!(
            browser
                .js("return document.getElementById('rows').dataset.src")
                .await
                .as_str()
                .is_some_and(|src| !src.contains("mine_or_urgent")),
        );
        browser.click("button[data-post='/api/logout']").await;
        browser.wait_path("/login").await;

        browser.goto(&format!("/studies/{uid}")).await;
        browser.sign_in("boss", PASSWORD).await;
        browser.wait_path(&format!("/studies/{uid}")).await;
        assert_eq!(
            browser
                .js("return window.teleradRefusal(409, {error: 'the final report is signed'})")
                .await,
            "Refusé dans l'état actuel de l'examen (409) : the final report is signed"
        );
        browser
            .select("#assign select[name='radiologist']", "dr-neuro")
            .await;
        browser.js("window.beforeAssign = 1; return null").await;
        browser.click("#assign button[type='submit']").await;
        // The page comes back (a new document) with the reader named.
        browser
            .wait_js(
                "return window.beforeAssign === undefined && document.readyState === 'complete'",
                json!(true),
            )
            .await;
        assert!(browser.text(".study-head").await.contains("Dr Neuro"));
        let (status, view) = server.get_as(Some(&admin), &format!("/api/studies/{uid}"));
        assert_eq!(status, 200, "{view}");
        assert_eq!(
            view["assignment"]["radiologist"]["id"], "dr-neuro",
            "{view}"
        );
        browser.click("button[data-post='/api/logout']").await;
        browser.wait_path("/login").await;

        browser.goto("/worklist").await;
        browser.sign_in("rad", PASSWORD).await;
        browser.wait_path("/worklist").await;
        browser.wait_count("#rows tr[data-uid]", 1).await;
        assert!(browser.text("#rows").await.contains("P-ROUTINE"));
        browser.close().await;
    });
}

#[test]
#[cfg_attr(
    not(telerad_chromium),
    ignore = "Chromium or ChromeDriver is not installed"
)]
fn a_technician_files_a_request_form_from_the_page() {
    let server = night_server(&Backend::Sqlite);
    server.user_token("tech-a", &["--role", "technician", "--site", "site-a"]);
    let rad = dr_neuro(&server);
    let onset = runtime().block_on(async {
        let browser = Browser::open(&server, "fr-FR,fr").await;
        browser.goto("/forms/new").await;
        browser.sign_in("tech-a", PASSWORD).await;
        browser.wait_path("/forms/new").await;
        assert_eq!(browser.text("h1").await, "Nouvelle demande d'examen");
        // One site: the form does not ask which.
        assert_eq!(browser.count("select[name='site']").await, 0);
        browser.fill("patient_id", "P-FORM").await;
        browser.fill("accession_number", "ACC-P-FORM").await;
        browser
            .client
            .find(Locator::Css("select[name='urgency']"))
            .await
            .expect("the urgency")
            .select_by_value("stroke")
            .await
            .expect("choose stroke");
        let question = browser
            .client
            .find(Locator::Css("textarea[name='clinical_question']"))
            .await
            .expect("the question");
        question.send_keys("Aphasie brutale").await.expect("type");
        browser.fill("requested_examination", "Scanner cérébral AVC").await;
        browser.fill("requesting_physician", "Dr Urgences").await;
        browser.fill("callback_number", "1234").await;
        // A stroke request without its onset and NIHSS: refused, by the
        // field's label, in French.
        browser.click("#request-form button[type='submit']").await;
        let refusal = browser.text("#flash").await;
        assert_eq!(
            refusal,
            "Saisie refusée (400) : Début des symptômes : obligatoire pour une demande AVC \
             (la fenêtre de thrombolyse en part)"
        );
        browser
            .js("document.querySelector(\"input[name='symptom_onset']\").value = '2026-03-18T01:40'; return null")
            .await;
        browser.fill("nihss", "12").await;
        browser.click("#request-form button[type='submit']").await;
        browser
            .wait_js("return document.getElementById('form-result').hidden", json!(false))
            .await;
        assert_eq!(browser.text("#form-result").await, "Demande enregistrée");
        assert_eq!(browser.count("#flash").await, 0);
        // The onset typed is the browser's local time.
        let onset = browser
            .js("return new Date('2026-03-18T01:40').toISOString().replace('.000Z', 'Z')")
            .await;
        browser.close().await;
        onset
    });
    storescu_push(&server, &study("P-FORM"), "SITE_A");
    let item = eventually(
        "the stroke on the worklist",
        Duration::from_secs(30),
        || worklist_uids(&server, &rad).into_iter().next(),
    );
    assert_eq!(item["urgency"], "stroke", "{item}");
    assert_eq!(item["priority"], "stat", "{item}");
    assert_eq!(item["form"], "present", "{item}");
    assert_eq!(item["examination"], "Scanner cérébral AVC", "{item}");
    assert_eq!(item["stroke"]["symptom_onset"], onset, "{item}");
}

#[test]
#[cfg_attr(
    not(telerad_chromium),
    ignore = "Chromium or ChromeDriver is not installed"
)]
fn a_revoked_session_leads_back_to_the_login_page() {
    let server = night_server(&Backend::Sqlite);
    dr_neuro(&server);
    runtime().block_on(async {
        let browser = Browser::open(&server, "fr-FR,fr").await;
        browser.goto("/").await;
        browser.sign_in("rad", PASSWORD).await;
        browser.wait_path("/worklist").await;
        // A new password ends the account's sessions.
        server.cli(
            &["user", "passwd", "rad"],
            Some("another password for the tests\n"),
        );
        // The server learns of a change made by the command line within a
        // fifth of a second: until the browser's cookie is refused.
        browser.wait_js(ME_STATUS, json!(401)).await;
        // The page's script meets the 401 and goes to the login page.
        browser.click("button[data-post='/api/logout']").await;
        browser.wait_path("/login?expired=1").await;
        assert_eq!(
            browser.text("p.notice").await,
            "Votre session a expiré : reconnectez-vous."
        );
        // So does a page asked with the revoked cookie.
        browser
            .sign_in("rad", "another password for the tests")
            .await;
        browser.wait_path("/worklist").await;
        server.cli(
            &["user", "passwd", "rad"],
            Some("a third password for the tests\n"),
        );
        browser.wait_js(ME_STATUS, json!(401)).await;
        browser.goto("/worklist?priority=stat").await;
        let path = browser.wait_path("/login").await;
        assert_eq!(path, "/login?next=/worklist%3Fpriority%3Dstat&expired=1");
        browser
            .sign_in("rad", "a third password for the tests")
            .await;
        browser.wait_path("/worklist?priority=stat").await;
        browser.close().await;
    });
}

#[test]
#[cfg_attr(
    not(telerad_chromium),
    ignore = "Chromium or ChromeDriver is not installed"
)]
fn the_first_administrator_chooses_a_password() {
    let server = night_server(&Backend::Sqlite);
    let file = server.data_dir.join("initial-admin-password");
    let generated = std::fs::read_to_string(&file).expect("the first password's file");
    runtime().block_on(async {
        let browser = Browser::open(&server, "fr-FR,fr").await;
        browser.goto("/").await;
        browser.wait_path("/login").await;
        assert!(
            browser
                .text("p.hint")
                .await
                .contains("initial-admin-password")
        );
        browser.sign_in("admin", generated.trim_end()).await;
        browser.wait_path("/account/password?first=1").await;
        assert!(browser.text("p.notice").await.contains("Premier démarrage"));
        browser.fill("current", generated.trim_end()).await;
        browser
            .fill("new", "the administrator's own password")
            .await;
        browser
            .fill("repeat", "the administrator's own password")
            .await;
        browser.click("form button[type='submit']").await;
        browser.wait_path("/worklist").await;
        assert!(!file.exists(), "the generated password's file is removed");
        browser.click("button[data-post='/api/logout']").await;
        browser.wait_path("/login").await;
        assert_eq!(browser.count("p.hint").await, 0);
        browser
            .sign_in("admin", "the administrator's own password")
            .await;
        browser.wait_path("/worklist").await;
        browser.close().await;
    });
}

#[test]
fn pages_refuse_other_sites_forms_and_redirect_without_a_session() {
    let server = night_server(&Backend::Sqlite);
    dr_neuro(&server);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let base = format!("http://127.0.0.1:{}", server.http_port);
    let form = format!("login=rad&password={}&next=%2F", PASSWORD.replace(' ', "+"));
    let mut refused = agent
        .post(&format!("{base}/login"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .send(form.as_str())
        .expect("the login");
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("set-cookie").is_none());
    let page = refused.body_mut().read_to_string().unwrap_or_default();
    assert!(page.contains("<form"), "the login page again: {page}");

    let accepted = agent
        .post(&format!("{base}/login"))
        .header("origin", &base)
        .header("content-type", "application/x-www-form-urlencoded")
        .send(form.as_str())
        .expect("the login");
    assert_eq!(accepted.status(), 303);
    assert!(accepted.headers().get("set-cookie").is_some());

    for path in [
        "/board",
        "/worklist/rows",
        "/board/rows",
        "/account/password",
    ] {
        let answer = agent.get(&format!("{base}{path}")).call().expect(path);
        assert_eq!(answer.status(), 303, "{path}");
        let location = answer
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok());
        assert_eq!(
            location,
            Some(format!("/login?next={}", path).as_str()),
            "{path}"
        );
        // An API token is not a page session.
    }
    let token = server.create_token("rad");
    let answer = agent
        .get(&format!("{base}/worklist"))
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .expect("the worklist");
    assert_eq!(answer.status(), 303);
    let csp = agent
        .get(&format!("{base}/login"))
        .call()
        .expect("the login page");
    let policy = csp
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
}
