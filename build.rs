// The end-to-end tests run each body on SQLite and on PostgreSQL. The
// PostgreSQL variants need a server named by TELERAD_TEST_POSTGRES_URL;
// without it they must be reported as ignored, not as passed, and
// `#[ignore]` is decided at compile time: hence a cfg, rebuilt whenever
// the variable changes. The pages' tests need Debian's Chromium and
// ChromeDriver likewise (cfg telerad_chromium), and the DICOMweb client
// test Debian's Orthanc with its DICOMweb plugin (cfg telerad_orthanc).
const CHROMIUM: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromedriver"];
const ORTHANC: [&str; 2] = [
    "/usr/sbin/Orthanc",
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(telerad_postgres)");
    println!("cargo::rustc-check-cfg=cfg(telerad_chromium)");
    println!("cargo::rustc-check-cfg=cfg(telerad_orthanc)");
    println!("cargo::rerun-if-env-changed=TELERAD_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("TELERAD_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=telerad_postgres");
    }
    for (paths, cfg) in [(CHROMIUM, "telerad_chromium"), (ORTHANC, "telerad_orthanc")] {
        for path in paths {
            // A path that does not exist is always stale to cargo (it would
            // rebuild the tests at every run): watch its folder instead,
            // which changes when the package installs it.
            let path = std::path::Path::new(path);
            let watched = match path.parent() {
                Some(folder) if !path.exists() => folder,
                _ => path,
            };
            if watched.exists() {
                println!("cargo::rerun-if-changed={}", watched.display());
            }
        }
        if paths.iter().all(|path| std::path::Path::new(path).exists()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
