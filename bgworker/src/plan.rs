//! What the launcher does each time it wakes: compare the databases that exist with the
//! slot table and the workers it knows about, and decide which workers to start or stop.
//!
//! Rules, in one place:
//! * every connectable, non-template database is probed once by a short-lived engine
//!   worker; a database without the extension is remembered as absent (in the launcher's
//!   own memory, so absent databases use no shared slot) until `CREATE EXTENSION` gives it
//!   a slot again;
//! * a worker that dies without saying why is started again after a back-off that doubles
//!   while it keeps dying young;
//! * a paused database (DROP DATABASE and friends) gets no worker until the pause ends;
//! * a database that is gone loses its slot, and its worker if one is still alive;
//! * at most `max_databases` workers run at once.

use crate::slot::{SlotState, SlotTable};
use std::collections::HashSet;

/// A database the launcher may serve: connectable, not a template, not half-dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Database {
    pub oid: u32,
    pub name: String,
}

/// What the launcher knows of the worker of one slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WorkerHandle {
    /// No worker was started for this slot, or it was already forgotten.
    None,
    /// The worker is starting or running.
    Alive,
    /// The worker has exited.
    Stopped,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Register an engine worker for this database.
    Start { dboid: u32, name: String },
    /// Ask the worker of this database to exit.
    Stop { dboid: u32 },
    /// Drop the launcher's handle of this database's worker (it has exited).
    Forget { dboid: u32 },
    /// The slot table is full: this database gets no worker.
    TableFull { dboid: u32, name: String },
}

#[derive(Copy, Clone, Debug)]
pub struct PlanConfig {
    pub max_databases: usize,
    /// First restart delay after a worker died.
    pub backoff_base_ms: i64,
    pub backoff_max_ms: i64,
    /// A worker that ran this long before dying resets the back-off.
    pub stable_after_ms: i64,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            max_databases: 16,
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
            stable_after_ms: 30_000,
        }
    }
}

/// Delay before restart number `failures` (1-based): base, 2·base, 4·base … capped.
pub fn backoff_ms(cfg: &PlanConfig, failures: u32) -> i64 {
    let shift = failures.saturating_sub(1).min(20);
    cfg.backoff_base_ms
        .saturating_mul(1i64 << shift)
        .min(cfg.backoff_max_ms)
}

/// Updates `table` and `absent` in place and returns what the launcher must do.
/// `handle(dboid, pid)` reports the liveness of a slot's worker.
pub fn reconcile(
    now_ms: i64,
    dbs: &[Database],
    table: &mut SlotTable,
    absent: &mut HashSet<u32>,
    mut handle: impl FnMut(u32, i32) -> WorkerHandle,
    cfg: &PlanConfig,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let exists: HashSet<u32> = dbs.iter().map(|d| d.oid).collect();
    absent.retain(|oid| exists.contains(oid));

    // Databases that are gone (dropped, turned into templates, disallowed connections).
    for slot in table
        .slots
        .iter_mut()
        .filter(|s| s.state != SlotState::Free)
    {
        if !exists.contains(&slot.dboid) {
            match handle(slot.dboid, slot.pid) {
                WorkerHandle::Alive => {
                    actions.push(Action::Stop { dboid: slot.dboid });
                    actions.push(Action::Forget { dboid: slot.dboid });
                }
                WorkerHandle::Stopped => actions.push(Action::Forget { dboid: slot.dboid }),
                WorkerHandle::None => {}
            }
            *slot = Default::default();
        }
    }

    // New databases get a slot, unless a probe already found no extension there.
    for db in dbs {
        if table.find(db.oid).is_some() {
            absent.remove(&db.oid); // CREATE EXTENSION gave it a slot again
            continue;
        }
        if absent.contains(&db.oid) {
            continue;
        }
        if table.find_or_insert(db.oid).is_none() {
            actions.push(Action::TableFull {
                dboid: db.oid,
                name: db.name.clone(),
            });
        }
    }

    // Workers that exited, and the liveness of the rest.
    let mut live = 0usize;
    let mut idle = Vec::new();
    for (i, slot) in table
        .slots
        .iter_mut()
        .enumerate()
        .filter(|(_, s)| s.state != SlotState::Free)
    {
        match handle(slot.dboid, slot.pid) {
            WorkerHandle::Alive => {
                live += 1;
                if slot.state == SlotState::Paused {
                    actions.push(Action::Stop { dboid: slot.dboid });
                }
            }
            WorkerHandle::Stopped => {
                actions.push(Action::Forget { dboid: slot.dboid });
                slot.pid = 0;
                match slot.state {
                    SlotState::Running | SlotState::Starting => {
                        // It left without saying why: a crash, a FATAL, pg_terminate_backend.
                        let ran = now_ms - slot.started_ms;
                        slot.failures = if ran >= cfg.stable_after_ms {
                            1
                        } else {
                            slot.failures + 1
                        };
                        slot.state = SlotState::Backoff;
                        slot.until_ms = now_ms + backoff_ms(cfg, slot.failures);
                    }
                    SlotState::Absent => {
                        absent.insert(slot.dboid);
                        *slot = Default::default();
                        continue;
                    }
                    _ => {}
                }
                idle.push(i);
            }
            WorkerHandle::None => {
                if slot.state == SlotState::Absent {
                    absent.insert(slot.dboid);
                    *slot = Default::default();
                    continue;
                }
                idle.push(i);
            }
        }
    }

    // Start workers where one is due, within the limit.
    for i in idle {
        let slot = &mut table.slots[i];
        let due = match slot.state {
            SlotState::Unknown => true,
            // a Starting/Running slot without a live worker: the launcher restarted and
            // lost its handles, or registration failed; start it again
            SlotState::Starting | SlotState::Running => true,
            SlotState::Paused | SlotState::Backoff => now_ms >= slot.until_ms,
            _ => false,
        };
        if !due {
            continue;
        }
        if live >= cfg.max_databases {
            slot.state = SlotState::Unknown;
            continue;
        }
        let name = dbs
            .iter()
            .find(|d| d.oid == slot.dboid)
            .map(|d| d.name.clone())
            .unwrap_or_default();
        slot.state = SlotState::Starting;
        slot.pid = 0;
        slot.starts += 1;
        slot.started_ms = now_ms;
        slot.until_ms = 0;
        slot.loops = 0;
        live += 1;
        actions.push(Action::Start {
            dboid: slot.dboid,
            name,
        });
    }
    actions
}

/// Next time the launcher must look again even if nobody wakes it: the earliest end of a
/// pause or back-off, if any.
pub fn next_deadline(table: &SlotTable) -> Option<i64> {
    table
        .slots
        .iter()
        .filter(|s| matches!(s.state, SlotState::Paused | SlotState::Backoff))
        .map(|s| s.until_ms)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn db(oid: u32) -> Database {
        Database {
            oid,
            name: format!("db{oid}"),
        }
    }

    fn starts(a: &[Action]) -> Vec<u32> {
        a.iter()
            .filter_map(|x| {
                if let Action::Start { dboid, .. } = x {
                    Some(*dboid)
                } else {
                    None
                }
            })
            .collect()
    }

    /// A fake process table: dboid → liveness.
    struct World {
        table: SlotTable,
        absent: HashSet<u32>,
        procs: HashMap<u32, WorkerHandle>,
        cfg: PlanConfig,
    }

    impl World {
        fn new() -> Self {
            World {
                table: SlotTable::default(),
                absent: HashSet::new(),
                procs: HashMap::new(),
                cfg: PlanConfig::default(),
            }
        }
        fn tick(&mut self, now: i64, dbs: &[Database]) -> Vec<Action> {
            let procs = self.procs.clone();
            let actions = reconcile(
                now,
                dbs,
                &mut self.table,
                &mut self.absent,
                |oid, _| *procs.get(&oid).unwrap_or(&WorkerHandle::None),
                &self.cfg,
            );
            for a in &actions {
                match a {
                    Action::Start { dboid, .. } => {
                        self.procs.insert(*dboid, WorkerHandle::Alive);
                    }
                    Action::Forget { dboid } => {
                        self.procs.remove(dboid);
                    }
                    _ => {}
                }
            }
            actions
        }
        fn state(&self, oid: u32) -> Option<SlotState> {
            self.table.find(oid).map(|s| s.state)
        }
    }

    #[test]
    fn every_database_is_probed_once_and_absent_ones_are_remembered() {
        let mut w = World::new();
        let dbs = [db(1), db(2)];
        assert_eq!(starts(&w.tick(0, &dbs)), vec![1, 2]);
        // db1 has the extension, db2 does not: its worker says so and exits
        w.table.find_mut(1).unwrap().state = SlotState::Running;
        w.table.find_mut(2).unwrap().state = SlotState::Absent;
        w.procs.insert(2, WorkerHandle::Stopped);
        let a = w.tick(10, &dbs);
        assert!(starts(&a).is_empty());
        assert!(a.contains(&Action::Forget { dboid: 2 }));
        assert_eq!(w.state(2), None, "an absent database holds no slot");
        assert!(w.absent.contains(&2));
        assert!(
            starts(&w.tick(20, &dbs)).is_empty(),
            "absent databases are not probed again"
        );
    }

    #[test]
    fn create_extension_brings_an_absent_database_back() {
        let mut w = World::new();
        w.absent.insert(2);
        assert!(w.table.extension_created(2));
        assert_eq!(starts(&w.tick(0, &[db(2)])), vec![2]);
        assert!(!w.absent.contains(&2));
    }

    #[test]
    fn a_crashed_worker_restarts_after_a_growing_backoff() {
        let mut w = World::new();
        let dbs = [db(1)];
        w.tick(0, &dbs);
        w.table.find_mut(1).unwrap().state = SlotState::Running;
        // dies young, three times: 1 s, 2 s, 4 s
        let mut now = 100;
        for expect in [1_000, 2_000, 4_000] {
            w.procs.insert(1, WorkerHandle::Stopped);
            assert!(starts(&w.tick(now, &dbs)).is_empty());
            let s = *w.table.find(1).unwrap();
            assert_eq!(s.state, SlotState::Backoff);
            assert_eq!(s.until_ms - now, expect);
            assert!(
                starts(&w.tick(s.until_ms - 1, &dbs)).is_empty(),
                "not before the back-off ends"
            );
            now = s.until_ms;
            assert_eq!(starts(&w.tick(now, &dbs)), vec![1]);
            w.table.find_mut(1).unwrap().state = SlotState::Running;
            now += 100;
        }
        // after running a long time, a death starts the back-off over
        now += 60_000;
        w.procs.insert(1, WorkerHandle::Stopped);
        w.tick(now, &dbs);
        assert_eq!(w.table.find(1).unwrap().until_ms - now, 1_000);
    }

    #[test]
    fn backoff_is_capped() {
        let cfg = PlanConfig::default();
        assert_eq!(backoff_ms(&cfg, 1), 1_000);
        assert_eq!(backoff_ms(&cfg, 7), 60_000);
        assert_eq!(backoff_ms(&cfg, u32::MAX), 60_000);
    }

    #[test]
    fn a_dropped_database_loses_its_slot_and_worker() {
        let mut w = World::new();
        w.tick(0, &[db(1), db(2)]);
        let a = w.tick(10, &[db(2)]);
        assert!(a.contains(&Action::Stop { dboid: 1 }));
        assert!(a.contains(&Action::Forget { dboid: 1 }));
        assert_eq!(w.state(1), None);
        assert_eq!(w.state(2), Some(SlotState::Starting));
    }

    #[test]
    fn a_paused_database_gets_no_worker_until_the_pause_ends() {
        let mut w = World::new();
        let dbs = [db(1)];
        w.tick(0, &dbs);
        w.table.find_mut(1).unwrap().state = SlotState::Running;
        w.table.pause(1, 5_000);
        let a = w.tick(10, &dbs);
        assert!(
            a.contains(&Action::Stop { dboid: 1 }),
            "a live worker of a paused db is stopped"
        );
        w.procs.insert(1, WorkerHandle::Stopped);
        assert!(starts(&w.tick(20, &dbs)).is_empty());
        assert_eq!(w.state(1), Some(SlotState::Paused));
        assert_eq!(next_deadline(&w.table), Some(5_000));
        assert_eq!(starts(&w.tick(5_000, &dbs)), vec![1]);
    }

    #[test]
    fn no_more_than_max_databases_workers() {
        let mut w = World::new();
        w.cfg.max_databases = 2;
        let dbs = [db(1), db(2), db(3)];
        assert_eq!(starts(&w.tick(0, &dbs)).len(), 2);
        assert_eq!(w.state(3), Some(SlotState::Unknown));
        // one probe finds no extension and leaves: the third database gets its turn
        let first = starts(&w.tick(1, &dbs));
        assert!(first.is_empty());
        w.table.find_mut(1).unwrap().state = SlotState::Absent;
        w.procs.insert(1, WorkerHandle::Stopped);
        assert_eq!(starts(&w.tick(2, &dbs)), vec![3]);
    }

    #[test]
    fn a_full_table_is_reported() {
        let mut w = World::new();
        w.cfg.max_databases = 1000;
        let dbs: Vec<Database> = (1..=crate::slot::MAX_SLOTS as u32 + 1).map(db).collect();
        let a = w.tick(0, &dbs);
        assert_eq!(starts(&a).len(), crate::slot::MAX_SLOTS);
        assert!(a.iter().any(|x| matches!(x, Action::TableFull { dboid, .. } if *dboid == crate::slot::MAX_SLOTS as u32 + 1)));
    }

    #[test]
    fn a_running_slot_without_a_known_worker_is_restarted() {
        // the launcher itself restarted: shared memory says Running, but the pid is gone
        let mut w = World::new();
        let s = w.table.find_or_insert(1).unwrap();
        s.state = SlotState::Running;
        s.pid = 0;
        assert_eq!(starts(&w.tick(0, &[db(1)])), vec![1]);
    }
}
