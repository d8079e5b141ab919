//! NOTIFY channels and payloads. Channel names are identifiers (at most 63 bytes); a
//! longer name becomes `hm:` and a hash. Payloads carry references, never job data:
//! LISTEN has no privileges (any role may listen on any channel), so a payload says
//! which job changed and its status, and the listener reads the job through
//! hotmesh.get_state, which checks what it may read. A payload always fits Postgres's
//! 8000-byte limit.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Largest payload sent (under Postgres's 8000 bytes).
pub const MAX_PAYLOAD: usize = 7500;

/// The channel for `name`, as LISTEN must spell it (quoted: any characters).
pub fn name(name: &str) -> String {
    if name.len() <= 63 && !name.is_empty() && !name.contains('\0') {
        return name.to_string();
    }
    let h = Sha256::digest(name.as_bytes());
    let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("hm:{hex}")
}

/// The channel where workers of `topic` hear that it has work.
pub fn work(topic: &str) -> String {
    name(&format!("hotmesh.work.{topic}"))
}

/// The channel of an app's quorum: throttles, roll calls and activations, to and from
/// its engines and workers (SQL reads it through `hotmesh.quorum_channel`).
pub fn quorum(app: &str) -> String {
    name(&format!("hotmesh.quorum.{app}"))
}

/// The one-time channel of a job's completion (`<publishes>.<job id>` when the graph
/// publishes, else `hotmesh.job.<job id>`).
pub fn job(publishes: Option<&str>, job_id: &str) -> String {
    match publishes {
        Some(p) => name(&format!("{p}.{job_id}")),
        None => name(&format!("hotmesh.job.{job_id}")),
    }
}

/// What a payload says of one job: `{metadata: {jid, tpc, app, js}, data: null}`, the
/// shape of a JobOutput without its data.
pub fn job_ref(job_id: &str, topic: &str, app: &str, status: i64) -> Value {
    json!({"metadata": {"jid": job_id, "tpc": topic, "app": app, "js": status}, "data": null})
}

/// Completion payloads for the jobs `refs` (see [`job_ref`]) on one channel: one job is
/// `{type: 'job', topic, job, _ref: true}`, several `{type: 'jobs', topic, jobs, _ref:
/// true}`, in as many payloads as they need. A reference too long for any payload (ids
/// and topics are bounded at their entry points, so only a hostile one) is sent without
/// its ids: the listener re-reads what it waits for.
pub fn jobs_payloads(topic: &str, refs: &[Value]) -> Vec<String> {
    let topic = if topic.len() > MAX_PAYLOAD / 4 {
        ""
    } else {
        topic
    };
    let one = |r: &Value| {
        let p = json!({"type": "job", "topic": topic, "job": r, "_ref": true}).to_string();
        if p.len() <= MAX_PAYLOAD {
            p
        } else {
            json!({"type": "job", "topic": topic, "job": null, "_ref": true}).to_string()
        }
    };
    if refs.len() == 1 {
        return vec![one(&refs[0])];
    }
    let mut out = vec![];
    let mut chunk: Vec<&Value> = vec![];
    let mut size = 0;
    let room = MAX_PAYLOAD - 100 - topic.len();
    for r in refs {
        let len = r.to_string().len() + 1;
        if len > room {
            out.push(one(r));
            continue;
        }
        if size + len > room && !chunk.is_empty() {
            out.push(
                json!({"type": "jobs", "topic": topic, "jobs": chunk, "_ref": true}).to_string(),
            );
            chunk = vec![];
            size = 0;
        }
        size += len;
        chunk.push(r);
    }
    if !chunk.is_empty() {
        out.push(json!({"type": "jobs", "topic": topic, "jobs": chunk, "_ref": true}).to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name("orders.done"), "orders.done");
        let long = "x".repeat(64);
        assert!(name(&long).starts_with("hm:") && name(&long).len() <= 63);
        assert_eq!(name(&long), name(&long));
        assert_eq!(job(Some("t.done"), "J1"), "t.done.J1");
        assert_eq!(work("a"), "hotmesh.work.a");
    }

    #[test]
    fn payloads_carry_references_not_data() {
        let r = job_ref("a", "t", "app", 0);
        let p = jobs_payloads("t", std::slice::from_ref(&r));
        assert_eq!(p.len(), 1);
        let v: Value = serde_json::from_str(&p[0]).unwrap();
        assert_eq!(v["_ref"], true);
        assert_eq!(v["job"]["metadata"]["jid"], "a");
        assert!(v["job"]["data"].is_null());
    }

    #[test]
    fn many_references_are_chunked_under_the_limit() {
        let many: Vec<Value> = (0..500)
            .map(|i| job_ref(&format!("job-{i}"), "t", "app", 0))
            .collect();
        let ps = jobs_payloads("t", &many);
        assert!(ps.len() > 1 && ps.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let n: usize = ps
            .iter()
            .map(|p| {
                serde_json::from_str::<Value>(p).unwrap()["jobs"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(n, 500);
    }

    #[test]
    fn a_hostile_reference_still_fits_a_payload() {
        let huge = job_ref(&"x".repeat(20_000), &"t".repeat(9_000), "app", 0);
        for refs in [
            vec![huge.clone()],
            vec![huge.clone(), job_ref("b", "t", "app", 0)],
        ] {
            let ps = jobs_payloads(&"t".repeat(9_000), &refs);
            assert!(ps.iter().all(|p| p.len() <= MAX_PAYLOAD), "{ps:?}");
        }
    }
}
