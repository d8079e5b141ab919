//! The journal: what a workflow's job has recorded, read back for replay, and the
//! commands a run leaves for the graph. Pure: no database, so plain tests cover it.
//!
//! Each durable operation of a run has an index (1, 2, … in call order). Its result is a
//! mark of the job (`hotmesh.jobs.marks`, written by the graph in the step that
//! completes it) under the original's key, `-<kind><dim>-<index>-`, where `<dim>` is empty
//! for the first generation and `$<n>` after `continue_as_new`. The value is ours:
//! `{k: kind, n: name, d: data, e: error, j: child id, s: signal id, au: when}`. A join
//! of several is one mark `-collate<dim>-<first>-` whose `d` holds an entry per item
//! (`r0`, `r1`, …), each with its own index `i`.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// An operation's kind: the key's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An activity (`proxy`).
    Proxy,
    /// A timer (`sleep`).
    Sleep,
    /// A wait for a signal (`wait`).
    Wait,
    /// A child workflow awaited (`child`).
    Child,
    /// A child workflow started without waiting (`start`).
    Start,
    /// A search field read or written (`search`).
    Search,
}

impl Kind {
    /// The key's prefix (the original's names).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Proxy => "proxy",
            Kind::Sleep => "sleep",
            Kind::Wait => "wait",
            Kind::Child => "child",
            Kind::Start => "start",
            Kind::Search => "search",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "proxy" => Kind::Proxy,
            "sleep" => Kind::Sleep,
            "wait" => Kind::Wait,
            "child" => Kind::Child,
            "start" => Kind::Start,
            "search" => Kind::Search,
            _ => return None,
        })
    }
}

/// The dimension of a generation: empty for the first, `$<n>` after.
pub fn dim(generation: u32) -> String {
    if generation == 0 {
        String::new()
    } else {
        format!("${generation}")
    }
}

/// The mark key of operation `index` of `kind` in generation `generation`.
///
/// ```
/// use hotmesh_client::meshflow::journal::{key, Kind};
/// assert_eq!(key("proxy", 0, 3), "-proxy-3-");
/// assert_eq!(key(Kind::Sleep.name(), 2, 1), "-sleep$2-1-");
/// ```
pub fn key(kind: &str, generation: u32, index: u32) -> String {
    format!("-{kind}{}-{index}-", dim(generation))
}

/// Splits a mark key into (kind, dimension, index); None for keys that are not
/// operation marks.
fn split(key: &str) -> Option<(&str, &str, u32)> {
    let inner = key.strip_prefix('-')?.strip_suffix('-')?;
    let (head, index) = inner.rsplit_once('-')?;
    let index = index.parse().ok()?;
    let at = head
        .find(|c: char| !c.is_ascii_lowercase())
        .unwrap_or(head.len());
    Some((&head[..at], &head[at..], index))
}

/// One recorded result.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// What ran.
    pub kind: Kind,
    /// The activity, signal or workflow name it ran with.
    pub name: Option<String>,
    /// Its data (an activity's result, a signal's data, a child's response).
    pub data: Value,
    /// The error it ended with, if any (`{code, message}`).
    pub error: Option<Value>,
    /// Whether a wait ended by its timeout.
    pub timed_out: bool,
    /// A child's workflow id.
    pub child: Option<String>,
    /// When the engine recorded it (ms since the epoch).
    pub at_ms: Option<i64>,
}

impl Entry {
    fn read(kind: Kind, v: &Value) -> Entry {
        let text = |k: &str| match v.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let timed_out = kind == Kind::Wait && v.get("s").is_none_or(Value::is_null);
        Entry {
            kind,
            name: text("n"),
            data: v.get("d").cloned().unwrap_or(Value::Null),
            error: v.get("e").filter(|e| !e.is_null()).cloned(),
            timed_out,
            child: text("j"),
            at_ms: v.get("au").and_then(Value::as_str).and_then(compact_ms),
        }
    }
}

/// The engine's compact time (`YYYYMMDDhhmmss.mmm`, UTC) in ms since the epoch.
fn compact_ms(s: &str) -> Option<i64> {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S%.3f").ok()?;
    Some(t.and_utc().timestamp_millis())
}

/// The recorded results of one generation, by index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Replay {
    entries: BTreeMap<u32, Entry>,
}

impl Replay {
    /// Reads the job's marks for `generation` (other generations' marks are ignored).
    pub fn read(marks: &Value, generation: u32) -> Replay {
        let want = dim(generation);
        let mut entries = BTreeMap::new();
        let Some(marks) = marks.as_object() else {
            return Replay { entries };
        };
        for (k, v) in marks {
            let Some((kind, d, index)) = split(k) else {
                continue;
            };
            if d != want {
                continue;
            }
            if kind == "collate" {
                // one entry per item, each under its own index
                if let Some(items) = v.get("d").and_then(Value::as_object) {
                    for (name, item) in items {
                        if !name.starts_with('r') {
                            continue;
                        }
                        let (Some(i), Some(k)) = (
                            item.get("i").and_then(Value::as_u64),
                            item.get("k").and_then(Value::as_str).and_then(Kind::parse),
                        ) else {
                            continue;
                        };
                        entries.insert(i as u32, Entry::read(k, item));
                    }
                }
                continue;
            }
            if let Some(kind) = Kind::parse(kind) {
                entries.entry(index).or_insert_with(|| Entry::read(kind, v));
            }
        }
        Replay { entries }
    }

    /// How many results are recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What operation `index` finds: its result, nothing yet, or a different operation
    /// than the code now asks for (the run is not deterministic).
    pub fn check(&self, index: u32, kind: Kind, name: &str) -> Check<'_> {
        let Some(e) = self.entries.get(&index) else {
            return Check::Miss;
        };
        let same_name = matches!(kind, Kind::Search | Kind::Sleep)
            || e.name.as_deref().is_none_or(|n| n == name);
        if e.kind == kind && same_name {
            Check::Hit(e)
        } else {
            Check::Mismatch(NonDeterminism {
                index,
                recorded: describe(e.kind, e.name.as_deref()),
                current: describe(kind, Some(name)),
            })
        }
    }

    /// When the latest result before `index` was recorded.
    pub fn time_before(&self, index: u32) -> Option<i64> {
        self.entries
            .range(..index)
            .filter_map(|(_, e)| e.at_ms)
            .max()
    }

    /// The highest recorded index.
    pub fn last_index(&self) -> u32 {
        self.entries.keys().next_back().copied().unwrap_or(0)
    }
}

fn describe(kind: Kind, name: Option<&str>) -> String {
    match name {
        // a sleep's "name" is its length, a search op's its field: neither names the operation
        Some(n) if !matches!(kind, Kind::Search | Kind::Sleep) && !n.is_empty() => {
            format!("{} '{n}'", kind.name())
        }
        _ => kind.name().to_string(),
    }
}

/// What an operation finds in the journal.
#[derive(Debug, PartialEq)]
pub enum Check<'a> {
    /// Its recorded result.
    Hit(&'a Entry),
    /// Nothing yet: it runs now.
    Miss,
    /// Another operation was recorded at its index.
    Mismatch(NonDeterminism),
}

/// The code asked for a different operation than the one recorded at an index: replayed
/// code that changed under a running workflow. The workflow stops with this (code 593)
/// rather than take another operation's result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("non-determinism at operation {index}: the journal recorded {recorded}, the code now asks for {current}")]
pub struct NonDeterminism {
    /// The operation's index in the run (1 is the first).
    pub index: u32,
    /// What the journal holds there (`proxy 'charge'`).
    pub recorded: String,
    /// What the code asked for (`sleep`).
    pub current: String,
}

/// The code a non-determinism error ends the workflow with.
pub const NON_DETERMINISM: i32 = 593;

/// What a run leaves for the graph to do (the original's interruptions).
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Run an activity.
    Proxy {
        /// Its index.
        index: u32,
        /// The activity's name.
        name: String,
        /// Its input.
        arguments: Value,
        /// Its retry policy (JSON), if not the default.
        retry: Value,
        /// Its start-to-close timeout in seconds, if any.
        start_to_close: Option<f64>,
        /// The task queue whose workers run it (empty: the workflow's).
        task_queue: String,
    },
    /// Sleep.
    Sleep {
        /// Its index.
        index: u32,
        /// Seconds.
        seconds: f64,
    },
    /// Wait for a signal (and, with a timeout, no longer than it).
    Wait {
        /// Its index.
        index: u32,
        /// The signal id.
        signal: String,
        /// Seconds, if any.
        timeout: Option<f64>,
    },
    /// Start a child workflow (and await it or not).
    Child {
        /// Its index.
        index: u32,
        /// The child's workflow id.
        id: String,
        /// The child's workflow name.
        workflow_name: String,
        /// The child's task queue.
        task_queue: String,
        /// Its input.
        arguments: Value,
        /// Whether the parent awaits its result.
        wait: bool,
    },
    /// Start over as a new generation with new input.
    ContinueAsNew {
        /// The new input.
        arguments: Value,
    },
}

impl Command {
    fn index(&self) -> Option<u32> {
        match self {
            Command::Proxy { index, .. }
            | Command::Sleep { index, .. }
            | Command::Wait { index, .. }
            | Command::Child { index, .. } => Some(*index),
            Command::ContinueAsNew { .. } => None,
        }
    }

    /// As an item of a join (the collator's input), if it can be one.
    fn item(&self, workflow_queue: &str) -> Option<Value> {
        Some(match self {
            Command::Proxy {
                index,
                name,
                arguments,
                retry,
                start_to_close,
                task_queue,
            } => json!({"kind": "proxy", "index": index, "activityName": name,
                        "activityTopic": activity_topic(task_queue, workflow_queue), "arguments": arguments,
                        "retry": retry, "startToClose": start_to_close}),
            Command::Sleep { index, seconds } => {
                json!({"kind": "sleep", "index": index, "duration": seconds})
            }
            Command::Wait {
                index,
                signal,
                timeout,
            } => json!({"kind": "wait", "index": index, "signal": signal, "timeout": timeout}),
            _ => return None,
        })
    }
}

/// The answer a run sends: its code (200 done, 588–595 an operation) and data.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The code the graph routes on.
    pub code: i32,
    /// The worker's output.
    pub data: Value,
}

/// The worker topic of a task queue's activities (`<queue>-activity`, as the original's).
///
/// ```
/// use hotmesh_client::meshflow::journal::activity_topic;
/// assert_eq!(activity_topic("", "orders"), "orders-activity");
/// assert_eq!(activity_topic("payments", "orders"), "payments-activity");
/// ```
pub fn activity_topic(queue: &str, workflow_queue: &str) -> String {
    let q = if queue.is_empty() {
        workflow_queue
    } else {
        queue
    };
    format!("{q}-activity")
}

/// The answer for a run that left `commands` (in call order) and wrote `marks` and
/// `search` fields on the way. Several joinable operations go out together (589, the
/// collator); a child or a continue goes alone (the first in call order): the rest
/// follow on the next runs.
pub fn suspend(
    commands: &[Command],
    generation: u32,
    task_queue: &str,
    extra: Map<String, Value>,
) -> Answer {
    let mut data = extra;
    let items: Vec<Value> = commands.iter().map_while(|c| c.item(task_queue)).collect();
    if items.len() > 1 {
        let first = commands[0].index().unwrap_or(0);
        data.insert("key".into(), key("collate", generation, first).into());
        data.insert("items".into(), Value::Array(items));
        return Answer {
            code: 589,
            data: Value::Object(data),
        };
    }
    let code = match &commands[0] {
        // the same fields as the item of a join (the graph reads them under both)
        one @ (Command::Proxy { index, .. }
        | Command::Sleep { index, .. }
        | Command::Wait { index, .. }) => {
            let (kind, code) = match one {
                Command::Proxy { .. } => ("proxy", 591),
                Command::Sleep { .. } => ("sleep", 588),
                _ => ("wait", 595),
            };
            if let Some(Value::Object(item)) = one.item(task_queue) {
                data.extend(item);
            }
            data.insert("key".into(), key(kind, generation, *index).into());
            code
        }
        Command::Child {
            index,
            id,
            workflow_name,
            task_queue: queue,
            arguments,
            wait,
        } => {
            let kind = if *wait { "child" } else { "start" };
            data.insert("key".into(), key(kind, generation, *index).into());
            data.insert("kind".into(), kind.into());
            data.insert("childId".into(), id.clone().into());
            data.insert("workflowName".into(), workflow_name.clone().into());
            let queue = if queue.is_empty() { task_queue } else { queue };
            data.insert("taskQueue".into(), queue.into());
            data.insert("arguments".into(), arguments.clone());
            data.insert("await".into(), (*wait).into());
            590
        }
        Command::ContinueAsNew { arguments } => {
            data.insert("arguments".into(), arguments.clone());
            592
        }
    };
    Answer {
        code,
        data: Value::Object(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks() -> Value {
        json!({
            "-proxy-1-": {"k": "proxy", "n": "charge", "d": {"ok": true}, "au": "20261126093000.250"},
            "-sleep-2-": {"k": "sleep", "n": 5, "au": "20261126093005.250"},
            "-wait-3-": {"k": "wait", "n": "approve", "d": {"by": "ann"}, "s": "approve"},
            "-wait-4-": {"k": "wait", "n": "late"},
            "-collate-5-": {"k": "collate", "d": {"slot": 2,
                "r0": {"i": 5, "k": "proxy", "n": "a", "d": 1},
                "r1": {"i": 6, "k": "proxy", "n": "b", "e": {"code": 597, "message": "maxed"}}}},
            "-proxy$1-1-": {"k": "proxy", "n": "other"},
            "-patch-x-": true,
            "-odd": 1
        })
    }

    #[test]
    fn marks_read_back_by_index_for_their_generation_only() {
        let r = Replay::read(&marks(), 0);
        assert_eq!(r.len(), 6);
        let Check::Hit(e) = r.check(1, Kind::Proxy, "charge") else {
            panic!("a hit")
        };
        assert_eq!(e.data, json!({"ok": true}));
        assert_eq!(e.at_ms, Some(1_795_685_400_250));
        assert!(
            matches!(r.check(3, Kind::Wait, "approve"), Check::Hit(e) if !e.timed_out && e.data["by"] == "ann")
        );
        assert!(matches!(r.check(4, Kind::Wait, "late"), Check::Hit(e) if e.timed_out));
        assert!(
            matches!(r.check(6, Kind::Proxy, "b"), Check::Hit(e) if e.error.as_ref().unwrap()["code"] == 597)
        );
        assert_eq!(r.check(7, Kind::Proxy, "c"), Check::Miss);
        let next = Replay::read(&marks(), 1);
        assert_eq!(next.len(), 1);
        assert!(matches!(next.check(1, Kind::Proxy, "other"), Check::Hit(_)));
    }

    #[test]
    fn another_operation_at_an_index_is_a_mismatch_naming_both() {
        let r = Replay::read(&marks(), 0);
        let Check::Mismatch(nd) = r.check(1, Kind::Sleep, "5") else {
            panic!("a mismatch")
        };
        assert_eq!(nd.recorded, "proxy 'charge'");
        assert_eq!(nd.current, "sleep");
        assert_eq!(
            nd.to_string(),
            "non-determinism at operation 1: the journal recorded proxy 'charge', the code now asks for sleep"
        );
        assert!(matches!(
            r.check(1, Kind::Proxy, "refund"),
            Check::Mismatch(NonDeterminism { index: 1, .. })
        ));
    }

    #[test]
    fn now_is_the_time_of_the_latest_result_before_the_operation() {
        let r = Replay::read(&marks(), 0);
        assert_eq!(r.time_before(1), None);
        assert_eq!(r.time_before(2), Some(1_795_685_400_250));
        assert_eq!(r.time_before(9), Some(1_795_685_405_250));
    }

    #[test]
    fn one_command_goes_with_its_code_and_several_joinable_ones_as_a_collation() {
        let proxy = |index| Command::Proxy {
            index,
            name: format!("a{index}"),
            arguments: json!([index]),
            retry: Value::Null,
            start_to_close: None,
            task_queue: String::new(),
        };
        let a = suspend(&[proxy(3)], 0, "q", Map::new());
        assert_eq!(a.code, 591);
        assert_eq!(a.data["key"], "-proxy-3-");
        assert_eq!(a.data["activityTopic"], "q-activity");
        let s = suspend(
            &[Command::Sleep {
                index: 1,
                seconds: 2.0,
            }],
            2,
            "q",
            Map::new(),
        );
        assert_eq!((s.code, s.data["key"].as_str()), (588, Some("-sleep$2-1-")));
        let both = suspend(&[proxy(4), proxy(5)], 0, "q", Map::new());
        assert_eq!(both.code, 589);
        assert_eq!(both.data["key"], "-collate-4-");
        assert_eq!(both.data["items"][1]["index"], 5);
        let child = Command::Child {
            index: 6,
            id: "c".into(),
            workflow_name: "w".into(),
            task_queue: String::new(),
            arguments: json!(1),
            wait: true,
        };
        let c = suspend(&[child, proxy(7)], 0, "q", Map::new());
        assert_eq!((c.code, c.data["taskQueue"].as_str()), (590, Some("q")));
    }
}
