//! `GET /api/charts/{name}`: SVG line charts of this node's history ([`super::history`]),
//! drawn by `plotters` on the node, so the dashboard needs no JavaScript charting code and no
//! CDN. Time runs along the x axis in seconds before now; leadership changes are red vertical
//! lines.

use actix_web::{web, HttpResponse};
use plotters::prelude::*;

use super::history::Sample;
use super::{ApiError, AppState};

/// The charts, by name: title, unit, and the series each sample gives (name, value).
type SeriesOf = fn(&Sample) -> Vec<(String, Option<f64>)>;

fn chart_of(name: &str) -> Option<(&'static str, SeriesOf)> {
    let chart: (&'static str, SeriesOf) = match name {
        "writes" => ("entries committed per second", |s| {
            vec![("commits/s".into(), Some(s.commits_per_sec))]
        }),
        "reads" => ("key-value reads served per second", |s| {
            vec![("reads/s".into(), Some(s.reads_per_sec))]
        }),
        "latency" => ("HTTP latency, ms", |s| {
            vec![("p50".into(), s.http_p50_ms), ("p99".into(), s.http_p99_ms)]
        }),
        "fsync" => ("log fsync p99, ms", |s| {
            vec![("p99".into(), s.fsync_p99_ms)]
        }),
        "commit" => ("commit index", |s| {
            vec![("commit".into(), Some(s.commit as f64))]
        }),
        "lag" => ("follower lag, entries (leader only)", |s| {
            s.lag
                .iter()
                .map(|(id, lag)| (format!("node {id}"), Some(*lag as f64)))
                .collect()
        }),
        _ => return None,
    };
    Some(chart)
}

/// The names `GET /api/charts/{name}` knows.
pub const CHARTS: [&str; 6] = ["writes", "reads", "latency", "fsync", "commit", "lag"];

const COLORS: [RGBColor; 4] = [
    RGBColor(0x2f, 0x5d, 0xa8),
    RGBColor(0xd3, 0x7b, 0x00),
    RGBColor(0x1d, 0x6b, 0x34),
    RGBColor(0x7a, 0x3e, 0x9d),
];

/// Draws `samples` as the chart `title` of `series_of` in SVG.
fn draw(title: &str, series_of: SeriesOf, samples: &[Sample]) -> Result<String, String> {
    let now = samples.last().map_or(0.0, |s| s.at_secs);
    let x = |s: &Sample| s.at_secs - now;
    let from = samples.first().map_or(-60.0, x).min(-60.0);
    let mut named: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for sample in samples {
        for (name, value) in series_of(sample) {
            let Some(value) = value else { continue };
            match named.iter_mut().find(|(n, _)| *n == name) {
                Some((_, points)) => points.push((x(sample), value)),
                None => named.push((name, vec![(x(sample), value)])),
            }
        }
    }
    let top = named
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let top = if top <= 0.0 { 1.0 } else { top * 1.1 };
    let mut svg = String::new();
    {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let root = SVGBackend::with_string(&mut svg, (460, 200)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 14))
            .margin(6)
            .x_label_area_size(34)
            .y_label_area_size(44)
            .build_cartesian_2d(from..0.0, 0.0..top)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds ago")
            .x_label_formatter(&|v| {
                if *v > -0.5 {
                    "now".to_string()
                } else {
                    format!("{:.0}", -v)
                }
            })
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| err(&e))?;
        for sample in samples.iter().filter(|s| s.leader_changed) {
            let at = x(sample);
            chart
                .draw_series(LineSeries::new([(at, 0.0), (at, top)], RED.stroke_width(1)))
                .map_err(|e| err(&e))?;
        }
        for (i, (name, points)) in named.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], color));
        }
        if !named.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK.mix(0.3))
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// `GET /api/charts/{name}`: one chart of this node's last five minutes, as SVG.
#[utoipa::path(
    get,
    path = "/api/charts/{name}",
    tag = "dashboard",
    params(("name" = String, Path, description = "writes, reads, latency, fsync, commit or lag")),
    responses(
        (status = 200, description = "An SVG line chart of the last five minutes, one point a second; red lines mark leadership changes", content_type = "image/svg+xml"),
        (status = 404, description = "No such chart", body = super::openapi::ErrorBody),
    ),
)]
pub async fn chart(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (title, series_of) = chart_of(&name).ok_or_else(|| {
        ApiError::not_found(
            "chart_not_found",
            format!(
                "there is no chart `{name}`: the charts are {}",
                CHARTS.join(", ")
            ),
        )
    })?;
    let samples = state
        .history
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .samples();
    let svg = draw(title, series_of, &samples).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("cache-control", "no-store"))
        .body(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chart_draws_with_and_without_samples() {
        let sample = |at: f64, commit: u64| Sample {
            at_secs: at,
            commits_per_sec: commit as f64,
            reads_per_sec: 1.0,
            http_p50_ms: Some(1.0),
            http_p99_ms: None,
            fsync_p99_ms: Some(0.3),
            commit,
            term: 1,
            leader_changed: at == 2.0,
            lag: [(2, 3)].into(),
        };
        let samples = [sample(1.0, 5), sample(2.0, 9), sample(3.0, 12)];
        for name in CHARTS {
            let (title, series_of) = chart_of(name).expect("a chart");
            let empty = draw(title, series_of, &[]).expect("an empty chart");
            assert!(empty.starts_with("<svg"), "{name}");
            let full = draw(title, series_of, &samples).expect("a chart");
            assert!(full.contains("<polyline"), "{name}: lines drawn");
        }
        assert!(chart_of("nope").is_none());
    }
}
