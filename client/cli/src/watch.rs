//! `hotmesh watch`: completions on a topic (`sub`), on a pattern (`psub`), or activations
//! of new versions, printed as JSON lines as they come, until Ctrl-C, `--count` messages
//! or `--timeout`.

use crate::exit::{Failure, TIMEOUT};
use crate::output;
use hotmesh_client::{HotMesh, JobMessage};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What to watch.
pub enum Source {
    Topic(String),
    Pattern(String),
    Activations,
}

/// When to stop (besides Ctrl-C, which ends the process).
pub struct Until {
    pub count: Option<u64>,
    pub timeout: Option<Duration>,
}

/// Subscribes, then prints each message as one line until [`Until`] says stop.
pub async fn watch(hm: &HotMesh, source: Source, until: Until) -> Result<(), Failure> {
    let mut messages = subscribe(hm, source).await?;
    let deadline = until.timeout.map(|t| Instant::now() + t);
    let mut seen = 0u64;
    while until.count.is_none_or(|n| seen < n) {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, messages.recv()).await {
                Ok(m) => m,
                Err(_) => return timed_out(seen, &until),
            },
            None => messages.recv().await,
        };
        // the subscription's sender lives as long as the client: None cannot come
        let Some(m) = next else { return Ok(()) };
        match output::line(&m) {
            Ok(()) => seen += 1,
            Err(e) if output::reader_left(&e) => return Ok(()),
            Err(e) => return Err(Failure::from_io(e)),
        }
    }
    Ok(())
}

/// The end of `--timeout`: the planned end of a watch, unless `--count` asked for more
/// messages than came.
fn timed_out(seen: u64, until: &Until) -> Result<(), Failure> {
    match until.count {
        Some(n) if seen < n => Err(Failure {
            exit: TIMEOUT,
            message: format!(
                "timed out after {} s with {seen} of {n} messages",
                until.timeout.unwrap_or_default().as_secs_f64()
            ),
            hint: None,
        }),
        _ => Ok(()),
    }
}

/// The messages of `source`, as the JSON lines to print.
async fn subscribe(
    hm: &HotMesh,
    source: Source,
) -> Result<mpsc::UnboundedReceiver<Value>, Failure> {
    let (tx, rx) = mpsc::unbounded_channel();
    match source {
        Source::Topic(t) => hm.sub(&t, move |m| drop(tx.send(job_line(m)))).await?,
        Source::Pattern(p) => hm.psub(&p, move |m| drop(tx.send(job_line(m)))).await?,
        Source::Activations => {
            let mut activations = hm.activations().await?;
            tokio::spawn(async move {
                while let Some(a) = activations.recv().await {
                    let line = json!({"app_id": a.app_id, "version": a.version});
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
    }
    Ok(rx)
}

fn job_line(m: JobMessage) -> Value {
    json!({ "topic": m.topic, "metadata": m.job.metadata, "data": m.job.data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_ends_a_watch_unless_messages_are_missing() {
        let plain = Until {
            count: None,
            timeout: Some(Duration::from_secs(1)),
        };
        assert!(timed_out(0, &plain).is_ok());
        let counted = Until {
            count: Some(2),
            timeout: Some(Duration::from_millis(500)),
        };
        let e = timed_out(1, &counted).unwrap_err();
        assert_eq!(e.exit, TIMEOUT);
        assert_eq!(e.message, "timed out after 0.5 s with 1 of 2 messages");
        assert!(timed_out(2, &counted).is_ok());
    }
}
