// The schema and scope tests run on PostgreSQL too. Their
// PostgreSQL variants need a server named by TELERAD_TEST_POSTGRES_URL;
// without it they must be reported as ignored, not as passed, and
// `#[ignore]` is decided at compile time: hence a cfg, rebuilt whenever
// the variable changes.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(telerad_postgres)");
    println!("cargo::rerun-if-env-changed=TELERAD_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-changed=build.rs");
    // sqlx::migrate! embeds the migrations folders at compile time but does
    // not tell cargo about files added to them.
    println!("cargo::rerun-if-changed=migrations");
    if std::env::var_os("TELERAD_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=telerad_postgres");
    }
}
