//! Rust client of the `hotmesh` PostgreSQL extension.
//!
//! The engine runs inside PostgreSQL; this crate talks to it over ordinary connections.
//! Every call is a SQL function of the extension, so anything this crate does can also
//! be done from `psql`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hotmesh_client::Error> {
//! let hm = hotmesh_client::HotMesh::connect("postgres://postgres@127.0.0.1:28815/hotmesh").await?;
//! println!("engine version {}", hm.version().await?);
//! for w in hm.workers().await? {
//!     println!("{} {} pid={:?}", w.database, w.state, w.pid);
//! }
//! # Ok(()) }
//! ```

mod error;
mod workers;

pub use error::Error;
pub use workers::WorkerInfo;

use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

/// A handle on one database where `CREATE EXTENSION hotmesh` was run.
#[derive(Clone, Debug)]
pub struct HotMesh {
    pool: PgPool,
}

impl HotMesh {
    /// Connects with a small pool. `url` is a libpq-style URL
    /// (`postgres://user@host:port/db`).
    #[tracing::instrument(skip_all)]
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(Error::Connect)?;
        Ok(HotMesh { pool })
    }

    /// Wraps an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        HotMesh { pool }
    }

    /// The pool, for queries of your own against the engine's tables and views.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The installed engine version (`hotmesh.version()`).
    #[tracing::instrument(skip(self))]
    pub async fn version(&self) -> Result<String, Error> {
        let v: String = sqlx::query_scalar("SELECT hotmesh.version()")
            .fetch_one(&self.pool)
            .await
            .map_err(Error::from_sqlx)?;
        Ok(v)
    }
}
