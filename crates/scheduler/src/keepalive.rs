//! Keep-alive durations in the forms Docker Model Runner and Ollama accept: Go duration
//! strings (`"5m"`, `"1h30m"`, `"300ms"`), `"0"` (unload when idle), negative values
//! (never unload) and plain numbers of seconds.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::SchedulerError;

/// How long an idle runner stays loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// Never unload while the daemon runs.
    Forever,
    /// Unload after this much idle time (zero: as soon as it is idle).
    For(Duration),
}

impl KeepAlive {
    /// Docker Model Runner's default: five minutes.
    pub const DEFAULT: KeepAlive = KeepAlive::For(Duration::from_secs(300));

    /// Whether a runner idle for `idle` should be unloaded.
    pub fn expired(&self, idle: Duration) -> bool {
        match self {
            KeepAlive::Forever => false,
            KeepAlive::For(d) => idle >= *d,
        }
    }

    /// Parses a duration string or a number of seconds.
    pub fn parse(s: &str) -> Result<KeepAlive, SchedulerError> {
        let s = s.trim();
        let bad = || SchedulerError::InvalidSettings {
            param: "keep_alive".into(),
            message: format!(
                "{s:?} is not a duration (use forms like \"5m\", \"1h30m\", \"0\" or \"-1\")"
            ),
        };
        if s.is_empty() {
            return Err(bad());
        }
        if let Some(rest) = s.strip_prefix('-') {
            // Any negative duration means "never"; it must still be well-formed.
            let ok = parse_go(rest).is_ok() || rest.parse::<f64>().is_ok_and(f64::is_finite);
            return if ok {
                Ok(KeepAlive::Forever)
            } else {
                Err(bad())
            };
        }
        if let Ok(secs) = s.parse::<f64>() {
            return seconds(secs).ok_or_else(bad);
        }
        parse_go(s).map(KeepAlive::For).map_err(|_| bad())
    }

    /// From a JSON number of seconds.
    pub fn from_seconds(secs: f64) -> Result<KeepAlive, SchedulerError> {
        if secs < 0.0 {
            return Ok(KeepAlive::Forever);
        }
        seconds(secs).ok_or_else(|| SchedulerError::InvalidSettings {
            param: "keep_alive".into(),
            message: format!("{secs} is not a number of seconds"),
        })
    }
}

fn seconds(secs: f64) -> Option<KeepAlive> {
    if !secs.is_finite() || secs > 1e9 {
        return None;
    }
    if secs < 0.0 {
        return Some(KeepAlive::Forever);
    }
    Some(KeepAlive::For(Duration::from_secs_f64(secs)))
}

/// A Go `time.ParseDuration` string without a sign.
fn parse_go(s: &str) -> Result<Duration, ()> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or(())?;
        let value: f64 = rest[..num_end].parse().map_err(|_| ())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(()),
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    if !total.is_finite() || total > 1e9 {
        return Err(());
    }
    Ok(Duration::from_secs_f64(total))
}

/// Go's `Duration.String()`: `5m0s`, `1h0m0s`, `1.5s`, `300ms`, `0s`; `-1` for forever.
impl fmt::Display for KeepAlive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = match self {
            KeepAlive::Forever => return f.write_str("-1"),
            KeepAlive::For(d) => *d,
        };
        if d.is_zero() {
            return f.write_str("0s");
        }
        if d < Duration::from_secs(1) {
            let ms = d.as_secs_f64() * 1e3;
            return write!(f, "{}ms", trim(ms));
        }
        let total = d.as_secs_f64();
        let h = (total / 3600.0).floor();
        let m = ((total - h * 3600.0) / 60.0).floor();
        let s = total - h * 3600.0 - m * 60.0;
        if h > 0.0 {
            write!(f, "{h}h{m}m{}s", trim(s))
        } else if m > 0.0 {
            write!(f, "{m}m{}s", trim(s))
        } else {
            write!(f, "{}s", trim(s))
        }
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl std::str::FromStr for KeepAlive {
    type Err = SchedulerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeepAlive::parse(s)
    }
}

impl Serialize for KeepAlive {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeepAlive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => KeepAlive::from_seconds(n),
            Raw::Text(t) => KeepAlive::parse(&t),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> KeepAlive {
        KeepAlive::parse(s).unwrap()
    }

    #[test]
    fn parses_go_ollama_and_docker_forms() {
        assert_eq!(p("5m"), KeepAlive::For(Duration::from_secs(300)));
        assert_eq!(p("1h30m"), KeepAlive::For(Duration::from_secs(5400)));
        assert_eq!(p("300ms"), KeepAlive::For(Duration::from_millis(300)));
        assert_eq!(p("1.5s"), KeepAlive::For(Duration::from_millis(1500)));
        assert_eq!(p("0"), KeepAlive::For(Duration::ZERO));
        assert_eq!(p("30"), KeepAlive::For(Duration::from_secs(30)));
        assert_eq!(p("-1"), KeepAlive::Forever);
        assert_eq!(p("-5m"), KeepAlive::Forever);
        for bad in ["", "5x", "m", "1h-2m", "-", "abc", "5 m", "1e99"] {
            assert!(KeepAlive::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn prints_like_go() {
        assert_eq!(KeepAlive::DEFAULT.to_string(), "5m0s");
        assert_eq!(p("1h").to_string(), "1h0m0s");
        assert_eq!(p("90s").to_string(), "1m30s");
        assert_eq!(p("1.5s").to_string(), "1.5s");
        assert_eq!(p("250ms").to_string(), "250ms");
        assert_eq!(p("0").to_string(), "0s");
        assert_eq!(KeepAlive::Forever.to_string(), "-1");
        for s in ["5m0s", "1h0m0s", "1.5s", "-1", "0s", "250ms"] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn json_accepts_numbers_and_strings() {
        let k: KeepAlive = serde_json::from_str("-1").unwrap();
        assert_eq!(k, KeepAlive::Forever);
        let k: KeepAlive = serde_json::from_str("\"10m\"").unwrap();
        assert_eq!(k, KeepAlive::For(Duration::from_secs(600)));
        let k: KeepAlive = serde_json::from_str("0").unwrap();
        assert!(k.expired(Duration::ZERO));
        assert!(!KeepAlive::Forever.expired(Duration::from_secs(1 << 40)));
        assert!(serde_json::from_str::<KeepAlive>("\"soon\"").is_err());
    }
}
