//! `aemo-gen` writes deterministic sample data in the formats AEMO publishes on
//! NEMWEB, so the example project, the tests and the benchmarks can run without
//! reaching the internet.
//!
//! The output imitates three NEMWEB folders plus the two reference files the
//! reference stack reads from GitHub:
//!
//! * `daily/` — one `PUBLIC_DAILY_*.zip` per market day holding a multi-table MMS
//!   CSV (`DUNIT` unit dispatch and `DREGION` regional prices among tables that a
//!   reader has to skip);
//! * `intraday_scada/` and `intraday_price/` — one small zip per 5-minute interval
//!   right after the last daily file (`DISPATCH,UNIT_SCADA` and `DISPATCH,PRICE`),
//!   named with a 16-digit sequence as NEMWEB names them;
//! * an `index.html` in each of those folders shaped like a NEMWEB directory page;
//! * `reference/registration/NEM-Registration-and-Exemption-List_<first day>.xls`
//!   — AEMO's registration list as `djouallah/aemo_data` keeps it
//!   (`data/duid/registration/`): really an xlsx workbook, sheet `PU and
//!   Scheduled Loads`, the real 21 columns and the real quirks (a row whose DUID
//!   is `-`, `-` and blanks in `Max ROC/Min generation`, `Units` turned into
//!   dates, a DUID under two participants, `Battery Storage` beside `Battery
//!   storage`, a station name with a trailing space, and one dispatching unit the
//!   list does not know yet);
//! * `reference/geo_data.csv` — unit coordinates with the header of
//!   `djouallah/aemo_fabric`'s `geo_data.csv`, a few units without coordinates.
//!
//! MMS files have CRLF line ends and end with `C,"END OF REPORT",<lines>`. Solar
//! farms report -0.1 MW at night and batteries charge below zero, as real units do.
//!
//! ```text
//! aemo-gen --out DIR [--start 2024-01-01] [--days 2] [--intraday-intervals 12] [--units 40] [--seed 1]
//! ```
//!
//! Everything random comes from one seeded ChaCha stream consumed in a fixed order
//! before any file is written, and zip entries carry market-time timestamps rather
//! than the wall clock, so the same arguments always give byte-identical files even
//! though files are written on several threads. Rows are assembled from
//! pre-built byte slices and hand-formatted numbers, so 500 units × 30 days
//! (4.3 million DUNIT rows) take about two seconds in a release build on two cores.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};
use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Workbook};
use zip::write::SimpleFileOptions;

/// Five-minute dispatch intervals in one market day.
const INTERVALS_PER_DAY: usize = 288;

/// NEM regions in the order AEMO sorts them inside its files.
const REGIONS: [&str; 5] = ["NSW1", "QLD1", "SA1", "TAS1", "VIC1"];

/// Flush a file's CSV buffer into the compressor once it grows past this size, so
/// memory stays flat however many units are generated.
const FLUSH_BYTES: usize = 1 << 16;

/// Deflate level of the zips: fast, because generation speed matters more here
/// than the size of throwaway test data.
const ZIP_LEVEL: i64 = 3;

/// The generator's command line.
#[derive(Parser, Debug)]
#[command(
    name = "aemo-gen",
    about = "Write deterministic AEMO/NEMWEB-format sample files (daily, intraday, reference workbook and coordinates)"
)]
struct Args {
    /// Output directory (created if missing; existing files with the same names are overwritten).
    #[arg(long)]
    out: PathBuf,
    /// First market day of the daily files.
    #[arg(long, default_value = "2024-01-01")]
    start: NaiveDate,
    /// Number of daily files (market days).
    #[arg(long, default_value_t = 2)]
    days: usize,
    /// Number of 5-minute intraday files per intraday folder, following the last daily file.
    #[arg(long, default_value_t = 12)]
    intraday_intervals: usize,
    /// Number of NEM generating units.
    #[arg(long, default_value_t = 40)]
    units: usize,
    /// Seed of the random stream; the same seed and arguments give identical bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    generate(&args)
}

// ---------------------------------------------------------------------------
// Fleet: which units exist, where, and how big.
// ---------------------------------------------------------------------------

/// Fuel of a unit; drives both its registration details and its output shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fuel {
    Coal,
    Gas,
    Wind,
    Solar,
    Hydro,
    Battery,
}

impl Fuel {
    /// `Fuel Source - Primary` as the registration list words it.
    fn primary(self) -> &'static str {
        match self {
            Fuel::Coal | Fuel::Gas => "Fossil",
            Fuel::Wind => "Wind",
            Fuel::Solar => "Solar",
            Fuel::Hydro => "Hydro",
            Fuel::Battery => "Battery storage",
        }
    }

    /// `Fuel Source - Descriptor` of the registration list.
    fn descriptor(self) -> &'static str {
        match self {
            Fuel::Coal => "Black Coal",
            Fuel::Gas => "Natural Gas",
            Fuel::Wind => "Wind",
            Fuel::Solar => "Solar",
            Fuel::Hydro => "Water",
            Fuel::Battery => "Grid",
        }
    }

    /// `Technology Type - Primary` of the registration list.
    fn technology_primary(self) -> &'static str {
        match self {
            Fuel::Coal | Fuel::Gas => "Combustion",
            Fuel::Wind | Fuel::Solar | Fuel::Hydro => "Renewable",
            Fuel::Battery => "Storage",
        }
    }

    /// `Technology Type - Descriptor` as the registration list words it.
    fn technology(self) -> &'static str {
        match self {
            Fuel::Coal => "Steam Sub-Critical",
            Fuel::Gas => "Combustion - OCGT",
            Fuel::Wind => "Wind - Onshore",
            Fuel::Solar => "Photovoltaic Tracking - ground mounted",
            Fuel::Hydro => "Hydro - Gravity",
            Fuel::Battery => "Battery and Inverter",
        }
    }

    /// Dispatch type: batteries both consume and generate.
    fn dispatch_type(self) -> &'static str {
        match self {
            Fuel::Battery => "Bidirectional Unit",
            _ => "Generating Unit",
        }
    }

    /// Classification: wind and solar are semi-scheduled, the rest scheduled.
    fn classification(self) -> &'static str {
        if self.is_semi_scheduled() {
            "Semi-Scheduled"
        } else {
            "Scheduled"
        }
    }

    /// `FuelSourceDescriptor`, `Technology` and `Tech` of aemo_fabric's
    /// `geo_data.csv`, which words fuels its own way.
    fn geo_labels(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Fuel::Coal => ("Black Coal", "Coal", "Coal"),
            Fuel::Gas => ("Natural Gas", "Gas", "Gas"),
            Fuel::Wind => ("Wind", "Renewable", "Wind"),
            Fuel::Solar => ("Solar", "Renewable", "Solar"),
            Fuel::Hydro => ("Water", "Renewable", "Hydro"),
            Fuel::Battery => ("Battery", "Renewable", "Storage"),
        }
    }

    /// Range of a unit's registered capacity in MW.
    fn capacity_range(self) -> (f64, f64) {
        match self {
            Fuel::Coal => (350.0, 720.0),
            Fuel::Gas => (40.0, 320.0),
            Fuel::Wind => (60.0, 450.0),
            Fuel::Solar => (25.0, 260.0),
            Fuel::Hydro => (40.0, 330.0),
            Fuel::Battery => (30.0, 300.0),
        }
    }

    /// Wind and solar are semi-scheduled: they publish an intermittent forecast (UIGF).
    fn is_semi_scheduled(self) -> bool {
        matches!(self, Fuel::Wind | Fuel::Solar)
    }

    /// Whether the unit offers frequency control services (non-zero FCAS columns).
    fn offers_fcas(self) -> bool {
        matches!(self, Fuel::Coal | Fuel::Gas | Fuel::Hydro | Fuel::Battery)
    }
}

/// A power station template; units are numbered instances of a station.
struct Station {
    stem: &'static str,
    name: &'static str,
    participant: &'static str,
    region: &'static str,
    fuel: Fuel,
}

/// Shorthand to keep the station table readable.
const fn st(
    stem: &'static str,
    name: &'static str,
    participant: &'static str,
    region: &'static str,
    fuel: Fuel,
) -> Station {
    Station {
        stem,
        name,
        participant,
        region,
        fuel,
    }
}

/// NEM stations units are drawn from; names and owners are plausible, not a register.
#[rustfmt::skip]
const STATIONS: &[Station] = &[
    st("BAYSW", "Bayswater Power Station", "AGL Macquarie", "NSW1", Fuel::Coal),
    st("ER0", "Eraring Power Station", "Origin Energy", "NSW1", Fuel::Coal),
    st("MP", "Mt Piper Power Station", "EnergyAustralia", "NSW1", Fuel::Coal),
    st("VP", "Vales Point B Power Station", "Delta Electricity", "NSW1", Fuel::Coal),
    st("LYA", "Loy Yang A Power Station", "AGL Loy Yang", "VIC1", Fuel::Coal),
    st("YWPS", "Yallourn W Power Station", "EnergyAustralia", "VIC1", Fuel::Coal),
    st("LOYYB", "Loy Yang B Power Station", "Alinta Energy", "VIC1", Fuel::Coal),
    st("GSTONE", "Gladstone Power Station", "CS Energy", "QLD1", Fuel::Coal),
    st("STAN-", "Stanwell Power Station", "Stanwell Corporation", "QLD1", Fuel::Coal),
    st("TARONG#", "Tarong Power Station", "Stanwell Corporation", "QLD1", Fuel::Coal),
    st("CALL_B_", "Callide B Power Station", "CS Energy", "QLD1", Fuel::Coal),
    st("KPP_", "Kogan Creek Power Station", "CS Energy", "QLD1", Fuel::Coal),
    st("TORRB", "Torrens Island B Power Station", "AGL Energy", "SA1", Fuel::Gas),
    st("PPCCGT", "Pelican Point Power Station", "Engie", "SA1", Fuel::Gas),
    st("QPS", "Quarantine Power Station", "Origin Energy", "SA1", Fuel::Gas),
    st("TALWA", "Tallawarra Power Station", "EnergyAustralia", "NSW1", Fuel::Gas),
    st("URANQ", "Uranquinty Power Station", "Origin Energy", "NSW1", Fuel::Gas),
    st("MORTLK", "Mortlake Power Station", "Origin Energy", "VIC1", Fuel::Gas),
    st("LNGS", "Laverton North Power Station", "Snowy Hydro", "VIC1", Fuel::Gas),
    st("BRAEMAR", "Braemar Power Station", "Alinta Energy", "QLD1", Fuel::Gas),
    st("DDPS", "Darling Downs Power Station", "Origin Energy", "QLD1", Fuel::Gas),
    st("TVCC", "Tamar Valley Power Station", "Hydro Tasmania", "TAS1", Fuel::Gas),
    st("ARWF", "Ararat Wind Farm", "Ararat Wind Farm Pty Ltd", "VIC1", Fuel::Wind),
    st("MACARTH", "Macarthur Wind Farm", "AGL Energy", "VIC1", Fuel::Wind),
    st("STOCKYD", "Stockyard Hill Wind Farm", "Goldwind", "VIC1", Fuel::Wind),
    st("SNOWTWN", "Snowtown Wind Farm", "Tilt Renewables", "SA1", Fuel::Wind),
    st("HDWF", "Hornsdale Wind Farm", "Neoen", "SA1", Fuel::Wind),
    st("LKBONNY", "Lake Bonney Wind Farm", "Infigen Energy", "SA1", Fuel::Wind),
    st("COOPGWF", "Coopers Gap Wind Farm", "AGL Energy", "QLD1", Fuel::Wind),
    st("MEWF", "Mount Emerald Wind Farm", "Ratch Australia", "QLD1", Fuel::Wind),
    st("BODWF", "Bodangora Wind Farm", "Infigen Energy", "NSW1", Fuel::Wind),
    st("SAPHWF", "Sapphire Wind Farm", "CWP Renewables", "NSW1", Fuel::Wind),
    st("CTHLWF", "Cattle Hill Wind Farm", "Goldwind", "TAS1", Fuel::Wind),
    st("MUSSELR", "Musselroe Wind Farm", "Woolnorth Wind Farm", "TAS1", Fuel::Wind),
    st("BNGSF", "Bungala Solar Farm", "Enel Green Power", "SA1", Fuel::Solar),
    st("TBSF", "Tailem Bend Solar Farm", "Vena Energy", "SA1", Fuel::Solar),
    st("DAYDSF", "Daydream Solar Farm", "Edify Energy", "QLD1", Fuel::Solar),
    st("DDSF", "Darling Downs Solar Farm", "APA Group", "QLD1", Fuel::Solar),
    st("SMCSF", "Sun Metals Solar Farm", "Korea Zinc", "QLD1", Fuel::Solar),
    st("LIMOSF", "Limondale Solar Farm", "RWE Renewables", "NSW1", Fuel::Solar),
    st("NEWENSF", "New England Solar Farm", "ACEN Australia", "NSW1", Fuel::Solar),
    st("FINLYSF", "Finley Solar Farm", "John Laing", "NSW1", Fuel::Solar),
    st("KIAMSF", "Kiamal Solar Farm", "Total Eren", "VIC1", Fuel::Solar),
    st("NUMURSF", "Numurkah Solar Farm", "Neoen", "VIC1", Fuel::Solar),
    st("MURRAY", "Murray Hydro Power Station", "Snowy Hydro", "NSW1", Fuel::Hydro),
    st("TUMUT3", "Tumut 3 Power Station", "Snowy Hydro", "NSW1", Fuel::Hydro),
    st("UPPTUMUT", "Upper Tumut Power Station", "Snowy Hydro", "NSW1", Fuel::Hydro),
    st("GORDON", "Gordon Power Station", "Hydro Tasmania", "TAS1", Fuel::Hydro),
    st("POAT", "Poatina Power Station", "Hydro Tasmania", "TAS1", Fuel::Hydro),
    st("JBUTTERS", "John Butters Power Station", "Hydro Tasmania", "TAS1", Fuel::Hydro),
    st("DARTM", "Dartmouth Power Station", "AGL Hydro", "VIC1", Fuel::Hydro),
    st("MCKAY", "McKay Creek Power Station", "AGL Hydro", "VIC1", Fuel::Hydro),
    st("BARRON-", "Barron Gorge Power Station", "Stanwell Corporation", "QLD1", Fuel::Hydro),
    st("HPR", "Hornsdale Power Reserve", "Neoen", "SA1", Fuel::Battery),
    st("BLYTHB", "Blyth Battery", "Neoen", "SA1", Fuel::Battery),
    st("TIB", "Torrens Island Battery", "AGL Energy", "SA1", Fuel::Battery),
    st("VBB", "Victorian Big Battery", "Neoen", "VIC1", Fuel::Battery),
    st("WALGRV", "Wallgrove Grid Battery", "Transgrid", "NSW1", Fuel::Battery),
    st("ERB", "Eraring Battery", "Origin Energy", "NSW1", Fuel::Battery),
    st("WANDB", "Wandoan South Battery", "Vena Energy", "QLD1", Fuel::Battery),
    st("BOULDB", "Bouldercombe Battery", "Genex Power", "QLD1", Fuel::Battery),
];

/// Western Australian stations. WA is not part of the NEM, so neither the
/// dispatch data nor the NEM registration list has them, and the generator writes
/// nothing for them; their size and site are still drawn (`skip_wa_draws`) so the
/// random stream, and with it every MW and price, stays what earlier versions of
/// the generator wrote for the same seed.
#[rustfmt::skip]
const WA_STATIONS: &[Station] = &[
    st("COLLIE_G", "Collie Power Station", "Synergy", "WA1", Fuel::Coal),
    st("ALINTA_WWF", "Walkaway Wind Farm", "Alinta Energy", "WA1", Fuel::Wind),
    st("KWINANA_BESS", "Kwinana Battery", "Synergy", "WA1", Fuel::Battery),
];

/// Order in which fuels are handed to new units: every fuel appears in any eight
/// consecutive units, and the mix settles near a plausible NEM share.
#[rustfmt::skip]
const FUEL_CYCLE: [Fuel; 20] = [
    Fuel::Coal, Fuel::Wind, Fuel::Solar, Fuel::Gas, Fuel::Wind, Fuel::Solar, Fuel::Hydro, Fuel::Battery,
    Fuel::Coal, Fuel::Wind, Fuel::Solar, Fuel::Gas, Fuel::Solar, Fuel::Wind, Fuel::Hydro, Fuel::Battery,
    Fuel::Coal, Fuel::Wind, Fuel::Solar, Fuel::Gas,
];

/// One generating unit.
struct Unit {
    duid: String,
    station: &'static Station,
    /// The unit's number within its station (the DUID's suffix).
    number: usize,
    capacity: f64,
    latitude: f64,
    longitude: f64,
    /// Index into `REGIONS`.
    region: usize,
}

/// Rough centre of each region's generation, used to scatter station coordinates.
fn region_centre(region: &str) -> (f64, f64) {
    match region {
        "NSW1" => (-32.6, 150.4),
        "QLD1" => (-24.5, 150.8),
        "SA1" => (-34.2, 138.9),
        "TAS1" => (-42.0, 146.6),
        "VIC1" => (-37.6, 144.6),
        _ => (-31.9, 116.1),
    }
}

/// Per-station attributes drawn once, so all units of a station share a size and a site.
struct StationDraw {
    capacity: f64,
    latitude: f64,
    longitude: f64,
}

/// Draws capacity and coordinates for every station in `stations`, in table order.
fn draw_stations(rng: &mut ChaCha8Rng, stations: &[Station]) -> Vec<StationDraw> {
    stations
        .iter()
        .map(|s| {
            let (lo, hi) = s.fuel.capacity_range();
            let (lat, lon) = region_centre(s.region);
            StationDraw {
                capacity: (rng.random_range(lo..hi) / 5.0).round() * 5.0,
                latitude: lat + rng.random_range(-1.2..1.2),
                longitude: lon + rng.random_range(-1.5..1.5),
            }
        })
        .collect()
}

/// Builds `count` NEM units (fuels from `FUEL_CYCLE`, stations round-robin within a
/// fuel, units numbered per station), sorted by DUID as AEMO sorts its files.
fn build_fleet(rng: &mut ChaCha8Rng, count: usize) -> Vec<Unit> {
    let draws = draw_stations(rng, STATIONS);
    let mut per_fuel_counter = [0usize; 6];
    let mut units: Vec<Unit> = (0..count)
        .map(|i| {
            let fuel = FUEL_CYCLE[i % FUEL_CYCLE.len()];
            let choices: Vec<usize> = (0..STATIONS.len())
                .filter(|&s| STATIONS[s].fuel == fuel)
                .collect();
            let n = per_fuel_counter[fuel as usize];
            per_fuel_counter[fuel as usize] += 1;
            let idx = choices[n % choices.len()];
            let station = &STATIONS[idx];
            let draw = &draws[idx];
            let number = n / choices.len() + 1;
            Unit {
                duid: format!("{}{number}", station.stem),
                station,
                number,
                capacity: draw.capacity,
                latitude: draw.latitude,
                longitude: draw.longitude,
                region: REGIONS
                    .iter()
                    .position(|r| *r == station.region)
                    .unwrap_or(0),
            }
        })
        .collect();
    units.sort_by(|a, b| a.duid.cmp(&b.duid));
    units
}

/// Consumes the draws of the WA stations (see `WA_STATIONS`).
fn skip_wa_draws(rng: &mut ChaCha8Rng) {
    draw_stations(rng, WA_STATIONS);
}

// ---------------------------------------------------------------------------
// Market simulation: every random number is drawn here, before any writing.
// ---------------------------------------------------------------------------

/// One 5-minute dispatch interval, identified by its end time (AEMO's SETTLEMENTDATE).
struct Interval {
    end: NaiveDateTime,
    /// `"YYYY/MM/DD HH:MM:SS"` including the quotes, ready to copy into a row.
    quoted: String,
    /// Hour of day in market time (UTC+10), e.g. 13.5 for 13:30.
    hour: f64,
}

/// Everything the file writers need, fully determined by the arguments.
struct Market {
    intervals: Vec<Interval>,
    daily_days: usize,
    /// MW per unit (outer) per interval (inner).
    output: Vec<Vec<f32>>,
    /// MWh stored, per unit per interval; empty for non-batteries.
    storage: Vec<Vec<f32>>,
    /// Regional reference price ($/MWh) per interval.
    price: Vec<[f32; 5]>,
    /// Regional demand (MW) per interval.
    demand: Vec<[f32; 5]>,
    /// Intervals re-run under intervention pricing (they get extra INTERVENTION=1 rows).
    intervention: Vec<bool>,
    /// Publication time of each daily file.
    daily_created: Vec<NaiveDateTime>,
}

impl Market {
    /// Index range of the intraday intervals (after the last daily day).
    fn intraday_range(&self) -> std::ops::Range<usize> {
        self.daily_days * INTERVALS_PER_DAY..self.intervals.len()
    }
}

/// Lists the interval end times: `days` full market days from `start` (00:05 of the
/// first day to 00:00 after the last), then `extra` intraday intervals.
fn build_intervals(start: NaiveDate, days: usize, extra: usize) -> Vec<Interval> {
    let origin = start.and_time(NaiveTime::MIN);
    (0..days * INTERVALS_PER_DAY + extra)
        .map(|i| {
            let end = origin + TimeDelta::minutes(5 * (i as i64 + 1));
            Interval {
                quoted: end.format("\"%Y/%m/%d %H:%M:%S\"").to_string(),
                hour: f64::from(end.hour()) + f64::from(end.minute()) / 60.0,
                end,
            }
        })
        .collect()
}

/// A smooth bump centred on `centre` hours with width `width` hours.
fn bump(hour: f64, centre: f64, width: f64) -> f64 {
    let d = (hour - centre) / width;
    (-d * d).exp()
}

/// Sunrise and sunset (market hours) for a date: long days around the December
/// solstice, short ones in June.
fn daylight(date: NaiveDate) -> (f64, f64) {
    let season = (2.0 * std::f64::consts::PI * (f64::from(date.ordinal()) - 356.0) / 365.0).cos();
    (6.0 - 0.8 * season, 18.0 + 0.8 * season)
}

/// Solar capacity factor at `hour`: zero outside daylight, a sine arch peaking at
/// solar noon, scaled by the day's cloudiness.
fn solar_shape(hour: f64, date: NaiveDate, cloud: f64) -> f64 {
    let (rise, set) = daylight(date);
    if hour <= rise || hour >= set {
        return 0.0;
    }
    let x = (hour - rise) / (set - rise);
    (std::f64::consts::PI * x).sin().powf(1.3) * cloud
}

/// Capacity factor profile of peaking plant (gas, hydro): a morning and a larger
/// evening peak over a low base.
fn peaking_shape(hour: f64) -> f64 {
    0.08 + 0.35 * bump(hour, 7.5, 1.3) + 0.8 * bump(hour, 18.5, 1.8)
}

/// Battery profile: charge (negative) through the solar midday, discharge in the
/// evening peak, near idle otherwise.
fn battery_shape(hour: f64) -> f64 {
    0.9 * bump(hour, 19.0, 1.4) + 0.25 * bump(hour, 7.0, 0.8) - 0.7 * bump(hour, 12.5, 2.0)
}

/// What a solar farm reports at night: its inverters draw a little from the grid
/// (a real DISPATCH_UNIT_SCADA row: `HUGSF1,-0.10`).
const SOLAR_NIGHT_MW: f64 = -0.1;

/// Simulates every unit's output; wind shares a regional random walk, so farms in
/// one region rise and fall together.
fn simulate_output(rng: &mut ChaCha8Rng, fleet: &[Unit], intervals: &[Interval]) -> Vec<Vec<f32>> {
    let days = intervals.len().div_ceil(INTERVALS_PER_DAY);
    let mut regional_wind = [0.0f64; 5];
    for w in &mut regional_wind {
        *w = rng.random_range(0.2..0.6);
    }
    let wind: Vec<[f64; 5]> = intervals
        .iter()
        .map(|_| {
            for w in &mut regional_wind {
                *w = (*w + rng.random_range(-0.025..0.025)).clamp(0.03, 0.92);
            }
            regional_wind
        })
        .collect();
    fleet
        .iter()
        .map(|unit| {
            let cap = unit.capacity;
            let region = unit.region;
            let clouds: Vec<f64> = (0..days).map(|_| rng.random_range(0.45..1.0)).collect();
            let base = rng.random_range(0.72..0.95);
            let ccgt = rng.random_bool(0.3);
            let mut own: f64 = rng.random_range(-0.08..0.08);
            intervals
                .iter()
                .enumerate()
                .map(|(i, iv)| {
                    let h = iv.hour;
                    let day = i / INTERVALS_PER_DAY;
                    let mw = match unit.station.fuel {
                        Fuel::Coal => cap * (base + rng.random_range(-0.02..0.02)),
                        Fuel::Gas => {
                            let floor = if ccgt { 0.45 } else { 0.0 };
                            let f = (peaking_shape(h) * rng.random_range(0.7..1.0)).max(floor);
                            if f < 0.1 { 0.0 } else { cap * f.min(1.0) }
                        }
                        Fuel::Hydro => cap * (peaking_shape(h) * rng.random_range(0.8..1.0)),
                        Fuel::Wind => {
                            own = (own + rng.random_range(-0.01..0.01)).clamp(-0.1, 0.1);
                            cap * (wind[i][region] + own).clamp(0.0, 0.97)
                        }
                        Fuel::Solar => {
                            let date = (iv.end - TimeDelta::minutes(5)).date();
                            let noise = rng.random_range(0.9..1.0);
                            let shape = solar_shape(h, date, clouds[day.min(days - 1)]);
                            if shape > 0.0 {
                                cap * shape * noise
                            } else {
                                SOLAR_NIGHT_MW
                            }
                        }
                        Fuel::Battery => {
                            let f = battery_shape(h) * rng.random_range(0.85..1.0);
                            if f.abs() < 0.04 { 0.0 } else { cap * f }
                        }
                    };
                    mw as f32
                })
                .collect()
        })
        .collect()
}

/// Integrates battery output into stored energy (two hours of capacity, starting
/// half full); other units get an empty series.
fn simulate_storage(fleet: &[Unit], output: &[Vec<f32>]) -> Vec<Vec<f32>> {
    fleet
        .iter()
        .zip(output)
        .map(|(unit, mw)| {
            if unit.station.fuel != Fuel::Battery {
                return Vec::new();
            }
            let max = unit.capacity * 2.0;
            let mut energy = max / 2.0;
            mw.iter()
                .map(|&p| {
                    energy = (energy - f64::from(p) / 12.0).clamp(0.0, max);
                    energy as f32
                })
                .collect()
        })
        .collect()
}

/// Simulates regional prices and demand: a diurnal shape per region, midday
/// negative prices on sunny days in the solar-heavy regions, and rare evening
/// spikes up to 15,000 $/MWh.
fn simulate_prices(rng: &mut ChaCha8Rng, intervals: &[Interval]) -> (Vec<[f32; 5]>, Vec<[f32; 5]>) {
    const BASE: [f64; 5] = [95.0, 82.0, 105.0, 70.0, 78.0];
    const LOAD: [f64; 5] = [7800.0, 6300.0, 1500.0, 1100.0, 5200.0];
    const GLUT_PROB: [f64; 5] = [0.15, 0.35, 0.5, 0.05, 0.4];
    let days = intervals.len().div_ceil(INTERVALS_PER_DAY);
    let gluts: Vec<[bool; 5]> = (0..days)
        .map(|_| std::array::from_fn(|r| rng.random_bool(GLUT_PROB[r])))
        .collect();
    let mut drift = [0.0f64; 5];
    let mut prices = Vec::with_capacity(intervals.len());
    let mut demand = Vec::with_capacity(intervals.len());
    for (i, iv) in intervals.iter().enumerate() {
        let h = iv.hour;
        let shape =
            1.0 + 0.35 * bump(h, 8.0, 1.2) + 0.9 * bump(h, 18.5, 1.6) - 0.6 * bump(h, 12.5, 2.2);
        let load_shape =
            0.8 + 0.12 * bump(h, 8.0, 1.5) + 0.25 * bump(h, 18.5, 2.0) - 0.05 * bump(h, 3.5, 2.0);
        let mut p = [0.0f32; 5];
        let mut d = [0.0f32; 5];
        for r in 0..5 {
            drift[r] = (drift[r] + rng.random_range(-2.0..2.0)).clamp(-25.0, 25.0);
            let mut rrp = BASE[r] * shape * rng.random_range(0.88..1.12) + drift[r];
            if gluts[i / INTERVALS_PER_DAY][r] && (10.0..15.0).contains(&h) {
                rrp = -rng.random_range(0.5..60.0);
            }
            if (16.0..21.5).contains(&h) && rng.random_bool(0.004) {
                rrp = 300.0 * 50f64.powf(rng.random::<f64>());
            }
            p[r] = rrp.clamp(-1000.0, 15000.0) as f32;
            d[r] = (LOAD[r] * load_shape * rng.random_range(0.97..1.03)) as f32;
        }
        prices.push(p);
        demand.push(d);
    }
    (prices, demand)
}

/// Picks three intervals per daily day that also ran under intervention pricing.
fn pick_interventions(rng: &mut ChaCha8Rng, total: usize, days: usize) -> Vec<bool> {
    let mut flags = vec![false; total];
    for day in 0..days {
        let mut chosen = 0;
        while chosen < 3 {
            let i = day * INTERVALS_PER_DAY + rng.random_range(0..INTERVALS_PER_DAY);
            if !flags[i] {
                flags[i] = true;
                chosen += 1;
            }
        }
    }
    flags
}

/// Draws the whole market from the seed, in a fixed order.
fn simulate(args: &Args, fleet: &[Unit], rng: &mut ChaCha8Rng) -> Market {
    let intervals = build_intervals(args.start, args.days, args.intraday_intervals);
    let output = simulate_output(rng, fleet, &intervals);
    let storage = simulate_storage(fleet, &output);
    let (price, demand) = simulate_prices(rng, &intervals);
    let intervention = pick_interventions(rng, intervals.len(), args.days);
    let daily_created = (0..args.days)
        .map(|d| {
            let day = args.start + TimeDelta::days(d as i64 + 1);
            day.and_time(NaiveTime::MIN)
                + TimeDelta::seconds(4 * 3600 + 30 * 60 + rng.random_range(0..300))
        })
        .collect();
    Market {
        intervals,
        daily_days: args.days,
        output,
        storage,
        price,
        demand,
        intervention,
        daily_created,
    }
}

// ---------------------------------------------------------------------------
// MMS CSV writing.
// ---------------------------------------------------------------------------

/// Appends the decimal digits of `n`.
fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

/// Appends `value` rounded to `decimals` places without trailing zeros, the way
/// AEMO writes numbers (`652.3`, `0`, `-12.04`). Hand-rolled because it runs for
/// millions of fields and avoids the cost of general float formatting.
fn push_num(buf: &mut Vec<u8>, value: f64, decimals: u32) {
    let scale = 10u64.pow(decimals);
    let scaled = (value * scale as f64).round();
    if scaled < 0.0 {
        buf.push(b'-');
    }
    let abs = scaled.abs() as u64;
    push_u64(buf, abs / scale);
    let mut frac = abs % scale;
    if frac != 0 {
        let mut places = decimals;
        while frac.is_multiple_of(10) {
            frac /= 10;
            places -= 1;
        }
        buf.push(b'.');
        let start = buf.len();
        push_u64(buf, frac);
        let written = (buf.len() - start) as u32;
        for _ in written..places {
            buf.insert(start, b'0');
        }
    }
}

/// Streams one MMS CSV into a writer, counting lines for the END OF REPORT footer.
struct MmsWriter<W: Write> {
    buf: Vec<u8>,
    lines: u64,
    out: W,
}

impl<W: Write> MmsWriter<W> {
    fn new(out: W) -> Self {
        Self {
            buf: Vec::with_capacity(FLUSH_BYTES * 2),
            lines: 0,
            out,
        }
    }

    /// Writes the leading `C` line that names the report and its publication time.
    fn comment_header(&mut self, report: &str, created: NaiveDateTime, id: u64) -> Result<()> {
        let line = format!(
            "C,NEMP.WORLD,{report},AEMO,PUBLIC,{},{:016},{report},{:016}",
            created.format("%Y/%m/%d,%H:%M:%S"),
            id,
            id.saturating_sub(1)
        );
        self.buf.extend_from_slice(line.as_bytes());
        self.end_line()
    }

    /// Writes the record type and the table key: `T,REPORT,SUBTABLE,VERSION`.
    fn key(&mut self, record: u8, report: &str, subtable: &str, version: u32) {
        self.buf.push(record);
        self.buf.push(b',');
        self.buf.extend_from_slice(report.as_bytes());
        self.buf.push(b',');
        self.buf.extend_from_slice(subtable.as_bytes());
        self.buf.push(b',');
        push_u64(&mut self.buf, u64::from(version));
    }

    /// Writes an `I` line: the column header of the table that follows.
    fn table_header(
        &mut self,
        report: &str,
        subtable: &str,
        version: u32,
        columns: &[String],
    ) -> Result<()> {
        self.key(b'I', report, subtable, version);
        for c in columns {
            self.buf.push(b',');
            self.buf.extend_from_slice(c.as_bytes());
        }
        self.end_line()
    }

    /// Starts a `D` row of a table (the sub-table is empty for e.g. `DUNIT`) and
    /// returns the line buffer for the fields; `end_line` completes it.
    fn row(&mut self, report: &str, subtable: &str, version: u32) -> &mut Vec<u8> {
        self.key(b'D', report, subtable, version);
        &mut self.buf
    }

    /// Ends the current line and hands full buffers to the compressor.
    fn end_line(&mut self) -> Result<()> {
        self.buf.extend_from_slice(b"\r\n");
        self.lines += 1;
        if self.buf.len() >= FLUSH_BYTES {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes the footer (which counts every line including itself) and returns the writer.
    fn finish(mut self) -> Result<W> {
        let total = self.lines + 1;
        self.buf.extend_from_slice(b"C,\"END OF REPORT\",");
        push_u64(&mut self.buf, total);
        self.buf.extend_from_slice(b"\r\n");
        self.out.write_all(&self.buf)?;
        Ok(self.out)
    }
}

/// Appends `,value` for each value.
fn push_fields(buf: &mut Vec<u8>, values: &[f64], decimals: u32) {
    for &v in values {
        buf.push(b',');
        push_num(buf, v, decimals);
    }
}

/// Appends `,0` `count` times — the many idle columns of MMS tables.
fn push_zeros(buf: &mut Vec<u8>, count: usize) {
    for _ in 0..count {
        buf.extend_from_slice(b",0");
    }
}

/// Splits a comma-separated list of column names.
fn names(list: &str) -> Vec<String> {
    list.split(',').map(str::to_string).collect()
}

/// FCAS services in the order the DREGION and PRICE tables list them.
const FCAS: [&str; 8] = [
    "RAISE6SEC",
    "RAISE60SEC",
    "RAISE5MIN",
    "RAISEREG",
    "LOWER6SEC",
    "LOWER60SEC",
    "LOWER5MIN",
    "LOWERREG",
];

/// DUNIT (version 3) columns, grouped as `write_dunit_row` fills them.
fn dunit_columns() -> Vec<String> {
    let mut c = names(concat!(
        "SETTLEMENTDATE,RUNNO,DUID,INTERVENTION,DISPATCHMODE,AGCSTATUS,INITIALMW,",
        "TOTALCLEARED,RAMPDOWNRATE,RAMPUPRATE,LOWER5MIN,LOWER60SEC,LOWER6SEC,RAISE5MIN,",
        "RAISE60SEC,RAISE6SEC,LOWERREG,RAISEREG,AVAILABILITY",
    ));
    for s in FCAS {
        c.push(format!("{s}FLAGS"));
    }
    c.extend(names(concat!(
        "RAISEREGAVAILABILITY,RAISEREGENABLEMENTMAX,RAISEREGENABLEMENTMIN,",
        "LOWERREGAVAILABILITY,LOWERREGENABLEMENTMAX,LOWERREGENABLEMENTMIN",
    )));
    for s in FCAS {
        c.push(format!("{s}ACTUALAVAILABILITY"));
    }
    c.extend(names(concat!(
        "SEMIDISPATCHCAP,DISPATCHMODETIME,CONFORMANCE_MODE,UIGF,RAISE1SEC,RAISE1SECFLAGS,",
        "LOWER1SEC,LOWER1SECFLAGS,RAISE1SECACTUALAVAILABILITY,LOWER1SECACTUALAVAILABILITY,",
        "INITIAL_ENERGY_STORAGE,ENERGY_STORAGE,LASTCHANGED",
    )));
    c
}

/// DREGION (version 3) columns: prices, demand and a long tail of FCAS detail.
fn dregion_columns() -> Vec<String> {
    let mut c = names(concat!(
        "SETTLEMENTDATE,RUNNO,REGIONID,INTERVENTION,RRP,EEP,ROP,APCFLAG,",
        "MARKETSUSPENDEDFLAG,TOTALDEMAND,DEMANDFORECAST,DISPATCHABLEGENERATION,",
        "DISPATCHABLELOAD,NETINTERCHANGE,EXCESSGENERATION",
    ));
    for s in [
        "LOWER5MIN",
        "LOWER60SEC",
        "LOWER6SEC",
        "RAISE5MIN",
        "RAISE60SEC",
        "RAISE6SEC",
    ] {
        for suffix in [
            "DISPATCH",
            "IMPORT",
            "LOCALDISPATCH",
            "LOCALPRICE",
            "LOCALREQ",
            "PRICE",
            "REQ",
            "SUPPLYPRICE",
        ] {
            c.push(format!("{s}{suffix}"));
        }
    }
    c.extend(names(concat!(
        "AGGEGATEDISPATCHERROR,AVAILABLEGENERATION,AVAILABLELOAD,INITIALSUPPLY,",
        "CLEAREDSUPPLY,LOWERREGIMPORT,LOWERREGLOCALDISPATCH,LOWERREGLOCALREQ,LOWERREGREQ,",
        "RAISEREGIMPORT,RAISEREGLOCALDISPATCH,RAISEREGLOCALREQ,RAISEREGREQ",
    )));
    for s in FCAS {
        c.push(format!("{s}LOCALVIOLATION"));
    }
    for s in FCAS {
        c.push(format!("{s}VIOLATION"));
    }
    for s in FCAS {
        c.push(format!("{s}RRP"));
        c.push(format!("{s}ROP"));
        c.push(format!("{s}APCFLAG"));
    }
    for s in FCAS {
        c.push(format!("{s}ACTUALAVAILABILITY"));
    }
    c.extend(names(concat!(
        "LORSURPLUS,LRCSURPLUS,TOTALINTERMITTENTGENERATION,DEMAND_AND_NONSCHEDGEN,UIGF,",
        "SEMISCHEDULE_CLEAREDMW,SEMISCHEDULE_COMPLIANCEMW,SS_SOLAR_UIGF,SS_WIND_UIGF,",
        "SS_SOLAR_CLEAREDMW,SS_WIND_CLEAREDMW,SS_SOLAR_COMPLIANCEMW,SS_WIND_COMPLIANCEMW,",
        "WDR_INITIALMW,WDR_AVAILABLE,WDR_DISPATCHED",
    )));
    c
}

/// DISPATCH PRICE (version 5) columns.
fn price_columns() -> Vec<String> {
    let mut c = names(concat!(
        "SETTLEMENTDATE,RUNNO,REGIONID,DISPATCHINTERVAL,INTERVENTION,RRP,EEP,ROP,APCFLAG,",
        "MARKETSUSPENDEDFLAG,LASTCHANGED",
    ));
    for s in FCAS {
        c.push(format!("{s}RRP"));
        c.push(format!("{s}ROP"));
        c.push(format!("{s}APCFLAG"));
    }
    c.extend(names(
        "PRICE_STATUS,PRE_AP_ENERGY_PRICE,CUMUL_PRE_AP_ENERGY_PRICE,OCD_STATUS,MII_STATUS",
    ));
    c
}

/// Columns of the small tables readers must skip.
fn case_solution_columns() -> Vec<String> {
    names(concat!(
        "SETTLEMENTDATE,RUNNO,INTERVENTION,CASESUBTYPE,SOLUTIONSTATUS,SPDVERSION,",
        "NONPHYSICALLOSSES,TOTALOBJECTIVE,TOTALAREAGENVIOLATION,",
        "TOTALINTERCONNECTORVIOLATION,TOTALGENERICVIOLATION,TOTALRAMPRATEVIOLATION,",
        "TOTALUNITMWCAPACITYVIOLATION,LASTCHANGED",
    ))
}

/// REGIONSUM (version 4) columns, a shortened but faithful-looking subset.
fn regionsum_columns() -> Vec<String> {
    names(concat!(
        "SETTLEMENTDATE,RUNNO,REGIONID,DISPATCHINTERVAL,INTERVENTION,TOTALDEMAND,",
        "AVAILABLEGENERATION,AVAILABLELOAD,DEMANDFORECAST,DISPATCHABLEGENERATION,",
        "DISPATCHABLELOAD,NETINTERCHANGE,EXCESSGENERATION,LASTCHANGED",
    ))
}

/// Interconnector results: another table the ingest must ignore.
const INTERCONNECTORS: [&str; 6] = [
    "N-Q-MNSP1",
    "NSW1-QLD1",
    "T-V-MNSP1",
    "V-S-MNSP1",
    "V-SA",
    "VIC1-NSW1",
];

/// The `DISPATCHINTERVAL` key AEMO uses: market date then period 001..288.
fn dispatch_interval(end: NaiveDateTime) -> String {
    let start = end - TimeDelta::minutes(5);
    let period = (start.hour() * 12 + start.minute() / 5) + 1;
    format!("{}{:03}", start.format("%Y%m%d"), period)
}

/// `"YYYY/MM/DD HH:MM:SS"` with quotes for an arbitrary time (LASTCHANGED columns).
fn quoted(ts: NaiveDateTime) -> String {
    ts.format("\"%Y/%m/%d %H:%M:%S\"").to_string()
}

/// Static per-unit parts of a DUNIT row, built once so each row is mostly copying.
struct UnitRowParts {
    /// `,DUID` — written after RUNNO.
    duid: Vec<u8>,
    /// Ramp rates and FCAS enablement (RAMPDOWNRATE..RAISEREG), with leading commas.
    ramps_fcas: Vec<u8>,
    /// Flags, regulation limits and FCAS availabilities, with leading commas.
    flags_avail: Vec<u8>,
}

/// Builds the constant slices of a unit's DUNIT rows.
fn unit_row_parts(unit: &Unit) -> UnitRowParts {
    let cap = unit.capacity;
    let fcas = unit.station.fuel.offers_fcas();
    let mut ramps_fcas = Vec::new();
    let ramp = (cap * 0.6).round();
    push_fields(&mut ramps_fcas, &[ramp, ramp], 0);
    if fcas {
        let f = (cap * 0.04).round();
        push_fields(&mut ramps_fcas, &[f, f, f, f, f, f, f, f], 0);
    } else {
        push_zeros(&mut ramps_fcas, 8);
    }
    let mut flags_avail = Vec::new();
    if fcas {
        let reg = (cap * 0.05).round();
        push_fields(&mut flags_avail, &[1.0; 8], 0);
        push_fields(
            &mut flags_avail,
            &[reg, cap, cap * 0.3, reg, cap, cap * 0.3],
            0,
        );
        push_fields(&mut flags_avail, &[(cap * 0.06).round(); 8], 0);
    } else {
        push_zeros(&mut flags_avail, 8 + 6 + 8);
    }
    UnitRowParts {
        duid: format!(",{}", unit.duid).into_bytes(),
        ramps_fcas,
        flags_avail,
    }
}

/// Context for writing one market day's DUNIT rows.
struct DayRows<'a> {
    market: &'a Market,
    fleet: &'a [Unit],
    parts: &'a [UnitRowParts],
}

/// Writes the DUNIT row(s) of one unit for one interval; `intervention` marks the
/// duplicate row of an intervention interval, which carries slightly different
/// (intervention-run) quantities.
fn write_dunit_row<W: Write>(
    w: &mut MmsWriter<W>,
    ctx: &DayRows,
    unit_idx: usize,
    i: usize,
    intervention: bool,
    lastchanged: &str,
) -> Result<()> {
    let market = ctx.market;
    let unit = &ctx.fleet[unit_idx];
    let parts = &ctx.parts[unit_idx];
    let series = &market.output[unit_idx];
    let factor = if intervention { 0.97 } else { 1.0 };
    let mw = f64::from(series[i]) * factor;
    let fuel = unit.station.fuel;
    // A dispatch target is never negative except for a battery's charging; the
    // solar farms' small night-time draw shows in INITIALMW only.
    let next = f64::from(*series.get(i + 1).unwrap_or(&series[i])) * factor;
    let target = if fuel == Fuel::Battery {
        next
    } else {
        next.max(0.0)
    };
    let region = unit.region;
    let rrp = f64::from(market.price[i][region]);
    let buf = w.row("DUNIT", "", 3);
    buf.push(b',');
    buf.extend_from_slice(market.intervals[i].quoted.as_bytes());
    buf.extend_from_slice(b",1");
    buf.extend_from_slice(&parts.duid);
    buf.extend_from_slice(if intervention { b",1,0" } else { b",0,0" });
    buf.extend_from_slice(if fuel.offers_fcas() { b",1" } else { b",0" });
    push_fields(buf, &[mw, target], 3);
    buf.extend_from_slice(&parts.ramps_fcas);
    let available = match fuel {
        Fuel::Wind | Fuel::Solar => (mw * 1.04).clamp(0.0, unit.capacity),
        _ => unit.capacity,
    };
    push_fields(buf, &[available], 3);
    buf.extend_from_slice(&parts.flags_avail);
    let capped = fuel.is_semi_scheduled() && rrp < 0.0;
    buf.extend_from_slice(if capped { b",1,0,0" } else { b",0,0,0" });
    if fuel.is_semi_scheduled() {
        push_fields(buf, &[available], 3);
    } else {
        buf.push(b',');
    }
    push_zeros(buf, 6);
    let storage = &market.storage[unit_idx];
    if storage.is_empty() {
        buf.extend_from_slice(b",,");
    } else {
        let before = if i == 0 { storage[0] } else { storage[i - 1] };
        push_fields(buf, &[f64::from(before), f64::from(storage[i])], 3);
    }
    buf.push(b',');
    buf.extend_from_slice(lastchanged.as_bytes());
    w.end_line()
}

/// Writes a DREGION row (daily) for one region and interval.
fn write_dregion_row<W: Write>(
    w: &mut MmsWriter<W>,
    market: &Market,
    region: usize,
    i: usize,
    intervention: bool,
) -> Result<()> {
    let factor = if intervention { 1.05 } else { 1.0 };
    let rrp = f64::from(market.price[i][region]) * factor;
    let demand = f64::from(market.demand[i][region]);
    let buf = w.row("DREGION", "", 3);
    buf.push(b',');
    buf.extend_from_slice(market.intervals[i].quoted.as_bytes());
    buf.extend_from_slice(b",1,");
    buf.extend_from_slice(REGIONS[region].as_bytes());
    buf.extend_from_slice(if intervention { b",1" } else { b",0" });
    push_fields(buf, &[rrp, 0.0, rrp], 5);
    buf.extend_from_slice(b",0,0");
    let interchange = demand * 0.04;
    push_fields(
        buf,
        &[
            demand,
            demand * 0.002,
            demand - interchange,
            0.0,
            interchange,
            0.0,
        ],
        3,
    );
    push_zeros(buf, 48);
    push_fields(buf, &[0.0, demand * 1.35, 0.0, demand * 0.998, demand], 3);
    push_zeros(buf, 8 + 8 + 8);
    for s in 0..FCAS.len() {
        let p = 0.2 + s as f64 * 0.35;
        push_fields(buf, &[p, p], 5);
        buf.extend_from_slice(b",0");
    }
    push_zeros(buf, 8);
    push_fields(buf, &[demand * 0.2, 0.0, demand * 0.25, demand * 1.01], 3);
    push_zeros(buf, 12);
    w.end_line()
}

/// A written file, as its directory listing shows it.
struct Listed {
    name: String,
    created: NaiveDateTime,
    bytes: u64,
}

/// Compresses the CSV produced by `body` into `dir/<stem>.zip` with a single member
/// `<stem>.CSV`; the entry carries `created` as its timestamp, never the wall clock.
fn write_zip<F>(dir: &Path, stem: &str, created: NaiveDateTime, body: F) -> Result<Listed>
where
    F: FnOnce(&mut MmsWriter<&mut zip::ZipWriter<BufWriter<File>>>) -> Result<()>,
{
    let name = format!("{stem}.zip");
    let path = dir.join(&name);
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
    let stamp = zip::DateTime::from_date_and_time(
        u16::try_from(created.year()).context("year out of zip range")?,
        created.month() as u8,
        created.day() as u8,
        created.hour() as u8,
        created.minute() as u8,
        created.second() as u8,
    )
    .map_err(|e| anyhow::anyhow!("timestamp {created} does not fit a zip entry: {e}"))?;
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(ZIP_LEVEL))
        .last_modified_time(stamp)
        .unix_permissions(0o644);
    zip.start_file(format!("{stem}.CSV"), options)
        .with_context(|| format!("starting the member of {}", path.display()))?;
    {
        let mut mms = MmsWriter::new(&mut zip);
        body(&mut mms).with_context(|| format!("writing {}", path.display()))?;
        mms.finish()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut inner = zip
        .finish()
        .with_context(|| format!("finishing {}", path.display()))?;
    inner
        .flush()
        .with_context(|| format!("flushing {}", path.display()))?;
    let bytes = fs::metadata(&path)
        .with_context(|| format!("reading the size of {}", path.display()))?
        .len();
    Ok(Listed {
        name,
        created,
        bytes,
    })
}

/// Base of the 16-digit report ids in file names and headers.
const ID_BASE: u64 = 412_300_000;

/// Writes the daily report for market day `day` (0-based from `--start`).
fn write_daily(dir: &Path, market: &Market, fleet: &[Unit], day: usize) -> Result<Listed> {
    let created = market.daily_created[day];
    let first = day * INTERVALS_PER_DAY;
    let date = market.intervals[first].end.date();
    let stem = format!(
        "PUBLIC_DAILY_{}0000_{}",
        date.format("%Y%m%d"),
        created.format("%Y%m%d%H%M%S")
    );
    let range = first..first + INTERVALS_PER_DAY;
    let parts: Vec<UnitRowParts> = fleet.iter().map(unit_row_parts).collect();
    let ctx = DayRows {
        market,
        fleet,
        parts: &parts,
    };
    let id = ID_BASE + day as u64 * 1000;
    write_zip(dir, &stem, created, |w| {
        w.comment_header("DAILY", created, id)?;
        w.table_header("DISPATCH", "CASESOLUTION", 2, &case_solution_columns())?;
        for i in range.clone() {
            let iv = &market.intervals[i];
            let lc = quoted(iv.end - TimeDelta::seconds(270));
            let buf = w.row("DISPATCH", "CASESOLUTION", 2);
            buf.push(b',');
            buf.extend_from_slice(iv.quoted.as_bytes());
            buf.extend_from_slice(b",1,0,,0,\"NEMDE 5.2\",0");
            push_fields(buf, &[1.2e6 + (i % 97) as f64 * 731.5], 2);
            push_zeros(buf, 5);
            buf.push(b',');
            buf.extend_from_slice(lc.as_bytes());
            w.end_line()?;
        }
        w.table_header("DUNIT", "", 3, &dunit_columns())?;
        for i in range.clone() {
            let lc = quoted(market.intervals[i].end - TimeDelta::seconds(265));
            for u in 0..fleet.len() {
                write_dunit_row(w, &ctx, u, i, false, &lc)?;
                if market.intervention[i] {
                    write_dunit_row(w, &ctx, u, i, true, &lc)?;
                }
            }
        }
        w.table_header("DREGION", "", 3, &dregion_columns())?;
        for i in range.clone() {
            for r in 0..REGIONS.len() {
                write_dregion_row(w, market, r, i, false)?;
                if market.intervention[i] {
                    write_dregion_row(w, market, r, i, true)?;
                }
            }
        }
        Ok(())
    })
}

/// Writes the intraday SCADA file of interval `i` (an index into `market.intervals`).
fn write_scada(dir: &Path, market: &Market, fleet: &[Unit], i: usize) -> Result<Listed> {
    let iv = &market.intervals[i];
    let created = iv.end + TimeDelta::seconds(12);
    let id = ID_BASE + 5_000_000 + i as u64 * 2;
    let stem = format!(
        "PUBLIC_DISPATCHSCADA_{}_{:016}",
        iv.end.format("%Y%m%d%H%M"),
        id
    );
    let lastchanged = quoted(iv.end + TimeDelta::seconds(10));
    let columns = names("SETTLEMENTDATE,DUID,SCADAVALUE,LASTCHANGED");
    write_zip(dir, &stem, created, |w| {
        w.comment_header("DISPATCHSCADA", created, id)?;
        w.table_header("DISPATCH", "UNIT_SCADA", 1, &columns)?;
        for (u, unit) in fleet.iter().enumerate() {
            let buf = w.row("DISPATCH", "UNIT_SCADA", 1);
            buf.push(b',');
            buf.extend_from_slice(iv.quoted.as_bytes());
            buf.push(b',');
            buf.extend_from_slice(unit.duid.as_bytes());
            push_fields(buf, &[f64::from(market.output[u][i])], 5);
            buf.push(b',');
            buf.extend_from_slice(lastchanged.as_bytes());
            w.end_line()?;
        }
        Ok(())
    })
}

/// Writes the intraday DISPATCHIS file of interval `i`: case solution, prices,
/// interconnector flows and regional summaries.
fn write_dispatch_is(dir: &Path, market: &Market, i: usize) -> Result<Listed> {
    let iv = &market.intervals[i];
    let created = iv.end - TimeDelta::seconds(262);
    let id = ID_BASE + 5_000_001 + i as u64 * 2;
    let stem = format!(
        "PUBLIC_DISPATCHIS_{}_{:016}",
        iv.end.format("%Y%m%d%H%M"),
        id
    );
    let lastchanged = quoted(created - TimeDelta::seconds(3));
    let di = dispatch_interval(iv.end);
    write_zip(dir, &stem, created, |w| {
        w.comment_header("DISPATCHIS", created, id)?;
        w.table_header("DISPATCH", "CASE_SOLUTION", 2, &case_solution_columns())?;
        let buf = w.row("DISPATCH", "CASE_SOLUTION", 2);
        buf.push(b',');
        buf.extend_from_slice(iv.quoted.as_bytes());
        buf.extend_from_slice(b",1,0,,0,\"NEMDE 5.2\",0,1234567.5,0,0,0,0,0,");
        buf.extend_from_slice(lastchanged.as_bytes());
        w.end_line()?;
        w.table_header("DISPATCH", "PRICE", 5, &price_columns())?;
        for (r, region) in REGIONS.iter().enumerate() {
            let rrp = f64::from(market.price[i][r]);
            let buf = w.row("DISPATCH", "PRICE", 5);
            buf.push(b',');
            buf.extend_from_slice(iv.quoted.as_bytes());
            buf.extend_from_slice(b",1,");
            buf.extend_from_slice(region.as_bytes());
            buf.push(b',');
            buf.extend_from_slice(di.as_bytes());
            buf.extend_from_slice(b",0");
            push_fields(buf, &[rrp, 0.0, rrp], 5);
            buf.extend_from_slice(b",0,0,");
            buf.extend_from_slice(lastchanged.as_bytes());
            for s in 0..FCAS.len() {
                let p = 0.2 + s as f64 * 0.35;
                push_fields(buf, &[p, p], 5);
                buf.extend_from_slice(b",0");
            }
            buf.extend_from_slice(b",FIRM");
            push_fields(buf, &[rrp, rrp * 288.0], 5);
            buf.extend_from_slice(b",NOT_OCD,NOT_MII");
            w.end_line()?;
        }
        let ic_columns = names(concat!(
            "SETTLEMENTDATE,RUNNO,INTERCONNECTORID,DISPATCHINTERVAL,INTERVENTION,",
            "METEREDMWFLOW,MWFLOW,MWLOSSES,MARGINALVALUE,VIOLATIONDEGREE,LASTCHANGED",
        ));
        w.table_header("DISPATCH", "INTERCONNECTORRES", 3, &ic_columns)?;
        for (k, ic) in INTERCONNECTORS.iter().enumerate() {
            let flow = (f64::from(market.demand[i][k % 5]) * 0.03).round();
            let buf = w.row("DISPATCH", "INTERCONNECTORRES", 3);
            buf.push(b',');
            buf.extend_from_slice(iv.quoted.as_bytes());
            buf.extend_from_slice(b",1,");
            buf.extend_from_slice(ic.as_bytes());
            buf.push(b',');
            buf.extend_from_slice(di.as_bytes());
            buf.extend_from_slice(b",0");
            push_fields(buf, &[flow, flow, flow * 0.02, 0.0, 0.0], 3);
            buf.push(b',');
            buf.extend_from_slice(lastchanged.as_bytes());
            w.end_line()?;
        }
        w.table_header("DISPATCH", "REGIONSUM", 4, &regionsum_columns())?;
        for (r, region) in REGIONS.iter().enumerate() {
            let demand = f64::from(market.demand[i][r]);
            let buf = w.row("DISPATCH", "REGIONSUM", 4);
            buf.push(b',');
            buf.extend_from_slice(iv.quoted.as_bytes());
            buf.extend_from_slice(b",1,");
            buf.extend_from_slice(region.as_bytes());
            buf.push(b',');
            buf.extend_from_slice(di.as_bytes());
            buf.extend_from_slice(b",0");
            let interchange = demand * 0.04;
            push_fields(
                buf,
                &[
                    demand,
                    demand * 1.35,
                    0.0,
                    demand * 0.002,
                    demand - interchange,
                    0.0,
                    interchange,
                    0.0,
                ],
                3,
            );
            buf.push(b',');
            buf.extend_from_slice(lastchanged.as_bytes());
            w.end_line()?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Listings and reference files.
// ---------------------------------------------------------------------------

/// Writes `dir/index.html` shaped like a NEMWEB (IIS) directory page whose links
/// point at `url_path` + file name, newest last as NEMWEB lists them.
fn write_listing(dir: &Path, url_path: &str, files: &[Listed]) -> Result<()> {
    let parent = url_path
        .trim_end_matches('/')
        .rsplit_once('/')
        .map_or("/", |(p, _)| p);
    let mut html = String::new();
    write!(
        html,
        "<html><head><title>nemweb.com.au - {url_path}</title></head><body><H1>nemweb.com.au - {url_path}</H1><hr>\r\n\r\n<pre><A HREF=\"{parent}/\">[To Parent Directory]</A><br><br>"
    )?;
    for f in files {
        write!(
            html,
            " {} {:>12} <A HREF=\"{url_path}{name}\">{name}</A><br>",
            f.created.format("%A, %B %-d, %Y %l:%M %p"),
            f.bytes,
            name = f.name
        )?;
    }
    html.push_str("</pre><hr></body></html>\r\n");
    let path = dir.join("index.html");
    fs::write(&path, html).with_context(|| format!("writing {}", path.display()))
}

/// Quotes a CSV field only when it needs it.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// The sheet of AEMO's *NEM Registration and Exemption List* workbook that lists
/// generating units and scheduled loads.
const REGISTRATION_SHEET: &str = "PU and Scheduled Loads";

/// That sheet's columns, verbatim (note the trailing space of `Maximum storage
/// capacity `).
const REGISTRATION_COLUMNS: [&str; 21] = [
    "Participant",
    "Station Name",
    "Region",
    "Dispatch Type",
    "Category",
    "Classification",
    "Fuel Source - Primary",
    "Fuel Source - Descriptor",
    "Technology Type - Primary",
    "Technology Type - Descriptor",
    "Units",
    "Aggregation",
    "DUID",
    "Reg Cap generation (MW)",
    "Max Cap generation (MW)",
    "Max ROC/Min generation",
    "Reg Cap consumption (MW)",
    "Max Cap consumption (MW)",
    "Max ROC/Min consumption",
    "Maximum storage capacity ",
    "Comments",
];

/// The header of aemo_fabric's `geo_data.csv`, verbatim (`LENGHT` included).
const GEO_HEADER: &str = "StationName,Region,FuelSourceDescriptor,DUID,Technology,latitude,longitude,Tech,RegMW,id,TEST,LENGHT,geo,checkgeo";

/// A cell of the registration sheet.
#[derive(Clone, Debug)]
enum Cell {
    Text(String),
    Number(f64),
    Blank,
}

/// One row of the registration sheet.
struct RegistrationRow {
    participant: String,
    station: String,
    region: &'static str,
    fuel: Fuel,
    classification: &'static str,
    /// `Fuel Source - Primary`, normally `fuel.primary()`.
    fuel_primary: &'static str,
    units: String,
    aggregation: &'static str,
    duid: String,
    reg_cap: f64,
    max_cap: f64,
    max_roc: Cell,
}

impl RegistrationRow {
    /// The row's cells in `REGISTRATION_COLUMNS` order. Batteries also fill the
    /// consumption columns and their storage (two hours, as the simulation has).
    fn cells(&self) -> Vec<Cell> {
        let text = |s: &str| Cell::Text(s.to_string());
        let mut cells = vec![
            text(&self.participant),
            text(&self.station),
            text(self.region),
            text(self.fuel.dispatch_type()),
            text("Market"),
            text(self.classification),
            text(self.fuel_primary),
            text(self.fuel.descriptor()),
            text(self.fuel.technology_primary()),
            text(self.fuel.technology()),
            text(&self.units),
            text(self.aggregation),
            text(&self.duid),
            Cell::Number(self.reg_cap),
            Cell::Number(self.max_cap),
            self.max_roc.clone(),
        ];
        if self.fuel == Fuel::Battery {
            cells.extend([
                Cell::Number(self.reg_cap),
                Cell::Number(self.max_cap),
                self.max_roc.clone(),
                Cell::Number(self.reg_cap * 2.0),
            ]);
        } else {
            cells.extend([Cell::Blank, Cell::Blank, Cell::Blank, Cell::Blank]);
        }
        cells.push(Cell::Blank);
        cells
    }
}

/// Which rows carry the real list's quirks. Every choice depends on the fleet
/// alone (DUID order), so the same arguments give the same files.
struct Quirks {
    /// The unit that dispatches before AEMO lists it: in the dispatch data, in
    /// neither reference file (the last solar unit).
    unregistered: Option<usize>,
    /// A coal unit whose station gets an extra small Non-Scheduled row with
    /// DUID `-` (the first coal unit).
    dash_row: Option<usize>,
    /// A unit listed a second time under another participant with a smaller
    /// capacity (the first gas unit, else the first hydro unit).
    duplicated: Option<usize>,
    /// The battery spelled `Battery Storage` (the last battery).
    capital_storage: Option<usize>,
    /// The station written with a trailing space (the first wind unit's).
    trailing_space: Option<&'static str>,
    /// `Units` a spreadsheet turned into dates: the first battery's `1-12` and
    /// the first wind unit's `1-30`.
    dated_units: [(Option<usize>, &'static str); 2],
}

impl Quirks {
    fn pick(fleet: &[Unit]) -> Self {
        let first = |f: Fuel| fleet.iter().position(|u| u.station.fuel == f);
        let last = |f: Fuel| fleet.iter().rposition(|u| u.station.fuel == f);
        Quirks {
            unregistered: if fleet.len() > 1 {
                last(Fuel::Solar)
            } else {
                None
            },
            dash_row: first(Fuel::Coal),
            duplicated: first(Fuel::Gas).or(first(Fuel::Hydro)),
            capital_storage: last(Fuel::Battery),
            trailing_space: first(Fuel::Wind).map(|k| fleet[k].station.stem),
            dated_units: [
                (first(Fuel::Battery), "1-Dec"),
                (first(Fuel::Wind), "Jan-30"),
            ],
        }
    }

    /// Whether unit `k` is left out of the reference files.
    fn is_unregistered(&self, k: usize) -> bool {
        self.unregistered == Some(k)
    }

    /// Station name as the list writes it for `unit`.
    fn station_name(&self, unit: &Unit) -> String {
        if self.trailing_space == Some(unit.station.stem) {
            format!("{} ", unit.station.name)
        } else {
            unit.station.name.to_string()
        }
    }
}

/// The registration rows of the fleet, quirks included, sorted by station name
/// then DUID as the real list roughly is.
fn registration_rows(fleet: &[Unit], quirks: &Quirks) -> Vec<RegistrationRow> {
    let mut rows = Vec::new();
    for (k, u) in fleet.iter().enumerate() {
        if quirks.is_unregistered(k) {
            continue;
        }
        let fuel = u.station.fuel;
        let cap = u.capacity;
        // `Max ROC/Min generation`: MW/min for most rows, `-` for some and blank
        // for others, as in the real list (batteries always state it).
        let max_roc = match k % 6 {
            4 if fuel != Fuel::Battery => Cell::Text("-".into()),
            1 if fuel != Fuel::Battery => Cell::Blank,
            _ => Cell::Number((cap * 0.2).round().max(1.0)),
        };
        let max_cap = match fuel {
            Fuel::Wind | Fuel::Solar => (cap * 0.97).floor(),
            Fuel::Battery => cap,
            _ => (cap * 1.05).round(),
        };
        let units = quirks
            .dated_units
            .iter()
            .find(|(at, _)| *at == Some(k))
            .map_or_else(|| u.number.to_string(), |(_, d)| d.to_string());
        let fuel_primary = if quirks.capital_storage == Some(k) {
            "Battery Storage"
        } else {
            fuel.primary()
        };
        let row = RegistrationRow {
            participant: u.station.participant.to_string(),
            station: quirks.station_name(u),
            region: u.station.region,
            fuel,
            classification: fuel.classification(),
            fuel_primary,
            units,
            aggregation: "Y",
            duid: u.duid.clone(),
            reg_cap: cap,
            max_cap,
            max_roc,
        };
        if quirks.duplicated == Some(k) {
            rows.push(RegistrationRow {
                participant: format!("{} Trading Pty Ltd", u.station.participant),
                reg_cap: ((cap / 2.0) / 5.0).round() * 5.0,
                max_cap: ((cap / 2.0) / 5.0).round() * 5.0,
                units: row.units.clone(),
                duid: row.duid.clone(),
                station: row.station.clone(),
                max_roc: row.max_roc.clone(),
                ..row
            });
        }
        if quirks.dash_row == Some(k) {
            rows.push(RegistrationRow {
                participant: row.participant.clone(),
                station: row.station.clone(),
                classification: "Non-Scheduled",
                units: "1".into(),
                aggregation: "N",
                duid: "-".into(),
                reg_cap: 25.0,
                max_cap: 30.0,
                max_roc: Cell::Text("-".into()),
                ..row
            });
        }
        rows.push(row);
    }
    rows.sort_by(|a, b| {
        (a.station.trim(), &a.duid, &a.participant).cmp(&(
            b.station.trim(),
            &b.duid,
            &b.participant,
        ))
    });
    rows
}

/// Writes the registration rows as the real workbook: an xlsx file named `.xls`,
/// the header on the first row of sheet `PU and Scheduled Loads`, capacities as
/// numbers. The document's creation date is `created`, so the bytes are fixed.
fn write_registration(path: &Path, rows: &[RegistrationRow], created: NaiveDate) -> Result<()> {
    let mut book = Workbook::new();
    let date = ExcelDateTime::from_ymd(
        u16::try_from(created.year()).context("year out of the workbook's range")?,
        created.month() as u8,
        created.day() as u8,
    )?;
    book.set_properties(&DocProperties::new().set_creation_datetime(&date));
    let sheet = book.add_worksheet();
    sheet.set_name(REGISTRATION_SHEET)?;
    for (c, name) in REGISTRATION_COLUMNS.iter().enumerate() {
        sheet.write_string(0, c as u16, *name)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = u32::try_from(r + 1).context("too many registration rows")?;
        for (c, cell) in row.cells().iter().enumerate() {
            match cell {
                Cell::Text(t) => {
                    sheet.write_string(r, c as u16, t)?;
                }
                Cell::Number(n) => {
                    sheet.write_number(r, c as u16, *n)?;
                }
                Cell::Blank => {}
            }
        }
    }
    book.save(path)
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes aemo_fabric's `geo_data.csv` for the registered units, in the order of
/// the registration list: `geo` is `"lat lon"`, `checkgeo` counts the units at
/// the same place, and every 13th unit (from the 7th, in DUID order) has no
/// coordinates (blank latitude, longitude and `RegMW`, a one-space `geo`).
fn write_geo(path: &Path, fleet: &[Unit], quirks: &Quirks) -> Result<()> {
    let mut units: Vec<(usize, &Unit)> = fleet
        .iter()
        .enumerate()
        .filter(|(k, _)| !quirks.is_unregistered(*k))
        .collect();
    units.sort_by(|(_, a), (_, b)| (a.station.name, &a.duid).cmp(&(b.station.name, &b.duid)));
    let geo_of = |k: usize, u: &Unit| {
        if k % 13 == 6 {
            " ".to_string()
        } else {
            format!("{:.4} {:.4}", u.latitude, u.longitude)
        }
    };
    let mut at_place: HashMap<String, usize> = HashMap::new();
    for &(k, u) in &units {
        *at_place.entry(geo_of(k, u)).or_default() += 1;
    }
    let mut csv = format!("{GEO_HEADER}\n");
    for (id, &(k, u)) in units.iter().enumerate() {
        let s = u.station;
        let (descriptor, technology, tech) = s.fuel.geo_labels();
        let geo = geo_of(k, u);
        let (lat, lon, mw) = if geo.trim().is_empty() {
            (String::new(), String::new(), String::new())
        } else {
            (
                format!("{:.4}", u.latitude),
                format!("{:.4}", u.longitude),
                u.capacity.to_string(),
            )
        };
        writeln!(
            csv,
            "{},{},{descriptor},{},{technology},{lat},{lon},{tech},{mw},{},1,{},{geo},{}",
            csv_field(s.name),
            s.region,
            csv_field(&u.duid),
            id + 1,
            s.name.chars().count(),
            at_place[&geo],
        )?;
    }
    fs::write(path, csv).with_context(|| format!("writing {}", path.display()))
}

/// Writes the reference files: the registration workbook (named after the first
/// generated day, as the real folder names them) and the coordinates.
fn write_reference(dir: &Path, fleet: &[Unit], start: NaiveDate) -> Result<()> {
    let quirks = Quirks::pick(fleet);
    let registration = dir.join("registration");
    fs::create_dir_all(&registration)
        .with_context(|| format!("creating {}", registration.display()))?;
    let workbook = registration.join(format!(
        "NEM-Registration-and-Exemption-List_{}.xls",
        start.format("%Y%m%d")
    ));
    write_registration(&workbook, &registration_rows(fleet, &quirks), start)?;
    write_geo(&dir.join("geo_data.csv"), fleet, &quirks)
}

// ---------------------------------------------------------------------------
// Orchestration.
// ---------------------------------------------------------------------------

/// One file to write; jobs are independent, so they run on all cores.
#[derive(Clone, Copy)]
enum Job {
    Daily(usize),
    Scada(usize),
    Price(usize),
}

/// Output folders, in the layout the example project's sources point at.
struct Dirs {
    daily: PathBuf,
    scada: PathBuf,
    price: PathBuf,
    reference: PathBuf,
}

/// Creates the output folders.
fn make_dirs(out: &Path) -> Result<Dirs> {
    let dirs = Dirs {
        daily: out.join("daily"),
        scada: out.join("intraday_scada"),
        price: out.join("intraday_price"),
        reference: out.join("reference"),
    };
    for d in [&dirs.daily, &dirs.scada, &dirs.price, &dirs.reference] {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    Ok(dirs)
}

/// Runs `jobs` on a small thread pool. Results come back in job order whatever the
/// scheduling, so listings stay deterministic.
fn run_jobs(jobs: &[Job], dirs: &Dirs, market: &Market, fleet: &[Unit]) -> Result<Vec<Listed>> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Listed>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len())
        .max(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(k) else { break };
                    let result = match *job {
                        Job::Daily(d) => write_daily(&dirs.daily, market, fleet, d),
                        Job::Scada(i) => write_scada(&dirs.scada, market, fleet, i),
                        Job::Price(i) => write_dispatch_is(&dirs.price, market, i),
                    };
                    let failed = result.is_err();
                    if let Ok(mut slot) = results[k].lock() {
                        *slot = Some(result);
                    }
                    if failed {
                        // Stop handing out work; the error is reported below.
                        next.store(jobs.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut listed = Vec::with_capacity(jobs.len());
    for slot in results {
        let value = slot
            .into_inner()
            .map_err(|_| anyhow::anyhow!("a writer thread panicked"))?;
        match value {
            Some(r) => listed.push(r?),
            None => bail!("a file was not written because another one failed"),
        }
    }
    Ok(listed)
}

/// Generates everything described in the module documentation.
fn generate(args: &Args) -> Result<()> {
    if args.units == 0 {
        bail!("--units must be at least 1");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let fleet = build_fleet(&mut rng, args.units);
    skip_wa_draws(&mut rng);
    let market = simulate(args, &fleet, &mut rng);
    let dirs = make_dirs(&args.out)?;

    let mut jobs: Vec<Job> = (0..args.days).map(Job::Daily).collect();
    jobs.extend(market.intraday_range().map(Job::Scada));
    jobs.extend(market.intraday_range().map(Job::Price));
    let listed = run_jobs(&jobs, &dirs, &market, &fleet)?;

    let (daily, rest) = listed.split_at(args.days);
    let (scada, price) = rest.split_at(args.intraday_intervals);
    write_listing(&dirs.daily, "/Reports/Current/Daily_Reports/", daily)?;
    write_listing(&dirs.scada, "/Reports/Current/Dispatch_SCADA/", scada)?;
    write_listing(&dirs.price, "/Reports/Current/DispatchIS_Reports/", price)?;
    write_reference(&dirs.reference, &fleet, args.start)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_like_aemo() {
        let cases = [
            (0.0, 3, "0"),
            (652.3, 3, "652.3"),
            (-12.04, 5, "-12.04"),
            (0.0004, 3, "0"),
            (-0.0004, 3, "0"),
            (1.05, 3, "1.05"),
            (7.001, 3, "7.001"),
            (15000.0, 5, "15000"),
        ];
        for (value, decimals, expected) in cases {
            let mut buf = Vec::new();
            push_num(&mut buf, value, decimals);
            assert_eq!(String::from_utf8(buf).unwrap(), expected, "{value}");
        }
    }

    #[test]
    fn dispatch_interval_counts_periods_of_the_market_day() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 31).unwrap();
        assert_eq!(
            dispatch_interval(d.and_hms_opt(0, 5, 0).unwrap()),
            "20240131001"
        );
        assert_eq!(
            dispatch_interval(d.and_hms_opt(0, 0, 0).unwrap()),
            "20240130288"
        );
    }

    #[test]
    fn column_counts_look_like_the_real_tables() {
        assert_eq!(dunit_columns().len(), 54);
        assert!(dregion_columns().len() >= 110);
    }
}
