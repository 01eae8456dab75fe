// Artifacts: large files beside the database (weights, checkpoints), by content hash.
// Writing the file atomically (temp file, fsync, rename) is the caller's part; this
// table only records what exists where.
import type { StudioDatabase } from './database.ts';

export interface Artifact {
  hash: string;
  size: number;
  path: string;
  createdAt: string;
}

export class ArtifactStore {
  private readonly db: StudioDatabase;

  constructor(db: StudioDatabase) {
    this.db = db;
  }

  /** Records a file; the same content recorded twice keeps the first entry. */
  put(a: { hash: string; size: number; path: string }): Artifact {
    this.db.statement<[string, number, string]>('INSERT INTO artifacts (hash, size, path) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING').run(a.hash, a.size, a.path);
    return this.get(a.hash) as Artifact;
  }

  get(hash: string): Artifact | undefined {
    return this.db.statement<[string], Artifact>('SELECT hash, size, path, created_at AS createdAt FROM artifacts WHERE hash = ?').get(hash);
  }

  delete(hash: string): boolean {
    return this.db.statement<[string]>('DELETE FROM artifacts WHERE hash = ?').run(hash).changes > 0;
  }
}
