// A chart over time (uPlot on a canvas): x is time, one or more series of counts. It takes its
// container's width and follows it, takes its colours from the page's CSS variables (and again when
// the colour scheme changes), and carries a text summary for screen readers, which the canvas lacks.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './pages/charts.css';
import { formatTime } from './api.ts';

export interface ChartSeries {
  label: string;
  values: number[];
  /** A CSS colour or `var(--name)`; the palette's next colour when absent. */
  color?: string;
}

const PALETTE = ['var(--accent)', '#d97706', '#7c3aed', '#059669'];

/** Whole steps for an axis of counts (no "0.5 queries"). */
const WHOLE_STEPS = Array.from({ length: 13 }, (_, i) => [1, 2, 5].map((m) => m * 10 ** i)).flat();

const formatCount = (n: number) => n.toLocaleString();

/** What the chart shows, in words: the span, and each series' total and busiest point. */
function describe(label: string, times: number[], series: ChartSeries[], unit: string): string {
  if (times.length === 0) return `${label}: no data.`;
  const parts = [`${label}, ${formatTime(times[0]!)} to ${formatTime(times[times.length - 1]!)}, ${times.length} points of one ${unit} each.`];
  for (const s of series) {
    let total = 0;
    let peak = 0;
    for (let i = 1; i < s.values.length; i++) if (s.values[i]! > s.values[peak]!) peak = i;
    for (const v of s.values) total += v;
    parts.push(
      total === 0 ? `${s.label}: none.` : `${s.label}: ${formatCount(total)} in all, at most ${formatCount(s.values[peak]!)} in the ${unit} from ${formatTime(times[peak]!)}.`,
    );
  }
  return parts.join(' ');
}

export function TimeChart(props: {
  /** What the chart shows ("Queries per hour"): its caption, and the start of its summary. */
  label: string;
  /** Each point's time (the start of its bucket), in ms since the epoch, ascending. */
  times: number[];
  series: ChartSeries[];
  /** One bucket's span in words, for the summary ("hour", "15 minutes"). */
  unit?: string;
  /** Bars (one series) rather than lines. */
  bars?: boolean;
  /** A bucket's span in ms: the x axis then runs to the end of the last bucket, and bars fill their buckets from their start. */
  step?: number;
  height?: number;
  /** Replaces the generated summary. */
  summary?: string;
}) {
  const { label, times, series, unit = 'bucket', bars = false, step, height = 220 } = props;
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = useMemo<uPlot.AlignedData>(() => [times.map((t) => t / 1000), ...series.map((s) => s.values)], [times, series]);
  const latest = useRef(data);
  latest.current = data;
  const [scheme, setScheme] = useState(0);

  useEffect(() => {
    const dark = matchMedia('(prefers-color-scheme: dark)');
    const changed = () => setScheme((n) => n + 1);
    dark.addEventListener('change', changed);
    return () => dark.removeEventListener('change', changed);
  }, []);

  // The plot is built again when what it draws changes shape (series, colours, kind); new data only refills it
  // (`shape` stands for everything the options are made of).
  const shape = JSON.stringify([series.map((s) => [s.label, s.color]), bars, step, height, scheme]);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const css = getComputedStyle(element);
    const color = (value: string, fallback: string) => {
      const variable = /^var\((--[\w-]+)\)$/.exec(value);
      return (variable ? css.getPropertyValue(variable[1]!).trim() : value) || fallback;
    };
    const fg = color('var(--fg)', '#222');
    const muted = color('var(--muted)', '#666');
    const grid = color('var(--border)', '#ddd');
    const axis: uPlot.Axis = { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: `12px ${css.fontFamily}` };
    const options: uPlot.Options = {
      width: Math.max(element.clientWidth, 120),
      height,
      cursor: { drag: { x: false, y: false } },
      legend: { show: true },
      scales: { x: step ? { time: true, range: (_u, min, max) => [min, max + step / 1000] } : { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [axis, { ...axis, incrs: WHOLE_STEPS, size: 48 }],
      series: [
        { label: 'Time' },
        ...series.map((s, i): uPlot.Series => {
          const stroke = color(s.color ?? PALETTE[i % PALETTE.length]!, fg);
          return bars
            ? { label: s.label, stroke, fill: stroke, width: 0, paths: uPlot.paths.bars!({ size: [0.8, 24, 1], align: step ? 1 : 0 }), points: { show: false } }
            : { label: s.label, stroke, width: 2, points: { show: latest.current[0].length <= 48 } };
        }),
      ],
    };
    const chart = new uPlot(options, latest.current, element);
    plot.current = chart;
    let width = element.clientWidth;
    const resized = new ResizeObserver(() => {
      if (element.clientWidth === width) return;
      width = element.clientWidth;
      chart.setSize({ width: Math.max(width, 120), height });
    });
    resized.observe(element);
    return () => {
      resized.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return (
    <figure class="time-chart">
      <figcaption>{label}</figcaption>
      <div ref={box} class="time-chart-plot" aria-hidden="true" />
      <p class="visually-hidden">{props.summary ?? describe(label, times, series, unit)}</p>
    </figure>
  );
}
