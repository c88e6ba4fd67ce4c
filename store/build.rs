// `sqlx::migrate!` embeds the migration files at compile time but cannot
// tell cargo to watch the folders on stable Rust: without this, a new
// migration file is silently left out of an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
