// Number and time formatting shared by the tables and charts.
export function num(x: unknown): string {
  if (typeof x !== "number" || !Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return x.toExponential(3);
  return x.toLocaleString(undefined, { maximumFractionDigits: 3 });
}

export const time = (ms: number): string => new Date(ms).toLocaleString();
export const clock = (ms: number): string => new Date(ms).toLocaleTimeString();
