//! What the batch commands show while they run: a progress bar when stderr is a terminal,
//! nothing of their own otherwise (they log a line every 5 s instead).

use std::io::IsTerminal;

/// A bar drawn with `template` (indicatif's syntax) when stderr is a terminal, else `None`.
pub(crate) fn terminal_bar(template: &str) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    })
}
