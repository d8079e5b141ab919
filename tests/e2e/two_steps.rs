//! The workload of the bridge tests (`bridge.rs`, `bridge_worker.rs`): workflows of two
//! worker steps of + 1 on `<app>.work`, whose job maps count each step's applications (`na`,
//! `nb`: `(na ?? 0) + 1`, written in the transaction that applies the step), and the checks
//! that every run ended once, right, with each step applied once.

use hotmesh_client::{HotMesh, PubOptions};
use hotmesh_tests::scalar;
use serde_json::json;
use std::time::{Duration, Instant};

/// One app's runs in one database; job `job-<i>` starts with n = i and ends with n = i + 2.
pub struct Runs {
    pub db: &'static str,
    pub app: &'static str,
}

impl Runs {
    /// The graph `<app>.start` (publishes `<app>.done`), as an item of a YAML `graphs:` list.
    pub fn graph(&self) -> String {
        let app = self.app;
        format!(
            r#"
    - subscribes: {app}.start
      publishes: {app}.done
      expire: 300
      activities:
        t: {{ type: trigger }}
        a: {{ type: worker, topic: {app}.work, input: {{ maps: {{ n: '{{t.output.data.n}}' }} }}, job: {{ maps: {{ na: {{ '@pipe': [['{{$job.data.na}}', 0], ['{{@conditional.nullish}}', 1], ['{{@math.add}}']] }} }} }} }}
        b: {{ type: worker, topic: {app}.work, input: {{ maps: {{ n: '{{a.output.data.n}}' }} }}, job: {{ maps: {{ n: '{{$self.output.data.n}}', nb: {{ '@pipe': [['{{$job.data.nb}}', 0], ['{{@conditional.nullish}}', 1], ['{{@math.add}}']] }} }} }} }}
      transitions:
        t: [ {{ to: a }} ]
        a: [ {{ to: b }} ]"#
        )
    }

    /// Starts workflows `job-first` .. `job-(first + n - 1)`.
    pub async fn publish_all(&self, hm: &HotMesh, first: i64, n: i64) {
        for i in first..first + n {
            hm.publish(
                &format!("{}.start", self.app),
                json!({"n": i}),
                PubOptions::new().id(format!("job-{i}")),
            )
            .await
            .unwrap();
        }
    }

    /// Starts `n` workflows and waits until all ended; returns how long that took.
    pub async fn run_all(&self, hm: &HotMesh, first: i64, n: i64, within: Duration) -> Duration {
        let started = Instant::now();
        self.publish_all(hm, first, n).await;
        self.wait_all(first, n, within).await - started
    }

    fn range(&self, first: i64, n: i64) -> String {
        format!(
            "app_id = '{}' AND substr(id, 5)::int8 BETWEEN {first} AND {}",
            self.app,
            first + n - 1
        )
    }

    /// How many of the run's jobs have not ended.
    pub async fn open_jobs(&self, first: i64, n: i64) -> i64 {
        let done: i64 = scalar(
            self.db,
            &format!(
                "SELECT count(*) FROM hotmesh.jobs WHERE {} AND completed_at IS NOT NULL",
                self.range(first, n)
            ),
        )
        .await;
        n - done
    }

    /// Waits until every job of the run ended; returns when that was seen.
    pub async fn wait_all(&self, first: i64, n: i64, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        loop {
            let open = self.open_jobs(first, n).await;
            if open == 0 {
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "{} of {n} ended", n - open);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every job of the run ended once, with n + 2 and no error; each step applied once
    /// (its counter is 1, and the job has one activity row per activity: no second
    /// dimension); nothing left on PostgreSQL's stream. A callback may run twice (at least
    /// once); a step may not be applied twice.
    pub async fn check(&self, first: i64, n: i64) {
        let range = self.range(first, n);
        let wrong: i64 = scalar(
            self.db,
            &format!(
                "SELECT count(*) FROM hotmesh.jobs WHERE {range}
                   AND (error IS NOT NULL OR (data ->> 'n')::int8 <> substr(id, 5)::int8 + 2)"
            ),
        )
        .await;
        assert_eq!(wrong, 0, "jobs with a wrong result or an error");
        let twice: i64 = scalar(
            self.db,
            &format!(
                "SELECT count(*) FROM hotmesh.jobs WHERE {range}
                   AND ((data ->> 'na')::int8 IS DISTINCT FROM 1 OR (data ->> 'nb')::int8 IS DISTINCT FROM 1)"
            ),
        )
        .await;
        assert_eq!(twice, 0, "jobs with a step applied twice (or never)");
        let rows: i64 = scalar(
            self.db,
            &format!(
                "SELECT count(*) FROM hotmesh.activities
                  WHERE job_id IN (SELECT id FROM hotmesh.jobs WHERE {range})"
            ),
        )
        .await;
        assert_eq!(rows, 3 * n, "activity rows: t, a and b once per job");
        let left: i64 = scalar(
            self.db,
            &format!(
                "SELECT count(*) FROM hotmesh.worker_stream WHERE topic = '{}.work'",
                self.app
            ),
        )
        .await;
        assert_eq!(left, 0, "messages left on PostgreSQL's stream");
    }
}
