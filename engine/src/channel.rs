//! NOTIFY channels and payloads. Channel names are identifiers (at most 63 bytes); a
//! longer name becomes `hm:` and a hash. Payloads must stay under Postgres's 8000-byte
//! limit; a job output that does not fit is replaced by a reference the listener
//! resolves with hotmesh.get_state.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Largest payload sent as is (the original's limit, under Postgres's 8000 bytes).
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

/// The one-time channel of a job's completion (`<publishes>.<job id>` when the graph
/// publishes, else `hotmesh.job.<job id>`).
pub fn job(publishes: Option<&str>, job_id: &str) -> String {
    match publishes {
        Some(p) => name(&format!("{p}.{job_id}")),
        None => name(&format!("hotmesh.job.{job_id}")),
    }
}

/// A completion payload: `{type: 'job', topic, job: {metadata, data}}`, or, when that is
/// too big, the reference form `{type: 'job', topic, job: {metadata: {jid, tpc, app, js}, data: null}, _ref: true}`.
pub fn job_payload(topic: &str, output: &Value) -> String {
    let full = json!({"type": "job", "topic": topic, "job": output}).to_string();
    if full.len() <= MAX_PAYLOAD {
        return full;
    }
    let m = &output["metadata"];
    json!({"type": "job", "topic": topic, "job": {"metadata": {"jid": m["jid"], "tpc": m["tpc"], "app": m["app"], "js": m["js"]}, "data": null}, "_ref": true}).to_string()
}

/// Several completions on one channel in one transaction, as one payload:
/// `{type: 'jobs', topic, jobs: [...]}`, falling back to references, then to chunks.
pub fn jobs_payloads(topic: &str, outputs: &[Value]) -> Vec<String> {
    if outputs.len() == 1 {
        return vec![job_payload(topic, &outputs[0])];
    }
    let full = json!({"type": "jobs", "topic": topic, "jobs": outputs}).to_string();
    if full.len() <= MAX_PAYLOAD {
        return vec![full];
    }
    // references only: ~100 bytes each
    let refs: Vec<Value> = outputs
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            json!({"jid": m["jid"], "js": m["js"]})
        })
        .collect();
    let mut out = vec![];
    let mut chunk: Vec<Value> = vec![];
    let mut size = 0;
    for r in refs {
        let len = r.to_string().len() + 1;
        if size + len > MAX_PAYLOAD - 100 && !chunk.is_empty() {
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
    fn payloads() {
        let small = json!({"metadata": {"jid": "a", "js": 0}, "data": {"x": 1}});
        assert!(job_payload("t", &small).contains("\"x\":1"));
        let big = json!({"metadata": {"jid": "a", "js": 0, "tpc": "t", "app": "x"}, "data": {"x": "y".repeat(8000)}});
        let p = job_payload("t", &big);
        assert!(p.len() < MAX_PAYLOAD && p.contains("_ref"));
        let many: Vec<Value> = (0..500)
            .map(|i| json!({"metadata": {"jid": format!("job-{i}"), "js": 0}, "data": {"x": i}}))
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
}
