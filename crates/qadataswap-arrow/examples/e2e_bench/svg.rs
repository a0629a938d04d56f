//! Two small hand-written SVG charts (no plotting crate): lines on log-log axes, and grouped bars.

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

pub struct Series {
    pub name: String,
    pub dashed: bool,
    /// (x, y); points with a non-positive coordinate are left out (log axes).
    pub points: Vec<(f64, f64)>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn header(title: &str, x_label: &str, y_label: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n\
         <text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">{}</text>\n",
        (LEFT + W - RIGHT) / 2.0,
        esc(title),
        (LEFT + W - RIGHT) / 2.0,
        H - 12.0,
        esc(x_label),
        (TOP + H - BOTTOM) / 2.0,
        (TOP + H - BOTTOM) / 2.0,
        esc(y_label)
    )
}

fn decades(lo: f64, hi: f64) -> (f64, f64) {
    (
        lo.log10().floor(),
        hi.log10().ceil().max(lo.log10().floor() + 1.0),
    )
}

fn legend(out: &mut String, items: &[(String, bool)]) {
    for (i, (name, dashed)) in items.iter().enumerate() {
        let y = TOP + 10.0 + i as f64 * 18.0;
        let x = W - RIGHT + 15.0;
        out.push_str(&format!(
            "<line x1=\"{x}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{}\" stroke-width=\"2.5\"{}/>\
             <text x=\"{}\" y=\"{}\">{}</text>\n",
            x + 22.0,
            COLORS[i % COLORS.len()],
            if *dashed { " stroke-dasharray=\"5,3\"" } else { "" },
            x + 28.0,
            y + 4.0,
            esc(name)
        ));
    }
}

/// Lines on log-log axes.
pub fn lines(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| *x > 0.0 && *y > 0.0);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (1.0, 10.0, 1.0, 10.0);
    }
    let (xd0, xd1) = decades(x0, x1);
    let (yd0, yd1) = decades(y0, y1);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let px = |x: f64| LEFT + (x.log10() - xd0) / (xd1 - xd0) * pw;
    let py = |y: f64| TOP + ph - (y.log10() - yd0) / (yd1 - yd0) * ph;
    let mut out = header(title, x_label, y_label);
    out.push_str(&format!(
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#888\"/>\n"
    ));
    for d in xd0 as i32..=xd1 as i32 {
        let x = px(10f64.powi(d));
        out.push_str(&format!(
            "<line x1=\"{x}\" y1=\"{TOP}\" x2=\"{x}\" y2=\"{}\" stroke=\"#ddd\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            TOP + ph,
            TOP + ph + 16.0,
            10f64.powi(d)
        ));
    }
    for d in yd0 as i32..=yd1 as i32 {
        let y = py(10f64.powi(d));
        y_grid_line(&mut out, y, pw, 10f64.powi(d));
    }
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| *x > 0.0 && *y > 0.0)
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2.5\"{} points=\"{}\"/>\n",
            if s.dashed {
                " stroke-dasharray=\"5,3\""
            } else {
                ""
            },
            path.join(" ")
        ));
        for p in &path {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            out.push_str(&format!(
                "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{color}\"/>\n"
            ));
        }
    }
    let items: Vec<(String, bool)> = series.iter().map(|s| (s.name.clone(), s.dashed)).collect();
    legend(&mut out, &items);
    out.push_str("</svg>\n");
    out
}

/// Grouped bars on a linear axis from 0: one group per category, one bar per series in it.
pub fn bars(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> String {
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    // A round top: 1, 2 or 5 times a power of ten.
    let mag = 10f64.powf(max.log10().floor());
    let top = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|t| *t >= max)
        .unwrap_or(10.0 * mag);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let py = |y: f64| TOP + ph - y / top * ph;
    let mut out = header(title, "", y_label);
    out.push_str(&format!(
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#888\"/>\n"
    ));
    for k in 0..=5 {
        let v = top * k as f64 / 5.0;
        let y = py(v);
        y_grid_line(&mut out, y, pw, (v * 1000.0).round() / 1000.0);
    }
    let groups = categories.len().max(1) as f64;
    let gw = pw / groups;
    let bw = gw * 0.8 / series.len().max(1) as f64;
    for (g, cat) in categories.iter().enumerate() {
        let gx = LEFT + g as f64 * gw;
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            gx + gw / 2.0,
            TOP + ph + 16.0,
            esc(cat)
        ));
        for (i, (_, values)) in series.iter().enumerate() {
            let v = values.get(g).copied().unwrap_or(0.0).max(0.0);
            let x = gx + gw * 0.1 + i as f64 * bw;
            out.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>\n",
                py(v),
                bw * 0.9,
                (TOP + ph - py(v)).max(0.0),
                COLORS[i % COLORS.len()]
            ));
        }
    }
    let items: Vec<(String, bool)> = series.iter().map(|(n, _)| (n.clone(), false)).collect();
    legend(&mut out, &items);
    out.push_str("</svg>\n");
    out
}

/// A horizontal grid line at `y` across the plot (`pw` wide) with its value on the axis.
fn y_grid_line(out: &mut String, y: f64, pw: f64, value: f64) {
    out.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
        LEFT + pw,
        LEFT - 6.0,
        y + 4.0,
        value
    ));
}
