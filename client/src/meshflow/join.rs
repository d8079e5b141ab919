//! Joining durable operations: several at once, results in call order (the original's
//! `Promise.all`). Each operation takes its index when it is made, so the order of the
//! list is the order of the journal.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Awaits every operation together; their outputs in the order given. Operations with
/// no result yet all go to the engine in one answer (a collation), so activities run at
/// the same time and signals may arrive in any order.
///
/// ```no_run
/// # async fn demo(ctx: hotmesh_client::meshflow::Context) -> Result<(), hotmesh_client::meshflow::WorkflowError> {
/// use hotmesh_client::meshflow::join_all;
/// let calls: Vec<_> = (1..=3).map(|i| ctx.activity::<i64>("square", i)).collect();
/// let squares: Vec<i64> = join_all(calls).await.into_iter().collect::<Result<_, _>>()?;
/// # Ok(()) }
/// ```
pub async fn join_all<I>(ops: I) -> Vec<<I::Item as IntoFuture>::Output>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    let mut futures: Vec<Pin<Box<<I::Item as IntoFuture>::IntoFuture>>> =
        ops.into_iter().map(|o| Box::pin(o.into_future())).collect();
    let mut outputs: Vec<Option<<I::Item as IntoFuture>::Output>> =
        futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let mut waiting = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
