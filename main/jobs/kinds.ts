// Every job kind the runner knows, by name (runs.stage). An AfD stage (SFT, sampling,
// reward model, Best-of-N...) becomes runnable by adding its JobKind here.
import type { JobKind } from './kind.ts';
import { importDatasetKind } from './import-dataset.ts';
import { importModelKind } from './import-model.ts';
import { exportModelKind } from './export-model.ts';
import { trainTinyLm } from './train-tiny-lm.ts';
import { afdStageKind } from './afd-stage.ts';

export type KindTable = Readonly<Record<string, JobKind>>;

export const KINDS: KindTable = {
  [trainTinyLm.name]: trainTinyLm,
  [importDatasetKind.name]: importDatasetKind,
  [importModelKind.name]: importModelKind,
  [exportModelKind.name]: exportModelKind,
  [afdStageKind.name]: afdStageKind,
};
