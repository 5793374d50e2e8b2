//! The outbox's SQL on every backend: one message per key at a time, in order, the
//! relay lease, consumed-message ids.

use orchestrator::domain::Timestamp;
use orchestrator::store::{outbox, StoreError};
use serde_json::json;

use crate::on_each_backend;

on_each_backend! {
    async fn a_key_sends_one_message_at_a_time_and_a_backing_off_one_holds_back_its_key_only(db: &TestDb) {
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        let a = outbox::push(&mut tx, "create-deployment", "k1", &json!({"n": 1})).await.unwrap();
        let b = outbox::push(&mut tx, "update-deployment", "k1", &json!({"n": 2})).await.unwrap();
        let c = outbox::push(&mut tx, "create-deployment", "k2", &json!({"n": 3})).await.unwrap();
        tx.commit().await.unwrap();

        let mut conn = store.conn().await.unwrap();
        let now = Timestamp::now();
        // One message per key: B, of the same deployment as A, waits for A.
        let due = outbox::pending(&mut conn, now, 10).await.unwrap();
        assert_eq!(due.iter().map(|m| m.id).collect::<Vec<_>>(), [a, c]);

        // A failed and backs off: B still waits behind it; C does not.
        let later = now.plus_micros(60_000_000);
        outbox::mark_failed(&mut conn, due[0].seq, "broker away", later).await.unwrap();
        let due = outbox::pending(&mut conn, Timestamp::now(), 10).await.unwrap();
        assert_eq!(due.iter().map(|m| m.id).collect::<Vec<_>>(), [c]);

        // Its time come, A goes first again, with its attempt counted; then B.
        let due = outbox::pending(&mut conn, later.plus_micros(1), 10).await.unwrap();
        assert_eq!(due.iter().map(|m| m.id).collect::<Vec<_>>(), [a, c]);
        assert_eq!(due[0].attempts, 1);
        outbox::mark_published(&mut conn, &[due[0].seq]).await.unwrap();
        outbox::delete(&mut conn, &[due[1].seq]).await.unwrap();
        let due = outbox::pending(&mut conn, later.plus_micros(1), 10).await.unwrap();
        assert_eq!(due.iter().map(|m| m.id).collect::<Vec<_>>(), [b]);
        outbox::mark_published(&mut conn, &[due[0].seq]).await.unwrap();
        assert_eq!(outbox::unpublished(&mut conn).await.unwrap(), 0);
        let (_, published) = outbox::get(&mut conn, a).await.unwrap().unwrap();
        assert!(published.is_some());
        assert!(outbox::get(&mut conn, c).await.unwrap().is_none());
        assert_eq!(outbox::prune(&mut conn, Timestamp::now().plus_micros(1)).await.unwrap(), 2);
    }

    async fn one_relay_holds_the_lease_until_it_lapses(db: &TestDb) {
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        let now = Timestamp::now();
        let until = now.plus_micros(1_000_000);
        assert!(outbox::take_lease(&mut conn, "outbox", "r1", now, until).await.unwrap());
        assert!(!outbox::take_lease(&mut conn, "outbox", "r2", now, until).await.unwrap());
        assert!(outbox::take_lease(&mut conn, "outbox", "r1", now, until).await.unwrap());
        let after = until.plus_micros(1);
        assert!(outbox::take_lease(&mut conn, "outbox", "r2", after, after.plus_micros(1_000_000)).await.unwrap());
        outbox::release_lease(&mut conn, "outbox", "r2").await.unwrap();
        assert!(outbox::take_lease(&mut conn, "outbox", "r1", after, after.plus_micros(1)).await.unwrap());
    }

    async fn a_consumed_message_id_is_recorded_once(db: &TestDb) {
        let store = db.store().await;
        let mut conn = store.conn().await.unwrap();
        assert!(!outbox::consumed(&mut conn, "m-1").await.unwrap());
        outbox::record_consumed(&mut conn, "m-1", "deployment-status").await.unwrap();
        assert!(outbox::consumed(&mut conn, "m-1").await.unwrap());
        let again = outbox::record_consumed(&mut conn, "m-1", "deployment-status").await;
        assert!(matches!(again, Err(StoreError::Duplicate(_))), "{again:?}");
        assert_eq!(outbox::prune_consumed(&mut conn, Timestamp::now().plus_micros(1)).await.unwrap(), 1);
        assert!(!outbox::consumed(&mut conn, "m-1").await.unwrap());
    }
}
