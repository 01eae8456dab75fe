// What the layers above the stage library (the job runner, the experiments, the API and
// the renderer through it) rely on from a stage run: the data it reads (an afd-stage
// job's `data`) and the results table the eval stage writes. Types only, so the
// renderer may read them.

/** Where the demonstrations come from: the shipped HH-Harmless microcosm, a file, or a
 *  dataset in the store. Prompts are split into train and eval by a stable hash. */
export interface DataSpec {
  /** 'hh-harmless' (the shipped copy), a file path, or `store:<dataset name>`. */
  source: string;
  /** Format of a file source (default: from its extension). */
  format?: 'hh' | 'jsonl' | 'csv';
  evalFraction: number;
  /** Use at most this many train / eval prompts (a smaller, faster experiment). */
  maxTrain?: number;
  maxEval?: number;
  /** The model folder whose chat template turns `{"messages": [...]}` lines into (prompt,
   *  response); the driver sets it to pi_0's. */
  chatTemplateModel?: string;
}

/** One row of the results table (the `rows` of results.json, issue 4). */
export interface ResultRow {
  method: string;
  n?: number;
  gold_mean: number;
  gold_ci95: [number, number];
  win_rate_vs_sft: number;
  win_rate_ci95?: [number, number];
  /** Mean over prompts of gold(this response) - gold(the SFT reference's response to the
   *  same prompt), with its 95% interval: the paired comparison, far tighter than comparing
   *  two means when prompts differ much in difficulty. */
  gold_gain_vs_sft?: number;
  gold_gain_ci95?: [number, number];
  /** The paired gain after removing what length explains: gold - slope * tokens on both
   *  sides, with the slope of gold on length over pi_SFT's samples (the eval's length_fit). */
  gold_gain_length_adjusted?: number;
  gold_gain_length_adjusted_ci95?: [number, number];
  /** Win rate against the shortest of the first N SFT samples at the same N (N = 1 for policies). */
  win_rate_vs_shortest?: number;
  win_rate_vs_shortest_ci95?: [number, number];
  /** The paired gain over that shortest of N after removing what length explains from both
   *  (gold - slope * tokens, the slope of gold_gain_length_adjusted). */
  gain_vs_shortest_length_adjusted?: number;
  gain_vs_shortest_length_adjusted_ci95?: [number, number];
  mean_length: number;
  distinct_2?: number;
  kl_estimate?: number;
}

export interface ResultsTable {
  gold_judge_accuracy: number | null;
  rows: ResultRow[];
}
