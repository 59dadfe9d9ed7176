//! The textual UUID layout (8-4-4-4-12 lowercase hex), shared by UUID values and derived insert ids.

/// Formats 16 bytes as a lowercase hyphenated UUID string, e.g.
/// `123e4567-e89b-12d3-a456-426614174000`.
pub(crate) fn hyphenated(bytes: &[u8; 16]) -> String {
    let hex = hex::encode(bytes);
    let mut out = String::with_capacity(36);
    for (i, range) in [0..8, 8..12, 12..16, 16..20, 20..32]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.push('-');
        }
        out.push_str(&hex[range]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_8_4_4_4_12_layout() {
        let bytes = [
            0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17,
            0x40, 0x00,
        ];
        assert_eq!(hyphenated(&bytes), "123e4567-e89b-12d3-a456-426614174000");
        assert_eq!(hyphenated(&[0; 16]), "00000000-0000-0000-0000-000000000000");
    }
}
