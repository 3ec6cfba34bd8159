//! Turning the generator's JSON lines into the table of medians and ratios
//! (`culex_bench report`), and a minimal reader/writer for the flat JSON
//! objects the generator prints (no nesting: strings and numbers only).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::median;

/// A flat JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Num(f64),
    Str(String),
}

/// One result line, keys in insertion order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record(pub Vec<(String, Value)>);

impl Record {
    pub fn num(&mut self, key: &str, v: f64) -> &mut Self {
        self.0.push((key.into(), Value::Num(v)));
        self
    }
    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        self.0.push((key.into(), Value::Str(v.into())));
        self
    }
    pub fn get_num(&self, key: &str) -> Option<f64> {
        self.0.iter().find_map(|(k, v)| match v {
            Value::Num(n) if k == key => Some(*n),
            _ => None,
        })
    }
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.iter().find_map(|(k, v)| match v {
            Value::Str(s) if k == key => Some(s.as_str()),
            _ => None,
        })
    }

    pub fn to_json(&self) -> String {
        let mut s = String::from("{");
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            write_str(&mut s, k);
            s.push(':');
            match v {
                Value::Num(n) => write_num(&mut s, *n),
                Value::Str(t) => write_str(&mut s, t),
            }
        }
        s.push('}');
        s
    }

    /// Parses one flat object as written by `to_json`.
    pub fn parse(line: &str) -> Option<Record> {
        let mut p = line.trim().strip_prefix('{')?.trim_start();
        let mut rec = Record::default();
        if let Some(rest) = p.strip_prefix('}') {
            return rest.trim().is_empty().then_some(rec);
        }
        loop {
            let (key, rest) = parse_str(p)?;
            p = rest.trim_start().strip_prefix(':')?.trim_start();
            let value = if p.starts_with('"') {
                let (s, rest) = parse_str(p)?;
                p = rest;
                Value::Str(s)
            } else {
                let end = p.find([',', '}']).unwrap_or(p.len());
                let t = p[..end].trim();
                p = &p[end..];
                Value::Num(if t == "null" {
                    f64::NAN
                } else {
                    t.parse().ok()?
                })
            };
            rec.0.push((key, value));
            p = p.trim_start();
            if let Some(rest) = p.strip_prefix(',') {
                p = rest.trim_start();
            } else {
                return p.strip_prefix('}').map(|_| rec);
            }
        }
    }
}

fn write_str(s: &mut String, t: &str) {
    s.push('"');
    for c in t.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

fn write_num(s: &mut String, n: f64) {
    if !n.is_finite() {
        s.push_str("null");
    } else if n.fract() == 0.0 && n.abs() < 1e15 {
        let _ = write!(s, "{}", n as i64);
    } else {
        let _ = write!(s, "{n:.3}");
    }
}

fn parse_str(p: &str) -> Option<(String, &str)> {
    let mut chars = p.strip_prefix('"')?.char_indices();
    let body = &p[1..];
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                'u' => {
                    let hex: String = (0..4).filter_map(|_| chars.next().map(|x| x.1)).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                c => out.push(c),
            },
            c => out.push(c),
        }
    }
    None
}

/// One row of the summary table.
pub struct Row {
    pub scenario: &'static str,
    pub metric: &'static str,
    /// The scenario whose records hold the metric.
    pub source: &'static str,
    pub higher_is_better: bool,
    /// Target for the culex/mosquitto ratio (minimum if higher is better,
    /// maximum otherwise).
    pub target: Option<f64>,
}

pub const ROWS: &[Row] = &[
    row("fanin_qos0", "msgs_per_s", "fanin_qos0", true, Some(5.0)),
    row("fanin_qos1", "msgs_per_s", "fanin_qos1", true, Some(5.0)),
    row("fanout", "msgs_per_s", "fanout", true, Some(15.0)),
    row("pairs", "msgs_per_s", "pairs", true, Some(8.0)),
    row("latency", "p50_us", "latency", false, None),
    row("latency", "p99_us", "latency", false, Some(0.75)),
    row("latency", "p999_us", "latency", false, None),
    row("connections", "connects_per_s", "connections", true, None),
    row(
        "connections",
        "rss_bytes_per_conn",
        "connections",
        false,
        Some(0.5),
    ),
    row("retained", "catchup_ms", "retained", false, Some(0.5)),
    row("memory", "broker_rss_kb", "fanin_qos1", false, Some(0.5)),
];

const fn row(
    scenario: &'static str,
    metric: &'static str,
    source: &'static str,
    higher_is_better: bool,
    target: Option<f64>,
) -> Row {
    Row {
        scenario,
        metric,
        source,
        higher_is_better,
        target,
    }
}

/// The medians per broker for every row whose source scenario was run, as
/// (row, culex, mosquitto, culex gen CPU %, mosquitto gen CPU %).
pub struct Summary<'a> {
    pub row: &'a Row,
    pub culex: Option<f64>,
    pub mosquitto: Option<f64>,
    pub gen_cpu: (Option<f64>, Option<f64>),
    pub broker_cpu: (Option<f64>, Option<f64>),
    pub broker_wait: (Option<f64>, Option<f64>),
    pub runs: (usize, usize),
}

impl Summary<'_> {
    pub fn ratio(&self) -> Option<f64> {
        match (self.culex, self.mosquitto) {
            (Some(c), Some(m)) if m != 0.0 => Some(c / m),
            _ => None,
        }
    }
    pub fn met(&self) -> Option<bool> {
        let (r, t) = (self.ratio()?, self.row.target?);
        Some(if self.row.higher_is_better {
            r >= t
        } else {
            r <= t
        })
    }
}

pub fn summarise(records: &[Record]) -> Vec<Summary<'static>> {
    let mut by: BTreeMap<(&str, &str), Vec<&Record>> = BTreeMap::new();
    for r in records {
        if let (Some(s), Some(b)) = (r.get_str("scenario"), r.get_str("broker")) {
            by.entry((s, b)).or_default().push(r);
        }
    }
    let med = |scenario: &str, broker: &str, metric: &str| -> (Option<f64>, usize) {
        let v: Vec<f64> = by
            .get(&(scenario, broker))
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| r.get_num(metric))
                    .filter(|x| x.is_finite())
                    .collect()
            })
            .unwrap_or_default();
        (median(&v), v.len())
    };
    ROWS.iter()
        .filter(|row| by.keys().any(|(s, _)| *s == row.source))
        .map(|row| {
            let (c, nc) = med(row.source, "culex", row.metric);
            let (m, nm) = med(row.source, "mosquitto", row.metric);
            Summary {
                row,
                culex: c,
                mosquitto: m,
                gen_cpu: (
                    med(row.source, "culex", "gen_cpu_pct").0,
                    med(row.source, "mosquitto", "gen_cpu_pct").0,
                ),
                broker_cpu: (
                    med(row.source, "culex", "broker_cpu_pct").0,
                    med(row.source, "mosquitto", "broker_cpu_pct").0,
                ),
                broker_wait: (
                    med(row.source, "culex", "broker_wait_pct").0,
                    med(row.source, "mosquitto", "broker_wait_pct").0,
                ),
                runs: (nc, nm),
            }
        })
        .collect()
}

fn fmt_opt(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 100.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

/// The Markdown table of medians.
pub fn table(summary: &[Summary]) -> String {
    let mut s = String::new();
    s.push_str("| scenario | metric | culex | mosquitto | culex/mosquitto | target | met | broker CPU % (culex / mosquitto) | broker run-queue wait % | generator CPU % | runs |\n");
    s.push_str("|---|---|---:|---:|---:|---|---|---|---|---|---|\n");
    for x in summary {
        let target = x.row.target.map_or("-".to_string(), |t| {
            format!("{}{t}x", if x.row.higher_is_better { ">= " } else { "<= " })
        });
        let met = match x.met() {
            None => "-",
            Some(true) => "yes",
            Some(false) => "NO",
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} / {} | {}+{} |",
            x.row.scenario,
            x.row.metric,
            fmt_opt(x.culex),
            fmt_opt(x.mosquitto),
            x.ratio().map_or("-".into(), |r| format!("{r:.2}")),
            target,
            met,
            fmt_opt(x.broker_cpu.0),
            fmt_opt(x.broker_cpu.1),
            fmt_opt(x.broker_wait.0),
            fmt_opt(x.broker_wait.1),
            fmt_opt(x.gen_cpu.0),
            fmt_opt(x.gen_cpu.1),
            x.runs.0,
            x.runs.1,
        );
    }
    s
}

/// results.json: every run's record and the summary rows.
pub fn results_json(records: &[Record], summary: &[Summary], meta: &Record) -> String {
    let mut s = String::from("{\n\"meta\": ");
    s.push_str(&meta.to_json());
    s.push_str(",\n\"summary\": [\n");
    for (i, x) in summary.iter().enumerate() {
        let mut r = Record::default();
        r.str("scenario", x.row.scenario)
            .str("metric", x.row.metric)
            .str(
                "better",
                if x.row.higher_is_better {
                    "higher"
                } else {
                    "lower"
                },
            )
            .num("culex", x.culex.unwrap_or(f64::NAN))
            .num("mosquitto", x.mosquitto.unwrap_or(f64::NAN))
            .num("ratio", x.ratio().unwrap_or(f64::NAN))
            .num("target", x.row.target.unwrap_or(f64::NAN))
            .num("culex_broker_cpu_pct", x.broker_cpu.0.unwrap_or(f64::NAN))
            .num(
                "mosquitto_broker_cpu_pct",
                x.broker_cpu.1.unwrap_or(f64::NAN),
            )
            .num("culex_gen_cpu_pct", x.gen_cpu.0.unwrap_or(f64::NAN))
            .num("mosquitto_gen_cpu_pct", x.gen_cpu.1.unwrap_or(f64::NAN))
            .str(
                "met",
                match x.met() {
                    None => "n/a",
                    Some(true) => "yes",
                    Some(false) => "no",
                },
            );
        s.push_str(&r.to_json());
        s.push_str(if i + 1 < summary.len() { ",\n" } else { "\n" });
    }
    s.push_str("],\n\"runs\": [\n");
    for (i, r) in records.iter().enumerate() {
        s.push_str(&r.to_json());
        s.push_str(if i + 1 < records.len() { ",\n" } else { "\n" });
    }
    s.push_str("]\n}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let mut r = Record::default();
        r.str("scenario", "fanin_qos0")
            .str("note", "a \"b\"\n")
            .num("msgs_per_s", 1234.5)
            .num("n", 3.0)
            .num("bad", f64::NAN);
        let line = r.to_json();
        assert_eq!(
            line,
            r#"{"scenario":"fanin_qos0","note":"a \"b\"\n","msgs_per_s":1234.500,"n":3,"bad":null}"#
        );
        let back = Record::parse(&line).unwrap();
        assert_eq!(back.get_str("note"), Some("a \"b\"\n"));
        assert_eq!(back.get_num("msgs_per_s"), Some(1234.5));
        assert!(back.get_num("bad").unwrap().is_nan());
        assert!(Record::parse("{\"a\":").is_none());
        assert_eq!(Record::parse("{}"), Some(Record::default()));
    }

    #[test]
    fn medians_and_ratios() {
        let mut recs = Vec::new();
        for (b, v) in [
            ("culex", 500.0),
            ("culex", 700.0),
            ("culex", 600.0),
            ("mosquitto", 100.0),
            ("mosquitto", 120.0),
            ("mosquitto", 110.0),
        ] {
            let mut r = Record::default();
            r.str("scenario", "fanin_qos0")
                .str("broker", b)
                .num("msgs_per_s", v);
            recs.push(r);
        }
        let s = summarise(&recs);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].culex, Some(600.0));
        assert_eq!(s[0].mosquitto, Some(110.0));
        assert_eq!(s[0].met(), Some(true));
        assert!(
            table(&s).contains("| fanin_qos0 | msgs_per_s | 600.0 | 110.0 | 5.45 | >= 5x | yes |")
        );
        assert!(results_json(&recs, &s, &Record::default()).contains("\"ratio\":5.455"));
    }
}
