// Atomic file replacement: readers see the old file or the complete new one, never a
// torn write, even across a crash (temp file in the same folder, fsync, rename, fsync folder).
import { open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `chunks` to `path` atomically. Chunks may come lazily from an iterable; if
 * producing or writing any of them fails, the temp file is removed, the old target is
 * untouched, and the error is rethrown (file-system errors as "Could not write <path>: ...").
 */
export async function writeFileAtomic(
  path: string,
  chunks: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx');
    for await (const chunk of chunks instanceof Uint8Array ? [chunks] : chunks) await writeAll(handle, chunk);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, path);
    await syncDir(dir);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw systemError(err) ? new Error(`Could not write ${path}: ${err.message}`, { cause: err }) : err;
  }
}

function systemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  // One write() may be partial (Linux caps a call near 2 GiB).
  for (let done = 0; done < chunk.byteLength;) {
    const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done);
    done += bytesWritten;
  }
}

// Makes the rename itself durable. Windows cannot open or fsync a folder; NTFS
// journals the rename, so skipping it there is the usual practice.
async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
