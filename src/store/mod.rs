//! The extension's side of the engine's storage: every SQL statement the engine and the
//! SQL functions run. `spi` is the engine's `Store` on these tables (and the engine on
//! it); `state` reads and writes job and activity rows with prepared statements; `stream`
//! is the worker protocol's reservations, retries and dead letters; `notify` sends
//! announcements at commit; `grants` checks privileges per app; `apps` caches compiled
//! apps per backend; `stats` and `queries` read what users ask for; `db` is SPI with
//! plans prepared once; `ring` names the partition of the ring a job is in, and turns it.

pub mod apps;
pub mod db;
pub mod grants;
pub mod notify;
pub mod queries;
pub mod ring;
pub mod spi;
pub mod state;
pub mod stats;
pub mod stream;
