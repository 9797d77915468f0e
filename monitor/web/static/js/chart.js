// A trend chart with uPlot (vendored, loaded only when a chart is shown), the point's limits
// drawn across it as dashed lines; a true/false point as steps between its two words.
import {L, siteTime} from "./words.js";

let loading = null;

function uPlotLoaded() {
  loading = loading || new Promise((resolve, reject) => {
    const css = Object.assign(document.createElement("link"),
                              {rel: "stylesheet", href: "/web/vendor/uPlot.min.css"});
    const script = Object.assign(document.createElement("script"),
                                 {src: "/web/vendor/uPlot.iife.min.js"});
    script.onload = () => resolve(window.uPlot);
    script.onerror = reject;
    document.head.append(css, script);
  });
  return loading;
}

export const LIMIT_COLOUR = {high_high: "#c62828", low_low: "#c62828", high: "#e8590c", low: "#e8590c"};

/** Dashed lines at each limit, with its word. */
const drawLimits = limits => ({hooks: {draw: u => {
  const {ctx, bbox} = u;
  ctx.save();
  ctx.setLineDash([8, 5]);
  ctx.lineWidth = 2;
  ctx.font = `${12 * devicePixelRatio}px sans-serif`;
  ctx.textAlign = "left";
  ctx.textBaseline = "bottom";
  for (const {value, colour, text} of limits) {
    const y = u.valToPos(value, "y", true);
    ctx.strokeStyle = ctx.fillStyle = colour;
    ctx.beginPath();
    ctx.moveTo(bbox.left, y);
    ctx.lineTo(bbox.left + bbox.width, y);
    ctx.stroke();
    ctx.fillText(text, bbox.left + 6, y - 5);
  }
  ctx.restore();
}}});

function range(limits) {
  return (u, low, high) => {
    const all = [low, high, ...limits.map(l => l.value)].filter(Number.isFinite);
    const [lo, hi] = [Math.min(...all), Math.max(...all)];
    const pad = (hi - lo) * 0.1 || 1;
    return [lo - pad, hi + pad];
  };
}

/** Times on the axis as the page's language says them, 24-hour: with the date over a day,
 * with seconds under ten minutes. */
function clockTick(span) {
  const shown = {hour: "2-digit", minute: "2-digit", hour12: false};
  if (span > 86400) Object.assign(shown, {month: "2-digit", day: "2-digit"});
  if (span < 600) shown.second = "2-digit";
  return ts => siteTime(ts, shown);
}

/** ``series``: {times, values, label, unit, limits: [{value, colour, text}], words, since,
 * until}; ``words`` ({true, false}) makes it a true/false chart; the time axis spans
 * ``since`` to ``until``. */
export async function chart(element, series) {
  const uPlot = await uPlotLoaded();
  const {words, limits, unit} = series;
  const axis = words
    ? {splits: () => [0, 1], values: (u, ticks) => ticks.map(v => (v ? words.true : words.false)), size: 70}
    : {values: (u, ticks) => ticks.map(v => `${v} ${unit}`.trim()), size: 70};
  const plot = new uPlot({
    width: element.clientWidth, height: 300,
    tzDate: ts => uPlot.tzDate(new Date(ts * 1e3), L.timezone),  // ticks on the site's clock
    scales: {x: {time: true, range: () => [series.since, series.until]}, y: {range: words ? () => [-0.2, 1.2] : range(limits)}},
    series: [{}, {label: series.label, stroke: "#0b5cad", width: 2,
                  points: {show: series.values.length < 60, size: 6, fill: "#0b5cad"},
                  paths: words ? uPlot.paths.stepped({align: 1}) : undefined}],
    axes: [{values: (u, ticks) => ticks.map(clockTick(u.scales.x.max - u.scales.x.min)),
            size: 40}, axis],
    legend: {show: false},
    plugins: [drawLimits(limits)],
  }, [series.times, series.values], element);
  new ResizeObserver(() => plot.setSize({width: element.clientWidth, height: 300}))
    .observe(element);
  return plot;
}
