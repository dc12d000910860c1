//! A connection URL whose password is hidden wherever it is printed.
//!
//! PostgreSQL and Redis URLs carry credentials (`postgres://user:password@host/db`,
//! `redis://:password@host`, or `?password=` in the query). Settings are printed with `{:?}`
//! in start-up logs and error messages, so the type that holds a URL is the one place that
//! decides what is shown: `Debug` and `Display` replace the password with `***`, and only
//! [`ConnectionUrl::expose`] hands the real string to the driver.

use std::{convert::Infallible, fmt, str::FromStr};

#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, for the client library that connects with it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl FromStr for ConnectionUrl {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Hides the password of the user-info part (`user:password@`) and of `password=` query or
/// key-value parameters; everything else is kept so the URL still says where it points.
pub fn redact(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let rest = match url.find("://") {
        Some(scheme_end) => {
            let (scheme, after) = url.split_at(scheme_end + 3);
            out.push_str(scheme);
            let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
            let (authority, tail) = after.split_at(authority_end);
            match authority.rfind('@') {
                Some(at) => {
                    let (userinfo, host) = authority.split_at(at);
                    match userinfo.find(':') {
                        Some(colon) => {
                            out.push_str(&userinfo[..colon]);
                            out.push_str(":***");
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push_str(host);
                }
                None => out.push_str(authority),
            }
            tail
        }
        None => url,
    };
    out.push_str(&redact_password_parameters(rest));
    out
}

/// `password=secret` → `password=***` in a query string (`&`-separated) or a libpq key-value
/// string (space-separated).
fn redact_password_parameters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("password=") {
        let starts_parameter =
            found == 0 || matches!(rest.as_bytes()[found - 1], b'?' | b'&' | b' ' | b';');
        let value_start = found + "password=".len();
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        if starts_parameter {
            let value_end = rest.find(['&', ' ', '#', ';']).unwrap_or(rest.len());
            out.push_str("***");
            rest = &rest[value_end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_and_the_rest_is_kept() {
        let cases = [
            (
                "postgres://postgres:postgres@127.0.0.1:5432/pulse",
                "postgres://postgres:***@127.0.0.1:5432/pulse",
            ),
            ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("postgres://app@db/pulse", "postgres://app@db/pulse"),
            (
                "postgres://db/pulse?user=app&password=s3cret&sslmode=require",
                "postgres://db/pulse?user=app&password=***&sslmode=require",
            ),
            (
                "host=db user=app password=s3cret dbname=pulse",
                "host=db user=app password=*** dbname=pulse",
            ),
            ("postgres://a:b@c@host/db", "postgres://a:***@host/db"),
            (
                "postgres://db/pulse?old_password=x",
                "postgres://db/pulse?old_password=x",
            ),
        ];
        for (url, shown) in cases {
            let url = ConnectionUrl::new(url);
            assert_eq!(format!("{url:?}"), shown);
            assert_eq!(url.to_string(), shown);
        }
    }

    #[test]
    fn the_driver_still_gets_the_password() {
        let url: ConnectionUrl = "redis://:s3cret@redis:6379"
            .parse()
            .unwrap_or_else(|e| match e {});
        assert_eq!(url.expose(), "redis://:s3cret@redis:6379");
    }
}
