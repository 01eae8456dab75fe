// Reading fields of a Hugging Face config.json, with errors that name the field and the
// model type, so that an unusable config is refused in one sentence.

export class HfConfigReader {
  constructor(private readonly json: Record<string, unknown>, private readonly what: string) {}

  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  private fail(key: string, want: string): never {
    throw new Error(`${this.what} config.json: "${key}" must be ${want}, got ${JSON.stringify(this.json[key])}.`);
  }

  /** A positive integer (or the default when absent / null). */
  int(key: string, fallback?: number): number {
    if (!this.has(key)) {
      if (fallback === undefined) this.fail(key, 'a positive integer');
      return fallback;
    }
    const v = this.json[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) this.fail(key, 'a positive integer');
    return v;
  }

  num(key: string, fallback?: number): number {
    if (!this.has(key)) {
      if (fallback === undefined) this.fail(key, 'a number');
      return fallback;
    }
    const v = this.json[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'a number');
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const v = this.json[key];
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  str(key: string, fallback: string): string {
    if (!this.has(key)) return fallback;
    const v = this.json[key];
    if (typeof v !== 'string') this.fail(key, 'a string');
    return v;
  }

  /** A JSON object (or undefined when absent / null). */
  obj(key: string): Record<string, unknown> | undefined {
    if (!this.has(key)) return undefined;
    const v = this.json[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'an object');
    return v as Record<string, unknown>;
  }

  /** Refuses a setting this engine does not implement. */
  refuse(key: string, unsupported: (v: unknown) => boolean, why: string): void {
    if (this.has(key) && unsupported(this.json[key])) {
      throw new Error(`${this.what} config.json sets "${key}": ${JSON.stringify(this.json[key])}, which AfD Studio does not support (${why}).`);
    }
  }
}
