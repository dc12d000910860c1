//! The opaque page cursor of `ListPosts`: where the next page starts.
//!
//! A cursor names the last post of a page by its place in the page order, `(created_at,
//! post_id)`, so the next page is read by keyset ([`pulse_store::posts::page_after`]) instead of
//! by offset. It is URL-safe base64 (no padding) of a version byte, the time in microseconds
//! since the Unix epoch (big-endian `i64`; PostgreSQL keeps microseconds, so the time round-trips
//! exactly) and the post id in UTF-8. The version lets the layout change without misreading
//! cursors that clients still hold.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Datelike, Utc};
use pulse_store::posts::PageKey;

/// The layout written by [`encode`].
const VERSION: u8 = 1;
/// Version byte and time.
const HEADER_LEN: usize = 1 + 8;
/// Longest cursor text [`decode`] looks at: a header and the longest post id, encoded.
pub const MAX_CURSOR_LEN: usize = (HEADER_LEN + pulse_domain::MAX_POST_ID_LEN).div_ceil(3) * 4;

/// Why a cursor was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CursorError {
    #[error("cursor is too long")]
    TooLong,
    #[error("cursor is not URL-safe base64")]
    Encoding,
    #[error("cursor is too short")]
    TooShort,
    #[error("cursor has an unknown version")]
    Version,
    #[error("cursor holds a time out of range")]
    Time,
    #[error("cursor holds no valid post id")]
    PostId,
}

/// The cursor that continues after `key`.
pub fn encode(key: &PageKey) -> String {
    let mut bytes = Vec::with_capacity(HEADER_LEN + key.post_id.len());
    bytes.push(VERSION);
    bytes.extend_from_slice(&key.created_at.timestamp_micros().to_be_bytes());
    bytes.extend_from_slice(key.post_id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The key a cursor names; refused unless it is one [`encode`] could have written.
pub fn decode(cursor: &str) -> Result<PageKey, CursorError> {
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(CursorError::TooLong);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| CursorError::Encoding)?;
    let (header, post_id) = bytes
        .split_at_checked(HEADER_LEN)
        .ok_or(CursorError::TooShort)?;
    let (version, micros) = header.split_first().ok_or(CursorError::TooShort)?;
    if *version != VERSION {
        return Err(CursorError::Version);
    }
    let micros: [u8; 8] = micros.try_into().map_err(|_| CursorError::TooShort)?;
    // Only years PostgreSQL and RFC 3339 both hold: anything else would fail in the query.
    let created_at = DateTime::<Utc>::from_timestamp_micros(i64::from_be_bytes(micros))
        .filter(|t| (1..=9999).contains(&t.year()))
        .ok_or(CursorError::Time)?;
    let post_id = std::str::from_utf8(post_id).map_err(|_| CursorError::PostId)?;
    if post_id.is_empty() || post_id.len() > pulse_domain::MAX_POST_ID_LEN {
        return Err(CursorError::PostId);
    }
    Ok(PageKey {
        created_at,
        post_id: post_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key(post_id: &str) -> PageKey {
        PageKey {
            created_at: Utc
                .with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
                .single()
                .expect("valid time")
                + chrono::Duration::microseconds(123_456),
            post_id: post_id.into(),
        }
    }

    #[test]
    fn a_cursor_names_the_key_it_was_made_from() {
        for id in ["a", "tw-1", &"x".repeat(pulse_domain::MAX_POST_ID_LEN)] {
            let cursor = encode(&key(id));
            assert!(cursor.len() <= MAX_CURSOR_LEN, "{cursor}");
            assert!(
                cursor
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "URL-safe: {cursor}"
            );
            assert_eq!(decode(&cursor), Ok(key(id)));
        }
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let raw = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let mut v2 = URL_SAFE_NO_PAD
            .decode(encode(&key("a")))
            .expect("own cursor");
        v2[0] = 2;
        let far_future = [&[VERSION][..], &i64::MAX.to_be_bytes(), b"a"].concat();
        let not_utf8 = [&[VERSION][..], &0i64.to_be_bytes(), &[0xff, 0xfe]].concat();
        let cases = [
            ("".to_owned(), CursorError::TooShort),
            ("not base64!".to_owned(), CursorError::Encoding),
            ("a+b/".to_owned(), CursorError::Encoding),
            (raw(&[VERSION, 0, 0]), CursorError::TooShort),
            (raw(&[VERSION, 0, 0, 0, 0, 0, 0, 0, 0]), CursorError::PostId),
            (raw(&v2), CursorError::Version),
            (raw(&far_future), CursorError::Time),
            (raw(&not_utf8), CursorError::PostId),
            ("A".repeat(MAX_CURSOR_LEN + 1), CursorError::TooLong),
        ];
        for (cursor, expected) in cases {
            assert_eq!(decode(&cursor), Err(expected), "{cursor:?}");
        }
    }
}
