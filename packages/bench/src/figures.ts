/** The measured figures of a run and how each compares with its limit or target. */

/** Units of a figure. */
export const Unit = {
  PerSecond: 'ops/s',
  Ms: 'ms',
  Bytes: 'bytes',
  /** A number of things (consumers, timers, mismatches). */
  Count: 'count',
} as const;
/** Unit of a figure. */
export type Unit = (typeof Unit)[keyof typeof Unit];

/** A target: the figure divided by its limit must reach `minRatio`, or the value must stay within `max`. */
export interface Target {
  /** Smallest acceptable value / limit. */
  minRatio?: number;
  /** Largest acceptable value / limit (latencies and costs compared with a peer's). */
  maxRatio?: number;
  /** Largest acceptable value (latencies, memory), in the figure's unit. */
  max?: number;
  /** Largest acceptable value minus its limit (e.g. at most 2 consumers more than the limit figure). */
  maxAbove?: number;
  /** Smallest acceptable multiple of the naive actor's rate. */
  minNaiveRatio?: number;
}

/** One measured figure. */
export interface Figure {
  /** Stable id, e.g. `apply.keys1000.rate`. */
  id: string;
  /** Section of the table. */
  section: string;
  /** What was measured, as printed. */
  name: string;
  value: number;
  unit: Unit;
  /** Id of the figure this one is compared with (its limit), if any. */
  limitId?: string;
  /** Another figure worth a ratio (printed, not a target), e.g. the limit of this layout. */
  alsoId?: string;
  target?: Target;
  /** Extra detail printed under the table and kept in the JSON. */
  note?: string;
  /** Supporting numbers (counts, durations, percentiles). */
  detail?: Record<string, number | string>;
  /** Rows measured over time (the soak's samples), kept in the JSON and printed as a table under the run's. */
  samples?: ReadonlyArray<Record<string, number | string>>;
}

/** A figure with its comparisons worked out. */
export interface EvaluatedFigure extends Figure {
  limit?: { id: string; name: string; value: number };
  ratio?: number;
  naiveRatio?: number;
  also?: { id: string; ratio: number };
  /** Whether the target is met; undefined when there is no target. */
  met?: boolean;
  targetText?: string;
}

/** Works out ratios and targets of every figure against the others of the same run. */
export function evaluate(figures: readonly Figure[], naiveId = 'raw.naive'): EvaluatedFigure[] {
  const byId = new Map(figures.map((f) => [f.id, f]));
  const naive = byId.get(naiveId);
  return figures.map((f) => {
    const out: EvaluatedFigure = { ...f };
    const limit = f.limitId ? byId.get(f.limitId) : undefined;
    if (limit) {
      out.limit = { id: limit.id, name: limit.name, value: limit.value };
      out.ratio = limit.value > 0 ? f.value / limit.value : Number.NaN;
    }
    const also = f.alsoId ? byId.get(f.alsoId) : undefined;
    if (also && also.value > 0) out.also = { id: also.id, ratio: f.value / also.value };
    if (naive && f.target?.minNaiveRatio !== undefined) out.naiveRatio = naive.value > 0 ? f.value / naive.value : Number.NaN;
    const t = f.target;
    if (t) {
      const checks: boolean[] = [];
      const texts: string[] = [];
      if (t.minRatio !== undefined) {
        checks.push(out.ratio !== undefined && out.ratio >= t.minRatio);
        texts.push(`>= ${t.minRatio}x`);
      }
      if (t.maxRatio !== undefined) {
        checks.push(out.ratio !== undefined && out.ratio <= t.maxRatio);
        texts.push(`<= ${t.maxRatio}x`);
      }
      if (t.minNaiveRatio !== undefined) {
        checks.push(out.naiveRatio !== undefined && out.naiveRatio >= t.minNaiveRatio);
        texts.push(`>= ${t.minNaiveRatio}x naive`);
      }
      if (t.maxAbove !== undefined) {
        checks.push(limit !== undefined && Number.isFinite(f.value) && f.value - limit.value <= t.maxAbove);
        texts.push(`<= limit + ${t.maxAbove}`);
      }
      if (t.max !== undefined) {
        checks.push(Number.isFinite(f.value) && f.value <= t.max);
        texts.push(`<= ${f.unit === Unit.Bytes ? `${Math.round(t.max / 1e6)} MB` : `${t.max} ${f.unit}`}`);
      }
      out.met = checks.every(Boolean);
      out.targetText = texts.join(', ');
    }
    return out;
  });
}
