//! The one image sniffer: which picture format seal-picture bytes are (by content, never by the
//! declared type) and, where the format says, their size in pixels. Used for seal pictures
//! wherever they are shown or described (seal query answers, the console, reports).
//!
//! A leaf: it reads bytes only. It must not decode images or trust the producer's `type` field.

/// Picture formats a browser can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureFormat {
    Png,
    Jpeg,
    Gif,
    Bmp,
    Svg,
}

impl PictureFormat {
    /// The format of `data`, from its first bytes; `None` for anything else (OFD-packaged
    /// pictures, unknown formats).
    pub fn sniff(data: &[u8]) -> Option<Self> {
        if data.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Some(PictureFormat::Png);
        }
        if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Some(PictureFormat::Jpeg);
        }
        if data.starts_with(b"GIF8") {
            return Some(PictureFormat::Gif);
        }
        if data.starts_with(b"BM") {
            return Some(PictureFormat::Bmp);
        }
        let head = String::from_utf8_lossy(data.get(..1024).unwrap_or(data));
        let head = head.trim_start_matches('\u{feff}').trim_start();
        if (head.starts_with("<?xml") || head.starts_with("<svg") || head.starts_with("<!--"))
            && head.contains("<svg")
        {
            return Some(PictureFormat::Svg);
        }
        None
    }

    /// The browser content type.
    pub fn content_type(self) -> &'static str {
        match self {
            PictureFormat::Png => "image/png",
            PictureFormat::Jpeg => "image/jpeg",
            PictureFormat::Gif => "image/gif",
            PictureFormat::Bmp => "image/bmp",
            PictureFormat::Svg => "image/svg+xml",
        }
    }
}

/// Width and height in pixels of a PNG, JPEG or GIF picture; `None` when the format does not
/// say (or is not one of those).
pub fn pixel_size(data: &[u8]) -> Option<(u32, u32)> {
    let be16 = |i: usize| {
        data.get(i..i + 2)
            .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let be32 = |i: usize| {
        data.get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let le16 = |i: usize| {
        data.get(i..i + 2)
            .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
    };
    match PictureFormat::sniff(data)? {
        PictureFormat::Png => Some((be32(16)?, be32(20)?)),
        PictureFormat::Gif => Some((le16(6)?, le16(8)?)),
        PictureFormat::Jpeg => {
            // Walk the segments to the first start-of-frame.
            let mut i = 2usize;
            while i + 9 < data.len() {
                if data.get(i) != Some(&0xFF) {
                    return None;
                }
                let marker = *data.get(i + 1)?;
                if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
                    return Some((be16(i + 7)?, be16(i + 5)?));
                }
                let len = usize::try_from(be16(i + 2)?).ok()?;
                if len < 2 {
                    return None;
                }
                i = i.checked_add(2 + len)?;
            }
            None
        }
        PictureFormat::Bmp | PictureFormat::Svg => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_the_bytes_not_the_name() {
        assert_eq!(
            PictureFormat::sniff(b"\x89PNG\r\n\x1a\nrest"),
            Some(PictureFormat::Png)
        );
        assert_eq!(
            PictureFormat::sniff(b"\xFF\xD8\xFF\xE0").map(PictureFormat::content_type),
            Some("image/jpeg")
        );
        assert_eq!(
            PictureFormat::sniff(b"<?xml version=\"1.0\"?><svg xmlns=\"x\"/>"),
            Some(PictureFormat::Svg)
        );
        assert_eq!(PictureFormat::sniff(b"PK\x03\x04ofd"), None);
        assert_eq!(PictureFormat::sniff(b""), None);
    }

    #[test]
    fn pixel_sizes_of_png_gif_and_jpeg() {
        assert_eq!(
            pixel_size(&crate::ses::kit::png_header(40, 30)),
            Some((40, 30))
        );
        assert_eq!(pixel_size(b"GIF89a\x10\x00\x08\x00"), Some((16, 8)));
        // SOI, APP0 (length 4), SOF0 with height 0x0102 and width 0x0304.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC0, 0x00, 0x0b, 0x08, 0x01,
            0x02, 0x03, 0x04, 0x01, 0x00, 0x00, 0x00,
        ];
        assert_eq!(pixel_size(&jpeg), Some((0x0304, 0x0102)));
        assert_eq!(pixel_size(b"\xFF\xD8\xFF\xE0\x00"), None);
        assert_eq!(pixel_size(b"BM...."), None);
    }
}
