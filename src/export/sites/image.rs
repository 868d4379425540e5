//! A small RGB canvas for chips and the overview map: robust contrast
//! stretch, polygon fill and outline, a scale bar, text in a built-in 3x5
//! bitmap font, and PNG encoding with tEXt metadata.
//!
//! Why built in: the chips must carry their scale as readable text without a
//! font file or a rendering library, and the PNG's tEXt chunks record the
//! scale and the site for tools that read metadata.

use crate::error::{Error, Result};
use std::path::Path;

pub struct Canvas {
    pub w: usize,
    pub h: usize,
    pub data: Vec<u8>,
}

impl Canvas {
    pub fn new(w: usize, h: usize, bg: [u8; 3]) -> Self {
        let mut data = Vec::with_capacity(w * h * 3);
        for _ in 0..w * h {
            data.extend_from_slice(&bg);
        }
        Canvas { w, h, data }
    }

    pub fn get(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.w + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    pub fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.data[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Mixes `c` into the pixel with weight `a` in [0, 1].
    pub fn blend(&mut self, x: i64, y: i64, c: [u8; 3], a: f32) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            for (d, &c) in self.data[i..i + 3].iter_mut().zip(&c) {
                *d = (*d as f32 * (1.0 - a) + c as f32 * a).round() as u8;
            }
        }
    }

    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: [u8; 3]) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, c);
            }
        }
    }

    /// Copies another canvas in at (x, y).
    pub fn paste(&mut self, o: &Canvas, x: i64, y: i64) {
        for yy in 0..o.h {
            for xx in 0..o.w {
                self.set(x + xx as i64, y + yy as i64, o.get(xx, yy));
            }
        }
    }

    /// A line `t` pixels thick (Bresenham with a square brush).
    pub fn line(&mut self, a: (f64, f64), b: (f64, f64), c: [u8; 3], t: i64) {
        let (mut x0, mut y0) = (a.0.round() as i64, a.1.round() as i64);
        let (x1, y1) = (b.0.round() as i64, b.1.round() as i64);
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let mut err = dx + dy;
        let r0 = -(t - 1) / 2;
        loop {
            for oy in r0..r0 + t {
                for ox in r0..r0 + t {
                    self.set(x0 + ox, y0 + oy, c);
                }
            }
            if x0 == x1 && y0 == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x0 += sx;
            }
            if e2 <= dx {
                err += dx;
                y0 += sy;
            }
        }
    }

    /// Draws closed rings (canvas coordinates).
    pub fn rings(&mut self, rings: &[Vec<(f64, f64)>], c: [u8; 3], t: i64) {
        for r in rings {
            for i in 0..r.len() {
                self.line(r[i], r[(i + 1) % r.len()], c, t);
            }
        }
    }

    /// Fills the inside of rings (even-odd, pixel centres) by blending `c`.
    pub fn fill_rings(&mut self, rings: &[Vec<(f64, f64)>], c: [u8; 3], a: f32) {
        for y in 0..self.h {
            let yc = y as f64 + 0.5;
            let mut xs = Vec::new();
            for r in rings {
                let n = r.len();
                for i in 0..n {
                    let (p, q) = (r[i], r[(i + 1) % n]);
                    if (p.1 > yc) != (q.1 > yc) {
                        xs.push(p.0 + (yc - p.1) * (q.0 - p.0) / (q.1 - p.1));
                    }
                }
            }
            xs.sort_by(f64::total_cmp);
            for pair in xs.chunks(2) {
                if let [a0, a1] = pair {
                    let x0 = (a0 - 0.5).ceil().max(0.0) as i64;
                    let x1 = (a1 - 0.5).floor().min(self.w as f64 - 1.0) as i64;
                    for x in x0..=x1 {
                        self.blend(x, y as i64, c, a);
                    }
                }
            }
        }
    }

    /// Text in the 3x5 font, `s` pixels per font pixel, with a one-pixel dark
    /// halo so it reads on any background. Returns the width drawn.
    pub fn text(&mut self, x: i64, y: i64, text: &str, s: i64, c: [u8; 3]) -> i64 {
        let halo = [0, 0, 0];
        for pass in 0..2 {
            let mut cx = x;
            for ch in text.chars() {
                let g = glyph(ch);
                for (gy, row) in g.iter().enumerate() {
                    for (gx, b) in row.bytes().enumerate() {
                        if b != b'#' {
                            continue;
                        }
                        let (px, py) = (cx + gx as i64 * s, y + gy as i64 * s);
                        if pass == 0 {
                            self.fill_rect(px - 1, py - 1, s + 2, s + 2, halo);
                        } else {
                            self.fill_rect(px, py, s, s, c);
                        }
                    }
                }
                cx += (g[0].len() as i64 + 1) * s;
            }
            if pass == 1 {
                return cx - x;
            }
        }
        0
    }

    /// A scale bar of `len_m` metres at `m_per_px`, lower-left at (x, y).
    pub fn scale_bar(&mut self, x: i64, y: i64, len_m: f64, m_per_px: f64) {
        let w = (len_m / m_per_px).round() as i64;
        self.fill_rect(x - 1, y - 5, w + 2, 6, [0, 0, 0]);
        self.fill_rect(x, y - 4, w, 4, [255, 255, 255]);
        self.text(x, y - 17, &format_metres(len_m), 2, [255, 255, 255]);
    }

    /// PNG bytes with tEXt chunks.
    pub fn png(&self, texts: &[(&str, String)]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.w as u32, self.h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            for (k, v) in texts {
                enc.add_text_chunk(k.to_string(), latin1(v))
                    .map_err(|e| Error::invalid(format!("PNG text: {e}")))?;
            }
            let mut wr = enc
                .write_header()
                .map_err(|e| Error::invalid(format!("PNG: {e}")))?;
            wr.write_image_data(&self.data)
                .map_err(|e| Error::invalid(format!("PNG: {e}")))?;
            wr.finish()
                .map_err(|e| Error::invalid(format!("PNG: {e}")))?;
        }
        Ok(out)
    }

    pub fn write_png(&self, path: &Path, texts: &[(&str, String)]) -> Result<Vec<u8>> {
        let bytes = self.png(texts).map_err(|e| Error::output(path, e))?;
        std::fs::write(path, &bytes).map_err(|e| Error::output(path, e))?;
        Ok(bytes)
    }
}

/// tEXt holds Latin-1 only.
fn latin1(s: &str) -> String {
    s.chars()
        .map(|c| if (c as u32) < 256 { c } else { '?' })
        .collect()
}

/// "500 m", "2 km".
pub fn format_metres(m: f64) -> String {
    if m >= 1000.0 {
        let km = m / 1000.0;
        if (km - km.round()).abs() < 1e-9 {
            format!("{:.0} km", km)
        } else {
            format!("{km:.1} km")
        }
    } else {
        format!("{m:.0} m")
    }
}

/// The longest 1-2-5 length (m) not over `max_m`.
pub fn nice_length(max_m: f64) -> f64 {
    let mut best = 1.0;
    let mut p = 1.0;
    while p <= 1e7 {
        for m in [1.0, 2.0, 5.0] {
            if m * p <= max_m {
                best = m * p;
            }
        }
        p *= 10.0;
    }
    best
}

/// Percentile (0-100) of the finite values.
pub fn percentile(v: &[f32], p: f64) -> Option<f32> {
    let mut f: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if f.is_empty() {
        return None;
    }
    let k = ((p / 100.0) * (f.len() - 1) as f64).round() as usize;
    Some(*f.select_nth_unstable_by(k, |a, b| a.total_cmp(b)).1)
}

/// A 2-98% stretch per band over the values of every image given, so all
/// images of one chip share one stretch and brightness changes stay visible.
pub fn stretch(bands: &[&[f32]]) -> (f32, f32) {
    let all: Vec<f32> = bands.iter().flat_map(|b| b.iter().copied()).collect();
    let lo = percentile(&all, 2.0).unwrap_or(0.0);
    let hi = percentile(&all, 98.0).unwrap_or(1.0);
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1e-3)
    }
}

/// An RGB canvas from three bands (w x h) and their (lo, hi) stretches;
/// invalid pixels are dark grey.
pub fn rgb(r: &[f32], g: &[f32], b: &[f32], w: usize, h: usize, st: [(f32, f32); 3]) -> Canvas {
    let mut c = Canvas::new(w, h, [40, 40, 40]);
    for i in 0..w * h {
        let v = [r[i], g[i], b[i]];
        if v.iter().any(|x| !x.is_finite()) {
            continue;
        }
        for k in 0..3 {
            let t = ((v[k] - st[k].0) / (st[k].1 - st[k].0)).clamp(0.0, 1.0);
            c.data[i * 3 + k] = (t * 255.0).round() as u8;
        }
    }
    c
}

/// Nearest-neighbour enlargement by an integer factor.
pub fn enlarge(c: &Canvas, k: usize) -> Canvas {
    if k <= 1 {
        return Canvas {
            w: c.w,
            h: c.h,
            data: c.data.clone(),
        };
    }
    let mut o = Canvas::new(c.w * k, c.h * k, [0, 0, 0]);
    for y in 0..o.h {
        for x in 0..o.w {
            let p = c.get(x / k, y / k);
            o.set(x as i64, y as i64, p);
        }
    }
    o
}

/// The 3x5 font: digits, capitals (lower case drawn as capitals, except m),
/// and a few signs.
fn glyph(c: char) -> [&'static str; 5] {
    match c {
        '0' => ["###", "#.#", "#.#", "#.#", "###"],
        '1' => [".#.", "##.", ".#.", ".#.", "###"],
        '2' => ["###", "..#", "###", "#..", "###"],
        '3' => ["###", "..#", ".##", "..#", "###"],
        '4' => ["#.#", "#.#", "###", "..#", "..#"],
        '5' => ["###", "#..", "###", "..#", "###"],
        '6' => ["###", "#..", "###", "#.#", "###"],
        '7' => ["###", "..#", ".#.", ".#.", ".#."],
        '8' => ["###", "#.#", "###", "#.#", "###"],
        '9' => ["###", "#.#", "###", "..#", "###"],
        'A' | 'a' => [".#.", "#.#", "###", "#.#", "#.#"],
        'B' | 'b' => ["##.", "#.#", "##.", "#.#", "##."],
        'C' | 'c' => [".##", "#..", "#..", "#..", ".##"],
        'D' | 'd' => ["##.", "#.#", "#.#", "#.#", "##."],
        'E' | 'e' => ["###", "#..", "##.", "#..", "###"],
        'F' | 'f' => ["###", "#..", "##.", "#..", "#.."],
        'G' | 'g' => [".##", "#..", "#.#", "#.#", ".##"],
        'H' | 'h' => ["#.#", "#.#", "###", "#.#", "#.#"],
        'I' | 'i' => ["###", ".#.", ".#.", ".#.", "###"],
        'J' | 'j' => ["..#", "..#", "..#", "#.#", ".#."],
        'K' | 'k' => ["#.#", "#.#", "##.", "#.#", "#.#"],
        'L' | 'l' => ["#..", "#..", "#..", "#..", "###"],
        'M' => ["#...#", "##.##", "#.#.#", "#...#", "#...#"],
        'm' => [".....", ".....", "####.", "#.#.#", "#.#.#"],
        'N' | 'n' => ["#..#", "##.#", "#.##", "#..#", "#..#"],
        'O' | 'o' => [".#.", "#.#", "#.#", "#.#", ".#."],
        'P' | 'p' => ["##.", "#.#", "##.", "#..", "#.."],
        'Q' | 'q' => [".#.", "#.#", "#.#", "##.", ".##"],
        'R' | 'r' => ["##.", "#.#", "##.", "#.#", "#.#"],
        'S' | 's' => [".##", "#..", ".#.", "..#", "##."],
        'T' | 't' => ["###", ".#.", ".#.", ".#.", ".#."],
        'U' | 'u' => ["#.#", "#.#", "#.#", "#.#", "###"],
        'V' | 'v' => ["#.#", "#.#", "#.#", "#.#", ".#."],
        'W' | 'w' => ["#...#", "#...#", "#.#.#", "##.##", "#...#"],
        'X' | 'x' => ["#.#", "#.#", ".#.", "#.#", "#.#"],
        'Y' | 'y' => ["#.#", "#.#", ".#.", ".#.", ".#."],
        'Z' | 'z' => ["###", "..#", ".#.", "#..", "###"],
        '-' => ["...", "...", "###", "...", "..."],
        '.' => [".", ".", ".", ".", "#"],
        ',' => [".", ".", ".", "#", "#"],
        ':' => [".", "#", ".", "#", "."],
        '#' => ["#.#", "###", "#.#", "###", "#.#"],
        '/' => ["..#", "..#", ".#.", "#..", "#.."],
        '%' => ["#.#", "..#", ".#.", "#..", "#.#"],
        '(' => [".#", "#.", "#.", "#.", ".#"],
        ')' => ["#.", ".#", ".#", ".#", "#."],
        '_' => ["...", "...", "...", "...", "###"],
        _ => ["..", "..", "..", "..", ".."],
    }
}

/// Width in canvas pixels of `text` at scale `s`.
pub fn text_width(text: &str, s: i64) -> i64 {
    text.chars()
        .map(|c| (glyph(c)[0].len() as i64 + 1) * s)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_are_rectangular() {
        for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZm-.,:#/%()_ ".chars() {
            let g = glyph(c);
            assert!(g.iter().all(|r| r.len() == g[0].len()), "{c}");
        }
    }

    #[test]
    fn nice_lengths_and_labels() {
        assert_eq!(nice_length(130.0), 100.0);
        assert_eq!(nice_length(260.0), 200.0);
        assert_eq!(nice_length(7200.0), 5000.0);
        assert_eq!(format_metres(500.0), "500 m");
        assert_eq!(format_metres(2000.0), "2 km");
    }

    #[test]
    fn fill_and_text_draw_pixels_and_png_roundtrips() {
        let mut c = Canvas::new(40, 20, [0, 0, 0]);
        c.fill_rings(
            &[vec![(2.0, 2.0), (12.0, 2.0), (12.0, 12.0), (2.0, 12.0)]],
            [255, 0, 0],
            1.0,
        );
        assert_eq!(c.get(5, 5), [255, 0, 0]);
        assert_eq!(c.get(15, 5), [0, 0, 0]);
        let w = c.text(14, 2, "10 m", 1, [255, 255, 255]);
        assert_eq!(w, text_width("10 m", 1));
        assert!(c.data.chunks(3).any(|p| p == [255, 255, 255]));
        let bytes = c.png(&[("Comment", "scale 10 m".into())]).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.windows(4).any(|w| w == b"tEXt"));
        let st = stretch(&[&[0.0, 0.1, 0.2, 0.3, f32::NAN]]);
        assert!(st.0 <= 0.01 && st.1 >= 0.29);
    }
}
