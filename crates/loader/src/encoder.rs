//! gzip for request bodies (`Content-Encoding: gzip`, recommended by Mixpanel). Objects build the
//! uncompressed body; this compresses it, the same way for every object.

use std::io::Write as _;

use flate2::Compression;
use flate2::write::GzEncoder;

/// Compression level: the fastest. Event JSON is repetitive, so level 1 already shrinks it several
/// times, and on a small machine the CPU saved matters more than the last bytes on the wire.
const LEVEL: u32 = 1;

/// `body` gzip-compressed.
pub fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        Compression::new(LEVEL),
    );
    encoder.write_all(body)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use flate2::read::GzDecoder;

    use super::*;

    #[test]
    fn round_trips() {
        let body = br#"[{"event":"a","properties":{"time":1}}]"#.repeat(100);
        let compressed = gzip(&body).unwrap();
        assert!(compressed.len() < body.len() / 4);
        let mut back = Vec::new();
        GzDecoder::new(&compressed[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
    }
}
