//! Progress bars for long-running commands: one constructor, so every command shows its
//! progress the same way (and none when asked to be quiet or when there is nothing to do).
//! On a terminal the bar redraws in place; elsewhere (a log file, CI) indicatif would draw
//! nothing, so the bar is written as a plain line every [`LOG_EVERY`] instead.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a bar that is not on a terminal writes its line.
pub const LOG_EVERY: Duration = Duration::from_secs(15);

/// A bar of `len` units drawn with the indicatif `template` and `message`; hidden when `show`
/// is false or `len` is 0.
pub fn bar(show: bool, len: u64, template: &str, message: &str) -> ProgressBar {
    if !show || len == 0 {
        return ProgressBar::hidden();
    }
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(len)
    } else {
        let lines = LogLines::new(Box::new(std::io::stderr()), LOG_EVERY);
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::term_like(Box::new(lines)))
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(message.to_owned());
    bar
}

/// A draw target that turns redraws into plain lines, at most one per interval: indicatif
/// writes a frame as strings and then flushes, so each flush is one frame.
struct LogLines {
    state: Mutex<LogState>,
    every: Duration,
}

struct LogState {
    sink: Box<dyn Write + Send>,
    frame: String,
    last: Option<Instant>,
}

impl LogLines {
    fn new(sink: Box<dyn Write + Send>, every: Duration) -> Self {
        Self {
            state: Mutex::new(LogState {
                sink,
                frame: String::new(),
                last: None,
            }),
            every,
        }
    }

    fn with_state(
        &self,
        f: impl FnOnce(&mut LogState) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        match self.state.lock() {
            Ok(mut state) => f(&mut state),
            // A panic elsewhere while drawing: progress is not worth a second one.
            Err(_) => Ok(()),
        }
    }
}

impl std::fmt::Debug for LogLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLines")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl TermLike for LogLines {
    fn width(&self) -> u16 {
        // Wide enough that templates are not cut; the padding is trimmed.
        160
    }

    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.with_state(|state| {
            state.frame.push_str(s);
            Ok(())
        })
    }

    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        let every = self.every;
        self.with_state(|state| {
            let frame = std::mem::take(&mut state.frame);
            let line = frame.trim_matches(|c: char| c.is_whitespace() || c == '\r');
            let due = state.last.is_none_or(|t| t.elapsed() >= every);
            if line.is_empty() || !due {
                return Ok(());
            }
            state.last = Some(Instant::now());
            writeln!(state.sink, "{line}")?;
            state.sink.flush()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged_bar(every: Duration) -> (ProgressBar, Shared) {
        let sink = Shared::default();
        let lines = LogLines::new(Box::new(sink.clone()), every);
        let bar =
            ProgressBar::with_draw_target(Some(3), ProgressDrawTarget::term_like(Box::new(lines)));
        bar.set_style(ProgressStyle::with_template("{pos}/{len} {msg}").unwrap());
        bar.set_message("questions");
        (bar, sink)
    }

    fn text(sink: &Shared) -> String {
        String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn off_a_terminal_the_bar_is_written_as_plain_lines() {
        let (bar, sink) = logged_bar(Duration::ZERO);
        for _ in 0..3 {
            bar.inc(1);
        }
        bar.finish();
        let text = text(&sink);
        assert!(text.lines().any(|l| l == "1/3 questions"), "{text:?}");
        assert!(text.lines().any(|l| l == "3/3 questions"), "{text:?}");
        assert!(!text.contains('\r') && !text.contains("\u{1b}"), "{text:?}");
    }

    #[test]
    fn lines_are_rate_limited() {
        let (bar, sink) = logged_bar(Duration::from_secs(3600));
        for _ in 0..3 {
            bar.inc(1);
        }
        let text = text(&sink);
        assert_eq!(text.lines().count(), 1, "{text:?}");
    }
}
