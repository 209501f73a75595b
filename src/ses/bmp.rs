//! BMP seal pictures as PNG, so every browser shows them the same way (GB/T 38540 allows a
//! `bmp` picture; browsers differ in which BMP variants they draw). Uncompressed BMPs only:
//! 1, 4 and 8 bits with a palette, 24-bit BGR and 32-bit BGRX (BI_RGB, or BI_BITFIELDS with
//! the usual masks). The PNG is RGB, 8 bits, its image data in stored deflate blocks: the
//! pictures are small and this needs no compressor.

/// Larger pictures are not converted (a seal picture is a few hundred pixels): each side, and
/// the whole, which bounds the work and the PNG's size (3 bytes a pixel) per request.
const MAX_SIDE: u32 = 4096;
const MAX_PIXELS: u64 = 2 * 1024 * 1024;

/// The PNG of a BMP picture, or `None` when it is not an uncompressed BMP this reads.
pub fn to_png(bmp: &[u8]) -> Option<Vec<u8>> {
    let le16 = |i: usize| bmp.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let le32 = |i: usize| {
        bmp.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if bmp.get(..2)? != b"BM" {
        return None;
    }
    let pixels_at = le32(10)? as usize;
    let dib = le32(14)? as usize;
    if dib < 40 {
        return None; // OS/2 BITMAPCOREHEADER: not seen in seals
    }
    let width = le32(18)? as i32;
    let height = le32(22)? as i32;
    let bpp = le16(28)?;
    let compression = le32(30)?;
    let colors_used = le32(46)? as usize;
    let (w, h) = (width.unsigned_abs(), height.unsigned_abs());
    if width <= 0
        || h == 0
        || w > MAX_SIDE
        || h > MAX_SIDE
        || u64::from(w) * u64::from(h) > MAX_PIXELS
    {
        return None;
    }
    match (compression, bpp) {
        (0, 1 | 4 | 8 | 24 | 32) => {}
        // BI_BITFIELDS with BGRX masks is BI_RGB in disguise.
        (3, 32) if (le32(54)?, le32(58)?, le32(62)?) == (0x00FF_0000, 0x0000_FF00, 0x0000_00FF) => {
        }
        _ => return None,
    }
    let palette = if bpp <= 8 {
        let n = if colors_used == 0 {
            1usize << bpp
        } else {
            colors_used.min(256)
        };
        let start = 14 + dib;
        let table = bmp.get(start..start + 4 * n)?;
        table.chunks_exact(4).map(|c| [c[2], c[1], c[0]]).collect()
    } else {
        Vec::new()
    };
    let stride = (usize::from(bpp) * w as usize).div_ceil(32) * 4;
    let rows = bmp.get(pixels_at..pixels_at.checked_add(stride.checked_mul(h as usize)?)?)?;
    // Scanlines with filter byte 0; BMP rows run bottom-up unless the height is negative.
    let mut raw = Vec::with_capacity((3 * w as usize + 1) * h as usize);
    for y in 0..h as usize {
        let src_row = if height > 0 { h as usize - 1 - y } else { y };
        let row = rows.get(src_row * stride..(src_row + 1) * stride)?;
        raw.push(0);
        for x in 0..w as usize {
            let rgb = match bpp {
                24 | 32 => {
                    let at = x * usize::from(bpp / 8);
                    let p = row.get(at..at + 3)?;
                    [p[2], p[1], p[0]]
                }
                _ => {
                    let bit = x * usize::from(bpp);
                    let byte = *row.get(bit / 8)?;
                    let shift = 8 - usize::from(bpp) - bit % 8;
                    let index = (byte >> shift) & ((1u16 << bpp) - 1) as u8;
                    *palette.get(usize::from(index))?
                }
            };
            raw.extend_from_slice(&rgb);
        }
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, adaptive, no interlace
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    chunk(&mut png, b"IEND", &[]);
    Some(png)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// RFC 1950 zlib stream of RFC 1951 stored (uncompressed) blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(0xFFFF).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// CRC-32 (ISO 3309, as PNG uses it).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BMP with a 40-byte header: `bpp`, the palette (BGR0 entries) and the rows as stored.
    fn bmp(w: i32, h: i32, bpp: u16, palette: &[[u8; 4]], rows: &[u8]) -> Vec<u8> {
        let offset = 14 + 40 + 4 * palette.len() as u32;
        let mut b = b"BM".to_vec();
        b.extend_from_slice(&(offset + rows.len() as u32).to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&offset.to_le_bytes());
        b.extend_from_slice(&40u32.to_le_bytes());
        b.extend_from_slice(&w.to_le_bytes());
        b.extend_from_slice(&h.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&bpp.to_le_bytes());
        b.extend_from_slice(&[0; 4]); // BI_RGB
        b.extend_from_slice(&(rows.len() as u32).to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&(palette.len() as u32).to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        for p in palette {
            b.extend_from_slice(p);
        }
        b.extend_from_slice(rows);
        b
    }

    /// The scanlines inside a PNG this module wrote (stored blocks only).
    fn scanlines(png: &[u8]) -> (u32, u32, Vec<u8>) {
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let mut i = 8;
        let (mut w, mut h, mut idat) = (0, 0, Vec::new());
        while i < png.len() {
            let len = u32::from_be_bytes(png[i..i + 4].try_into().unwrap()) as usize;
            let kind = &png[i + 4..i + 8];
            let data = &png[i + 8..i + 8 + len];
            let crc = u32::from_be_bytes(png[i + 8 + len..i + 12 + len].try_into().unwrap());
            assert_eq!(crc, crc32(&png[i + 4..i + 8 + len]), "chunk CRC");
            match kind {
                b"IHDR" => {
                    w = u32::from_be_bytes(data[0..4].try_into().unwrap());
                    h = u32::from_be_bytes(data[4..8].try_into().unwrap());
                }
                b"IDAT" => idat.extend_from_slice(data),
                _ => {}
            }
            i += 12 + len;
        }
        let mut raw = Vec::new();
        let mut j = 2;
        loop {
            let last = idat[j] & 1;
            let len = u16::from_le_bytes([idat[j + 1], idat[j + 2]]) as usize;
            raw.extend_from_slice(&idat[j + 5..j + 5 + len]);
            j += 5 + len;
            if last == 1 {
                break;
            }
        }
        (w, h, raw)
    }

    #[test]
    fn the_png_checksums_are_the_published_ones() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        assert_eq!(&zlib_stored(b"")[..2], &[0x78, 0x01]);
    }

    #[test]
    fn bottom_up_24_bit_rows_become_top_down_rgb() {
        // 2×2: bottom row red, blue; top row white, black; rows padded to 8 bytes.
        let rows = [
            0, 0, 255, 255, 0, 0, 0, 0, // bottom: red (BGR 0,0,255), blue
            255, 255, 255, 0, 0, 0, 0, 0, // top: white, black
        ];
        let png = to_png(&bmp(2, 2, 24, &[], &rows)).unwrap();
        let (w, h, raw) = scanlines(&png);
        assert_eq!((w, h), (2, 2));
        assert_eq!(raw, [0, 255, 255, 255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 255]);
    }

    #[test]
    fn palette_pictures_are_looked_up() {
        // 3×1, 8 bits: indices 1, 0, 1 with a red and white palette; top-down (negative height).
        let palette = [[255, 255, 255, 0], [0, 0, 255, 0]];
        let png = to_png(&bmp(3, -1, 8, &palette, &[1, 0, 1, 0])).unwrap();
        let (_, _, raw) = scanlines(&png);
        assert_eq!(raw, [0, 255, 0, 0, 255, 255, 255, 255, 0, 0]);
        // 1 bit: 0b1010_0000 over 3 pixels.
        let png = to_png(&bmp(3, 1, 1, &palette, &[0b1010_0000, 0, 0, 0])).unwrap();
        let (_, _, raw) = scanlines(&png);
        assert_eq!(raw, [0, 255, 0, 0, 255, 255, 255, 255, 0, 0]);
    }

    #[test]
    fn damaged_or_unusual_bmps_are_not_converted() {
        let good = bmp(2, 2, 24, &[], &[0; 16]);
        assert!(to_png(&good).is_some());
        assert!(to_png(&good[..good.len() - 1]).is_none(), "truncated rows");
        assert!(
            to_png(&bmp(5000, 1, 24, &[], &[0; 15000])).is_none(),
            "too wide"
        );
        assert!(to_png(&bmp(0, 1, 24, &[], &[])).is_none());
        let mut rle = good.clone();
        rle[30] = 1; // BI_RLE8
        assert!(to_png(&rle).is_none());
        assert!(to_png(b"BM").is_none());
        assert!(to_png(b"not a bmp at all, not at all").is_none());
        // Index beyond a short palette.
        assert!(to_png(&bmp(1, 1, 8, &[[0, 0, 0, 0]], &[5, 0, 0, 0])).is_none());
    }
}
