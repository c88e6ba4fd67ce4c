//! Table tests of candidate selection.

use super::*;

fn ts() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000).expect("a valid instant")
}

fn duty(id: &str, role: Role, subspecialty: &str) -> Duty {
    Duty {
        radiologist_id: id.into(),
        role,
        subspecialty: subspecialty.into(),
        starts: ts(),
        ends: ts(),
        why: "test shift".into(),
        source: crate::rota::DutySource::Extra {
            period: String::new(),
            key: "test".into(),
        },
    }
}

fn reader(sites: &[&str], max: i64) -> Reader {
    Reader {
        name: "Dr Test".into(),
        sites: sites.iter().map(|s| (*s).to_string()).collect(),
        max_open_studies: max,
    }
}

fn classification(subspecialty: &str, priority: Priority) -> Classification {
    Classification {
        subspecialty: subspecialty.into(),
        priority,
        rule: "test".into(),
    }
}

struct Case {
    readers: HashMap<String, Reader>,
    loads: HashMap<String, Load>,
    exclude: HashSet<String>,
}

impl Case {
    fn new(readers: &[(&str, &[&str], i64)]) -> Case {
        Case {
            readers: readers
                .iter()
                .map(|(id, sites, max)| ((*id).to_string(), reader(sites, *max)))
                .collect(),
            loads: HashMap::new(),
            exclude: HashSet::new(),
        }
    }
    fn load(mut self, id: &str, open: i64, weighted: i64, stat_open: i64) -> Case {
        self.loads.insert(
            id.into(),
            Load {
                open,
                weighted,
                stat_open,
            },
        );
        self
    }
    fn choose(&self, c: &Classification, duties: &[Duty], site: &str) -> Decision {
        choose(
            c,
            duties,
            &Context {
                readers: &self.readers,
                site,
                loads: &self.loads,
                exclude: &self.exclude,
            },
        )
    }
}

#[test]
fn subspecialist_on_duty_and_licensed_is_chosen() {
    let case = Case::new(&[("neuro1", &["a"], 5), ("gen1", &["a"], 5)]);
    let duties = [
        duty("gen1", Role::Primary, "general"),
        duty("neuro1", Role::Primary, "neuro"),
    ];
    let d = case.choose(&classification("neuro", Priority::Stat), &duties, "a");
    assert_eq!(d.chosen.as_deref(), Some("neuro1"));
    assert_eq!(d.pool, "neuro on duty");
}

#[test]
fn licence_limit_and_exclusion_make_ineligible_with_a_reason() {
    let mut case = Case::new(&[
        ("n1", &["b"], 5),
        ("n2", &["a"], 2),
        ("n3", &["a"], 5),
        ("n4", &["a"], 5),
    ])
    .load("n2", 2, 2, 0);
    case.exclude.insert("n3".into());
    let duties = [
        duty("n1", Role::Primary, "neuro"),
        duty("n2", Role::Primary, "neuro"),
        duty("n3", Role::Primary, "neuro"),
        duty("n4", Role::Backup, "neuro"),
    ];
    let d = case.choose(&classification("neuro", Priority::Urgent), &duties, "a");
    assert_eq!(
        d.chosen.as_deref(),
        Some("n4"),
        "only the backup is eligible"
    );
    let reason = |id: &str| {
        d.considered
            .iter()
            .find(|c| c.radiologist_id == id)
            .map(|c| c.reason.clone())
            .unwrap_or_default()
    };
    assert!(reason("n1").contains("not licensed for site a"));
    assert!(reason("n2").contains("limit of 2"));
    assert!(reason("n3").contains("did not acknowledge"));
}

#[test]
fn primary_before_backup_then_least_loaded() {
    let case = Case::new(&[("p1", &["a"], 9), ("p2", &["a"], 9), ("b1", &["a"], 9)])
        .load("p1", 3, 5, 0)
        .load("p2", 2, 4, 1);
    let duties = [
        duty("b1", Role::Backup, "body"),
        duty("p1", Role::Primary, "body"),
        duty("p2", Role::Primary, "body"),
    ];
    let d = case.choose(&classification("body", Priority::Routine), &duties, "a");
    assert_eq!(
        d.chosen.as_deref(),
        Some("p2"),
        "least weighted load among primaries"
    );
    // A STAT goes to the one with the least STAT work.
    let d = case.choose(&classification("body", Priority::Stat), &duties, "a");
    assert_eq!(d.chosen.as_deref(), Some("p1"));
}

#[test]
fn falls_back_to_general_then_nobody() {
    let case = Case::new(&[("g1", &["a"], 5), ("c1", &["b"], 5)]);
    let duties = [
        duty("g1", Role::Primary, "general"),
        duty("c1", Role::Primary, "chest"),
    ];
    let d = case.choose(&classification("chest", Priority::Urgent), &duties, "a");
    assert_eq!(d.chosen.as_deref(), Some("g1"));
    assert!(
        d.pool.contains("no chest radiologist available"),
        "{}",
        d.pool
    );

    let d = case.choose(&classification("chest", Priority::Urgent), &[], "a");
    assert_eq!(d.chosen, None);
    assert_eq!(d.pool, "nobody");
    assert!(
        d.why.contains("no chest or general radiologist"),
        "{}",
        d.why
    );

    // A general study: general is named once.
    let d = case.choose(&classification("general", Priority::Routine), &[], "a");
    assert_eq!(d.chosen, None);
    assert!(
        d.why
            .contains("; no general radiologist on duty can take a study from a"),
        "{}",
        d.why
    );
    assert!(!d.why.contains("general or general"), "{}", d.why);
}

#[test]
fn escalation_chain_skips_tried_and_unlicensed() {
    let mut case = Case::new(&[
        ("chef", &["a"], 1),
        ("other", &["b"], 9),
        ("third", &["a"], 9),
    ]);
    let chain = ["other".to_string(), "chef".to_string(), "third".to_string()];
    let ctx = |case: &Case| -> Option<String> {
        next_in_chain(
            &chain,
            &Context {
                readers: &case.readers,
                site: "a",
                loads: &case.loads,
                exclude: &case.exclude,
            },
        )
        .map(str::to_string)
    };
    assert_eq!(ctx(&case).as_deref(), Some("chef"));
    case.exclude.insert("chef".into());
    assert_eq!(ctx(&case).as_deref(), Some("third"));
    case.exclude.insert("third".into());
    assert_eq!(ctx(&case), None);
}
