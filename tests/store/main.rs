//! The store test suite: the same cases on SQLite, PostgreSQL and MySQL/MariaDB, each
//! on a fresh database, so one set of queries is proven on all three.

#[path = "../common/mod.rs"]
mod common;

use orchestrator::domain::list::ListQuery;
use orchestrator::domain::{Template, Timestamp, User};
use orchestrator::store::{templates, users, StoreError};
use uuid::Uuid;

fn user(n: u32) -> User {
    let now = Timestamp::now();
    User {
        id: Uuid::new_v4(),
        sub: format!("sub-{n}"),
        issuer: "https://iam.example.org/".into(),
        name: format!("User {n}"),
        username: format!("user{n}"),
        email: format!("user{n}@example.org"),
        picture: None,
        public_ssh_key: None,
        refresh_token: None,
        created_at: now,
        updated_at: now,
    }
}

fn template(owner: Uuid, name: &str, content: String) -> Template {
    let now = Timestamp::now();
    Template {
        id: Uuid::new_v4(),
        name: name.into(),
        version: Some("1.0.0".into()),
        target_provider_type: Some("openstack".into()),
        tosca_definition_version: "tosca_simple_yaml_1_0".into(),
        checksum: format!(
            "{:x}",
            <sha2::Sha256 as sha2::Digest>::digest(content.as_bytes())
        ),
        content,
        created_at: now,
        created_by: owner,
        updated_at: now,
        updated_by: owner,
    }
}

fn query(
    spec: &'static orchestrator::domain::list::ListSpec,
    pairs: &[(&str, &str)],
    me: Option<&str>,
) -> ListQuery {
    let pairs: Vec<_> = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    ListQuery::parse(&pairs, spec, me).expect("valid query")
}

on_each_backend! {
    async fn a_user_round_trips_and_is_found_by_identity(db: &TestDb) {
        let store = db.store().await;
        let mut alice = user(1);
        alice.public_ssh_key = Some("ssh-ed25519 AAAA alice".into());
        let mut tx = store.begin().await.unwrap();
        users::insert(&mut tx, &alice).await.unwrap();
        tx.commit().await.unwrap();

        let mut conn = store.conn().await.unwrap();
        assert_eq!(users::get(&mut conn, alice.id).await.unwrap(), Some(alice.clone()));
        let found = users::find_by_identity(&mut conn, "sub-1", "https://iam.example.org/").await.unwrap();
        assert_eq!(found.map(|u| u.id), Some(alice.id));
        assert!(users::find_by_identity(&mut conn, "sub-1", "https://other.example/").await.unwrap().is_none());
    }

    async fn the_same_subject_at_the_same_issuer_is_a_duplicate(db: &TestDb) {
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        users::insert(&mut tx, &user(1)).await.unwrap();
        let err = users::insert(&mut tx, &user(1)).await.unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    }

    async fn an_uncommitted_transaction_leaves_nothing(db: &TestDb) {
        let store = db.store().await;
        let alice = user(1);
        {
            let mut tx = store.begin().await.unwrap();
            users::insert(&mut tx, &alice).await.unwrap();
        }
        let mut conn = store.conn().await.unwrap();
        assert!(users::get(&mut conn, alice.id).await.unwrap().is_none());
    }

    async fn templates_of_several_megabytes_are_stored_verbatim(db: &TestDb) {
        let store = db.store().await;
        let owner = user(1);
        let big = format!("tosca_definitions_version: tosca_simple_yaml_1_0\n# {}\ndescription: \"àèì ✓\"\n", "x".repeat(6 * 1024 * 1024));
        let t = template(owner.id, "big", big.clone());
        let mut tx = store.begin().await.unwrap();
        users::insert(&mut tx, &owner).await.unwrap();
        templates::insert(&mut tx, &t).await.unwrap();
        tx.commit().await.unwrap();
        let mut conn = store.conn().await.unwrap();
        let back = templates::get(&mut conn, t.id).await.unwrap().unwrap();
        assert_eq!(back.content.len(), big.len());
        assert_eq!(back, t);
    }

    async fn a_template_checksum_is_unique(db: &TestDb) {
        let store = db.store().await;
        let owner = user(1);
        let mut tx = store.begin().await.unwrap();
        users::insert(&mut tx, &owner).await.unwrap();
        templates::insert(&mut tx, &template(owner.id, "a", "same".into())).await.unwrap();
        let err = templates::insert(&mut tx, &template(owner.id, "b", "same".into())).await.unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    }

    async fn a_template_must_name_an_existing_creator(db: &TestDb) {
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        let err = templates::insert(&mut tx, &template(Uuid::new_v4(), "a", "x".into())).await.unwrap_err();
        assert!(matches!(err, StoreError::ForeignKey(_)), "{err:?}");
    }

    async fn a_user_who_created_a_template_is_referenced(db: &TestDb) {
        let store = db.store().await;
        let (alice, bob) = (user(1), user(2));
        let mut tx = store.begin().await.unwrap();
        users::insert(&mut tx, &alice).await.unwrap();
        users::insert(&mut tx, &bob).await.unwrap();
        templates::insert(&mut tx, &template(alice.id, "a", "x".into())).await.unwrap();
        assert!(users::is_referenced(&mut tx, alice.id).await.unwrap());
        assert!(!users::is_referenced(&mut tx, bob.id).await.unwrap());
        assert!(users::delete(&mut tx, bob.id).await.unwrap());
        assert!(!users::delete(&mut tx, bob.id).await.unwrap());
    }

    async fn lists_filter_sort_and_page_the_same_everywhere(db: &TestDb) {
        let store = db.store().await;
        let owner = user(1);
        let mut tx = store.begin().await.unwrap();
        users::insert(&mut tx, &owner).await.unwrap();
        for (i, name) in ["Alpha VM", "beta_vm", "Gamma cluster", "100% vm", "delta"].iter().enumerate() {
            let mut t = template(owner.id, name, format!("content {i}"));
            t.created_at = Timestamp::from_micros(1_700_000_000_000_000 + i as i64 * 1_000_000);
            templates::insert(&mut tx, &t).await.unwrap();
        }
        tx.commit().await.unwrap();
        let mut conn = store.conn().await.unwrap();

        let names = |items: Vec<Template>| items.into_iter().map(|t| t.name).collect::<Vec<_>>();
        let (items, total) = templates::list(&mut conn, &query(&templates::LIST, &[("name", "VM"), ("sort", "name")], None)).await.unwrap();
        assert_eq!((names(items), total), (vec!["100% vm".to_string(), "Alpha VM".into(), "beta_vm".into()], 3));

        // Wildcards in the filter are literal characters.
        let (items, _) = templates::list(&mut conn, &query(&templates::LIST, &[("name", "0%")], None)).await.unwrap();
        assert_eq!(names(items), ["100% vm"]);
        let (items, _) = templates::list(&mut conn, &query(&templates::LIST, &[("name", "a_v")], None)).await.unwrap();
        assert_eq!(names(items), ["beta_vm"]);

        let (items, total) = templates::list(&mut conn, &query(&templates::LIST, &[("size", "2"), ("page", "2")], None)).await.unwrap();
        assert_eq!((names(items), total), (vec!["Gamma cluster".to_string(), "beta_vm".into()], 5));

        let (items, total) = templates::list(
            &mut conn,
            &query(&templates::LIST, &[("created_after", "2023-11-14T22:13:21Z"), ("created_before", "2023-11-14T22:13:22Z"), ("sort", "created_at")], None),
        ).await.unwrap();
        assert_eq!((names(items), total), (vec!["beta_vm".to_string(), "Gamma cluster".into()], 2));

        let me = owner.id.to_string();
        let (_, total) = templates::list(&mut conn, &query(&templates::LIST, &[("created_by", "me")], Some(&me))).await.unwrap();
        assert_eq!(total, 5);
        let (_, total) = templates::list(&mut conn, &query(&templates::LIST, &[("created_by", &Uuid::new_v4().to_string())], None)).await.unwrap();
        assert_eq!(total, 0);
    }
}

mod deployments_and_jobs {
    use super::*;
    use crate::common::DbKind;
    use orchestrator::domain::{Deployment, DeploymentStatus, Job, JobKind, JobState, Task};
    use orchestrator::store::{callbacks, deployments, jobs, outbox, Store};
    use serde_json::json;

    pub async fn seed(store: &Store) -> (User, Template) {
        let owner = user(1);
        let t = template(owner.id, "t", format!("c-{}", Uuid::new_v4()));
        let mut tx = store.begin().await.unwrap();
        users::insert(&mut tx, &owner).await.unwrap();
        templates::insert(&mut tx, &t).await.unwrap();
        tx.commit().await.unwrap();
        (owner, t)
    }

    pub fn deployment(owner: Uuid, template: Uuid, status: DeploymentStatus) -> Deployment {
        let now = Timestamp::now();
        Deployment {
            id: Uuid::new_v4(),
            template_id: template,
            template_inputs: json!({"cpus": 2}).as_object().unwrap().clone(),
            template_outputs: Default::default(),
            user_group: "beta-testers".into(),
            per_provider_max_retries: 3,
            max_providers: None,
            tot_timeout_mins: 60,
            per_provider_timeout_mins: 30,
            keep_last_attempt: false,
            target_provider: None,
            target_region: None,
            target_iaas_project: None,
            im_infra_id: None,
            status,
            status_reason: None,
            task: Task::Submitted,
            callback: None,
            version: 1,
            created_at: now,
            created_by: owner,
            updated_at: now,
            updated_by: owner,
            owned_by: vec![owner],
        }
    }

    on_each_backend! {
        async fn deployments_round_trip_and_filter_by_owner_and_status(db: &TestDb) {
            let store = db.store().await;
            let (owner, t) = seed(&store).await;
            let other = user(2);
            let mut tx = store.begin().await.unwrap();
            users::insert(&mut tx, &other).await.unwrap();
            let a = deployment(owner.id, t.id, DeploymentStatus::CreateComplete);
            let b = deployment(owner.id, t.id, DeploymentStatus::CreateFailed);
            let mut c = deployment(other.id, t.id, DeploymentStatus::CreateComplete);
            c.created_by = other.id;
            c.updated_by = other.id;
            c.owned_by = vec![other.id];
            for d in [&a, &b, &c] {
                deployments::insert(&mut tx, d).await.unwrap();
            }
            assert!(deployments::add_owner(&mut tx, c.id, owner.id).await.unwrap());
            assert!(!deployments::add_owner(&mut tx, c.id, owner.id).await.unwrap());
            tx.commit().await.unwrap();

            let mut conn = store.conn().await.unwrap();
            assert_eq!(deployments::get(&mut conn, a.id).await.unwrap().unwrap(), a);
            let me = owner.id.to_string();
            let (items, total) = deployments::list(&mut conn, &query(&deployments::LIST, &[("owned_by", "me"), ("status", "0")], Some(&me))).await.unwrap();
            assert_eq!(total, 2);
            assert!(items.iter().all(|d| d.status == DeploymentStatus::CreateComplete));
            assert_eq!(items.iter().find(|d| d.id == c.id).unwrap().owned_by, vec![other.id, owner.id]);
            let other_id = other.id.to_string();
            let (_, total) = deployments::list(&mut conn, &query(&deployments::LIST, &[("owned_by", &other_id)], None)).await.unwrap();
            assert_eq!(total, 1);
            let (_, total) = deployments::list(&mut conn, &query(&deployments::LIST, &[("status", "CREATE_FAILED,CREATE_COMPLETE"), ("keep_last_attempt", "false")], None)).await.unwrap();
            assert_eq!(total, 3);
        }

        async fn log_lines_and_im_logs_of_several_megabytes_are_stored_verbatim(db: &TestDb) {
            use orchestrator::store::logs;
            let store = db.store().await;
            let (owner, t) = seed(&store).await;
            let d = deployment(owner.id, t.id, DeploymentStatus::CreateInProgress);
            let line = format!("ansible output àèì ✓\n{}\n\tend", "y".repeat(5 * 1024 * 1024));
            let im = format!("contextualisation ✓\r\n{}\n'quoted' \"too\"", "z".repeat(6 * 1024 * 1024));
            let mut tx = store.begin().await.unwrap();
            deployments::insert(&mut tx, &d).await.unwrap();
            logs::append(&mut tx, d.id, "engine", "before").await.unwrap();
            logs::append(&mut tx, d.id, "im", &line).await.unwrap();
            deployments::set_im_logs(&mut tx, d.id, Some(&im)).await.unwrap();
            tx.commit().await.unwrap();

            let mut conn = store.conn().await.unwrap();
            let back = logs::lines(&mut conn, d.id).await.unwrap();
            let big = back.iter().find(|l| l.source == "im").expect("the big line");
            assert_eq!(big.message.len(), line.len());
            assert!(big.message == line, "the log line changed on the way");
            let back = deployments::im_logs(&mut conn, d.id).await.unwrap().expect("im_logs");
            assert_eq!(back.len(), im.len());
            assert!(back == im, "im_logs changed on the way");
        }

        async fn the_owner_copies_follow_status_and_owner_changes(db: &TestDb) {
            let store = db.store().await;
            let (owner, t) = seed(&store).await;
            let (bob, carol) = (user(2), user(3));
            let d = deployment(owner.id, t.id, DeploymentStatus::CreateInProgress);
            let mut tx = store.begin().await.unwrap();
            users::insert(&mut tx, &bob).await.unwrap();
            users::insert(&mut tx, &carol).await.unwrap();
            deployments::insert(&mut tx, &d).await.unwrap();
            assert!(deployments::add_owner(&mut tx, d.id, bob.id).await.unwrap());
            assert!(deployments::add_owner(&mut tx, d.id, carol.id).await.unwrap());
            assert!(deployments::remove_owner(&mut tx, d.id, owner.id).await.unwrap());
            assert!(!deployments::remove_owner(&mut tx, d.id, owner.id).await.unwrap());
            assert!(!deployments::add_owner(&mut tx, Uuid::new_v4(), bob.id).await.unwrap());
            let mut changed = deployments::get(&mut tx, d.id).await.unwrap().unwrap();
            assert_eq!(changed.owned_by, [bob.id, carol.id]);
            changed.status = DeploymentStatus::CreateComplete;
            assert!(deployments::update(&mut tx, &changed).await.unwrap());
            tx.commit().await.unwrap();

            let mut conn = store.conn().await.unwrap();
            let locked = deployments::get_for_update(&mut conn, d.id).await.unwrap().unwrap();
            assert_eq!(locked.owned_by, [bob.id, carol.id]);
            let bob_id = bob.id.to_string();
            let by_bob = |pairs: &[(&str, &str)]| {
                let mut pairs = pairs.to_vec();
                pairs.push(("owned_by", "me"));
                query(&deployments::LIST, &pairs, Some(&bob_id))
            };
            let (items, total) = deployments::list(&mut conn, &by_bob(&[("status", "CREATE_COMPLETE")])).await.unwrap();
            assert_eq!((total, items[0].id, items[0].owned_by.clone()), (1, d.id, vec![bob.id, carol.id]));
            let (_, total) = deployments::list(&mut conn, &by_bob(&[("status", "CREATE_IN_PROGRESS")])).await.unwrap();
            assert_eq!(total, 0);
            let (_, total) = deployments::list(&mut conn, &by_bob(&[("status", "0"), ("user_group", "beta"), ("sort", "user_group")])).await.unwrap();
            assert_eq!(total, 1);
            let (_, total) = deployments::list(&mut conn, &by_bob(&[("created_before", "2000-01-01")])).await.unwrap();
            assert_eq!(total, 0);
            let owner_id = owner.id.to_string();
            let (_, total) = deployments::list(&mut conn, &query(&deployments::LIST, &[("owned_by", &owner_id)], None)).await.unwrap();
            assert_eq!(total, 0);
            // Several owners at once (admins) list each deployment once.
            let both = format!("{bob_id},{}", carol.id);
            let (items, total) = deployments::list(&mut conn, &query(&deployments::LIST, &[("owned_by", &both)], None)).await.unwrap();
            assert_eq!((total, items.len()), (1, 1));
        }

        async fn migration_0005_fills_the_copies_of_existing_rows(db: &TestDb) {
            use sqlx::{Connection, Executor};
            sqlx::any::install_default_drivers();
            let (dir, url) = match db.kind {
                DbKind::Sqlite => ("sqlite", format!("{}?mode=rwc", db.url)),
                DbKind::Postgres => ("postgres", db.url.clone()),
                DbKind::MySql => ("mysql", db.url.clone()),
            };
            let path = format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
            let mut before = sqlx::migrate::Migrator::new(std::path::Path::new(&path)).await.unwrap();
            before.migrations = before.migrations.iter().filter(|m| m.version < 5).cloned().collect::<Vec<_>>().into();
            let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
            if db.kind == DbKind::MySql {
                conn.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,ANSI_QUOTES'").await.unwrap();
            }
            before.run_direct(&mut conn).await.unwrap();

            let (alice, bob, t, d) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string(), Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
            let statements: Vec<(&str, Vec<String>)> = vec![
                ("INSERT INTO users (id, sub, issuer, name, username, email, created_at, updated_at) VALUES (?, ?, 'i', 'n', 'u', 'e', 0, 0)", vec![alice.clone(), "a".into()]),
                ("INSERT INTO users (id, sub, issuer, name, username, email, created_at, updated_at) VALUES (?, ?, 'i', 'n', 'u', 'e', 0, 0)", vec![bob.clone(), "b".into()]),
                ("INSERT INTO templates (id, name, tosca_definition_version, content, checksum, created_at, created_by, updated_at, updated_by) \
                  VALUES (?, 't', 'tosca_simple_yaml_1_0', 'c', 'x', 0, ?, 0, ?)", vec![t.clone(), alice.clone(), alice.clone()]),
                ("INSERT INTO deployments (id, template_id, template_inputs, template_outputs, user_group, per_provider_max_retries, \
                  tot_timeout_mins, per_provider_timeout_mins, keep_last_attempt, status, task, version, created_at, created_by, updated_at, updated_by) \
                  VALUES (?, ?, '{}', '{}', 'g', 3, 60, 30, 0, 8, 6, 4, 1700000000000000, ?, 0, ?)", vec![d.clone(), t.clone(), alice.clone(), alice.clone()]),
                ("INSERT INTO deployment_owners (deployment_id, user_id, created_at) VALUES (?, ?, 2)", vec![d.clone(), bob.clone()]),
                ("INSERT INTO deployment_owners (deployment_id, user_id, created_at) VALUES (?, ?, 1)", vec![d.clone(), alice.clone()]),
            ];
            for (statement, binds) in statements {
                let q = orchestrator::store::sql(&conn, statement);
                let mut query = sqlx::query(&q);
                for b in binds {
                    query = query.bind(b);
                }
                query.execute(&mut conn).await.unwrap();
            }
            let _ = conn.close().await;

            let store = db.store().await;
            let mut conn = store.conn().await.unwrap();
            let stored = deployments::get(&mut conn, d.parse().unwrap()).await.unwrap().unwrap();
            assert_eq!(stored.owned_by, [alice.parse::<Uuid>().unwrap(), bob.parse().unwrap()]);
            let (items, total) = deployments::list(&mut conn, &query(&deployments::LIST, &[("owned_by", &bob), ("status", "UPDATE_FAILED"), ("created_after", "2023-11-14")], None)).await.unwrap();
            assert_eq!((total, items[0].id.to_string()), (1, d));
        }

        async fn a_stale_version_does_not_overwrite_a_deployment(db: &TestDb) {
            let store = db.store().await;
            let (owner, t) = seed(&store).await;
            let d = deployment(owner.id, t.id, DeploymentStatus::CreateComplete);
            let mut tx = store.begin().await.unwrap();
            deployments::insert(&mut tx, &d).await.unwrap();
            let mut first = d.clone();
            first.status = DeploymentStatus::DeleteInProgress;
            assert!(deployments::update(&mut tx, &first).await.unwrap());
            let mut second = d.clone();
            second.status = DeploymentStatus::UpdateInProgress;
            assert!(!deployments::update(&mut tx, &second).await.unwrap());
            let stored = deployments::get(&mut tx, d.id).await.unwrap().unwrap();
            assert_eq!((stored.status, stored.version), (DeploymentStatus::DeleteInProgress, 2));
        }

        async fn a_job_is_claimed_once_and_resumed_after_its_lease_expires(db: &TestDb) {
            let store = db.store().await;
            let (owner, t) = seed(&store).await;
            let d = deployment(owner.id, t.id, DeploymentStatus::CreateInProgress);
            let job = Job::new(d.id, JobKind::Create, json!({}));
            let mut tx = store.begin().await.unwrap();
            deployments::insert(&mut tx, &d).await.unwrap();
            jobs::enqueue(&mut tx, &job).await.unwrap();
            tx.commit().await.unwrap();

            let now = Timestamp::now();
            let claim = |token: &'static str, at: Timestamp| {
                let store = store.clone();
                async move {
                    let mut tx = store.begin().await.unwrap();
                    let got = jobs::claim(&mut tx, token, at, 30_000_000).await.unwrap();
                    tx.commit().await.unwrap();
                    got
                }
            };
            let first = claim("worker-a", now).await.expect("claimed");
            assert_eq!((first.id, first.state, first.attempts), (job.id, JobState::Running, 1));
            assert!(claim("worker-b", now).await.is_none(), "a leased job is not claimed twice");
            // The lease expires: another worker resumes the job.
            let later = now.plus_micros(31_000_000);
            let resumed = claim("worker-b", later).await.expect("resumed");
            assert_eq!(resumed.lease_owner.as_deref(), Some("worker-b"));
            let mut conn = store.conn().await.unwrap();
            assert!(!jobs::release(&mut conn, job.id, "worker-a", &json!({"step": 1}), &jobs::StepEnd::Done).await.unwrap());
            assert!(jobs::release(&mut conn, job.id, "worker-b", &json!({"step": 2}), &jobs::StepEnd::Again(later)).await.unwrap());
            let stored = jobs::get(&mut conn, job.id).await.unwrap().unwrap();
            assert_eq!((stored.state, stored.progress.clone()), (JobState::Pending, json!({"step": 2})));
        }

        async fn a_cancelled_job_keeps_its_lease_until_the_step_ends(db: &TestDb) {
            let store = db.store().await;
            let (owner, t) = seed(&store).await;
            let d = deployment(owner.id, t.id, DeploymentStatus::CreateInProgress);
            let create = Job::new(d.id, JobKind::Create, json!({}));
            let mut tx = store.begin().await.unwrap();
            deployments::insert(&mut tx, &d).await.unwrap();
            jobs::enqueue(&mut tx, &create).await.unwrap();
            tx.commit().await.unwrap();
            let now = Timestamp::now();
            let mut tx = store.begin().await.unwrap();
            jobs::claim(&mut tx, "w1", now, 30_000_000).await.unwrap().unwrap();
            tx.commit().await.unwrap();

            // The API cancels the create and queues a delete in one transaction.
            let delete = Job::new(d.id, JobKind::Delete, json!({}));
            let mut tx = store.begin().await.unwrap();
            assert_eq!(jobs::cancel_active(&mut tx, d.id, "deleted by the owner").await.unwrap(), 1);
            jobs::enqueue(&mut tx, &delete).await.unwrap();
            tx.commit().await.unwrap();

            let mut tx = store.begin().await.unwrap();
            assert!(jobs::claim(&mut tx, "w2", Timestamp::now(), 30_000_000).await.unwrap().is_none(), "waits for the step in flight");
            tx.commit().await.unwrap();
            let mut conn = store.conn().await.unwrap();
            assert!(!jobs::still_held(&mut conn, create.id, "w1").await.unwrap());
            assert!(!jobs::release(&mut conn, create.id, "w1", &json!({"im_infra_id": "inf-1"}), &jobs::StepEnd::Done).await.unwrap());
            let stored = jobs::get(&mut conn, create.id).await.unwrap().unwrap();
            assert_eq!((stored.state, stored.progress), (JobState::Cancelled, json!({"im_infra_id": "inf-1"})));
            drop(conn);
            let mut tx = store.begin().await.unwrap();
            let next = jobs::claim(&mut tx, "w2", Timestamp::now(), 30_000_000).await.unwrap().expect("the delete runs now");
            assert_eq!(next.kind, JobKind::Delete);
        }

        async fn legacy_callbacks_are_scheduled_claimed_once_and_recorded(db: &TestDb) {
            let store = db.store().await;
            let (owner, t) = seed(&store).await;
            let mut with = deployment(owner.id, t.id, DeploymentStatus::CreateComplete);
            with.callback = Some("http://127.0.0.1:9/hook".into());
            let without = deployment(owner.id, t.id, DeploymentStatus::CreateComplete);
            let mut running = deployment(owner.id, t.id, DeploymentStatus::CreateInProgress);
            running.callback = Some("http://127.0.0.1:9/hook".into());
            let mut tx = store.begin().await.unwrap();
            for d in [&with, &without, &running] {
                deployments::insert(&mut tx, d).await.unwrap();
            }
            tx.commit().await.unwrap();
            let finals = [DeploymentStatus::CreateComplete.code(), DeploymentStatus::CreateFailed.code()];

            let mut conn = store.conn().await.unwrap();
            let found = callbacks::unannounced(&mut conn, &finals, 10).await.unwrap();
            assert_eq!(found, vec![(with.id, 1, DeploymentStatus::CreateComplete.code())]);
            let now = Timestamp::now();
            callbacks::schedule(&mut conn, with.id, 1, found[0].2, now).await.unwrap();
            assert!(callbacks::unannounced(&mut conn, &finals, 10).await.unwrap().is_empty(), "this version is scheduled");

            let due = callbacks::due(&mut conn, now, 10).await.unwrap();
            assert_eq!(due.len(), 1);
            assert_eq!((due[0].deployment_id, due[0].version, due[0].attempts), (with.id, 1, 0));
            assert!(callbacks::claim(&mut conn, &due[0], now.plus_minutes(1)).await.unwrap());
            assert!(!callbacks::claim(&mut conn, &due[0], now.plus_minutes(1)).await.unwrap(), "claimed once");
            assert!(callbacks::due(&mut conn, now, 10).await.unwrap().is_empty(), "leased");

            let claimed = callbacks::due(&mut conn, now.plus_minutes(2), 10).await.unwrap();
            assert_eq!(claimed.len(), 1);
            callbacks::record(&mut conn, &claimed[0], Some("connection refused"), false, now).await.unwrap();
            assert_eq!(
                callbacks::state_of(&mut conn, with.id).await.unwrap(),
                Some((1, 1, false, Some("connection refused".into())))
            );
            let again = callbacks::due(&mut conn, now, 10).await.unwrap();
            callbacks::record(&mut conn, &again[0], None, true, now).await.unwrap();
            assert_eq!(callbacks::state_of(&mut conn, with.id).await.unwrap().map(|s| (s.1, s.2)), Some((1, true)));
            assert!(callbacks::due(&mut conn, now.plus_minutes(10), 10).await.unwrap().is_empty());
            assert_eq!(callbacks::state_of(&mut conn, without.id).await.unwrap(), None);
        }

        async fn the_outbox_hands_out_messages_in_order_until_published(db: &TestDb) {
            let store = db.store().await;
            let mut tx = store.begin().await.unwrap();
            let first = outbox::push(&mut tx, "create-deployment", "d1", &json!({"n": 1})).await.unwrap();
            outbox::push(&mut tx, "delete-deployment", "d1", &json!({"n": 2})).await.unwrap();
            tx.commit().await.unwrap();
            let mut tx = store.begin().await.unwrap();
            outbox::push(&mut tx, "create-deployment", "d2", &json!({"n": 3})).await.unwrap();
            tx.commit().await.unwrap();
            let mut conn = store.conn().await.unwrap();
            // One message per key: d1's second waits for its first.
            let pending = outbox::pending(&mut conn, Timestamp::now(), 10).await.unwrap();
            let payloads: Vec<_> = pending.iter().map(|m| m.payload.clone()).collect();
            assert_eq!(payloads, [json!({"n": 1}), json!({"n": 3})]);
            assert_eq!(pending[0].id, first);
            // A failed first message holds back the rest of its key while it backs off.
            outbox::mark_failed(&mut conn, pending[0].seq, "broker away", Timestamp::now().plus_minutes(1)).await.unwrap();
            outbox::mark_published(&mut conn, &[pending[1].seq]).await.unwrap();
            assert!(outbox::pending(&mut conn, Timestamp::now(), 10).await.unwrap().is_empty());
            let retried = outbox::pending(&mut conn, Timestamp::now().plus_minutes(2), 10).await.unwrap();
            assert_eq!(retried.iter().map(|m| m.id).collect::<Vec<_>>(), [first]);
            outbox::mark_published(&mut conn, &[retried[0].seq]).await.unwrap();
            let next = outbox::pending(&mut conn, Timestamp::now(), 10).await.unwrap();
            assert_eq!(next.iter().map(|m| m.payload.clone()).collect::<Vec<_>>(), [json!({"n": 2})]);
            outbox::mark_published(&mut conn, &[next[0].seq]).await.unwrap();
        }
    }
}
