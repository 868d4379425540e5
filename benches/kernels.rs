//! Micro-benchmarks of the hot kernels, on real pixels: the shipped OSCD Abu
//! Dhabi pair (sample_tiles/abudhabi) read and aligned by the library itself.
//!
//!     cargo bench --bench kernels            # all
//!     cargo bench --bench kernels -- score   # one group
//!
//! Not part of `cargo test` (harness = false; `cargo test` builds benches
//! only with --benches / --all-targets).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dunewatch::align::{self, AlignOptions, SceneReader, Window};
use dunewatch::detect::chi2::chi2_cdf;
use dunewatch::detect::irmad::IrMad;
use dunewatch::detect::masks::MaskReason;
use dunewatch::detect::pixels::{read_pixels, Pixels};
use dunewatch::detect::sample::Sample;
use dunewatch::detect::score::{Method, Model, HALO};
use dunewatch::detect::threshold::{otsu, Histogram};
use dunewatch::detect::{OPTIONAL_BANDS, STAT_BANDS};
use dunewatch::read;
use dunewatch::sites::components::Labeller;
use dunewatch::sites::morphology::Morphology;
use std::path::Path;
use std::time::Duration;

/// Block side of the score pass (the default --block-size).
const BLOCK: usize = 512;

struct Data {
    /// A block plus its halo: (BLOCK + 2 HALO)^2 pixels of both dates.
    px: Pixels,
    read: Window,
    block: Window,
    /// Compared pixels of the whole sample pair (about 600 000), as the lattice sample.
    sample: Sample,
    model: Model,
    /// The same block read with the wider halos of the learned and cnn
    /// methods: (halo, pixels, read window, block).
    wide: Vec<(usize, Pixels, Window, Window)>,
}

fn load() -> Data {
    dunewatch::run::configure_gdal();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_tiles/abudhabi");
    let before = read::open_scene(&root.join("before")).expect("sample before scene");
    let after = read::open_scene(&root.join("after")).expect("sample after scene");
    let pair = align::align(
        before,
        after,
        &STAT_BANDS,
        &OPTIONAL_BANDS,
        &AlignOptions::default(),
    )
    .expect("align");
    let g = &pair.grid;
    let mut reader = SceneReader::new(&pair);
    let whole = Window {
        x: 0,
        y: 0,
        w: g.width,
        h: g.height,
    };
    let all =
        read_pixels(&mut reader, &pair, whole, (g.width, g.height)).expect("read sample tiles");
    let mut sample = Sample::new(STAT_BANDS.len());
    for i in 0..all.len() {
        if all.mask[i] == MaskReason::Valid {
            sample.push(&all.x(i), &all.y(i));
        }
    }
    let side = BLOCK + 2 * HALO;
    assert!(
        g.width >= side && g.height >= side,
        "sample tiles smaller than one block"
    );
    let read = Window {
        x: 0,
        y: 0,
        w: side,
        h: side,
    };
    let block = Window {
        x: HALO,
        y: HALO,
        w: BLOCK,
        h: BLOCK,
    };
    let px = read_pixels(&mut reader, &pair, read, (side, side)).expect("read block");
    let model = Model::fit(&sample, Method::Combined).expect("fit");
    let wide = [
        dunewatch::detect::learned::WINDOW_RADIUS + dunewatch::detect::score::SHIFT,
        dunewatch::detect::cnn::HALO,
    ]
    .iter()
    .map(|&h| {
        let side = BLOCK + 2 * h;
        let read = Window {
            x: 0,
            y: 0,
            w: side,
            h: side,
        };
        let block = Window {
            x: h,
            y: h,
            w: BLOCK,
            h: BLOCK,
        };
        let px = read_pixels(&mut reader, &pair, read, (side, side)).expect("read block");
        (h, px, read, block)
    })
    .collect();
    Data {
        px,
        read,
        block,
        sample,
        model,
        wide,
    }
}

fn lattice(s: &Sample, n: usize) -> Sample {
    let step = (s.len() / n).max(1);
    let mut out = Sample::new(s.p);
    for i in (0..s.len()).step_by(step).take(n) {
        out.push(s.x(i), s.y(i));
    }
    out
}

fn bench_fit(c: &mut Criterion, d: &Data) {
    let mut g = c.benchmark_group("irmad_fit");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    // 262 144 is the detector's default sample size (--max-samples).
    for n in [65_536usize, 262_144] {
        let s = lattice(&d.sample, n);
        g.throughput(Throughput::Elements(s.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(s.len()), &s, |b, s| {
            b.iter(|| IrMad::fit(black_box(s), 30).unwrap())
        });
    }
    g.finish();
    let mut g = c.benchmark_group("model_fit_combined");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let s = lattice(&d.sample, 262_144);
    g.throughput(Throughput::Elements(s.len() as u64));
    g.bench_function("262144", |b| {
        b.iter(|| Model::fit(black_box(&s), Method::Combined).unwrap())
    });
    g.finish();
}

fn bench_chi2(c: &mut Criterion) {
    let xs: Vec<f64> = (0..4096).map(|i| i as f64 * 0.01).collect();
    let mut g = c.benchmark_group("chi2_cdf");
    g.throughput(Throughput::Elements(xs.len() as u64));
    for dof in [6usize, 5] {
        g.bench_with_input(BenchmarkId::new("dof", dof), &dof, |b, &dof| {
            b.iter(|| xs.iter().map(|&x| chi2_cdf(black_box(x), dof)).sum::<f64>())
        });
    }
    g.finish();
}

fn bench_otsu(c: &mut Criterion, d: &Data) {
    let scores: Vec<f32> = d
        .model
        .score_block(&d.px, d.read, d.block)
        .into_iter()
        .flatten()
        .collect();
    let mut hist = Histogram::default();
    for &v in &scores {
        hist.add(v);
    }
    let mut g = c.benchmark_group("threshold");
    g.throughput(Throughput::Elements(scores.len() as u64));
    g.bench_function("histogram_add_block", |b| {
        b.iter(|| {
            let mut h = Histogram::default();
            for &v in black_box(&scores) {
                h.add(v);
            }
            h
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("otsu", |b| b.iter(|| otsu(black_box(&hist))));
    g.finish();
}

fn bench_score(c: &mut Criterion, d: &Data) {
    let mut g = c.benchmark_group("score_block");
    g.sample_size(20).measurement_time(Duration::from_secs(15));
    g.throughput(Throughput::Elements((BLOCK * BLOCK) as u64));
    for method in [Method::Combined, Method::Cva, Method::Irmad] {
        let model = Model::fit(&lattice(&d.sample, 262_144), method).unwrap();
        g.bench_function(
            BenchmarkId::new(method.to_string(), format!("{BLOCK}px")),
            |b| b.iter(|| model.score_block(black_box(&d.px), d.read, d.block)),
        );
    }
    // The trained methods with their shipped weights, each on the block
    // read with its own halo.
    for method in [Method::Learned, Method::Cnn] {
        let model = Model::fit(&lattice(&d.sample, 262_144), method).unwrap();
        let (_, px, read, block) = d
            .wide
            .iter()
            .find(|w| w.0 == model.halo())
            .expect("a read with the method's halo");
        g.bench_function(
            BenchmarkId::new(method.to_string(), format!("{BLOCK}px")),
            |b| b.iter(|| model.score_block(black_box(px), *read, *block)),
        );
    }
    g.finish();
}

/// The single-date cloud test over a block's rows, both dates (what
/// assembling every block of the score pass runs).
fn bench_cloud_test(c: &mut Criterion, d: &Data) {
    use dunewatch::detect::masks::looks_cloudy_row;
    let mut g = c.benchmark_group("cloud_test");
    g.throughput(Throughput::Elements(2 * d.px.len() as u64));
    let mut out = vec![false; d.px.len()];
    g.bench_function("looks_cloudy_row_both_dates", |b| {
        b.iter(|| {
            for planes in [&d.px.before, &d.px.after] {
                let bands = std::array::from_fn(|k| &planes[k][..]);
                looks_cloudy_row(black_box(bands), None, &mut out);
            }
            out.iter().filter(|&&c| c).count()
        })
    });
    g.finish();
}

fn bench_sites(c: &mut Criterion, d: &Data) {
    // The change mask of the block, tiled to a 10980 px wide strip of 512 rows
    // (a full tile's width).
    const W: usize = 10980;
    let scores = d.model.score_block(&d.px, d.read, d.block);
    let mut rows: Vec<Vec<u8>> = Vec::with_capacity(BLOCK);
    for r in 0..BLOCK {
        rows.push(
            (0..W)
                .map(|c| match scores[r * BLOCK + c % BLOCK] {
                    None => 255,
                    Some(v) if v >= 0.9 => 1,
                    Some(_) => 0,
                })
                .collect(),
        );
    }
    let mut g = c.benchmark_group("sites");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements((W * BLOCK) as u64));
    g.bench_function("morphology_open_close_10980x512", |b| {
        b.iter(|| {
            let mut m = Morphology::new(true, true);
            let mut n = 0usize;
            for row in black_box(&rows) {
                n += m.push(row).len();
            }
            n + m.finish().len()
        })
    });
    let cleaned: Vec<Vec<bool>> = rows
        .iter()
        .map(|r| r.iter().map(|&v| v == 1).collect())
        .collect();
    g.bench_function("components_label_10980x512", |b| {
        b.iter(|| {
            let mut l = Labeller::new(W, 1000.0);
            for row in black_box(&cleaned) {
                black_box(l.push_row(row, 100.0));
            }
            l.finish().components.len()
        })
    });
    g.finish();
}

/// 20 m onto 10 m, as the score pass reads B11 and B12: a 512 x 64 px
/// strip of output from its 257 x 34 source pixels, tap by tap against the
/// loop over each phase.
fn bench_upsample(c: &mut Criterion) {
    use dunewatch::align::upsample::{interpolate, taps, Taps};
    let cols = taps(1024.0, 512, 512, 2, 5490, false);
    let rows = taps(1024.0, 64, 64, 2, 5490, false);
    let src: Vec<f32> = (0..cols.len * rows.len)
        .map(|i| 0.05 + (i * 7919 % 4096) as f32 * 1e-4)
        .collect();
    let tap_by_tap = Taps {
        run: (0, 0),
        ..cols.clone()
    };
    let mut g = c.benchmark_group("upsample");
    g.throughput(Throughput::Elements((512 * 64) as u64));
    for (name, cols) in [("by_phase", &cols), ("tap_by_tap", &tap_by_tap)] {
        g.bench_function(name, |b| {
            b.iter(|| interpolate(black_box(&src), cols, &rows, 0.0, Some(6.5535)))
        });
    }
    g.finish();
}
/// TIFF's horizontal predictor undone over a 1024 x 1024 u16 tile (the
/// block of the Sentinel-2 COGs in the cloud archives), row by row.
fn bench_predictor(c: &mut Criterion) {
    use dunewatch::read::predictor::undo_horizontal_predictor;
    let tile: Vec<u16> = (0..1024 * 1024u32)
        .map(|i| (i * 7919 % 61) as u16)
        .collect();
    let mut g = c.benchmark_group("predictor");
    g.throughput(Throughput::Elements(tile.len() as u64));
    g.bench_function("undo_horizontal_1024x1024", |b| {
        b.iter_batched_ref(
            || tile.clone(),
            |t| {
                for row in t.chunks_exact_mut(1024) {
                    undo_horizontal_predictor(row);
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn kernels(c: &mut Criterion) {
    bench_predictor(c);
    bench_upsample(c);
    let d = load();
    bench_chi2(c);
    bench_otsu(c, &d);
    bench_score(c, &d);
    bench_cloud_test(c, &d);
    bench_fit(c, &d);
    bench_sites(c, &d);
}

criterion_group!(benches, kernels);
criterion_main!(benches);
