//! The progress line of a long wait: `waiting for job X: 12 s (timeout 30 s)` on stderr,
//! rewritten in place each second and erased when the wait ends. Only on a terminal: a
//! pipe or a log file gets no carriage returns. Plain text (no escape sequences), so a
//! dumb terminal shows it as well as any.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A wait shorter than this shows nothing (no flicker for quick answers).
const FIRST: Duration = Duration::from_secs(1);

/// Runs `wait`, showing `what` and the seconds spent while it lasts, if stderr is a
/// terminal.
pub async fn show_while<T>(what: &str, timeout: Duration, wait: impl Future<Output = T>) -> T {
    if !std::io::stderr().is_terminal() {
        return wait.await;
    }
    let started = Instant::now();
    let mut tick = tokio::time::interval_at((started + FIRST).into(), Duration::from_secs(1));
    let mut shown = 0;
    tokio::pin!(wait);
    let out = loop {
        tokio::select! {
            out = &mut wait => break out,
            _ = tick.tick() => shown = redraw(&line(what, started.elapsed(), timeout), shown),
        }
    };
    if shown > 0 {
        // blanks over the last line, so what follows starts on a clean line
        eprint!("\r{:shown$}\r", "");
    }
    out
}

/// The line for `spent` seconds of a wait of at most `timeout`.
fn line(what: &str, spent: Duration, timeout: Duration) -> String {
    format!(
        "{what}: {} s (timeout {} s)",
        spent.as_secs(),
        seconds(timeout)
    )
}

/// Seconds as people write them: `30`, `0.5`.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

/// Writes `text` over the previous line (`width` characters long); returns its width.
fn redraw(text: &str, width: usize) -> usize {
    let now = text.chars().count();
    let pad = width.saturating_sub(now);
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{text}{:pad$}", "");
    let _ = err.flush();
    now.max(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_is_awaited_and_for_how_long() {
        let l = line(
            "waiting for job j1",
            Duration::from_millis(12_400),
            Duration::from_secs(30),
        );
        assert_eq!(l, "waiting for job j1: 12 s (timeout 30 s)");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5");
    }

    #[tokio::test]
    async fn a_wait_returns_its_output() {
        // (the test's stderr is not a terminal: nothing is drawn)
        let v = show_while("x", Duration::from_secs(1), async { 7 }).await;
        assert_eq!(v, 7);
    }
}
