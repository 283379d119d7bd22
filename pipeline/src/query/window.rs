//! A query's window: back from now (`time_range`), or absolute (`start`, `end`), or back from
//! an absolute `end`. Times are RFC 3339 or Unix seconds (a fraction allowed), or Unix
//! nanoseconds as Loki takes them.

use super::selection::Window;
use super::spec::{MAX_TIME_RANGE_S, QuerySpec};
use super::values::ParamError;
#[cfg(test)]
use super::values::instant;
use crate::normalize::time::format_rfc3339;

const NS: i64 = 1_000_000_000;

impl QuerySpec {
    /// Whether the window is given by `start` or `end` rather than back from now.
    pub fn is_absolute(&self) -> bool {
        self.start_ns.is_some() || self.end_ns.is_some()
    }

    /// The combinations that make one window: `time_range`; `start` (to now); `start` and
    /// `end`; `end` (with `time_range` back from it).
    pub(super) fn check_window(&self) -> Result<(), ParamError> {
        if self.start_ns.is_some() && self.time_range_given {
            return Err(ParamError::new(
                "time_range",
                "`time_range` and `start` are both given",
                "give `start` (with an optional `end`), or `time_range` (with an optional `end`)",
            ));
        }
        if let (Some(start), Some(end)) = (self.start_ns, self.end_ns) {
            if end <= start {
                return Err(ParamError::new(
                    "end",
                    "`end` is not after `start`",
                    "give an `end` later than `start`",
                ));
            }
            if end - start > MAX_TIME_RANGE_S as i64 * NS {
                return Err(ParamError::new(
                    "end",
                    "`start` and `end` are more than 30 days apart",
                    "ask at most 30 days at once",
                ));
            }
        }
        Ok(())
    }

    /// The window of this query when asked at `now_ns`. An id lookup without any window
    /// parameter is unbounded (a request is found however long ago it ran).
    pub fn window(&self, now_ns: i64) -> Result<Window, ParamError> {
        if self.scoped_to_id() && !self.time_range_given && !self.is_absolute() {
            return Ok(Window::UNBOUNDED);
        }
        let range_ns = i64::try_from(self.time_range_s)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(NS);
        let end_ns = self.end_ns.unwrap_or(now_ns);
        let start_ns = self.start_ns.unwrap_or(end_ns.saturating_sub(range_ns));
        if self.end_ns.is_none() && self.start_ns.is_some() {
            if start_ns >= end_ns {
                return Err(ParamError::new(
                    "start",
                    "`start` is in the future",
                    "give a `start` before now",
                ));
            }
            if end_ns - start_ns > MAX_TIME_RANGE_S as i64 * NS {
                return Err(ParamError::new(
                    "start",
                    "`start` is more than 30 days ago",
                    "ask at most 30 days at once: give an `end` too",
                ));
            }
        }
        Ok(Window { start_ns, end_ns })
    }

    /// The window in words, for summaries: `in the last 1h`, or `between <start> and <end>`.
    pub fn window_phrase(&self) -> String {
        match (self.start_ns, self.end_ns) {
            (None, None) => format!("in the last {}", self.time_range),
            (Some(start), None) => format!("since {}", format_rfc3339(start)),
            (None, Some(end)) => format!("in the {} before {}", self.time_range, format_rfc3339(end)),
            (Some(start), Some(end)) => format!("between {} and {}", format_rfc3339(start), format_rfc3339(end)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_764_756_000 * NS;

    fn spec(params: &[(&str, &str)]) -> Result<QuerySpec, ParamError> {
        QuerySpec::from_params(params.iter().copied())
    }

    #[test]
    fn instants_in_rfc3339_seconds_and_nanoseconds_agree() {
        for v in [
            "2025-12-03T10:00:00Z",
            "2025-12-03T11:00:00+01:00",
            "1764756000",
            "1764756000.0",
            "1764756000000000000",
        ] {
            assert_eq!(instant("start", v), Ok(T), "{v}");
        }
        assert_eq!(instant("start", "1764756000.25"), Ok(T + NS / 4));
        for v in [
            "",
            "yesterday",
            "-5",
            "1.2.3",
            "1764756000000",
            "2025-13-03T10:00:00Z",
            "12e9",
            " 1",
        ] {
            assert_eq!(instant("end", v).map_err(|e| e.field), Err("end".to_owned()), "{v:?}");
        }
    }

    #[test]
    fn the_window_parameters_combine_into_one_window() {
        let now = T + 86_400 * NS;
        let w = |p: &[(&str, &str)]| spec(p).and_then(|s| s.window(now)).map_err(|e| e.field);
        let start = "1764756000";
        let end = "1764759600";
        assert_eq!(
            w(&[("start", start), ("end", end)]),
            Ok(Window {
                start_ns: T,
                end_ns: T + 3_600 * NS
            })
        );
        assert_eq!(
            w(&[("start", start)]),
            Ok(Window {
                start_ns: T,
                end_ns: now
            })
        );
        assert_eq!(
            w(&[("end", end), ("time_range", "15m")]),
            Ok(Window {
                start_ns: T + 2_700 * NS,
                end_ns: T + 3_600 * NS
            })
        );
        assert_eq!(
            w(&[("time_range", "1h")]),
            Ok(Window {
                start_ns: now - 3_600 * NS,
                end_ns: now
            })
        );
        assert_eq!(
            w(&[("start", start), ("time_range", "1h")]),
            Err("time_range".to_owned())
        );
        assert_eq!(w(&[("start", end), ("end", start)]), Err("end".to_owned()));
        assert_eq!(
            w(&[("start", "1700000000"), ("end", end)]),
            Err("end".to_owned()),
            "over 30 days"
        );
        assert_eq!(
            w(&[("start", "1700000000")]),
            Err("start".to_owned()),
            "over 30 days to now"
        );
        assert_eq!(w(&[("start", "1864756000")]), Err("start".to_owned()), "in the future");
        // An id lookup with a window keeps it; without one it is unbounded.
        assert_eq!(w(&[("correlation_id", "r1")]), Ok(Window::UNBOUNDED));
        assert_eq!(
            w(&[("correlation_id", "r1"), ("start", start), ("end", end)]),
            Ok(Window {
                start_ns: T,
                end_ns: T + 3_600 * NS
            })
        );
    }

    #[test]
    fn summaries_name_the_window_they_covered() {
        let s = spec(&[("start", "1764756000"), ("end", "1764759600")]).expect("spec");
        assert_eq!(
            s.window_phrase(),
            "between 2025-12-03T10:00:00Z and 2025-12-03T11:00:00Z"
        );
        assert_eq!(spec(&[]).expect("spec").window_phrase(), "in the last 1h");
    }
}
