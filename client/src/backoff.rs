//! How a loop waits after a failed call: 100 ms, doubling to 5 s, reset by a success; a
//! stop ends the wait at once. Workers (on PostgreSQL and on a transport) and the bridge
//! share it.

use std::time::Duration;
use tokio::sync::watch;

/// 100 ms doubling to 5 s while calls fail.
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff(Duration::from_millis(100))
    }
    pub(crate) fn reset(&mut self) {
        self.0 = Duration::from_millis(100);
    }
    pub(crate) async fn wait(&mut self, stop: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = tokio::time::sleep(self.0) => {}
            _ = stop.changed() => {}
        }
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}
