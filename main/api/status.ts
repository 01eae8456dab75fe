// Status, settings, the app log and the diagnostics bundle: what the status bar and the
// settings page show, and what a user attaches to a bug report.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { arch, availableParallelism, freemem, platform, release, totalmem } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { findGpuAdapter } from '../../native-models/runtime/providers.ts';
import { studioVersion } from '../startup/version.ts';
import type { ComputeDevice, ProviderSetting, StudioStatus } from './contract.ts';
import type { ApiContext, Handlers } from './context.ts';
import type { ProviderProbe } from './generation.ts';

/** `generations`: how many streamed generations are unfinished (GenerationStreams.running). */
export function statusHandlers(ctx: ApiContext, generations: () => number): Handlers<'status' | 'settings.get' | 'settings.set' | 'logs.app' | 'diagnostics.bundle'> {
  // Probing runs a test session on each provider: once per setting, in the worker.
  const probes = new Map<ProviderSetting, Promise<ProviderProbe>>();
  const probe = (setting: ProviderSetting): Promise<ProviderProbe> => {
    let p = probes.get(setting);
    if (p === undefined) {
      p = ctx.generation.probe(setting);
      probes.set(setting, p);
      p.catch(() => probes.delete(setting));
    }
    return p;
  };

  const status = async (): Promise<StudioStatus> => {
    const settings = ctx.settings.get();
    return {
      version: studioVersion(),
      dataFolder: settings.dataFolder,
      dbPath: ctx.db.file,
      schemaVersion: ctx.db.schemaVersion,
      device: computeDevice(await probe(settings.forcedProvider), settings.forcedProvider),
      forcedProvider: settings.forcedProvider,
      runningRuns: ctx.runner.running(),
      runningGenerations: generations(),
    };
  };

  return {
    'status': status,
    'settings.get': () => ctx.settings.get(),
    'settings.set': async (p) => {
      const before = ctx.settings.get();
      const messages: string[] = [];
      let restartRequired = false;
      if (p.dataFolder !== undefined && resolve(p.dataFolder) !== resolve(before.dataFolder)) {
        messages.push(moveDataFolder(ctx, p.dataFolder));
        await ctx.db.sqlite.backup(join(resolve(p.dataFolder), basename(ctx.db.file)));
        restartRequired = true;
      }
      if (p.forcedProvider !== undefined && p.forcedProvider !== before.forcedProvider) {
        messages.push(p.forcedProvider === 'auto' ? 'The execution provider is chosen automatically again.' : `Generation and new stages run on ${p.forcedProvider} from now on.`);
      }
      if (p.modelCacheBytes !== undefined && p.modelCacheBytes !== before.modelCacheBytes) {
        messages.push(p.modelCacheBytes === 0 ? 'Generation keeps no model loaded between generations from now on.' : `Generation keeps models loaded up to ${gib(p.modelCacheBytes)} from now on.`);
      }
      const next = await ctx.settings.set({
        ...(restartRequired ? { dataFolder: resolve(p.dataFolder as string) } : {}),
        ...(p.forcedProvider === undefined ? {} : { forcedProvider: p.forcedProvider }),
        ...(p.modelCacheBytes === undefined ? {} : { modelCacheBytes: p.modelCacheBytes }),
      });
      // Models that no longer fit are released now, not at the next generation.
      if (p.modelCacheBytes !== undefined) await ctx.generation.cache(next.modelCacheBytes);
      const message = messages.length === 0 ? 'Nothing changed.' : messages.join(' ');
      ctx.log('info', `Settings: ${message}`);
      return { ...next, restartRequired, message };
    },
    'logs.app': (p) => ctx.appLog(p.limit ?? 500),
    'diagnostics.bundle': async () => {
      const s = await status();
      const counts = (sql: string): { k: string; n: number }[] => ctx.db.statement<[], { k: string; n: number }>(sql).all();
      const runs = counts('SELECT status AS k, count(*) AS n FROM runs GROUP BY status ORDER BY status');
      const failed = ctx.db.statement<[], { id: number; stage: string; error: string | null }>("SELECT id, stage, error FROM runs WHERE status = 'failed' ORDER BY id DESC LIMIT 20").all();
      const lines = [
        `AfD Studio ${s.version} diagnostics, ${new Date().toISOString()}`,
        '',
        `node ${process.versions.node}${process.versions.electron === undefined ? '' : `, electron ${process.versions.electron}`}; ${platform()} ${release()} ${arch()}`,
        `cpu threads ${availableParallelism()}; memory ${gib(totalmem())} total, ${gib(freemem())} free`,
        `database ${s.dbPath} (schema ${s.schemaVersion}); data folder ${s.dataFolder}`,
        `forced provider: ${s.forcedProvider}; loaded models' budget ${gib(ctx.settings.get().modelCacheBytes)}`,
        `device: ${s.device.provider ?? 'none'} (${s.device.reason})`,
        ...s.device.tried.map((t) => `  tried ${t.provider}: ${t.ok ? 'ok' : 'failed'}: ${t.reason}`),
        `gpu: ${s.device.gpu === null ? 'none found' : s.device.gpu.name}${s.device.gpuUnusedReason === null ? '' : `; not used: ${s.device.gpuUnusedReason}`}`,
        '',
        `datasets ${counts('SELECT count(*) AS n, 1 AS k FROM datasets WHERE ready = 1')[0]?.n ?? 0}, models ${counts('SELECT count(*) AS n, 1 AS k FROM models')[0]?.n ?? 0}, experiments ${counts('SELECT count(*) AS n, 1 AS k FROM experiments')[0]?.n ?? 0}`,
        `runs: ${runs.map((r) => `${r.k} ${r.n}`).join(', ') || 'none'}`,
        ...failed.map((f) => `  run #${f.id} (${f.stage}) failed: ${f.error ?? '(no message)'}`),
        '',
        'app log (newest last):',
        ...ctx.appLog(200).map((l) => `${l.at} ${l.level} ${l.text}`),
      ];
      return { fileName: `afd-studio-diagnostics-${new Date().toISOString().replace(/[:.]/g, '-')}.txt`, text: `${lines.join('\n')}\n` };
    },
  };
}

/** Copies the files folder to `target` (the database is copied by the caller with SQLite's
 *  online backup) and says what happened. The old copy stays until the user removes it. */
function moveDataFolder(ctx: ApiContext, target: string): string {
  if (!isAbsolute(target)) throw new Error(`The data folder "${target}" is not an absolute path; choose a folder with the folder picker.`);
  if (ctx.db.file === ':memory:' || ctx.db.file === '') throw new Error('This studio runs on a throwaway in-memory database, which cannot be moved; start it with a database file.');
  if (ctx.runner.running().length > 0) throw new Error('A job is running; wait for it to finish or pause it before moving the data folder.');
  const dir = resolve(target);
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new Error(`The folder ${dir} is not empty; choose an empty or a new folder for the studio's data.`);
  try {
    mkdirSync(dir, { recursive: true });
    const files = `${resolve(ctx.db.file)}.files`;
    if (existsSync(files)) cpSync(files, join(dir, basename(files)), { recursive: true });
  } catch (err) {
    throw new Error(`Could not copy the studio's data to ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check that the folder is writable and the disk has room.`, { cause: err });
  }
  return `The data was copied to ${dir}; the studio uses it after a restart, and the old folder ${dirname(resolve(ctx.db.file))} can then be deleted.`;
}

export function computeDevice(probe: ProviderProbe, forced: ProviderSetting, gpu = findGpu()): ComputeDevice {
  const onGpu = probe.provider === 'cuda' || probe.provider === 'webgpu';
  let gpuUnusedReason: string | null = null;
  if (!onGpu) {
    if (forced === 'cpu') gpuUnusedReason = 'the CPU is forced in the settings';
    else if (probe.provider === null) gpuUnusedReason = probe.reason;
    else {
      const failed = probe.tried.filter((t) => !t.ok).map((t) => `${t.provider}: ${t.reason}`);
      gpuUnusedReason = failed.length > 0 ? failed.join('; ') : 'no GPU provider could run';
    }
  }
  return { provider: probe.provider, reason: probe.reason, gpu, gpuUnusedReason, cpuThreads: availableParallelism(), tried: probe.tried };
}

/** The GPU the machine has, as far as the operating system tells without a driver call. */
export function findGpu(): { name: string; memoryBytes: number | null } | null {
  if (platform() === 'linux') {
    // NVIDIA's driver names its GPUs here; AMD's reports VRAM through sysfs.
    for (const gpu of listDir('/proc/driver/nvidia/gpus')) {
      const info = readText(join('/proc/driver/nvidia/gpus', gpu, 'information'));
      const model = /^Model:\s*(.+)$/m.exec(info ?? '');
      if (model !== null) return { name: model[1].trim(), memoryBytes: null };
    }
    for (const card of listDir('/sys/class/drm').filter((c) => /^card\d+$/.test(c))) {
      const vram = readText(join('/sys/class/drm', card, 'device', 'mem_info_vram_total'));
      if (vram !== null && Number(vram) > 0) return { name: `${card} (${readText(join('/sys/class/drm', card, 'device', 'product_name'))?.trim() || 'AMD GPU'})`, memoryBytes: Number(vram) };
    }
  }
  const adapter = findGpuAdapter();
  return adapter.found ? { name: adapter.detail, memoryBytes: null } : null;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
