//! Where a token realm may be, and whether the registry's credentials may go there.
//!
//! A registry names its token server in a `WWW-Authenticate` challenge, so a hostile or
//! compromised registry chooses where the daemon connects next. The rules:
//!
//! * The realm must be HTTPS; plain HTTP only when the registry itself is reached over
//!   plain HTTP (a loopback registry, or one listed as insecure).
//! * A realm on a link-local address (cloud metadata services, `169.254.0.0/16`,
//!   `fe80::/10`) or an unspecified/broadcast address is always refused.
//! * A realm on a loopback address only for a registry on loopback; a realm on a private
//!   address (RFC 1918, carrier-grade NAT, unique-local IPv6) only for a registry on a
//!   private or loopback address. Names are resolved and every address is judged, so a
//!   public name that points at `127.0.0.1` counts as loopback.
//! * Credentials go to the realm when it is the registry's own host, or an HTTPS host of
//!   the same registrable domain by the public suffix list (`auth.docker.io` for
//!   `registry-1.docker.io`, never `auth.evil.co.uk` for `registry.example.co.uk`).
//!   Any other allowed realm is asked for an anonymous token.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::Url;

use crate::config::host_name;
use crate::error::RegistryError;

/// The address space a host is in, from the most open to the most internal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// The public internet.
    Public,
    /// Private networks: RFC 1918, 100.64.0.0/10, fc00::/7.
    Private,
    /// This machine: 127.0.0.0/8, ::1, `localhost`.
    Loopback,
    /// Never contacted for tokens: link-local (metadata services), unspecified, broadcast.
    LinkLocal,
}

/// The scope of an address; IPv4-mapped and IPv4-compatible IPv6 count as their IPv4.
pub fn scope_of_ip(ip: IpAddr) -> Scope {
    match ip {
        IpAddr::V4(v4) => scope_of_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4() {
            Some(v4) if !v6.is_loopback() && !v6.is_unspecified() => scope_of_v4(v4),
            _ => scope_of_v6(v6),
        },
    }
}

fn scope_of_v4(v4: Ipv4Addr) -> Scope {
    let [a, b, ..] = v4.octets();
    if v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast() || a == 0 {
        Scope::LinkLocal
    } else if v4.is_loopback() {
        Scope::Loopback
    } else if v4.is_private() || (a == 100 && (b & 0xc0) == 64) {
        Scope::Private
    } else {
        Scope::Public
    }
}

fn scope_of_v6(v6: Ipv6Addr) -> Scope {
    let seg = v6.segments()[0];
    if v6.is_unspecified() || (seg & 0xffc0) == 0xfe80 || (seg & 0xffc0) == 0xfec0 {
        Scope::LinkLocal
    } else if v6.is_loopback() {
        Scope::Loopback
    } else if (seg & 0xfe00) == 0xfc00 {
        Scope::Private
    } else {
        Scope::Public
    }
}

/// The scope of a URL's host: literal addresses directly, `localhost` and `*.localhost`
/// as loopback, other names by resolving them (the most internal address wins).
pub async fn scope_of(url: &Url) -> Result<Scope, String> {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let name = host_name(&host).trim_end_matches('.');
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(scope_of_ip(ip));
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return Ok(Scope::Loopback);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs = tokio::net::lookup_host((name, port))
        .await
        .map_err(|e| format!("{name} does not resolve: {e}"))?;
    addrs
        .map(|a| scope_of_ip(a.ip()))
        .max()
        .ok_or_else(|| format!("{name} resolves to no address"))
}

/// Judges a realm for a registry, given both hosts' scopes: an error when the realm may
/// not be contacted, else whether the registry's credentials may be sent to it.
pub fn judge(
    registry: &Url,
    registry_scope: Scope,
    realm: &Url,
    realm_scope: Scope,
) -> Result<bool, RegistryError> {
    let reg_host = registry.host_str().unwrap_or_default().to_ascii_lowercase();
    let realm_host = realm.host_str().unwrap_or_default().to_ascii_lowercase();
    let refuse = |why: &str| {
        Err(RegistryError::protocol(
            &reg_host,
            format!("token realm {realm} refused: {why}"),
        ))
    };
    match realm.scheme() {
        "https" => {}
        "http" if registry.scheme() == "http" => {}
        _ => return refuse("it is not HTTPS"),
    }
    match realm_scope {
        Scope::LinkLocal => return refuse("a link-local, metadata or unspecified address"),
        Scope::Loopback if registry_scope != Scope::Loopback => {
            return refuse("a loopback address, and the registry is not on this machine")
        }
        Scope::Private if registry_scope == Scope::Public => {
            return refuse("a private-network address, and the registry is public")
        }
        _ => {}
    }
    let same_host = host_name(&realm_host) == host_name(&reg_host);
    let same_site = realm.scheme() == "https"
        && registrable(&realm_host).is_some_and(|r| Some(r) == registrable(&reg_host));
    Ok(same_host || same_site)
}

/// The registrable domain (public suffix plus one label) of a host name; none for
/// addresses and for names that are a public suffix themselves.
fn registrable(host: &str) -> Option<&str> {
    let h = host_name(host).trim_end_matches('.');
    if h.parse::<IpAddr>().is_ok() {
        return None;
    }
    psl::domain_str(h)
}

/// Resolves both hosts and judges the realm (see the module's rules).
pub async fn check_realm(registry: &Url, realm: &Url) -> Result<bool, RegistryError> {
    let reg_host = registry.host_str().unwrap_or_default();
    let fail = |why: String| RegistryError::protocol(reg_host, format!("token realm: {why}"));
    let registry_scope = scope_of(registry).await.map_err(fail)?;
    let realm_scope = scope_of(realm).await.map_err(fail)?;
    judge(registry, registry_scope, realm, realm_scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_fall_in_their_scopes() {
        let s = |a: &str| scope_of_ip(a.parse().unwrap());
        for a in [
            "169.254.169.254",
            "0.0.0.0",
            "255.255.255.255",
            "fe80::1",
            "::",
        ] {
            assert_eq!(s(a), Scope::LinkLocal, "{a}");
        }
        for a in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(s(a), Scope::Loopback, "{a}");
        }
        for a in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
        ] {
            assert_eq!(s(a), Scope::Private, "{a}");
        }
        for a in ["8.8.8.8", "100.128.0.1", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert_eq!(s(a), Scope::Public, "{a}");
        }
        assert_eq!(s("::ffff:169.254.169.254"), Scope::LinkLocal);
    }

    #[test]
    fn realms_are_judged_by_scheme_scope_and_site() {
        use Scope::*;
        let hub = u("https://registry-1.docker.io/");
        let j = |reg: &Url, rs, realm: &str, ss| judge(reg, rs, &u(realm), ss);
        assert!(j(&hub, Public, "https://auth.docker.io/token", Public).unwrap());
        assert!(!j(&hub, Public, "https://auth.example.com/token", Public).unwrap());
        assert!(j(&hub, Public, "http://auth.docker.io/token", Public).is_err());
        assert!(j(&hub, Public, "https://169.254.169.254/t", LinkLocal).is_err());
        assert!(j(&hub, Public, "https://127.0.0.1/t", Loopback).is_err());
        assert!(j(&hub, Public, "https://10.0.0.1/t", Private).is_err());
        // A public name that resolves inside is judged by where it points.
        assert!(j(&hub, Public, "https://auth.docker.io/t", Loopback).is_err());
        let eu = u("https://registry.example.co.uk/");
        assert!(!j(&eu, Public, "https://auth.evil.co.uk/t", Public).unwrap());
        assert!(j(&eu, Public, "https://auth.example.co.uk/t", Public).unwrap());
        let pages = u("https://alice.github.io/");
        assert!(!j(&pages, Public, "https://mallory.github.io/t", Public).unwrap());
        let local = u("http://127.0.0.1:5000/");
        assert!(j(&local, Loopback, "http://127.0.0.1:6000/token", Loopback).unwrap());
        assert!(j(&local, Loopback, "http://10.0.0.1/token", Private).is_ok());
        assert!(j(&local, Loopback, "http://169.254.169.254/t", LinkLocal).is_err());
        let lan = u("https://reg.lan:5000/");
        assert!(j(&lan, Private, "https://auth.lan/t", Private).is_ok());
        assert!(j(&lan, Private, "https://127.0.0.1/t", Loopback).is_err());
        assert!(!j(&lan, Private, "https://10.9.9.9/t", Private).unwrap());
    }

    #[tokio::test]
    async fn names_are_resolved_before_they_are_judged() {
        assert_eq!(
            scope_of(&u("https://localhost./")).await,
            Ok(Scope::Loopback)
        );
        assert_eq!(
            scope_of(&u("http://a.localhost:1/")).await,
            Ok(Scope::Loopback)
        );
        assert_eq!(scope_of(&u("https://0x7f.1/")).await, Ok(Scope::Loopback));
        assert_eq!(
            scope_of(&u("https://[::ffff:a9fe:a9fe]/")).await,
            Ok(Scope::LinkLocal)
        );
        let public = u("https://8.8.8.8/");
        assert!(check_realm(&public, &u("https://localhost/t"))
            .await
            .is_err());
        assert!(check_realm(&public, &u("https://nothing.invalid/t"))
            .await
            .is_err());
        let local = u("http://127.0.0.1:5000/");
        assert!(check_realm(&local, &u("http://127.0.0.1:6000/t"))
            .await
            .unwrap());
    }
}
