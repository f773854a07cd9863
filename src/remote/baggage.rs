//! W3C `baggage`: the header scope-local values travel in to the next
//! service. A list of `name=value` members separated by commas; a value is
//! percent-encoded; a member may carry `;`-separated properties, which are
//! kept out of the value. Incoming headers are untrusted: a malformed member
//! is skipped (with a debug event), never a panic, and a header beyond the
//! limits is cut at them.

use std::fmt::Write as _;

/// How much of an incoming `baggage` header a server reads: W3C's minimum
/// limits (8,192 bytes, 64 members) unless told otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) bytes: usize,
    pub(crate) members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            bytes: 8_192,
            members: 64,
        }
    }
}

/// The members of a header value, decoded: `(name, value)`, in order,
/// malformed ones skipped, at most `limits.members`, and nothing past
/// `limits.bytes` (a member cut by the limit is dropped).
pub(crate) fn parse(header: &[u8], limits: Limits) -> Vec<(String, String)> {
    let header = if header.len() > limits.bytes {
        tracing::debug!(
            bytes = header.len(),
            limit = limits.bytes,
            "baggage header over the limit: the rest is ignored"
        );
        // Up to the last member boundary inside the limit.
        let cut = &header[..limits.bytes];
        match cut.iter().rposition(|&b| b == b',') {
            Some(end) => &cut[..end],
            None => return Vec::new(),
        }
    } else {
        header
    };
    let mut members = Vec::new();
    for raw in header.split(|&b| b == b',') {
        if members.len() == limits.members {
            tracing::debug!(
                limit = limits.members,
                "baggage: members over the limit ignored"
            );
            break;
        }
        match member(raw) {
            Some(member) => members.push(member),
            None => tracing::debug!(
                member = %String::from_utf8_lossy(raw),
                "baggage: malformed member skipped"
            ),
        }
    }
    members
}

/// One `name=value;properties` member, trimmed of optional whitespace.
fn member(raw: &[u8]) -> Option<(String, String)> {
    let raw = trim(raw);
    let entry = raw.split(|&b| b == b';').next()?;
    let eq = entry.iter().position(|&b| b == b'=')?;
    let name = trim(&entry[..eq]);
    let value = trim(&entry[eq + 1..]);
    if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
        return None;
    }
    if !value.iter().all(|&b| is_value_octet(b)) {
        return None;
    }
    let name = String::from_utf8(name.to_vec()).ok()?;
    let value = percent_decode(value)?;
    Some((name, value))
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(start), Some(end)) => &bytes[start..=end],
        _ => &[],
    }
}

/// RFC 7230's `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// W3C's `baggage-octet`: printable ASCII except space, `"`, `,`, `;`, `\`.
fn is_value_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

fn percent_decode(value: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `value` with every byte that is not a plain `baggage-octet` (and `%`
/// itself) percent-encoded.
fn percent_encode(value: &str, out: &mut String) {
    for &b in value.as_bytes() {
        if is_value_octet(b) && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// A header value for `members` (names must be tokens; others are left
/// out), or `None` if there is nothing to send.
pub(crate) fn format<'a>(members: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<String> {
    let mut out = String::new();
    for (name, value) in members {
        if name.is_empty() || !name.bytes().all(is_token) {
            continue;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(name);
        out.push('=');
        percent_encode(value, &mut out);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_values_and_properties() {
        let parsed = parse(
            b"tenant=acme, request_id = r%2D1;ttl=3 ,flag=,bad name=x,=x,x",
            Limits::default(),
        );
        assert_eq!(
            parsed,
            [
                ("tenant".to_owned(), "acme".to_owned()),
                ("request_id".to_owned(), "r-1".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
    }

    #[test]
    fn bad_percent_escapes_and_non_utf8_are_skipped() {
        let parsed = parse(b"a=%zz,b=%4,c=%FF%FE,d=ok", Limits::default());
        assert_eq!(parsed, [("d".to_owned(), "ok".to_owned())]);
    }

    #[test]
    fn limits_cut_members_and_bytes() {
        let many: Vec<String> = (0..100).map(|i| format!("k{i}=v")).collect();
        let header = many.join(",");
        assert_eq!(parse(header.as_bytes(), Limits::default()).len(), 64);
        let limits = Limits {
            bytes: 10,
            members: 64,
        };
        // "k0=v,k1=v," is 10 bytes: two whole members fit.
        assert_eq!(parse(header.as_bytes(), limits).len(), 2);
        assert!(parse(b"k0=vvvvvvvvvvvvvvv", limits).is_empty());
    }

    #[test]
    fn format_encodes_what_parse_decodes() {
        let value = "a b,c;d%e\"é";
        let header = format([("k", value), ("bad name", "x")]).unwrap();
        assert!(!header.contains(' '));
        assert_eq!(
            parse(header.as_bytes(), Limits::default()),
            [("k".to_owned(), value.to_owned())]
        );
        assert_eq!(format(std::iter::empty()), None);
    }
}
