//! A worker's answers, batched: the answers of callbacks that finish while an earlier
//! answer is on its way go together in one `hotmesh.respond_batch` (one round trip, one
//! commit for all of them). An idle worker answers at once (no waiting to fill a batch);
//! a busy one answers in batches, which is where one commit per message cost the most.
//!
//! One bad answer must not fail the others: a batch that fails for another reason than
//! the connection is answered again one by one.

use crate::error::is_connection;
use crate::workers::Outcome;
use crate::HotMesh;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most answers in one call.
const MAX_BATCH: usize = 100;

/// One answer on its way, and who waits for what became of it.
struct Pending {
    id: i64,
    reservation: i64,
    outcome: Outcome,
    done: oneshot::Sender<Result<bool, String>>,
}

/// Where a worker's callbacks hand their answers.
#[derive(Clone)]
pub(crate) struct Answers(mpsc::Sender<Pending>);

impl Answers {
    /// Starts the task that sends the answers; it ends when the last handle is dropped.
    /// `patience`: how long a lost connection is retried (the message's reservation: after
    /// it, the message is handed out again anyway).
    pub(crate) fn start(hm: HotMesh, patience: Duration) -> Answers {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(send_batches(hm, patience, rx));
        Answers(tx)
    }

    /// Answers message `id` (held by `reservation`) with `outcome`; true when the answer
    /// was applied, false when the message was gone or handed out again.
    pub(crate) async fn answer(
        &self,
        id: i64,
        reservation: i64,
        outcome: Outcome,
    ) -> Result<bool, String> {
        let (done, result) = oneshot::channel();
        self.0
            .send(Pending {
                id,
                reservation,
                outcome,
                done,
            })
            .await
            .map_err(|_| "the worker is stopping".to_string())?;
        result
            .await
            .map_err(|_| "the answer was not sent".to_string())?
    }
}

async fn send_batches(hm: HotMesh, patience: Duration, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let applied = match send(&hm, &batch, patience).await {
            Ok(applied) => Ok(applied),
            // one answer may be what failed the batch (its step raised): each on its own
            Err(e) if batch.len() > 1 && !e.1 => {
                let mut applied = vec![];
                let mut last = None;
                for p in &batch {
                    match send(&hm, std::slice::from_ref(p), patience).await {
                        Ok(a) => applied.extend(a),
                        Err(e) => last = Some((p.id, e.0)),
                    }
                }
                for p in batch {
                    let r = match &last {
                        Some((id, e)) if *id == p.id => Err(e.clone()),
                        _ => Ok(applied.contains(&p.id)),
                    };
                    let _ = p.done.send(r);
                }
                continue;
            }
            Err(e) => Err(e.0),
        };
        for p in batch {
            let r = match &applied {
                Ok(a) => Ok(a.contains(&p.id)),
                Err(e) => Err(e.clone()),
            };
            let _ = p.done.send(r);
        }
    }
}

/// One `respond_batch` call, retried while the connection is lost and `patience` lasts.
/// The error says whether it was the connection.
async fn send(
    hm: &HotMesh,
    batch: &[Pending],
    patience: Duration,
) -> Result<Vec<i64>, (String, bool)> {
    let (mut ids, mut data, mut statuses, mut codes, mut reservations) =
        (vec![], vec![], vec![], vec![], vec![]);
    for p in batch {
        let (d, status, code) = p.outcome.parts();
        ids.push(p.id);
        data.push(d);
        statuses.push(status.name());
        codes.push(code);
        reservations.push(p.reservation);
    }
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let r =
            sqlx::query_scalar::<_, Vec<i64>>("SELECT hotmesh.respond_batch($1, $2, $3, $4, $5)")
                .bind(&ids)
                .bind(&data)
                .bind(&statuses)
                .bind(&codes)
                .bind(&reservations)
                .fetch_one(hm.stream_pool())
                .await;
        match r {
            Ok(applied) => return Ok(applied),
            Err(e) if is_connection(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err((e.to_string(), is_connection(&e))),
        }
    }
}
