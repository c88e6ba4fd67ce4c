//! The pages, measured in headless Chromium (bench/pages.sh runs it against
//! a server it prepared): the worklist page (time to first contentful
//! paint and until its script has run, from the browser's navigation
//! timing), and the reading room of one study (time from opening to the
//! first image drawn, until every slice is held and scrollable, frames per
//! second while scrolling through the stack and while dragging the
//! window). Prints one JSON object.
//!
//! Usage: pages_bench BASE_URL LOGIN PASSWORD STUDY_UID|- [WORKLIST_PATH...]

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn wait_js(client: &Client, script: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let value = client
            .execute(script, Vec::new())
            .await
            .expect("the script");
        if !value.is_null() && value != json!(false) && value != json!("") {
            return value;
        }
        assert!(Instant::now() < deadline, "{script}: still {value}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Navigation timing of the page just loaded, in ms from its start.
const TIMING: &str = "const n = performance.getEntriesByType('navigation')[0]; \
    const p = performance.getEntriesByName('first-contentful-paint')[0]; \
    return n && n.loadEventEnd > 0 && p ? { response_end: n.responseEnd, \
      first_contentful_paint: p.startTime, \
      dom_content_loaded: n.domContentLoadedEventEnd, load: n.loadEventEnd, \
      rows: document.querySelectorAll('tr[data-uid]').length, \
      html_bytes: n.decodedBodySize } : null";

/// Steps through every slice, one per animation frame, and counts the
/// frames drawn per second.
const SCROLL: &str = "const stage = document.getElementById('stage'); \
    const n = Number(stage.dataset.ready ? document.getElementById('overlay-slice').textContent.split('/')[1] : 0); \
    stage.dispatchEvent(new KeyboardEvent('keydown', { key: 'Home', bubbles: true })); \
    const drawn0 = Number(stage.dataset.drawn || 0); \
    return new Promise(done => { let i = 1; const t0 = performance.now(); \
      const step = () => { stage.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowDown', bubbles: true })); \
        if (++i < n) requestAnimationFrame(step); \
        else { const s = (performance.now() - t0) / 1000; \
          done({ slices: n, fps: (Number(stage.dataset.drawn) - drawn0) / s }); } }; \
      requestAnimationFrame(step); })";

/// Drags the window tool across the image for three seconds, one move per
/// animation frame, and counts the renderings drawn per second.
const DRAG: &str = "const stage = document.getElementById('stage'); \
    document.querySelector(\"button.tool[data-tool='window']\").click(); \
    const r = stage.getBoundingClientRect(); const x = r.left + r.width / 2, y = r.top + r.height / 2; \
    const ev = (type, dx) => stage.dispatchEvent(new PointerEvent(type, { pointerId: 1, bubbles: true, \
      clientX: x + dx, clientY: y + dx / 2, isPrimary: true, button: 0 })); \
    const previews0 = Number(stage.dataset.previews || 0); \
    ev('pointerdown', 0); \
    return new Promise(done => { const t0 = performance.now(); let k = 0; \
      const step = () => { ev('pointermove', (k++ % 200) - 100); \
        if (performance.now() - t0 < 3000) requestAnimationFrame(step); \
        else { const s = (performance.now() - t0) / 1000; \
          const fps = (Number(stage.dataset.previews || 0) - previews0) / s; \
          ev('pointerup', 0); done({ fps: fps, moves: k }); } }; \
      requestAnimationFrame(step); })";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, login, password, study, worklists @ ..] = args.as_slice() else {
        eprintln!("usage: pages_bench BASE_URL LOGIN PASSWORD STUDY_UID [WORKLIST_PATH...]");
        std::process::exit(2);
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut driver = Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver");
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1600,1000"],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let mut client = None;
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let client = client.expect("a Chromium session");
    client
        .goto(&format!("{base}/login"))
        .await
        .expect("login page");
    for (name, value) in [("login", login), ("password", password)] {
        client
            .find(Locator::Css(&format!("input[name='{name}']")))
            .await
            .expect("field")
            .send_keys(value)
            .await
            .expect("type");
    }
    client
        .find(Locator::Css("form button[type='submit']"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("click");
    wait_js(&client, "return document.body.dataset.csrf || null").await;

    let mut results = serde_json::Map::new();
    for path in worklists {
        client
            .goto(&format!("{base}{path}"))
            .await
            .expect("worklist");
        let timing = wait_js(&client, TIMING).await;
        results.insert(format!("worklist {path}"), timing);
    }

    if study == "-" {
        println!("{}", Value::Object(results));
        let _ = client.close().await;
        let _ = driver.kill();
        let _ = driver.wait();
        return;
    }
    client
        .goto(&format!("{base}/studies/{study}"))
        .await
        .expect("reading room");
    wait_js(
        &client,
        "return document.getElementById('stage').dataset.ready || null",
    )
    .await;
    let first_image = wait_js(&client, "return document.body.dataset.firstImageMs || null").await;
    let stack = wait_js(&client, "return document.body.dataset.stackMs || null").await;
    let scroll = client.execute(SCROLL, Vec::new()).await.expect("scroll");
    let drag = client.execute(DRAG, Vec::new()).await.expect("drag");
    let script_bytes = client
        .execute(
            "return performance.getEntriesByType('resource').filter(r => r.name.endsWith('.js')).reduce((s, r) => s + r.decodedBodySize, 0)",
            Vec::new(),
        )
        .await
        .expect("scripts");
    results.insert(
        "reading".into(),
        json!({
            "first_image_ms": first_image,
            "all_slices_ms": stack,
            "scroll": scroll,
            "window_drag": drag,
            "javascript_bytes": script_bytes,
        }),
    );
    println!("{}", Value::Object(results));
    let _ = client.close().await;
    let _ = driver.kill();
    let _ = driver.wait();
}
