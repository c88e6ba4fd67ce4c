//! The SQLite and PostgreSQL migrations build the same schema: tables,
//! columns (type, nullability, default), primary keys, unique and other
//! indexes, foreign keys and the number of CHECK constraints of each table.
//! Each backend has its own migrations folder; this test is what keeps the
//! two from drifting apart.

use std::collections::{BTreeMap, BTreeSet};
use telerad_fixtures::database::{Backend, PgDatabase};
use telerad_store::Database;

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    /// In order: name, type (`integer` or `text`), NOT NULL, default.
    columns: Vec<(String, String, bool, Option<String>)>,
    primary_key: Vec<String>,
    /// Unique or not, and the columns, of every index but the primary key's.
    indexes: BTreeSet<(bool, Vec<String>)>,
    /// Indexes created by name (CREATE INDEX), which queries rely on.
    named_indexes: BTreeSet<String>,
    /// Columns, referenced table, referenced columns.
    foreign_keys: BTreeSet<(Vec<String>, String, Vec<String>)>,
    checks: usize,
}

type Schema = BTreeMap<String, Table>;

fn column_type(declared: &str) -> String {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" | "int8" => "integer".into(),
        "text" => "text".into(),
        "boolean" | "bool" => "boolean".into(),
        other => other.into(),
    }
}

/// `'receiving'::text` and `'receiving'` are the same default.
fn default_value(raw: Option<String>) -> Option<String> {
    raw.map(|d| {
        let d = d.trim();
        let d = d
            .strip_suffix("::text")
            .or_else(|| d.strip_suffix("::bigint"))
            .unwrap_or(d);
        let d = d.trim_matches(|c| c == '(' || c == ')');
        // SQLite keeps `FALSE` as written; PostgreSQL prints `false`.
        if d.eq_ignore_ascii_case("true") || d.eq_ignore_ascii_case("false") {
            d.to_ascii_lowercase()
        } else {
            d.to_string()
        }
    })
}

/// CHECK constraints in a CREATE TABLE statement (`CHECK (`, not a column
/// such as `checksum`).
fn check_constraints(sql: &str) -> usize {
    let upper = sql.to_ascii_uppercase();
    upper
        .match_indices("CHECK")
        .filter(|&(at, _)| {
            let before = upper[..at].chars().next_back();
            let after = upper[at + 5..].trim_start();
            !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') && after.starts_with('(')
        })
        .count()
}

async fn sqlite_schema(url: &str) -> Schema {
    let db = Database::connect(url).await.expect("migrate SQLite");
    let pool = db.pool().clone();
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .expect("tables");
    let mut schema = Schema::new();
    for (name, sql) in tables {
        let mut table = Table {
            checks: check_constraints(&sql),
            ..Table::default()
        };
        let columns: Vec<(String, String, i64, Option<String>, i64)> = sqlx::query_as(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info($1) ORDER BY cid",
        )
        .bind(&name)
        .fetch_all(&pool)
        .await
        .expect("columns");
        let mut pk: Vec<(i64, String)> = Vec::new();
        for (column, declared, not_null, default, pk_position) in columns {
            if pk_position > 0 {
                pk.push((pk_position, column.clone()));
            }
            // An INTEGER PRIMARY KEY is the rowid: never NULL, though SQLite
            // does not flag it so.
            // SQLite's boolean: an integer held to 0 or 1 by a CHECK, which
            // is PostgreSQL's BOOLEAN (whose type needs no CHECK).
            let boolean = sql.to_ascii_uppercase().contains(&format!(
                "CHECK ({} IN (0, 1))",
                column.to_ascii_uppercase()
            ));
            let (declared, default) = if boolean {
                table.checks -= 1;
                let default = default.map(|d| match d.as_str() {
                    "0" => "false".to_string(),
                    "1" => "true".to_string(),
                    _ => d,
                });
                ("boolean".to_string(), default)
            } else {
                (declared, default)
            };
            table.columns.push((
                column,
                column_type(&declared),
                not_null != 0 || pk_position > 0,
                default_value(default),
            ));
        }
        pk.sort();
        table.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        let indexes: Vec<(String, i64, String)> =
            sqlx::query_as("SELECT name, \"unique\", origin FROM pragma_index_list($1)")
                .bind(&name)
                .fetch_all(&pool)
                .await
                .expect("indexes");
        for (index, unique, origin) in indexes {
            if origin == "pk" {
                continue;
            }
            let columns: Vec<(String,)> =
                // An expression (migration 0017's rank) has no column name.
                sqlx::query_as(
                    "SELECT COALESCE(name, '<expr>') FROM pragma_index_info($1) ORDER BY seqno",
                )
                    .bind(&index)
                    .fetch_all(&pool)
                    .await
                    .expect("index columns");
            table
                .indexes
                .insert((unique != 0, columns.into_iter().map(|(c,)| c).collect()));
            if origin == "c" {
                table.named_indexes.insert(index);
            }
        }
        let keys: Vec<(i64, i64, String, String, String)> = sqlx::query_as(
            "SELECT id, seq, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list($1) \
             ORDER BY id, seq",
        )
        .bind(&name)
        .fetch_all(&pool)
        .await
        .expect("foreign keys");
        let mut grouped: BTreeMap<i64, (Vec<String>, String, Vec<String>)> = BTreeMap::new();
        for (id, _, target, from, to) in keys {
            let key = grouped
                .entry(id)
                .or_insert_with(|| (Vec::new(), target, Vec::new()));
            key.0.push(from);
            key.2.push(to);
        }
        table.foreign_keys = grouped.into_values().collect();
        schema.insert(name, table);
    }
    schema
}

async fn postgres_schema(url: &str) -> Schema {
    let db = Database::connect(url).await.expect("migrate PostgreSQL");
    let pool = db.pool().clone();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .expect("tables");
    let mut schema = Schema::new();
    for (name,) in tables {
        let mut table = Table::default();
        let columns: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text \
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 \
             ORDER BY ordinal_position",
        )
        .bind(&name)
        .fetch_all(&pool)
        .await
        .expect("columns");
        for (column, declared, nullable, default) in columns {
            table.columns.push((
                column,
                column_type(&declared),
                nullable == "NO",
                default_value(default),
            ));
        }
        // Constraints and indexes, with their columns in key order.
        let constraints: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
            "SELECT c.contype::text, \
             (SELECT string_agg(a.attname::text, ',' ORDER BY k.n) FROM unnest(c.conkey) \
              WITH ORDINALITY k(attnum, n) JOIN pg_attribute a \
              ON a.attrelid = c.conrelid AND a.attnum = k.attnum), \
             c.confrelid::regclass::text, \
             COALESCE((SELECT string_agg(a.attname::text, ',' ORDER BY k.n) \
              FROM unnest(c.confkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a \
              ON a.attrelid = c.confrelid AND a.attnum = k.attnum), '') \
             FROM pg_constraint c WHERE c.conrelid = $1::regclass",
        )
        .bind(&name)
        .fetch_all(&pool)
        .await
        .expect("constraints");
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        };
        for (kind, columns, target, target_columns) in constraints {
            match kind.as_str() {
                "p" => table.primary_key = split(&columns),
                "f" => {
                    table.foreign_keys.insert((
                        split(&columns),
                        target.unwrap_or_default(),
                        split(&target_columns),
                    ));
                }
                "c" => table.checks += 1,
                _ => {}
            }
        }
        let indexes: Vec<(String, bool, bool, String, bool)> = sqlx::query_as(
            "SELECT ic.relname::text, i.indisunique, i.indisprimary, \
             (SELECT string_agg(COALESCE(a.attname::text, '<expr>'), ',' ORDER BY k.n) \
              FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n) LEFT JOIN pg_attribute a \
              ON a.attrelid = i.indrelid AND a.attnum = k.attnum), \
             EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) \
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
             WHERE i.indrelid = $1::regclass",
        )
        .bind(&name)
        .fetch_all(&pool)
        .await
        .expect("indexes");
        for (index, unique, primary, columns, backs_constraint) in indexes {
            if primary {
                continue;
            }
            table.indexes.insert((unique, split(&columns)));
            if !backs_constraint {
                table.named_indexes.insert(index);
            }
        }
        schema.insert(name, table);
    }
    schema
}

#[test]
#[cfg_attr(not(telerad_postgres), ignore = "TELERAD_TEST_POSTGRES_URL is not set")]
fn sqlite_and_postgresql_migrations_build_the_same_schema() {
    let Backend::Postgres { admin_url } = Backend::required_postgres() else {
        unreachable!("required_postgres returns PostgreSQL or panics");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("a temp dir");
        let sqlite = sqlite_schema(&format!(
            "sqlite://{}",
            dir.path().join("schema.db").display()
        ))
        .await;
        let db = PgDatabase::create(&admin_url).await;
        let postgres = postgres_schema(&db.url).await;
        assert!(sqlite.len() >= 10, "tables found: {:?}", sqlite.keys());
        let names = |s: &Schema| s.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&sqlite), names(&postgres), "the same tables");
        for (name, table) in &sqlite {
            assert_eq!(Some(table), postgres.get(name), "table {name}");
        }
    });
}

#[test]
fn the_comparison_sees_a_difference() {
    // The normalisations above must not hide what matters.
    assert_ne!(column_type("TEXT"), column_type("BIGINT"));
    assert_eq!(column_type("BIGINT"), column_type("integer"));
    assert_eq!(
        check_constraints("checksum TEXT, v INT CHECK (v > 0), CHECK(a <> b)"),
        2
    );
    assert_eq!(
        default_value(Some("'receiving'::text".into())),
        default_value(Some("'receiving'".into()))
    );
    assert_ne!(
        default_value(Some("'pending'".into())),
        default_value(Some("'sent'".into()))
    );
}
