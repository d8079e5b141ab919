//! The engine's background workers, as `hotmesh.workers()` reports them.

use crate::{Error, HotMesh};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// One row of `hotmesh.workers()`: the launcher's view of a database it serves.
///
/// ```no_run
/// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
/// for w in hm.workers().await? {
///     println!("{} {} pid={:?} errors={}", w.database, w.state, w.pid, w.errors);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// The database the worker serves.
    pub database: String,
    /// `starting`, `running`, `unknown`, `paused` or `backoff`.
    pub state: String,
    /// Its process id, while it runs.
    pub pid: Option<i32>,
    /// When the current worker started.
    pub started_at: Option<DateTime<Utc>>,
    /// How many times the worker has been started for this database.
    pub starts: i32,
    /// Loop iterations of the current worker: one per wake-up or poll.
    pub loops: i64,
    /// ERRORs the current worker caught and survived.
    pub errors: i64,
    /// The last ERROR it caught, and when.
    pub last_error: Option<String>,
    /// When it caught [`last_error`](Self::last_error).
    pub last_error_at: Option<DateTime<Utc>>,
}

impl HotMesh {
    /// The engine workers of every database of the cluster that the launcher serves.
    /// Fails with [`Error::NotPreloaded`] when the library is not in
    /// `shared_preload_libraries`.
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let rows = hm.workers().await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, Error> {
        let rows = sqlx::query(
            "SELECT database, state, pid, started_at, starts, loops, errors, last_error, last_error_at
               FROM hotmesh.workers() ORDER BY database",
        )
        .fetch_all(self.conn()?)
        .await
        .map_err(Error::from_sqlx)?;
        rows.iter()
            .map(|r| {
                Ok(WorkerInfo {
                    database: r.try_get("database")?,
                    state: r.try_get("state")?,
                    pid: r.try_get("pid")?,
                    started_at: r.try_get("started_at")?,
                    starts: r.try_get("starts")?,
                    loops: r.try_get("loops")?,
                    errors: r.try_get("errors")?,
                    last_error: r.try_get("last_error")?,
                    last_error_at: r.try_get("last_error_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Error::Sql)
    }

    /// The worker of the current database, if one is registered.
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let mine = hm.my_worker().await?;
    /// # Ok(()) }
    /// ```
    pub async fn my_worker(&self) -> Result<Option<WorkerInfo>, Error> {
        let db: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(self.conn()?)
            .await
            .map_err(Error::from_sqlx)?;
        Ok(self.workers().await?.into_iter().find(|w| w.database == db))
    }

    /// Blocks until this database's engine worker is running, or `timeout` passes
    /// (`hotmesh.wait_for_engine`). Returns whether it is running.
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// assert!(hm.wait_for_engine(std::time::Duration::from_secs(10)).await?);
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn wait_for_engine(&self, timeout: std::time::Duration) -> Result<bool, Error> {
        let ok: bool = sqlx::query_scalar("SELECT hotmesh.wait_for_engine($1)")
            .bind(timeout.as_secs_f64())
            .fetch_one(self.conn()?)
            .await
            .map_err(Error::from_sqlx)?;
        Ok(ok)
    }

    /// Wakes this database's engine worker when the current statement's transaction
    /// commits (`hotmesh.wake_engine()`). Returns the engine's loop count before the wake,
    /// so a caller can see it advance.
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let loops_before = hm.wake_engine().await?;
    /// # Ok(()) }
    /// ```
    pub async fn wake_engine(&self) -> Result<i64, Error> {
        let n: i64 = sqlx::query_scalar("SELECT hotmesh.wake_engine()")
            .fetch_one(self.conn()?)
            .await
            .map_err(Error::from_sqlx)?;
        Ok(n)
    }
}
