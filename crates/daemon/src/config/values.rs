//! Typed option values that flags, the environment and the file share: each parses the
//! same text wherever it comes from, and prints back in the form it reads.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use modelrunner_scheduler::KeepAlive;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Implements serde as the value's text (`Display` out, `FromStr` in).
macro_rules! text_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Where to listen over TCP: an address, or nowhere (`"none"`: the Unix socket only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

impl FromStr for Listen {
    type Err = String;

    fn from_str(v: &str) -> Result<Self, String> {
        if v.eq_ignore_ascii_case("none") {
            return Ok(Listen(None));
        }
        v.parse()
            .map(|a| Listen(Some(a)))
            .map_err(|_| format!("must be ADDRESS:PORT or \"none\", got {v:?}"))
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("none"),
        }
    }
}

text_serde!(Listen);

/// A duration such as `"5s"` or `"1m30s"` (Go's form; never negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;

    fn from_str(v: &str) -> Result<Self, String> {
        match KeepAlive::parse(v) {
            Ok(KeepAlive::For(d)) => Ok(Span(d)),
            _ => Err(format!(
                "must be a duration like \"5s\" or \"1m\", got {v:?}"
            )),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        KeepAlive::For(self.0).fmt(f)
    }
}

text_serde!(Span);

/// A number of bytes: `"8GiB"`, `"512MiB"`, `"2G"`, `"100M"`, or plain bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = String;

    fn from_str(v: &str) -> Result<Self, String> {
        parse_size(v)
            .map(Size)
            .ok_or_else(|| format!("must be a size like \"8GiB\", got {v:?}"))
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(b) => Ok(Size(b)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// "8GiB", "512MiB", "2G", "100M", or bytes.
pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return None,
    };
    let bytes = n * scale as f64;
    // At most what a TOML integer holds.
    (0.0..9e18).contains(&bytes).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_their_own_text() {
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("2G"), Some(2_000_000_000));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("-1"), None);
        assert_eq!("none".parse::<Listen>().unwrap(), Listen(None));
        for s in ["127.0.0.1:9", "none"] {
            assert_eq!(s.parse::<Listen>().unwrap().to_string(), s);
        }
        assert_eq!(
            "250ms".parse::<Span>().unwrap(),
            Span(Duration::from_millis(250))
        );
        assert!("-1".parse::<Span>().is_err());
        assert_eq!("1m30s".parse::<Span>().unwrap().to_string(), "1m30s");
        let s: Size = toml::Value::String("1.5GiB".into()).try_into().unwrap();
        assert_eq!(s, Size(3 << 29));
    }
}
