//! The windows statistics and history are asked over, and the spans each
//! tier of a series keeps.

use serde::{Deserialize, Serialize};

/// One minute, ms.
pub const MINUTE: i64 = 60_000;
/// One hour, ms.
pub const HOUR: i64 = 60 * MINUTE;
/// One day, ms.
pub const DAY: i64 = 24 * HOUR;
/// How long values are kept: seven days, ms.
pub const RETENTION: i64 = 7 * DAY;

/// A window ending now: `1m`, `5m`, `1h`, `24h` or `7d` (HTTP_API.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Window {
    /// The last minute.
    #[serde(rename = "1m")]
    M1,
    /// The last five minutes.
    #[serde(rename = "5m")]
    M5,
    /// The last hour.
    #[serde(rename = "1h")]
    H1,
    /// The last day.
    #[serde(rename = "24h")]
    H24,
    /// The last week.
    #[serde(rename = "7d")]
    D7,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 5] = [Window::M1, Window::M5, Window::H1, Window::H24, Window::D7];

    /// Its length, ms.
    pub fn millis(self) -> i64 {
        match self {
            Window::M1 => MINUTE,
            Window::M5 => 5 * MINUTE,
            Window::H1 => HOUR,
            Window::H24 => DAY,
            Window::D7 => RETENTION,
        }
    }

    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Window::M1 => "1m",
            Window::M5 => "5m",
            Window::H1 => "1h",
            Window::H24 => "24h",
            Window::D7 => "7d",
        }
    }

    /// The window a name means, if any.
    pub fn parse(s: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.name() == s)
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The start of the `span`-long bucket holding `t`.
pub(crate) fn floor(t: i64, span: i64) -> i64 {
    t - t.rem_euclid(span)
}
