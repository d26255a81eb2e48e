//! Channel names: `^[A-Za-z0-9_.\-:@]{1,200}$`, namespace before the first `:`.

/// Longest channel name the protocol allows.
pub const MAX_CHANNEL_LEN: usize = 200;

/// Checks a channel name against the grammar of PROTOCOL.md section 3, so that
/// every entry point (WebSocket, HTTP, CLI) refuses the same names.
pub fn validate_channel(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_CHANNEL_LEN {
        return Err(format!(
            "channel name must be 1 to {MAX_CHANNEL_LEN} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '@')))
    {
        return Err(format!(
            "channel name contains {c:?}; allowed: A-Z a-z 0-9 _ . - : @"
        ));
    }
    Ok(())
}

/// The namespace of a channel (the part before the first `:`), which selects
/// its options; a name without `:` is in the default namespace `""`.
pub fn namespace_of(channel: &str) -> &str {
    match channel.find(':') {
        Some(i) => &channel[..i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert!(validate_channel("orders").is_ok());
        assert!(validate_channel("room:lobby-1@x.y_z").is_ok());
        assert!(validate_channel("").is_err());
        assert!(validate_channel("a b").is_err());
        assert!(validate_channel("é").is_err());
        assert!(validate_channel(&"a".repeat(200)).is_ok());
        assert!(validate_channel(&"a".repeat(201)).is_err());
    }

    #[test]
    fn namespaces() {
        assert_eq!(namespace_of("room:a:b"), "room");
        assert_eq!(namespace_of("metrics"), "");
        assert_eq!(namespace_of(":x"), "");
    }
}
