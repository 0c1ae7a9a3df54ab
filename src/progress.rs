//! Progress bars for long-running commands: one constructor, so every command shows its
//! progress the same way (and none when asked to be quiet or when there is nothing to do).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` units drawn with the indicatif `template` and `message`; hidden when `show`
/// is false or `len` is 0.
pub fn bar(show: bool, len: u64, template: &str, message: &str) -> ProgressBar {
    if !show || len == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(message.to_owned());
    bar
}
