/** One measured figure, with the baseline it is compared against in the same run. */
export interface Figure {
  name: string;
  metric: string;
  unit: string;
  value: number;
  /** `unit` when the baseline counts something else (raw JetStream counts messages). */
  baseline?: { name: string; value: number; unit?: string };
  ratio?: number;
  /** The target the issue sets, as a ratio (throughput) or an absolute bound (latency, memory). */
  target?: number;
  note?: string;
  /** The value split by process (CPU per job: µs of each process, same unit as `value`). */
  breakdown?: Record<string, number>;
}

export function figure(f: Omit<Figure, 'ratio'>): Figure {
  const ratio = f.baseline && f.baseline.value !== 0 ? Math.round((f.value / f.baseline.value) * 100) / 100 : undefined;
  return { ...f, ...(ratio !== undefined ? { ratio } : {}) };
}

export function printFigure(f: Figure): void {
  const base = f.baseline
    ? `  vs ${f.baseline.name} ${f.baseline.value} ${f.baseline.unit ?? f.unit}  ratio ${f.ratio}`
    : '';
  const target = f.target !== undefined ? `  (target ${f.target})` : '';
  console.log(
    `${f.name.padEnd(22)} ${f.metric.padEnd(12)} ${String(f.value).padStart(9)} ${f.unit}${base}${target}${f.note ? `  ${f.note}` : ''}`,
  );
  if (f.breakdown)
    console.log(
      `${''.padEnd(22)} ${'by process'.padEnd(12)} ${Object.entries(f.breakdown)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')} ${f.unit}`,
    );
}
