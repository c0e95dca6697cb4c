/**
 * A small HDR-style histogram: values (e.g. microseconds) are kept in buckets
 * whose width grows with the value, so any recorded value is off by at most
 * 1/2^precisionBits of itself (3 significant decimal digits at 10 bits), in
 * constant memory, whatever the range. Good enough for p50/p99/max of latencies.
 */
export class Histogram {
  private readonly subBits: number;
  private readonly subCount: number;
  private counts: Float64Array;
  private total = 0;
  private maxValue = 0;
  private minValue = Number.POSITIVE_INFINITY;

  constructor(precisionBits = 10) {
    this.subBits = precisionBits;
    this.subCount = 1 << precisionBits;
    // 53 exponent groups cover every safe integer.
    this.counts = new Float64Array(this.subCount * 54);
  }

  /** The bucket a non-negative integer value falls in. */
  private indexOf(value: number): number {
    if (value < this.subCount) return value;
    const exponent = Math.floor(Math.log2(value)) - this.subBits + 1;
    const sub = Math.floor(value / 2 ** exponent);
    return exponent * this.subCount + sub;
  }

  /** The smallest value of a bucket (what a percentile reports). */
  private valueAt(index: number): number {
    if (index < this.subCount) return index;
    const exponent = Math.floor(index / this.subCount);
    const sub = index % this.subCount;
    return sub * 2 ** exponent;
  }

  record(value: number, count = 1): void {
    const v = Math.max(0, Math.round(value));
    this.counts[this.indexOf(v)]! += count;
    this.total += count;
    if (v > this.maxValue) this.maxValue = v;
    if (v < this.minValue) this.minValue = v;
  }

  get count(): number {
    return this.total;
  }

  get max(): number {
    return this.maxValue;
  }

  get min(): number {
    return this.total === 0 ? 0 : this.minValue;
  }

  /** The value below which `p` percent of the recorded values fall (0 when empty). */
  percentile(p: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.valueAt(i), this.maxValue);
    }
    return this.maxValue;
  }
}
