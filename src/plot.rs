//! Small PNG charts without a plotting stack: a canvas of RGB pixels, lines and dots, written as
//! an uncompressed (stored-deflate) PNG. Enough for the exported optimisation history.

pub type Rgb = [u8; 3];

pub const WHITE: Rgb = [255, 255, 255];
pub const GREY: Rgb = [200, 200, 200];
pub const BLACK: Rgb = [40, 40, 40];
pub const BLUE: Rgb = [31, 119, 180];
pub const ORANGE: Rgb = [255, 127, 14];
pub const RED: Rgb = [214, 39, 40];

pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pixels: Vec<Rgb>,
}

/// A chart area inside the canvas mapping data coordinates to pixels.
pub struct Frame {
    pub x: (f64, f64),
    pub y: (f64, f64),
    pub margin: usize,
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        Self { width, height, pixels: vec![WHITE; width * height] }
    }

    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            self.pixels[y as usize * self.width + x as usize] = c;
        }
    }

    pub fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    pub fn dot(&mut self, (x, y): (i64, i64), r: i64, c: Rgb) {
        for dy in -r..=r {
            for dx in -r..=r {
                if dx * dx + dy * dy <= r * r {
                    self.set(x + dx, y + dy, c);
                }
            }
        }
    }

    /// Pixel position of a data point in `frame`.
    pub fn at(&self, f: &Frame, x: f64, y: f64) -> (i64, i64) {
        let m = f.margin as f64;
        let w = self.width as f64 - 2.0 * m;
        let h = self.height as f64 - 2.0 * m;
        let span = |(lo, hi): (f64, f64)| if hi > lo { hi - lo } else { 1.0 };
        let px = m + (x - f.x.0) / span(f.x) * w;
        let py = self.height as f64 - m - (y - f.y.0) / span(f.y) * h;
        (px.round() as i64, py.round() as i64)
    }

    /// Axes and a light grid of `n` lines each way.
    pub fn axes(&mut self, f: &Frame, n: usize) {
        for i in 0..=n {
            let t = i as f64 / n as f64;
            let y = f.y.0 + t * (f.y.1 - f.y.0);
            let x = f.x.0 + t * (f.x.1 - f.x.0);
            let (a, b) = (self.at(f, f.x.0, y), self.at(f, f.x.1, y));
            self.line(a, b, GREY);
            let (a, b) = (self.at(f, x, f.y.0), self.at(f, x, f.y.1));
            self.line(a, b, GREY);
        }
        let (o, xe, ye) = (self.at(f, f.x.0, f.y.0), self.at(f, f.x.1, f.y.0), self.at(f, f.x.0, f.y.1));
        self.line(o, xe, BLACK);
        self.line(o, ye, BLACK);
    }

    /// The canvas as PNG bytes.
    pub fn png(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity(self.height * (1 + 3 * self.width));
        for row in self.pixels.chunks(self.width) {
            raw.push(0); // filter: none
            for p in row {
                raw.extend_from_slice(p);
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&(self.width as u32).to_be_bytes());
        ihdr.extend_from_slice(&(self.height as u32).to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &zlib_stored(&raw));
        chunk(&mut out, b"IEND", &[]);
        out
    }
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65535).collect();
    for (i, block) in blocks.iter().enumerate() {
        out.push(if i + 1 == blocks.len() { 1 } else { 0 });
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    if blocks.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}
