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
