//! The slot table: one slot per database the launcher knows about, in shared memory.
//!
//! Backends, the launcher and the engine workers all read and write it under one
//! lightweight lock, so every field is plain data (`Copy`, fixed size, no pointers).

/// Upper bound of `hotmesh.max_databases`: the table is sized at compile time because
/// shared memory is sized once, when the postmaster starts.
pub const MAX_SLOTS: usize = 64;

/// Bytes kept of a worker's last error message.
pub const ERROR_LEN: usize = 200;

/// What the launcher knows about one database.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum SlotState {
    /// The slot is unused.
    #[default]
    Free = 0,
    /// A database with no worker yet; whether it has the extension is not known. The
    /// launcher starts a worker, which finds out.
    Unknown = 1,
    /// The launcher registered a worker; it has not reported back yet.
    Starting = 2,
    /// A worker is connected and the extension is installed.
    Running = 3,
    /// The extension is not installed here. Nothing runs until `CREATE EXTENSION`
    /// (whose commit wakes the launcher) or a restart of the launcher.
    Absent = 4,
    /// A statement that needs the database to itself (DROP DATABASE, ALTER DATABASE
    /// RENAME, CREATE DATABASE from it as a template) is running: the worker leaves and
    /// the launcher keeps away until `until_ms`.
    Paused = 5,
    /// The worker died without saying why; it is started again at `until_ms`.
    Backoff = 6,
}

impl SlotState {
    pub fn from_u8(v: u8) -> SlotState {
        match v {
            1 => SlotState::Unknown,
            2 => SlotState::Starting,
            3 => SlotState::Running,
            4 => SlotState::Absent,
            5 => SlotState::Paused,
            6 => SlotState::Backoff,
            _ => SlotState::Free,
        }
    }

    /// The name shown in `hotmesh.workers`.
    pub fn name(self) -> &'static str {
        match self {
            SlotState::Free => "free",
            SlotState::Unknown => "unknown",
            SlotState::Starting => "starting",
            SlotState::Running => "running",
            SlotState::Absent => "absent",
            SlotState::Paused => "paused",
            SlotState::Backoff => "backoff",
        }
    }
}

/// One database's entry. Times are Unix milliseconds.
#[derive(Copy, Clone, Debug)]
#[repr(C)]
pub struct Slot {
    pub dboid: u32,
    pub state: SlotState,
    /// Pid of the engine worker, 0 when none is connected.
    pub pid: i32,
    pub started_ms: i64,
    /// Meaning depends on `state`: end of a pause or of a back-off.
    pub until_ms: i64,
    /// Unexpected worker exits in a row; drives the back-off.
    pub failures: u32,
    /// Worker starts since the slot was taken.
    pub starts: u32,
    /// Loop iterations of the current worker (a wake-up or a poll each).
    pub loops: u64,
    /// ERRORs the current worker caught and survived.
    pub errors: u64,
    pub last_error_ms: i64,
    pub last_error: [u8; ERROR_LEN],
    /// One-shot ERROR the worker raises in its next iteration (`hotmesh.debug_fail_worker`).
    pub inject_error: [u8; ERROR_LEN],
    /// Bumped by every committed `CREATE EXTENSION` here. A worker that found no
    /// extension only records `Absent` if this did not move while it looked.
    pub created: u32,
    /// When the worker, now waiting on its latch, wakes on its own (unix ms); 0 while it
    /// runs an iteration. A transaction that makes something due earlier wakes it.
    pub sleeps_until_ms: i64,
    /// Woken for an iteration (work to route, a due time, a pause) since the worker last
    /// looked. A wake-up without it (the notification relay's) only has the worker
    /// drain the relay and sleep on.
    pub poked: bool,
    /// Pid of the database's bridge worker, 0 when none runs (it sets and clears it).
    pub bridge_pid: i32,
    /// `hotmesh.transports` changed since the engine worker last looked: it must see
    /// whether a bridge worker is wanted.
    pub transports_changed: bool,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            dboid: 0,
            state: SlotState::Free,
            pid: 0,
            started_ms: 0,
            until_ms: 0,
            failures: 0,
            starts: 0,
            loops: 0,
            errors: 0,
            last_error_ms: 0,
            last_error: [0; ERROR_LEN],
            inject_error: [0; ERROR_LEN],
            created: 0,
            sleeps_until_ms: 0,
            poked: false,
            bridge_pid: 0,
            transports_changed: false,
        }
    }
}

/// Copies `msg` into a fixed buffer, cut at a character boundary, NUL-padded.
pub fn put_text(buf: &mut [u8; ERROR_LEN], msg: &str) {
    let mut end = msg.len().min(ERROR_LEN);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    buf.fill(0);
    buf[..end].copy_from_slice(&msg.as_bytes()[..end]);
}

/// The text stored by [`put_text`], or `None` when empty.
pub fn get_text(buf: &[u8; ERROR_LEN]) -> Option<String> {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(ERROR_LEN);
    (end > 0).then(|| String::from_utf8_lossy(&buf[..end]).into_owned())
}

impl Slot {
    pub fn last_error(&self) -> Option<String> {
        get_text(&self.last_error)
    }

    /// Records an ERROR the worker survived.
    pub fn record_error(&mut self, now_ms: i64, msg: &str) {
        self.errors += 1;
        self.last_error_ms = now_ms;
        put_text(&mut self.last_error, msg);
    }

    /// Takes the injected error, if any, so it fires exactly once.
    pub fn take_injected_error(&mut self) -> Option<String> {
        let msg = get_text(&self.inject_error);
        self.inject_error.fill(0);
        msg
    }
}

/// What one engine-worker iteration starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iteration {
    /// The one-shot error to raise (`hotmesh.debug_fail_worker`).
    pub injected_error: Option<String>,
    /// `Slot::created` read before the iteration looks at `pg_extension`, for
    /// [`SlotTable::mark_absent`].
    pub created: u32,
    /// `hotmesh.transports` changed since the last iteration (taken: the worker must look
    /// whether a bridge worker is wanted).
    pub transports_changed: bool,
}

/// The whole table as it lives in shared memory.
#[derive(Copy, Clone, Debug)]
#[repr(C)]
pub struct SlotTable {
    pub slots: [Slot; MAX_SLOTS],
    /// Pid of the launcher, 0 while it is not running.
    pub launcher_pid: i32,
}

impl Default for SlotTable {
    fn default() -> Self {
        SlotTable {
            slots: [Slot::default(); MAX_SLOTS],
            launcher_pid: 0,
        }
    }
}

impl SlotTable {
    pub fn find(&self, dboid: u32) -> Option<&Slot> {
        self.slots
            .iter()
            .find(|s| s.state != SlotState::Free && s.dboid == dboid)
    }

    pub fn find_mut(&mut self, dboid: u32) -> Option<&mut Slot> {
        self.slots
            .iter_mut()
            .find(|s| s.state != SlotState::Free && s.dboid == dboid)
    }

    /// The slot of `dboid`, taking a free one in state `Unknown` if there is none yet.
    /// `None` when the table is full.
    pub fn find_or_insert(&mut self, dboid: u32) -> Option<&mut Slot> {
        let idx = match self
            .slots
            .iter()
            .position(|s| s.state != SlotState::Free && s.dboid == dboid)
        {
            Some(i) => i,
            None => {
                let i = self.slots.iter().position(|s| s.state == SlotState::Free)?;
                self.slots[i] = Slot {
                    dboid,
                    state: SlotState::Unknown,
                    ..Slot::default()
                };
                i
            }
        };
        Some(&mut self.slots[idx])
    }

    /// `CREATE EXTENSION` committed in `dboid`: forget any earlier "absent" verdict so the
    /// launcher starts a worker at once.
    pub fn extension_created(&mut self, dboid: u32) -> bool {
        match self.find_or_insert(dboid) {
            Some(slot) => {
                slot.created = slot.created.wrapping_add(1);
                if matches!(slot.state, SlotState::Absent | SlotState::Backoff) {
                    slot.state = SlotState::Unknown;
                    slot.failures = 0;
                }
                true
            }
            None => false,
        }
    }

    /// A worker of `dboid` found no extension, having read `created == seen` before it
    /// looked. Records `Absent` and returns true, unless a `CREATE EXTENSION` committed
    /// meanwhile: then the worker must look again.
    pub fn mark_absent(&mut self, dboid: u32, seen: u32, pid: i32) -> bool {
        match self.find_mut(dboid) {
            Some(slot) if slot.created != seen => false,
            Some(slot) => {
                slot.state = SlotState::Absent;
                if slot.pid == pid {
                    slot.pid = 0;
                }
                true
            }
            None => true,
        }
    }

    /// Start of one engine-worker iteration, under a single lock: `None` when the worker
    /// `pid` no longer owns a running slot and must leave; otherwise counts the iteration
    /// and hands over what the iteration needs.
    pub fn begin_iteration(&mut self, dboid: u32, pid: i32) -> Option<Iteration> {
        let slot = self.find_mut(dboid)?;
        if slot.pid != pid || slot.state != SlotState::Running {
            return None;
        }
        slot.loops += 1;
        // awake: whatever commits now is seen by this iteration or wakes the next one
        slot.sleeps_until_ms = 0;
        Some(Iteration {
            injected_error: slot.take_injected_error(),
            created: slot.created,
            transports_changed: std::mem::take(&mut slot.transports_changed),
        })
    }

    /// The worker of `dboid` goes to sleep until `until_ms` unless woken.
    pub fn sleep_until(&mut self, dboid: u32, pid: i32, until_ms: i64) {
        if let Some(slot) = self.find_mut(dboid) {
            if slot.pid == pid {
                slot.sleeps_until_ms = until_ms;
            }
        }
    }

    /// The pid to wake so that something due at `due_ms` is handled on time: the
    /// worker's, unless it already wakes by then on its own.
    pub fn wake_for(&self, dboid: u32, due_ms: i64) -> Option<i32> {
        let slot = self.find(dboid)?;
        (slot.pid != 0 && (slot.sleeps_until_ms == 0 || due_ms < slot.sleeps_until_ms))
            .then_some(slot.pid)
    }

    /// Asks `dboid`'s worker for an iteration: returns its pid to wake, if one is
    /// connected.
    pub fn poke(&mut self, dboid: u32) -> Option<i32> {
        let slot = self.find_mut(dboid)?;
        if slot.pid == 0 {
            return None;
        }
        slot.poked = true;
        Some(slot.pid)
    }

    /// `hotmesh.transports` changed in `dboid` (a commit): the engine worker must look
    /// whether a bridge worker is wanted, the bridge worker must read the rows again.
    /// Returns the pids to wake: the engine worker's (poked) and the bridge worker's.
    pub fn transports_changed(&mut self, dboid: u32) -> (Option<i32>, Option<i32>) {
        let Some(slot) = self.find_mut(dboid) else {
            return (None, None);
        };
        slot.transports_changed = true;
        let bridge = (slot.bridge_pid != 0).then_some(slot.bridge_pid);
        (self.poke(dboid), bridge)
    }

    /// Records (`pid`) or clears (0) the bridge worker of `dboid`.
    pub fn set_bridge(&mut self, dboid: u32, pid: i32) {
        if let Some(slot) = self.find_mut(dboid) {
            slot.bridge_pid = pid;
        }
    }

    /// Whether worker `pid` of `dboid` was poked since it last asked; clears it.
    pub fn take_poke(&mut self, dboid: u32, pid: i32) -> bool {
        match self.find_mut(dboid) {
            Some(slot) if slot.pid == pid => std::mem::take(&mut slot.poked),
            _ => false,
        }
    }

    /// A statement needs `dboid` to itself until `until_ms`: the worker leaves.
    /// Returns the worker's pid to wake (poked: it must look now), if one is connected.
    pub fn pause(&mut self, dboid: u32, until_ms: i64) -> Option<i32> {
        let slot = self.find_mut(dboid)?;
        slot.state = SlotState::Paused;
        slot.until_ms = until_ms;
        self.poke(dboid)
    }

    /// The statement that paused `dboid` is over: let the launcher look again at once.
    pub fn unpause(&mut self, dboid: u32) {
        if let Some(slot) = self.find_mut(dboid) {
            if slot.state == SlotState::Paused {
                slot.state = SlotState::Unknown;
                slot.until_ms = 0;
            }
        }
    }

    /// How many slots are held by some database.
    pub fn used(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state != SlotState::Free)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_u8() {
        for s in [
            SlotState::Free,
            SlotState::Unknown,
            SlotState::Starting,
            SlotState::Running,
            SlotState::Absent,
            SlotState::Paused,
            SlotState::Backoff,
        ] {
            assert_eq!(SlotState::from_u8(s as u8), s);
        }
        assert_eq!(SlotState::from_u8(200), SlotState::Free);
    }

    #[test]
    fn text_is_cut_at_a_char_boundary() {
        let mut buf = [0u8; ERROR_LEN];
        let long = "é".repeat(150); // 300 bytes
        put_text(&mut buf, &long);
        let back = get_text(&buf).unwrap();
        assert_eq!(back.len(), ERROR_LEN);
        assert!(back.chars().all(|c| c == 'é'));
        put_text(&mut buf, "");
        assert_eq!(get_text(&buf), None);
    }

    #[test]
    fn injected_error_fires_once() {
        let mut slot = Slot::default();
        put_text(&mut slot.inject_error, "boom");
        assert_eq!(slot.take_injected_error().as_deref(), Some("boom"));
        assert_eq!(slot.take_injected_error(), None);
    }

    #[test]
    fn a_change_of_transports_pokes_the_engine_worker_and_wakes_the_bridge_worker() {
        let mut t = SlotTable::default();
        assert_eq!(t.transports_changed(7), (None, None), "no slot");
        let slot = t.find_or_insert(7).unwrap();
        slot.pid = 42;
        slot.state = SlotState::Running;
        assert_eq!(
            t.transports_changed(7),
            (Some(42), None),
            "no bridge worker yet"
        );
        assert!(t.take_poke(7, 42), "an iteration now");
        assert!(t.begin_iteration(7, 42).unwrap().transports_changed);
        assert!(
            !t.begin_iteration(7, 42).unwrap().transports_changed,
            "taken once"
        );
        t.set_bridge(7, 50);
        assert_eq!(t.transports_changed(7), (Some(42), Some(50)));
        assert!(
            t.begin_iteration(7, 43).is_none(),
            "another engine worker's"
        );
        assert!(t.begin_iteration(7, 42).unwrap().transports_changed);
        t.set_bridge(7, 0);
        assert_eq!(t.transports_changed(7).1, None);
    }

    #[test]
    fn a_poke_is_taken_once_by_the_worker_it_was_for() {
        let mut t = SlotTable::default();
        assert_eq!(t.poke(7), None, "no slot");
        t.find_or_insert(7).unwrap().pid = 42;
        assert!(!t.take_poke(7, 42));
        assert_eq!(t.poke(7), Some(42));
        assert!(!t.take_poke(7, 43), "another worker's poke");
        assert!(t.take_poke(7, 42));
        assert!(!t.take_poke(7, 42), "taken once");
        t.find_or_insert(7).unwrap().pid = 0;
        assert_eq!(t.poke(7), None, "no worker connected");
    }

    #[test]
    fn a_pause_pokes_the_worker() {
        let mut t = SlotTable::default();
        t.find_or_insert(7).unwrap().pid = 42;
        assert_eq!(t.pause(7, 1_000), Some(42));
        assert!(t.take_poke(7, 42));
    }

    #[test]
    fn find_or_insert_reuses_and_fills() {
        let mut t = SlotTable::default();
        for oid in 1..=MAX_SLOTS as u32 {
            assert!(t.find_or_insert(oid).is_some());
        }
        assert_eq!(t.used(), MAX_SLOTS);
        assert!(
            t.find_or_insert(5).is_some(),
            "an existing slot is found when full"
        );
        assert!(
            t.find_or_insert(10_000).is_none(),
            "a full table refuses new databases"
        );
    }

    #[test]
    fn create_extension_clears_absent_and_backoff() {
        let mut t = SlotTable::default();
        t.find_or_insert(7).unwrap().state = SlotState::Absent;
        assert!(t.extension_created(7));
        assert_eq!(t.find(7).unwrap().state, SlotState::Unknown);
        t.find_mut(7).unwrap().state = SlotState::Running;
        t.extension_created(7);
        assert_eq!(
            t.find(7).unwrap().state,
            SlotState::Running,
            "a running worker is left alone"
        );
        assert!(
            t.extension_created(8),
            "a database not seen yet gets a slot"
        );
        assert_eq!(t.find(8).unwrap().state, SlotState::Unknown);
    }

    #[test]
    fn create_extension_during_a_probe_wins() {
        let mut t = SlotTable::default();
        let s = t.find_or_insert(3).unwrap();
        s.state = SlotState::Starting;
        s.pid = 77;
        let seen = t.find(3).unwrap().created;
        t.extension_created(3); // commits while the probe looks at pg_extension
        assert!(!t.mark_absent(3, seen, 77), "the probe must look again");
        assert_eq!(t.find(3).unwrap().state, SlotState::Starting);
        let seen = t.find(3).unwrap().created;
        assert!(t.mark_absent(3, seen, 77));
        assert_eq!(t.find(3).unwrap().state, SlotState::Absent);
        assert_eq!(t.find(3).unwrap().pid, 0);
    }

    #[test]
    fn a_worker_is_woken_only_for_what_comes_due_before_it_wakes() {
        let mut t = SlotTable::default();
        let s = t.find_or_insert(4).unwrap();
        s.state = SlotState::Running;
        s.pid = 10;
        t.begin_iteration(4, 10).unwrap();
        assert_eq!(
            t.wake_for(4, 5_000),
            Some(10),
            "running an iteration: always woken"
        );
        t.sleep_until(4, 10, 2_000);
        assert_eq!(t.wake_for(4, 5_000), None, "it wakes before that anyway");
        assert_eq!(t.wake_for(4, 1_000), Some(10));
        t.sleep_until(4, 99, 1);
        assert_eq!(
            t.wake_for(4, 1_500),
            Some(10),
            "another pid cannot move the time"
        );
        assert_eq!(t.wake_for(5, 0), None);
    }

    #[test]
    fn begin_iteration_counts_and_stops_a_worker_that_lost_its_slot() {
        let mut t = SlotTable::default();
        let s = t.find_or_insert(4).unwrap();
        s.state = SlotState::Running;
        s.pid = 10;
        put_text(&mut s.inject_error, "boom");
        let first = t.begin_iteration(4, 10).unwrap();
        assert_eq!(first.injected_error.as_deref(), Some("boom"));
        assert_eq!(
            t.begin_iteration(4, 10).unwrap().injected_error,
            None,
            "the injected error fires once"
        );
        t.extension_created(4);
        assert_eq!(t.begin_iteration(4, 10).unwrap().created, first.created + 1);
        assert_eq!(t.find(4).unwrap().loops, 3);
        assert_eq!(
            t.begin_iteration(4, 11),
            None,
            "another pid owns nothing here"
        );
        t.pause(4, 1_000);
        assert_eq!(
            t.begin_iteration(4, 10),
            None,
            "a paused database sends its worker away"
        );
        assert_eq!(t.begin_iteration(5, 10), None, "no slot, no work");
        assert_eq!(t.find(4).unwrap().loops, 3);
    }

    #[test]
    fn pause_returns_the_pid_to_wake_and_unpause_reopens() {
        let mut t = SlotTable::default();
        let s = t.find_or_insert(9).unwrap();
        s.state = SlotState::Running;
        s.pid = 4242;
        assert_eq!(t.pause(9, 1000), Some(4242));
        assert_eq!(t.find(9).unwrap().state, SlotState::Paused);
        t.unpause(9);
        assert_eq!(t.find(9).unwrap().state, SlotState::Unknown);
        assert_eq!(
            t.pause(99, 1000),
            None,
            "pausing an unknown database is a no-op"
        );
    }
}
