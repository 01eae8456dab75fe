// v2: index examples by (dataset, split, id). The dataset list counts examples per split
// (GROUP BY dataset_id, split) and the example browser filters by split in id order;
// without it both scan every example of the dataset.
import type { Migration } from './migration.ts';

export const examplesBySplit: Migration = {
  version: 2,
  name: 'examples-by-split',
  up(db) {
    db.exec('CREATE INDEX examples_by_split ON examples (dataset_id, split, id)');
  },
};
